"""The platform's one notion of "now": real time, or a demo's simulated clock shared by every process. Pure.

A demo (`ioc up`) replays its scripted stories fast (`speed` simulated seconds per wall second for the first
`fast_s` simulated seconds) and then keeps the province living in real time. The simulator, the stream workers
and the dashboards build the same `SimulatedClock` from the same four numbers, so they read the same present:
an SLA runs out for the workers when the dashboards count it down to zero, and "the last 3 hours" on a page are
the last 3 hours of the data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable

__all__ = ["SimulatedClock", "clock_from"]


@dataclasses.dataclass(frozen=True, slots=True)
class SimulatedClock:
    """Simulated time as a function of wall time: `start` at `anchor`, `speed`x for `fast_s`, then 1x.

    `fast_s` None runs at `speed` for ever (a plain accelerated clock).
    """

    start: float
    """Simulated Unix time at the anchor."""
    anchor: float
    """Wall-clock Unix time at which the clock reads `start`."""
    speed: float = 1.0
    fast_s: float | None = None

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"a clock's speed must be greater than zero, got {self.speed}")
        if self.fast_s is not None and self.fast_s < 0:
            raise ValueError(f"the fast part of a clock cannot be negative, got {self.fast_s} s")

    @property
    def fast_end(self) -> float | None:
        """Simulated Unix time at which the clock slows to real time (None: never)."""
        return None if self.fast_s is None else self.start + self.fast_s

    def at(self, wall: float) -> float:
        """The simulated time at wall-clock time `wall` (both Unix seconds)."""
        elapsed = wall - self.anchor
        if self.fast_s is None or elapsed * self.speed <= self.fast_s:
            return self.start + elapsed * self.speed
        return self.start + self.fast_s + (elapsed - self.fast_s / self.speed)

    def wall_at(self, simulated: float) -> float:
        """The wall-clock time at which the clock reads `simulated` (the inverse of `at`)."""
        ahead = simulated - self.start
        if self.fast_s is None or ahead <= self.fast_s:
            return self.anchor + ahead / self.speed
        return self.anchor + self.fast_s / self.speed + (ahead - self.fast_s)

    def speed_at(self, simulated: float) -> float:
        """Simulated seconds per wall second at simulated time `simulated`."""
        end = self.fast_end
        return self.speed if end is None or simulated < end else 1.0

    def now(self) -> float:
        return self.at(time.time())


def clock_from(
    start: dt.datetime | None, speed: float, anchor: float | None, fast_s: float | None = None
) -> Callable[[], float]:
    """A process's "now" in Unix seconds from its settings: `time.time` unless a simulated clock is configured.

    Without an anchor the clock starts when this is called (one process on its own); at 1x with an anchor it is
    the wall clock shifted (a demo's living present, or a test's seeded one).
    """
    if start is None or (speed == 1.0 and anchor is None):  # real time (1x from now is the wall clock)
        return time.time
    clock = SimulatedClock(start.timestamp(), time.time() if anchor is None else anchor, speed, fast_s)
    return clock.now
