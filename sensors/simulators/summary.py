"""A plan's (or a run's) counts per kind, vendor and device, and its summary as lines for people. Pure."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable

from ioc.events import CameraEvent, SensorReading
from sensors.simulators.plan import KINDS, Planned, Simulation, kind_of

__all__ = ["Tally", "describe", "tally"]


@dataclasses.dataclass
class Tally:
    """Counts of events per kind, vendor and device, and the last sequence number per device."""

    by_kind: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    by_vendor: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    by_device: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    first_seq: dict[str, int] = dataclasses.field(default_factory=dict)
    last_seq: dict[str, int] = dataclasses.field(default_factory=dict)
    spoofs: int = 0
    last_offset_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.by_kind.values()) + self.spoofs

    def add(self, planned: Planned) -> None:
        self.last_offset_s = max(self.last_offset_s, planned.offset_s)
        event = planned.event
        if planned.spoof:
            self.spoofs += 1
            return
        self.by_kind[kind_of(planned)] += 1
        if isinstance(event, SensorReading | CameraEvent):
            key = f"{event.vendor}/{event.device}"
            self.by_vendor[event.vendor] += 1
            self.by_device[key] += 1
            self.first_seq.setdefault(key, event.seq)
            self.last_seq[key] = event.seq

    def kinds_line(self) -> str:
        """`air 120 · water 98 · ...` in the fixed kind order."""
        parts = [f"{kind} {self.by_kind[kind]}" for kind in KINDS if self.by_kind[kind]]
        if self.spoofs:
            parts.append(f"spoof {self.spoofs}")
        return " · ".join(parts) or "nothing"


def tally(events: Iterable[Planned]) -> Tally:
    """Count a plan (or what a run sent)."""
    counted = Tally()
    for planned in events:
        counted.add(planned)
    return counted


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(
        [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs or not whole else ""]
    )


def describe(sim: Simulation, counted: Tally | None = None) -> list[str]:
    """A run's summary as lines for people: the fleet, the scenarios and (given a tally) what would be sent."""
    fleet = sim.fleet
    kinds = collections.Counter(d.kind for d in fleet.devices)
    lines = [
        f"fleet (seed {fleet.seed}): {len(fleet.devices)} devices on {len(fleet.units)} communes: "
        + " · ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
        "  vendors: " + " · ".join(f"{v.id} ({v.name})" for v in fleet.vendors),
        f"run: {_duration(sim.duration_s)} simulated from {sim.start.isoformat()} at {sim.speed:g}x "
        f"= {_duration(sim.wall_s)} wall",
    ]
    for scenario in sim.scenarios:
        end = scenario.end_s(sim.duration_s)
        late = "  (after the end of the run: nothing happens)" if scenario.start_s >= sim.duration_s else ""
        lines.append(f"  scenario {scenario.text}: +{_duration(scenario.start_s)} to +{_duration(end)}{late}")
    if counted is None:
        return lines
    rate = counted.total / sim.wall_s
    lines.append(
        f"plan: {counted.total} messages, {rate:.1f} msg/s on average (target {sim.rate_per_s:g}): "
        + counted.kinds_line()
    )
    if rate > sim.rate_per_s * 1.2:
        lines.append(
            "  above the target: devices still report often enough for the silence rules, and the month of "
            "dossiers is replayed at the start"
        )
    return lines
