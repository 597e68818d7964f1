"""The living province (SCENARIOS.md story 7): after the scripted stories the simulator keeps going, for ever."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ioc import topics
from ioc.clock import SimulatedClock
from ioc.units import load_tree
from iocctl.localstack import Stack
from sensors.simulators import build_fleet, living_hours, occasional_events, plan
from sensors.simulators.living import HOUR_S, LIVING_VOLUMES
from sensors.simulators.scenarios import ScenarioKind

TREE = load_tree("2024")
START = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC).timestamp()


def test_hour_after_hour_without_gaps_and_never_across_the_clocks_slowdown() -> None:
    fleet = build_fleet(7, TREE, units=["25957", "25987"])
    clock = SimulatedClock(START, anchor=0.0, speed=60.0, fast_s=5400.0)  # the script ends 1.5 h in
    pieces = list(itertools.islice(living_hours(fleet, clock, since=START + 2700.0, rate_per_s=10.0), 4))
    assert pieces[0].start.timestamp() == START + 2700.0
    for first, second in itertools.pairwise(pieces):
        assert first.start.timestamp() + first.duration_s == second.start.timestamp()
    # Restarted during the script: the first piece stops where the clock slows, the next goes on at real time.
    assert pieces[0].duration_s == 2700.0 and pieces[0].speed == 60.0
    assert all(p.speed == 1.0 and p.duration_s == HOUR_S for p in pieces[1:])
    assert all(p.volumes == LIVING_VOLUMES and p.first_seq > 0 for p in pieces)
    assert pieces[2].first_seq > pieces[1].first_seq  # later hours number their messages after earlier ones


def test_occasional_events_happen_within_their_hour_seeded_by_it() -> None:
    fleet = build_fleet(7, TREE, units=["25957", "25987", "25747"])
    hours = [occasional_events(fleet, 7, START + h * HOUR_S, HOUR_S) for h in range(48)]
    events = [e for hour in hours for e in hour]
    assert 48 <= len(events) <= 150  # about one every half hour
    assert {e.kind for e in events} == {ScenarioKind.POLLUTION, ScenarioKind.FLOOD, ScenarioKind.VIOLATIONS}
    assert all(e.start_s >= 0 and e.end_s(HOUR_S) <= HOUR_S for e in events)
    assert hours == [occasional_events(fleet, 7, START + h * HOUR_S, HOUR_S) for h in range(48)]
    assert any(h for h in hours[:4]) or any(h for h in hours[4:8])


def test_a_living_hour_is_ordinary_traffic_without_the_replayed_month() -> None:
    fleet = build_fleet(7, TREE, units=["25957"])
    clock = SimulatedClock(START, anchor=0.0, speed=60.0, fast_s=0.0)
    hour = next(living_hours(fleet, clock, since=START, rate_per_s=10.0))
    events = plan(hour)
    assert events and all(0 <= p.offset_s < HOUR_S for p in events)
    # Dossiers of the hour only: none received before it (the script replayed the month once).
    received = [p.event.received_at for p in events if hasattr(p.event, "received_at")]
    assert all(r.timestamp() >= START for r in received)


# --- a short real run -------------------------------------------------------------------------------------------

_OBSERVED = re.compile(rb'"observed_at":\s*"([^"]+)"')


class _Times:
    """The `observed_at` of every device message the broker delivers (read with the bridge's login)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.seen: list[dt.datetime] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(info["bridge_user"], info["bridge_password"])
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        group = f"t-{uuid.uuid4().hex[:8]}"
        self.client.on_connect = lambda c, *_a: c.subscribe(topics.mqtt_shared_subscription(group), qos=1)
        self.client.on_message = self._on_message
        self.client.connect(info["host"], info["port"])
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        times = [dt.datetime.fromisoformat(m.decode()) for m in _OBSERVED.findall(message.payload)]
        with self.lock:
            self.seen.extend(times)

    def after(self, moment: float) -> int:
        with self.lock:
            return sum(1 for t in self.seen if t.timestamp() >= moment)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.slow
@pytest.mark.mqtt
@pytest.mark.kafka
def test_the_simulator_goes_on_after_its_script_and_a_restart_goes_on_living(
    local_stack: Stack, mosquitto: dict[str, Any], kafka: dict[str, Any], tmp_path: Path
) -> None:
    # The first run is ready before its anchor, as `ioc up` starts it (a loaded machine takes seconds to import).
    start = float(int(time.time() + 15.0))
    clock = SimulatedClock(start, start, speed=30.0, fast_s=60.0)  # one simulated minute at 30x, then real time
    argv = [
        sys.executable,
        "-m",
        "iocctl",
        "simulate",
        "--stack",
        str(local_stack.root),
        "--units",
        "25957,25747",
        "--speed",
        "30",
        "--rate",
        "30",
        "--duration",
        "1m",
        "--start",
        dt.datetime.fromtimestamp(start, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S%z"),
        "--anchor",
        str(start),
        "--then-live",
        "--living-rate",
        "20",
    ]
    times = _Times(mosquitto)
    log = (tmp_path / "simulate.log").open("wb")
    try:
        # The first run starts with SIGINT ignored, as the background of a non-interactive shell (nohup, a CI
        # runner) hands it down, and is stopped with SIGINT; the restarted one is stopped as `ioc up` does, SIGTERM.
        ignoring_sigint = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv]
        for command, stop in ((ignoring_sigint, signal.SIGINT), (argv, signal.SIGTERM)):
            simulator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            try:
                # Readings dated after the script's end, and after the present of a restart, keep coming.
                floor = max(start + 60.0, clock.now()) + 5.0
                deadline = time.monotonic() + 120
                while times.after(floor) < 20 and time.monotonic() < deadline and simulator.poll() is None:
                    time.sleep(0.5)
                assert simulator.poll() is None, (tmp_path / "simulate.log").read_text()
                assert times.after(floor) >= 20, (tmp_path / "simulate.log").read_text()
            finally:
                simulator.send_signal(stop)
                try:
                    simulator.wait(60)
                except subprocess.TimeoutExpired:
                    simulator.kill()  # never left publishing into the session's broker for the tests after this one
                    simulator.wait(10)
                    raise
            assert simulator.returncode == 0, (tmp_path / "simulate.log").read_text()  # stopped, flushed, said so
    finally:
        times.close()
        log.close()
    output = (tmp_path / "simulate.log").read_text()
    assert output.count("the province lives on from") == 2
    # Restarted past its start, it does not replay the script's stories (their events lie in the past).
    assert output.count("run: 1m simulated") == 1 and "Traceback" not in output
