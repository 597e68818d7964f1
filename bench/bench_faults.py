"""The platform under faults: processes and services killed, partitioned or down while producers record.

`python -m bench faults [--clickhouse-outage SECONDS]` runs `iocctl.faults.FaultRun` with the full schedule
(`iocctl.faults.schedule.full`: each fault alone, then overlapping bursts; ClickHouse down 600 s by default) on a
three-broker stack of its own, checks the history (`iocctl.faults.history`) and draws the timeline to
bench-results/faults-timeline.png. Takes about 30 minutes with the 10-minute outage. Needs root (partitions).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from iocctl.faults import FaultRun, full
from iocctl.faults.timeline import plot

PICTURE = Path(__file__).parents[1] / "bench-results" / "faults-timeline.png"


def parse_options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench faults")
    parser.add_argument(
        "--clickhouse-outage", type=float, default=600.0, help="seconds ClickHouse stays down (default 600)"
    )
    return parser.parse_args(argv)


def run(options: argparse.Namespace | None = None) -> dict[str, Any]:
    outage = options.clickhouse_outage if options is not None else 600.0
    with tempfile.TemporaryDirectory(prefix="ioc-bench-faults-") as tmp:
        result = FaultRun(Path(tmp)).run(full(clickhouse_outage_s=outage))
    figures = result.figures()
    figures["clickhouse_outage_s"] = outage
    title = (
        f"python -m bench faults --clickhouse-outage {outage:g}: {figures['faults']} faults, "
        f"{figures['readings_acknowledged']:,} readings, {figures['readings_lost']} lost, "
        f"{figures['readings_duplicated']} duplicated, {figures['anomalies']} anomalies"
    )
    figures["timeline_png"] = str(plot(result.samples, result.spans, PICTURE, title=title))
    figures["timeline"] = [{k: s[k] for k in ("t_s", "stored_per_s", "lag", "latency_s")} for s in result.samples]
    return figures
