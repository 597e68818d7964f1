"""A long run at a fixed load: memory, file descriptors and latency of every platform process over an hour.

The path and its probes start as `bench pipeline` starts them (one bridge, one stream worker, own stack); the
native generator offers a fixed rate (5,000 readings/s in 50-reading messages by default) for `--duration`
seconds, in one-minute steps so its acknowledgements are counted per minute. Every minute each process's resident
memory (VmRSS), open file descriptors and CPU are sampled; every 10 s the count of stored readings; every 5 minutes
the p50/p95/p99 of publish → row queryable and of the stored rate. At the end: readings acknowledged against
stored (lost must be 0), and each process's growth of RSS and FDs from after the warm-up to the end, against the
goal of under 10 %: the median of the last ten minutes' samples against that of the first ten after the warm-up
(`lasting_growth`; one sample against one is kept as `growth`). Writes bench-results/soak.json (through
`python -m bench`), the per-minute samples in soak-samples.json, and soak.png.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the file-only backend

from bench import loadgen
from bench.bench_pipeline import RESULTS, devices_for, drain, percentile, running, stack
from ioc.clients import clickhouse

GROWTH_GOAL: Final = 0.10
"""Resident memory and open files of a platform process may grow by less than this from warm-up to the end."""
WINDOW_S: Final = 300.0
SAMPLE_S: Final = 60.0
RATE_SAMPLE_S: Final = 10.0
PREFIX: Final = "soak"


def process_sample(pid: int) -> dict[str, float]:
    """Resident memory (MiB), open file descriptors and CPU seconds of `pid`; zeros once it is gone."""
    rss_kib = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss_kib = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return {"rss_mib": 0.0, "fds": 0, "cpu_s": 0.0}
    return {"rss_mib": round(rss_kib / 1024, 1), "fds": fds, "cpu_s": round(loadgen.cpu_s(pid), 1)}


def windows(
    latencies: list[tuple[float, float]], stored: list[tuple[float, int]], start: float, end: float, size: float
) -> list[dict[str, Any]]:
    """Per window of `size` seconds from `start` to `end` (the last may be shorter): p50/p95/p99 of the latencies
    ((sent at, seconds)) sent in it, and of the stored rate between consecutive (at, stored count) samples in it."""
    rates = [
        (at, (count - before) / (at - then)) for (then, before), (at, count) in itertools.pairwise(stored) if at > then
    ]
    result: list[dict[str, Any]] = []
    begin = start
    while begin < end:
        close = min(begin + size, end)
        seconds = [latency for sent, latency in latencies if begin <= sent < close]
        per_s = [rate for at, rate in rates if begin < at <= close]
        window: dict[str, Any] = {"from_s": round(begin - start), "to_s": round(close - start), "probes": len(seconds)}
        window.update({f"row_p{q}_s": round(percentile(seconds, q / 100), 3) for q in (50, 95, 99)})
        window.update({f"stored_p{q}_per_s": round(percentile(per_s, q / 100)) for q in (50, 95, 99)})
        result.append(window)
        begin = close
    return result


def growth(samples: list[dict[str, Any]], from_minute: int) -> dict[str, dict[str, float]]:
    """Per process, the ratio of RSS and FDs at the last sample to the first sample at or after `from_minute`
    (the first sample when the run is shorter) less one: 0.05 is 5 % growth."""
    if not samples:
        return {}
    base = next((s for s in samples if s["minute"] >= from_minute and s is not samples[-1]), samples[0])
    last = samples[-1]
    result: dict[str, dict[str, float]] = {}
    for name, then in base["processes"].items():
        now = last["processes"].get(name)
        if now is None or not then["rss_mib"] or not then["fds"]:
            continue
        result[name] = {
            "rss_growth": round(now["rss_mib"] / then["rss_mib"] - 1, 3),
            "fd_growth": round(now["fds"] / then["fds"] - 1, 3),
            "from_minute": base["minute"],
            "to_minute": last["minute"],
        }
    return result


def lasting_growth(samples: list[dict[str, Any]], from_minute: int, span: int = 10) -> dict[str, dict[str, float]]:
    """Per process, the median RSS and FDs of the last `span` samples against the median of the first `span` from
    `from_minute` on (fewer when the run is short), less one: growth that lasts, not one sample's moment.

    A single sample says what was open or cached at that instant: ClickHouse's descriptors are the HTTP inserts in
    flight (41 to 162 a minute apart while nothing else changed), its memory holds caches that fill and empty."""
    after = [s for s in samples if s["minute"] >= from_minute]
    if len(after) < 2:
        return {}
    size = max(1, min(span, len(after) // 2))
    first, last = after[:size], after[-size:]
    result: dict[str, dict[str, float]] = {}
    for name in first[0]["processes"]:
        if any(name not in s["processes"] for s in first + last):
            continue
        rss = [statistics.median(s["processes"][name]["rss_mib"] for s in part) for part in (first, last)]
        fds = [statistics.median(s["processes"][name]["fds"] for s in part) for part in (first, last)]
        if not rss[0] or not fds[0]:
            continue
        result[name] = {
            "rss_growth": round(rss[1] / rss[0] - 1, 3),
            "fd_growth": round(fds[1] / fds[0] - 1, 3),
            "rss_mib": rss[0],
            "rss_mib_end": rss[1],
            "minutes": f"{first[0]['minute']}-{first[-1]['minute']} vs {last[0]['minute']}-{last[-1]['minute']}",
        }
    return result


def _plot(samples: list[dict[str, Any]], windowed: list[dict[str, Any]], out: Path) -> None:
    figure, (rss, fds, latency) = plt.subplots(3, 1, figsize=(10, 11), sharex=False)
    minutes = [(s["at"] - samples[0]["at"]) / 60 for s in samples]
    for name in samples[0]["processes"] if samples else []:
        rss.plot(minutes, [s["processes"][name]["rss_mib"] for s in samples], label=name)
        fds.plot(minutes, [s["processes"][name]["fds"] for s in samples], label=name)
    rss.set(title="Resident memory per process", xlabel="minute", ylabel="MiB")
    fds.set(title="Open file descriptors per process", xlabel="minute", ylabel="FDs")
    ends = [w["to_s"] / 60 for w in windowed]
    for q in (50, 95, 99):
        latency.plot(ends, [w[f"row_p{q}_s"] for w in windowed], marker="o", label=f"p{q}")
    latency.set(title="Publish → row queryable per 5-minute window", xlabel="minute (window end)", ylabel="s")
    latency.set_ylim(bottom=0)
    for axes in (rss, fds, latency):
        axes.legend(fontsize=7, loc="upper left")
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)


def _count(warehouse: clickhouse.Warehouse, database: str, vendor: str) -> int:
    rows = warehouse.query(
        f"SELECT count() AS n FROM {database}.readings WHERE unit = '25957' AND vendor = %(v)s", {"v": vendor}
    )
    return int(rows[0]["n"])


def soak(*, duration_s: float, rate: float, batch: int, warm_up_minutes: int) -> dict[str, Any]:
    """The run itself; its full record (samples, windows, growth, loss)."""
    steps = [(rate, SAMPLE_S)] * max(1, round(duration_s / SAMPLE_S))
    results: dict[str, Any] = {
        "offered_readings_per_s": rate,
        "readings_per_message": batch,
        "duration_s": len(steps) * SAMPLE_S,
        "load_1m_start": os.getloadavg()[0],
    }
    with (
        stack("ioc-bench-soak-") as (info, warehouse, root),
        running(info, warehouse, root, bridges=1, workers=1, name="soak") as path,
    ):
        vendor, password = loadgen.new_vendor(info["mosquitto"])
        publisher = loadgen.Publisher(
            info["mosquitto"], vendor, password, steps, batch=batch, devices=devices_for(rate, batch),
            device_prefix=PREFIX,
        )  # fmt: skip
        pids = {**path.pids, "generator": publisher.start().pid}
        start = time.time()
        samples: list[dict[str, Any]] = []
        stored: list[tuple[float, int]] = []
        next_sample = start
        while publisher.process.poll() is None:
            now = time.time()
            stored.append((now, _count(warehouse, path.database, vendor)))
            if now >= next_sample:
                minute = round((now - start) / 60)
                samples.append(
                    {"minute": minute, "at": now, "processes": {n: process_sample(p) for n, p in pids.items()}}
                )
                acked = sum(line["acked_messages"] for line in publisher.step_lines()) * batch
                recent = path.probes.between(now - SAMPLE_S, now)
                shown = samples[-1]["processes"].items()
                print(
                    f"  soak minute {minute}: acknowledged {acked:,}, stored {stored[-1][1]:,}, "
                    f"p99 row {percentile(recent, 0.99):.2f} s, load {os.getloadavg()[0]:.1f}, "
                    + ", ".join(f"{n} {s['rss_mib']:.0f} MiB/{s['fds']} fd" for n, s in shown),
                    flush=True,
                )
                next_sample += SAMPLE_S
            time.sleep(RATE_SAMPLE_S - (time.time() - now) % RATE_SAMPLE_S)
        end = time.time()
        done = publisher.wait(120)
        samples.append(
            {"minute": round((end - start) / 60), "at": end,
             "processes": {n: process_sample(p) for n, p in pids.items() if n != "generator"}}
        )  # fmt: skip
        published = int(done["acked_readings"])
        kept = drain(warehouse, path.database, vendor, PREFIX, published, limit_s=300)
        windowed = windows(path.probes.latencies, stored, start, end, WINDOW_S)
    for sample in samples:
        sample["processes"].pop("generator", None)  # it ends before the last sample; its CPU is in `generator_cpu_s`
    grown = growth(samples, warm_up_minutes)
    lasting = lasting_growth(samples, warm_up_minutes)
    worst = max((max(g["rss_growth"], g["fd_growth"]) for g in lasting.values()), default=0.0)
    results.update(
        {
            "acknowledged_readings": published,
            "stored_readings": kept,
            "lost_readings": published - kept,
            "failed_messages": done["failed_messages"],
            "generator_cpu_s": round(done["cpu_s"], 1),
            "windows": windowed,
            "growth": grown,  # one sample against one sample
            "lasting_growth": lasting,  # the first ten minutes after warm-up against the last ten: the goal's measure
            "worst_growth": worst,
            "growth_goal": GROWTH_GOAL,
            "growth_within_goal": worst < GROWTH_GOAL,
            "samples": samples,
            "load_1m_end": os.getloadavg()[0],
        }
    )
    _plot(samples, windowed, RESULTS / "soak.png")
    return results


def parse_options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench soak")
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds of load (default 3600)")
    parser.add_argument("--rate", type=float, default=5000.0, help="offered readings/s (default 5000)")
    parser.add_argument("--readings-per-message", type=int, default=50, help="readings per MQTT message (default 50)")
    parser.add_argument(
        "--warm-up-minutes", type=int, default=5, help="growth is measured from this minute's sample (default 5)"
    )
    return parser.parse_args(argv)


def run(options: argparse.Namespace | None = None) -> dict[str, Any]:
    options = options or parse_options([])
    RESULTS.mkdir(exist_ok=True)
    results = soak(
        duration_s=options.duration,
        rate=options.rate,
        batch=options.readings_per_message,
        warm_up_minutes=options.warm_up_minutes,
    )
    samples = results.pop("samples")
    (RESULTS / "soak-samples.json").write_text(json.dumps(samples, indent=1) + "\n", encoding="utf-8")
    results["load_1m_start"] = round(results["load_1m_start"], 1)
    results["load_1m_end"] = round(results["load_1m_end"], 1)
    return results  # the windows and the growth are the soak's result: soak.json holds them; the minutes beside it
