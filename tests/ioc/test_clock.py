"""The demo's one clock: fast for the scripted stories, then real time; its inverse paces the simulator."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from ioc.clock import SimulatedClock, clock_from

START = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC).timestamp()


def test_fast_for_the_script_then_real_time() -> None:
    clock = SimulatedClock(START, anchor=1000.0, speed=60.0, fast_s=6 * 3600.0)
    assert clock.at(1000.0) == START
    assert clock.at(1060.0) == START + 3600.0  # a wall minute is a simulated hour while the script runs
    assert clock.at(1360.0) == START + 6 * 3600.0  # the script's end
    assert clock.at(1370.0) == START + 6 * 3600.0 + 10.0  # then one second per second
    assert clock.speed_at(START + 3600.0) == 60.0 and clock.speed_at(START + 7 * 3600.0) == 1.0
    assert clock.fast_end == START + 6 * 3600.0


@pytest.mark.parametrize("wall", [990.0, 1000.0, 1030.5, 1360.0, 1361.0, 90_000.0])
def test_wall_at_is_the_inverse(wall: float) -> None:
    clock = SimulatedClock(START, anchor=1000.0, speed=60.0, fast_s=6 * 3600.0)
    assert clock.wall_at(clock.at(wall)) == pytest.approx(wall)


def test_without_a_fast_part_it_runs_at_its_speed_for_ever() -> None:
    clock = SimulatedClock(START, anchor=0.0, speed=60.0)
    assert clock.at(86400.0) == START + 60 * 86400.0 and clock.fast_end is None


def test_a_process_reads_real_time_unless_a_simulated_clock_is_configured() -> None:
    assert clock_from(None, 60.0, None) is time.time
    assert clock_from(dt.datetime.fromtimestamp(START, dt.UTC), 1.0, None) is time.time
    shifted = clock_from(dt.datetime.fromtimestamp(START, dt.UTC), 1.0, time.time() - 5.0)()
    assert START + 5.0 <= shifted < START + 6.0  # 1x from an anchor: the wall clock, shifted
    anchor = time.time() - 10.0
    now = clock_from(dt.datetime.fromtimestamp(START, dt.UTC), 60.0, anchor, 3600.0)()
    assert START + 600.0 <= now < START + 660.0


def test_nonsense_is_refused() -> None:
    with pytest.raises(ValueError, match="speed must be greater than zero"):
        SimulatedClock(START, 0.0, speed=0.0)
    with pytest.raises(ValueError, match="cannot be negative"):
        SimulatedClock(START, 0.0, speed=2.0, fast_s=-1.0)
