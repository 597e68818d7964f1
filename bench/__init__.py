"""Benchmarks run by `make bench`: each `bench_*.py` module's `run()` returns named figures."""
