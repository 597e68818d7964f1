"""The performance report: bench-results/report.md and its PNG plots, from the JSON the benchmarks wrote.

`python -m bench` writes it after the benchmarks (`python -m bench.report` rewrites it from what is there): the
pipeline's ramps (throughput against offered load, latency percentiles, CPU per process at the sustained rate),
each figure beside its anchor (ThingsBoard's published 5,000 messages/s on 2 vCPU; Mosquitto and Kafka alone,
measured in the same run), then the other benchmarks' figures as they were stored.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the file-only backend

RESULTS: Final = Path(__file__).parents[1] / "bench-results"
THINGSBOARD_MSG_PER_S: Final = 5_000
"""ThingsBoard's published figure: 5,000 MQTT messages/s on 2 vCPU (thingsboard.io, performance tests)."""
GOALS: Final = {"batched_readings_per_s": 20_000, "single_messages_per_s": 10_000, "incident_p99_s": 1.0}


def _throughput_plot(ramps: list[dict[str, Any]], path: Path) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ramp in ramps:
        batch = ramp["config"]["batch"]
        ax = axes[0] if batch > 1 else axes[1]
        offered = [s["offered_readings_per_s"] for s in ramp["steps"]]
        delivered = [s["readings_per_s"] for s in ramp["steps"]]
        ax.plot(offered, delivered, marker="o", label=ramp["name"].split(" ")[1])
    for ax, title in zip(axes, ("50 readings per message", "1 reading per message"), strict=True):
        top = max([*ax.get_xlim(), 1.0])
        ax.plot([0, top], [0, top], color="grey", linestyle=":", label="offered = delivered")
        ax.set_title(title)
        ax.set_xlabel("offered readings/s")
        ax.set_ylabel("readings/s stored in ClickHouse")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].axhline(THINGSBOARD_MSG_PER_S, color="red", linestyle="--", linewidth=1)
    axes[1].text(0, THINGSBOARD_MSG_PER_S, " ThingsBoard 5,000 msg/s, 2 vCPU", color="red", fontsize=8, va="bottom")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _latency_plot(ramps: list[dict[str, Any]], path: Path) -> None:
    figure, ax = plt.subplots(figsize=(8, 4.2))
    for ramp in ramps:
        offered = [s["offered_readings_per_s"] for s in ramp["steps"]]
        (line,) = ax.plot(offered, [s["row_p99_s"] for s in ramp["steps"]], marker="o", label=f"{ramp['name']} p99")
        ax.plot(offered, [s["row_p50_s"] for s in ramp["steps"]], linestyle=":", color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("offered readings/s (log)")
    ax.set_ylabel("publish → row queryable, s (dotted: p50)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _cpu_plot(ramps: list[dict[str, Any]], path: Path) -> None:
    shown = [r for r in ramps if r.get("at_sustained")]
    names = sorted({n for r in shown for n in r["at_sustained"]["cores"]})
    figure, ax = plt.subplots(figsize=(9, 4.2))
    bottoms = [0.0] * len(shown)
    labels = [f"{r['name']}\n{r['sustained_readings_per_s']:,}/s" for r in shown]
    for name in names:
        values = [r["at_sustained"]["cores"].get(name, 0.0) for r in shown]
        ax.bar(labels, values, bottom=bottoms, label=name)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    ax.axhline(2, color="grey", linestyle=":", linewidth=1)
    ax.set_ylabel("cores busy at the sustained rate (machine: 2)")
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


READINGS_PER_DEVICE_S: Final = 0.1
"""A device's mean rate: a reading every 10 s (water gauges every 10-60 s, air stations every minute, counters 10 s)."""
PEAK_FACTOR: Final = 5
"""Peak over mean: a flood, or a district's gateways draining their disk queues after an outage."""
HEADROOM: Final = 2
"""Cores provisioned per core measured busy: run at half load, so a burst does not become a backlog."""
PLACES: Final = {"province": 10_000, "city": 100_000}
NODE_CORES: Final = 2
"""Cores per Kafka broker or ClickHouse server assumed in the sizing (the size of this machine)."""


def _per_core(ramps: list[dict[str, Any]], batch: int, prefix: str, figure: str) -> float:
    """The best sustained step's `figure` (readings_per_s or messages_per_s) per core of processes named `prefix`."""
    best = 0.0
    for ramp in ramps:
        step = ramp.get("at_sustained")
        if ramp["config"]["batch"] != batch or not step:
            continue
        cores = sum(v for name, v in step["cores"].items() if name.startswith(prefix))
        if cores > 0:
            best = max(best, step[figure] / cores)
    return best


def scale_out(ramps: list[dict[str, Any]]) -> list[str]:
    """The sizing of a province and a city from this run's rates per core, with the arithmetic written out."""
    rates = {
        "bridge_msg": _per_core(ramps, 1, "bridge", "messages_per_s"),
        "bridge_batched": _per_core(ramps, 50, "bridge", "readings_per_s"),
        # Everything downstream sized on one-reading messages too, the worst case the table assumes: the bridge's
        # Kafka records then hold a few readings each, not hundreds.
        "worker": _per_core(ramps, 1, "worker", "readings_per_s"),
        "worker_batched": _per_core(ramps, 50, "worker", "readings_per_s"),
        "kafka": _per_core(ramps, 1, "kafka", "readings_per_s"),
        "clickhouse": _per_core(ramps, 1, "clickhouse", "readings_per_s"),
        "mosquitto": _per_core(ramps, 1, "mosquitto", "messages_per_s"),
    }
    if not all(rates.values()):
        return ["", "(No sizing: a ramp held no step, so some rate per core is unknown.)"]
    lines = [
        "",
        "Rates per core measured in this run (figure at the best sustained step ÷ that process's cores): bridge "
        f"{rates['bridge_msg']:,.0f} one-reading messages/s and {rates['bridge_batched']:,.0f} readings/s in "
        f"50-reading messages; stream worker {rates['worker']:,.0f} readings/s from one-reading messages "
        f"({rates['worker_batched']:,.0f} from 50-reading ones); from one-reading messages, Kafka "
        f"{rates['kafka']:,.0f} readings/s (one broker, no replication) and ClickHouse {rates['clickhouse']:,.0f} "
        f"readings/s; Mosquitto {rates['mosquitto']:,.0f} messages/s.",
        "",
        f"Assumed: a reading per device every {1 / READINGS_PER_DEVICE_S:g} s, peaks {PEAK_FACTOR}× the mean, every "
        f"reading its own MQTT message (the worst case), {HEADROOM}× headroom on every measured core, "
        f"{NODE_CORES}-core Kafka and ClickHouse nodes, Kafka replication 3.",
        "",
        "| | " + " | ".join(f"{place}: {devices:,} devices" for place, devices in PLACES.items()) + " |",
        "|---|" + "---|" * len(PLACES),
    ]
    rows: dict[str, list[str]] = {}
    for devices in PLACES.values():
        peak = devices * READINGS_PER_DEVICE_S * PEAK_FACTOR

        def need(rate: float, per_core: float, factor: float = 1.0) -> tuple[float, int]:
            cores = rate * factor / per_core * HEADROOM
            return cores, max(1, -(-int(cores * 100) // 100))

        rows.setdefault("peak", []).append(
            f"{devices:,} × {READINGS_PER_DEVICE_S:g}/s × {PEAK_FACTOR} = **{peak:,.0f} readings/s** (and messages/s)"
        )
        cores, bridges = need(peak, rates["bridge_msg"])
        rows.setdefault("bridge replicas (1 core each)", []).append(
            f"{peak:,.0f} ÷ {rates['bridge_msg']:,.0f} × {HEADROOM} = {cores:.1f} → **{bridges}**"
        )
        cores, workers = need(peak, rates["worker"])
        rows.setdefault("stream workers (1 core each)", []).append(
            f"{peak:,.0f} ÷ {rates['worker']:,.0f} × {HEADROOM} = {cores:.1f} → **{workers}**"
        )
        partitions = max(8, 1 << (2 * workers - 1).bit_length())
        rows.setdefault("readings topic partitions (≥ 2 per worker, power of two, ≥ 8)", []).append(f"**{partitions}**")
        cores, _ = need(peak, rates["kafka"], 3)
        brokers = max(3, -(-int(cores * 100) // (NODE_CORES * 100)))
        rows.setdefault(f"Kafka brokers ({NODE_CORES} cores; ≥ 3 for replication)", []).append(
            f"{peak:,.0f} × 3 ÷ {rates['kafka']:,.0f} × {HEADROOM} = {cores:.1f} cores → **{brokers}**"
        )
        cores, _ = need(peak, rates["clickhouse"])
        shards = max(1, -(-int(cores * 100) // (NODE_CORES * 100)))
        rows.setdefault(f"ClickHouse shards ({NODE_CORES} cores, × 2 replicas)", []).append(
            f"{peak:,.0f} ÷ {rates['clickhouse']:,.0f} × {HEADROOM} = {cores:.1f} cores → **{shards}**"
        )
        cores, brokers = need(peak, rates["mosquitto"])
        rows.setdefault("Mosquitto brokers (one core each: it is single-threaded)", []).append(
            f"{peak:,.0f} ÷ {rates['mosquitto']:,.0f} × {HEADROOM} = {cores:.1f} → **{brokers}**"
        )
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows.items()]
    return lines


def _load(name: str, results: Path) -> dict[str, Any] | None:
    path = results / name
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _pipeline_section(ramps_file: dict[str, Any], results: Path) -> list[str]:
    ramps = ramps_file["ramps"]
    _throughput_plot(ramps, results / "throughput.png")
    _latency_plot(ramps, results / "latency.png")
    _cpu_plot(ramps, results / "cpu.png")
    lines = [
        "## End to end (`python -m bench pipeline`)",
        "",
        "Go generator → Mosquitto (TLS) → bridge(s) → Kafka (SCRAM over TLS) → stream worker(s) → ClickHouse, all on",
        f"this machine at once; load average {ramps_file['load_1m_start']:.1f} at the start, "
        f"{ramps_file['load_1m_end']:.1f} at the end.",
        "",
        "| configuration | sustained readings/s (0 lost) | messages/s | p50 / p99 publish → row | cores used | "
        "cores waiting for a CPU | readings/s per core | stopped by | anchor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    mosquitto = (ramps_file.get("mosquitto_alone") or {}).get("sustained_messages_per_s")
    kafka = (ramps_file.get("kafka_alone") or {}).get("readings_per_s")
    for ramp in ramps:
        best = ramp.get("at_sustained") or {}
        single = ramp["config"]["batch"] == 1
        anchor = (
            f"ThingsBoard {THINGSBOARD_MSG_PER_S:,} msg/s (2 vCPU); Mosquitto alone {mosquitto or 0:,} msg/s"
            if single
            else f"Kafka alone {kafka or 0:,} readings/s; goal {GOALS['batched_readings_per_s']:,}"
        )
        latency = f"{best['row_p50_s']:.2f} / {best['row_p99_s']:.2f} s" if best else "—"
        lines.append(
            f"| {ramp['name']} | **{ramp['sustained_readings_per_s']:,}** | {ramp['sustained_messages_per_s']:,} | "
            f"{latency} | {best.get('total_cores', 0):.2f} | {best.get('total_waited_cores', 0):.2f} | "
            f"{best.get('readings_per_core_s', 0):,} | "
            f"{ramp['steps'][-1]['failure'] if ramp['steps'] else '—'} | {anchor} |"
        )
    for ramp in ramps:
        if "incidents" in ramp:
            inc = ramp["incidents"]
            lines += [
                "",
                f"Publish → incident visible in the dashboards' incident queue, {inc['incidents_seen']} of "
                f"{inc['floods']} floods at {inc['background_readings_per_s']:,} readings/s ({ramp['name']}): "
                f"p50 {inc['incident_p50_s']:.2f} s, p99 **{inc['incident_p99_s']:.2f} s**, max "
                f"{inc['incident_max_s']:.2f} s (goal p99 < {GOALS['incident_p99_s']:g} s).",
            ]
    for ramp in ramps:
        profiled = [step for step in ramp["steps"] if "bridge_profile" in step]
        if profiled:
            last = profiled[-1]
            shares = ", ".join(
                f"{part} {100 * share:.0f}%"
                for part, share in last["bridge_profile"].items()
                if part not in ("samples", "file")
            )
            lines += [
                "",
                f"Where the first bridge spends its time at {last['offered_readings_per_s']:,.0f} offered "
                f"({ramp['name']}, py-spy, {last['bridge_profile']['samples']:,} samples, "
                f"`{last['bridge_profile']['file']}`): {shares}.",
            ]
    if ramps_file.get("mosquitto_alone"):
        lines += ["", "Anchors measured in the same run:", ""]
        m = ramps_file["mosquitto_alone"]
        at = m.get("at_sustained") or {}
        lines.append(
            f"- Mosquitto alone (generator → broker → one subscriber, QoS 1, TLS, one reading per message): "
            f"**{m['sustained_messages_per_s']:,} messages/s** with nothing lost, broker "
            f"{at.get('mosquitto_cores', 0):.2f} cores, generator {at.get('generator_cores', 0):.2f}."
        )
    if ramps_file.get("kafka_alone"):
        k = ramps_file["kafka_alone"]
        lines.append(
            f"- Kafka alone (one producer, acks=all, lz4, {k['readings_per_message']}-reading batches of "
            f"{k['message_bytes']:,} bytes): **{k['readings_per_s']:,} readings/s** ({k['messages_per_s']:,} "
            f"messages/s, {k['mb_per_s']} MB/s), broker {k['kafka_cores']:.2f} cores."
        )
    lines += ["", "### Scale-out from these rates", *scale_out(ramps)]
    lines += [
        "",
        "![throughput against offered load](throughput.png)",
        "",
        "![latency percentiles](latency.png)",
        "",
        "![CPU per process at the sustained rate](cpu.png)",
        "",
        "Every step of every ramp (offered, published, stored, lost, latency, cores per process) is in "
        "`pipeline-ramps.json`.",
    ]
    return lines


def write(results: Path = RESULTS) -> Path:
    """Write report.md (and the plots) under `results`; returns its path."""
    lines = ["# Performance report", ""]
    ramps_file = _load("pipeline-ramps.json", results)
    if ramps_file is not None:
        lines += _pipeline_section(ramps_file, results)
    for path in sorted(results.glob("*.json")):
        if path.name == "pipeline-ramps.json":
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        if "figures" not in record:
            continue
        lines += [
            "",
            f"## {record['benchmark']} (`{record['command']}`)",
            "",
            f"{record['at']}, {record['machine']['cpus']} CPUs, load {record['machine']['load_1m']:.1f}, "
            f"{record['seconds']} s.",
            "",
            "| figure | value |",
            "|---|---|",
        ]
        lines += [f"| {name} | {value} |" for name, value in record["figures"].items()]
    report = results / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS))
