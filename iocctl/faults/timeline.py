"""The fault run's timeline picture: throughput, consumer lag and end-to-end latency over time, faults shaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on these machines

import matplotlib.pyplot as plt

from iocctl.faults.history import FaultSpan

__all__ = ["plot"]

_COLOURS = {
    "kill": "tab:red",
    "service-kill": "tab:orange",
    "outage": "tab:purple",
    "broker": "tab:blue",
    "controller": "tab:cyan",
    "partition": "tab:green",
}


def plot(samples: list[dict[str, Any]], spans: list[FaultSpan], path: Path, *, title: str) -> Path:
    """Write the three stacked panels to `path` (PNG); time is seconds since the first sample."""
    t0 = samples[0]["t"] if samples else 0.0
    t = [s["t"] - t0 for s in samples]
    figure, (rate, lag, latency) = plt.subplots(3, 1, sharex=True, figsize=(11, 7), dpi=80)
    rate.plot(t, [s["stored_per_s"] for s in samples], lw=0.8, color="black", label="rows stored/s")
    rate.set_ylabel("readings/s")
    lag.plot(t, [s["lag"] for s in samples], lw=0.8, color="black")
    lag.set_ylabel("consumer lag\n(messages)")
    latency.plot(t, [s["latency_s"] for s in samples], lw=0.8, color="black", marker=".", ms=2)
    latency.set_ylabel("end-to-end\nlatency (s)")
    latency.set_yscale("symlog", linthresh=5)
    latency.set_xlabel("seconds into the run")
    seen: set[str] = set()
    for span in spans:
        for axis in (rate, lag, latency):
            label = span.kind if axis is rate and span.kind not in seen else None
            axis.axvspan(
                span.started - t0, span.ended - t0, color=_COLOURS.get(span.kind, "grey"), alpha=0.18, label=label
            )
        seen.add(span.kind)
    rate.legend(loc="upper right", fontsize=7, ncol=4)
    rate.set_title(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
