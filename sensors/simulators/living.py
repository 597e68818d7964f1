"""After the scripted stories, the province keeps living: ordinary hours with the occasional event. Pure.

`living_hours(...)` yields one `Simulation` per simulated hour from a given moment, for ever (SCENARIOS.md story 7):
every device reports as on any day, citizens send reports and dossiers move (no month of history replayed
again), and now and then a pollution episode, a flood or a burst of violations happens in a commune drawn
from the fleet. Each hour follows the demo's clock (`ioc.clock.SimulatedClock`): no hour straddles the
moment the clock slows from the scripted speed to real time. The runner sends the hours one after another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Final

from ioc.clock import SimulatedClock
from sensors.simulators import generators
from sensors.simulators.fleet import Fleet
from sensors.simulators.plan import Simulation, Volumes, seq_base
from sensors.simulators.scenarios import Scenario, parse_scenario

__all__ = ["EVENT_EVERY_S", "HOUR_S", "LIVING_VOLUMES", "living_hours", "occasional_events"]

HOUR_S: Final = 3600.0
"""Simulated seconds per planned piece: a plan is made an hour at a time, so it never needs to end."""
EVENT_EVERY_S: Final = 1800.0
"""Mean simulated seconds between events while the province lives: one every half hour or so, so an
operator watching in real time sees one now and then, and each has ended before the next usually starts."""
LIVING_VOLUMES: Final = Volumes(history_days=0.0)
"""Ordinary traffic of citizens and dossiers; the month of history was replayed once, by the script."""

# (kind, device kind the commune needs, length in minutes): each event starts and ends within its hour.
_EVENTS: Final = (("pollution", "air", 40), ("flood", "water", 40), ("violations", "camera", 10))


def occasional_events(fleet: Fleet, seed: int, hour_start: float, length_s: float) -> tuple[Scenario, ...]:
    """The events of the piece starting at simulated Unix time `hour_start`: none, one or a few, seeded by the hour."""
    rng = generators.seeded(seed, "living", int(hour_start))
    chosen: list[Scenario] = []
    at = rng.expovariate(1.0 / EVENT_EVERY_S)
    while at < length_s:
        kind, device_kind, minutes = rng.choice(_EVENTS)
        places = sorted({d.unit for d in fleet.of_kind(device_kind)})
        latest = length_s - minutes * 60.0
        if places and latest > 0:
            start = min(at, latest)
            chosen.append(parse_scenario(f"{kind}:{rng.choice(places)}@+{int(start)}s/{minutes}m"))
        at += rng.expovariate(1.0 / EVENT_EVERY_S)
    return tuple(chosen)


def living_hours(
    fleet: Fleet, clock: SimulatedClock, *, since: float, rate_per_s: float, seed: int | None = None
) -> Iterator[Simulation]:
    """Hour after hour of the living province from simulated Unix time `since` (for ever; the caller stops)."""
    base = fleet.seed if seed is None else seed
    start = since
    while True:
        end = start + HOUR_S
        slows = clock.fast_end
        if slows is not None and start < slows < end:
            end = slows  # the clock slows here: the next piece is paced at real time
        moment = dt.datetime.fromtimestamp(start, generators.LOCAL_TZ)
        yield Simulation(
            fleet=fleet,
            start=moment,
            duration_s=end - start,
            seed=base * 1_000_003 + int(start) // 60,  # another hour, other values; the same hour, the same
            scenarios=occasional_events(fleet, base, start, end - start),
            speed=clock.speed_at(start),
            rate_per_s=rate_per_s,
            volumes=LIVING_VOLUMES,
            first_seq=seq_base(moment),
        )
        start = end
