"""Run every benchmark (or those named on the command line), write bench-results/<name>.json each and report.md.

Figures are rates and ratios measured on whatever machine runs them; each file records the command,
the machine's CPU count and load, and the time, because these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
from pathlib import Path

from bench import report

RESULTS = Path(__file__).parents[1] / "bench-results"
ON_REQUEST = frozenset({"fuzz", "cluster", "faults", "soak"})
"""Run only when named (`python -m bench fuzz`, `python -m bench cluster`, `python -m bench faults`): fuzz is not a
timed benchmark and takes minutes; cluster needs root and runs a real node with 101 sites for minutes; faults needs
root and kills the platform's parts for about half an hour; soak holds 5,000 readings/s for an hour."""


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all), e.g. codecs")
    args, rest = parser.parse_known_args()  # the rest: options of a benchmark that takes some (`parse_options`)
    available = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    chosen = args.names or [name for name in available if name not in ON_REQUEST]
    unknown = set(chosen) - set(available)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; available: {available}")
    RESULTS.mkdir(exist_ok=True)
    for name in chosen:
        module = importlib.import_module(f"bench.bench_{name}")
        started = time.monotonic()
        options = getattr(module, "parse_options", None)
        if rest and options is None:
            parser.error(f"benchmark {name} takes no options: {' '.join(rest)}")
        figures = module.run(options(rest)) if options is not None else module.run()
        record = {
            "benchmark": name,
            "command": " ".join(["python -m bench", name, *rest])
            if name in ON_REQUEST
            else f"make bench  (python -m bench {name})",
            "figures": figures,
            "seconds": round(time.monotonic() - started, 1),
            "machine": {"cpus": os.cpu_count(), "load_1m": os.getloadavg()[0], "python": platform.python_version()},
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()) + f"  -> {path}", flush=True)
    print(f"report: {report.write(RESULTS)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
