"""The soak benchmark's arithmetic: latency and stored-rate percentiles per window, and growth from warm-up to end."""

from __future__ import annotations

import os

from bench import bench_soak


def test_windows_take_percentiles_of_what_was_sent_in_each() -> None:
    latencies = [(100.0 + i, 1.0 + i / 100) for i in range(100)] + [(400.0, 9.0)]
    stored = [(100.0, 0), (200.0, 500_000), (300.0, 1_000_000), (400.0, 1_400_000), (450.0, 1_600_000)]
    first, second = bench_soak.windows(latencies, stored, 100.0, 450.0, 300.0)
    assert (first["from_s"], first["to_s"], first["probes"]) == (0, 300, 100)
    assert (first["row_p50_s"], first["row_p99_s"]) == (1.5, 1.99)
    assert first["stored_p50_per_s"] == 5_000 and first["stored_p99_per_s"] == 5_000
    assert (second["from_s"], second["to_s"], second["probes"]) == (300, 350, 1)
    assert second["row_p95_s"] == 9.0 and second["stored_p50_per_s"] == 4_000


def test_growth_is_measured_from_the_first_sample_after_warm_up() -> None:
    def sample(minute: int, rss: float, fds: int) -> dict[str, object]:
        return {"minute": minute, "processes": {"worker-0": {"rss_mib": rss, "fds": fds, "cpu_s": 1.0}}}

    samples = [sample(0, 50.0, 10), sample(5, 100.0, 40), sample(30, 104.0, 40), sample(60, 112.0, 44)]
    assert bench_soak.growth(samples, 5) == {
        "worker-0": {"rss_growth": 0.12, "fd_growth": 0.1, "from_minute": 5, "to_minute": 60}
    }
    assert bench_soak.growth(samples[:2], 5)["worker-0"]["from_minute"] == 0  # shorter than the warm-up
    assert bench_soak.growth([], 5) == {}


def test_lasting_growth_compares_the_medians_of_the_first_and_last_minutes() -> None:
    def sample(minute: int, rss: float, fds: int) -> dict[str, object]:
        return {"minute": minute, "processes": {"clickhouse": {"rss_mib": rss, "fds": fds, "cpu_s": 1.0}}}

    # FDs that jump with the connections open at the instant, and memory that creeps by 20% over the run.
    samples = [sample(0, 10.0, 5)] + [
        sample(m, 100.0 + 20.0 * (m - 5) / 55, 160 if m in (14, 60) else 41) for m in range(5, 61)
    ]
    grown = bench_soak.lasting_growth(samples, 5)["clickhouse"]
    assert grown["fd_growth"] == 0.0  # one sample against one would say +290%
    assert bench_soak.growth(samples, 5)["clickhouse"]["fd_growth"] == 2.902
    assert 0.15 < grown["rss_growth"] < 0.2 and grown["minutes"] == "5-14 vs 51-60"
    assert bench_soak.lasting_growth(samples[:3], 5)["clickhouse"]["minutes"] == "5-5 vs 6-6"  # a short run
    assert bench_soak.lasting_growth(samples[:1], 5) == {}


def test_a_process_sample_reads_this_process() -> None:
    own = bench_soak.process_sample(os.getpid())
    assert own["rss_mib"] > 10 and own["fds"] >= 3
    assert bench_soak.process_sample(2**22 + 7) == {"rss_mib": 0.0, "fds": 0, "cpu_s": 0.0}
