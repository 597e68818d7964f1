"""Fault schedules: what fails when and for how long, one at a time and then overlapping. Pure.

Kinds: `kill` (SIGKILL a platform process, start it again after `down_s`), `service-kill` (SIGKILL Mosquitto or
ClickHouse, resume it with its data), `outage` (ClickHouse stopped for `down_s`), `broker` / `controller` (SIGKILL one
Kafka node, a follower or the KRaft quorum's active controller, restart it), `partition` (cut a process off from every
Kafka broker for `down_s`, `iocctl.faults.partition`).
"""

from __future__ import annotations

import dataclasses
from typing import Final, Literal

__all__ = ["PROCESSES", "Fault", "FaultKind", "full", "short"]

FaultKind = Literal["kill", "service-kill", "outage", "broker", "controller", "partition"]
PROCESSES: Final = ("bridge", "worker-1", "worker-2", "api", "gateway", "reporting", "operator")
"""The platform processes a fault run starts (and kills): names used in schedules and in the run's logs."""


@dataclasses.dataclass(frozen=True)
class Fault:
    """`kind` of fault on `target`, `at_s` seconds into the schedule, lasting `down_s` before the repair starts."""

    kind: FaultKind
    target: str
    at_s: float
    down_s: float

    @property
    def name(self) -> str:
        return f"{self.kind} {self.target}@{self.at_s:g}s"


def _singles(start: float, gap: float, clickhouse_outage_s: float, down: float, kafka_down: float) -> list[Fault]:
    plan: list[tuple[FaultKind, str, float]] = [
        *(("kill", p, down) for p in PROCESSES),
        ("service-kill", "mosquitto", down),
        ("service-kill", "clickhouse", down),
        ("broker", "kafka", kafka_down),
        ("controller", "kafka", kafka_down),
        ("partition", "worker-1", kafka_down),
        ("partition", "bridge", kafka_down),
        ("outage", "clickhouse", clickhouse_outage_s),
    ]
    faults, at = [], start
    for kind, target, lasting in plan:
        faults.append(Fault(kind, target, at, lasting))
        at += lasting + gap
    return faults


def _overlapping(start: float, spread: float) -> list[Fault]:
    """Three bursts of faults that overlap: data path, edges, and a partition with storage failing under it."""
    return [
        Fault("kill", "bridge", start, 5),
        Fault("broker", "kafka", start + spread, 20),
        Fault("kill", "worker-2", start + 2 * spread, 5),
        Fault("service-kill", "mosquitto", start + 60, 5),
        Fault("kill", "api", start + 60 + spread, 5),
        Fault("kill", "gateway", start + 60 + 2 * spread, 5),
        Fault("kill", "reporting", start + 60 + 3 * spread, 5),
        Fault("kill", "operator", start + 60 + 4 * spread, 5),
        Fault("partition", "bridge", start + 120, 20),
        Fault("service-kill", "clickhouse", start + 120 + spread, 5),
        Fault("kill", "worker-1", start + 120 + 2 * spread, 5),
        Fault("controller", "kafka", start + 120 + 3 * spread, 20),
    ]


def full(clickhouse_outage_s: float = 600.0) -> list[Fault]:
    """The bench's schedule: every fault alone, 30 s apart, then the overlapping bursts."""
    singles = _singles(30.0, 30.0, clickhouse_outage_s, down=5.0, kafka_down=30.0)
    last = singles[-1]
    return singles + _overlapping(last.at_s + last.down_s + 60.0, spread=4.0)


def short(clickhouse_outage_s: float = 15.0) -> list[Fault]:
    """The test suite's schedule: each kind at least once, packed so that several overlap, in about two minutes."""
    return [
        Fault("kill", "bridge", 5, 3),
        Fault("kill", "worker-1", 8, 3),
        Fault("kill", "api", 11, 3),
        Fault("kill", "gateway", 14, 3),
        Fault("kill", "reporting", 17, 3),
        Fault("kill", "operator", 27, 3),
        Fault("broker", "kafka", 20, 5),
        Fault("service-kill", "mosquitto", 24, 3),
        Fault("partition", "worker-2", 30, 12),
        Fault("controller", "kafka", 40, 5),  # starts once the follower is back (one Kafka fault at a time)
        Fault("service-kill", "clickhouse", 48, 3),
        Fault("partition", "bridge", 58, 12),
        Fault("kill", "worker-2", 62, 3),
        Fault("outage", "clickhouse", 75, clickhouse_outage_s),
    ]
