"""The workers' clock: real time, or a simulated clock that shares its anchor with the simulator."""

from __future__ import annotations

import datetime as dt
import time

from ioc.settings import StreamsSettings
from streams.__main__ import clock_of

START = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC)


def test_real_time_unless_a_simulated_clock_is_asked_for() -> None:
    assert clock_of(StreamsSettings()) is time.time
    assert clock_of(StreamsSettings(clock_start=START)) is time.time  # speed 1: real time


def test_a_shared_anchor_makes_workers_started_apart_read_the_same_time() -> None:
    anchor = time.time() - 10.0  # the simulator's clock read START ten wall seconds ago
    settings = StreamsSettings(clock_start=START, clock_speed=60.0, clock_anchor=anchor)
    first = clock_of(settings)
    time.sleep(0.05)
    second = clock_of(settings)  # a worker started later, with the same anchor
    now = [first(), second()]
    expected = START.timestamp() + 10.0 * 60.0
    for value in now:
        assert expected <= value < expected + 60.0  # within a wall second of the anchor's reading
    assert abs(now[0] - now[1]) < 0.2 * 60.0


def test_without_an_anchor_the_clock_starts_when_the_worker_does() -> None:
    clock = clock_of(StreamsSettings(clock_start=START, clock_speed=60.0))
    assert START.timestamp() <= clock() < START.timestamp() + 60.0
