"""Per-camera rules: plate de-duplication, low confidence, safety incidents, violation hotspots, silence."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.events import CameraEvent, CameraEventType, Detection, Module, Severity
from ioc.reference import default_reference_model
from streams import cameras
from streams.cameras import CameraOutcome, CameraState

RULES = cameras.camera_rules(default_reference_model())
BASE = dt.datetime(2025, 6, 1, 1, 0, tzinfo=dt.UTC)
RED, OBSTRUCTION = CameraEventType.RED_LIGHT, CameraEventType.OBSTRUCTION


def at(minutes: float) -> dt.datetime:
    return BASE + dt.timedelta(minutes=minutes)


def ts(minutes: float) -> float:
    return at(minutes).timestamp()


def event(
    seq: int,
    minutes: float,
    event_type: CameraEventType = RED,
    plate: str | None = "61A-123.45",
    *,
    confidence: float = 0.9,
    device: str = "cam-pc-01",
    unit: str = "25747",
    **extra: Any,
) -> CameraEvent:
    if event_type is CameraEventType.SPEEDING:
        extra.setdefault("speed_kmh", 72.0)
    return CameraEvent(
        vendor="vn-vision",
        device=device,
        unit=unit,
        seq=seq,
        observed_at=at(minutes),
        event_type=event_type,
        confidence=confidence,
        plate=plate if event_type in (RED, CameraEventType.WRONG_LANE, CameraEventType.SPEEDING) else None,
        **extra,
    )


class Camera:
    def __init__(self, first: CameraEvent) -> None:
        self.state = CameraState.first(first)
        self.detections: list[Detection] = []

    def send(self, *events: CameraEvent) -> list[CameraOutcome]:
        outcomes = [cameras.observe(self.state, e, e.observed_at.timestamp(), RULES) for e in events]
        for out in outcomes:
            self.detections.extend(out.detections)
        return outcomes

    def tick(self, minutes: float) -> list[Detection]:
        found = list(cameras.check_silence(self.state, ts(minutes), RULES))
        self.detections.extend(found)
        return found


def test_the_default_rules() -> None:
    assert (RULES.event.dedupe_minutes, RULES.event.min_confidence) == (5, 0.6)
    assert (RULES.hotspot.min_events, RULES.hotspot.window_minutes) == (5, 15)
    assert RULES.silence is not None and RULES.silence.silent_minutes == 5


def test_repeats_of_one_plate_within_five_minutes_are_one_violation() -> None:
    camera = Camera(event(0, 0))
    outcomes = camera.send(
        event(0, 0),
        event(1, 2),  # the same plate 2 minutes later
        event(2, 2.5, plate="51F-999.99"),  # a new plate
        event(3, 2.6, CameraEventType.WRONG_LANE),  # the same plate, another violation
        event(4, 6),  # 4 minutes after the last sighting: the window slides with the vehicle
        event(5, 11.01),  # more than 5 minutes after the last sighting: a new violation
    )
    assert [o.duplicate for o in outcomes] == [False, True, False, False, True, False]
    assert all(o.applied for o in outcomes)
    assert all(o.detections == [] for o in outcomes)  # four violations are no hotspot yet


def test_low_confidence_events_are_flagged_and_not_remembered() -> None:
    camera = Camera(event(0, 0))
    low, high = camera.send(event(0, 0, confidence=0.5), event(1, 1, confidence=0.6))
    assert (low.duplicate, low.detections) == (True, [])
    assert (high.duplicate, high.applied) == (False, True)
    [blurry_fire] = camera.send(event(2, 2, CameraEventType.FIRE_SMOKE, confidence=0.3))
    assert (blurry_fire.duplicate, blurry_fire.detections) == (True, [])
    assert camera.state.violations == [ts(1)]


def test_twenty_obstruction_events_within_the_window_give_one_detection() -> None:
    camera = Camera(event(0, 0, OBSTRUCTION))
    outcomes = camera.send(*(event(i, i * 0.5, OBSTRUCTION, object_count=3 + i) for i in range(20)))
    assert [o.duplicate for o in outcomes] == [False] + [True] * 19
    [found] = [d for o in outcomes for d in o.detections]
    assert (found.episode, found.rule, found.signal, found.at) == (
        "camera-obstruction:25747",
        "camera-event",
        "open",
        at(0),
    )
    assert (found.module, found.severity, found.title) == (
        Module.TRAFFIC,
        Severity.MEDIUM,
        "Ùn tắc, phương tiện dừng đỗ",
    )
    assert found.detail == {"event_type": "obstruction", "camera": "vn-vision/cam-pc-01", "object_count": "3"}
    assert found.devices == ["vn-vision/cam-pc-01"] and found.vendor is None and not found.auto_close
    assert outcomes[0].incident_episode == "camera-obstruction:25747"


@pytest.mark.parametrize(
    ("event_type", "module", "severity", "episode"),
    [
        (CameraEventType.ACCIDENT, Module.TRAFFIC, Severity.HIGH, "camera-accident:25747"),
        (CameraEventType.FIRE_SMOKE, Module.TRAFFIC, Severity.CRITICAL, "camera-fire-smoke:25747"),
        (CameraEventType.CROWD, Module.TRAFFIC, Severity.MEDIUM, "camera-crowd:25747"),
        (CameraEventType.INTRUSION, Module.SECURITY, Severity.MEDIUM, "camera-intrusion:25747"),
    ],
)
def test_safety_events_are_incidents_per_unit_and_type(
    event_type: CameraEventType, module: Module, severity: Severity, episode: str
) -> None:
    camera = Camera(event(0, 0, event_type))
    [out] = camera.send(event(0, 0, event_type))
    [found] = out.detections
    assert (found.episode, found.module, found.severity) == (episode, module, severity)
    # A second camera in the same ward reports into the same episode.
    other = Camera(event(0, 0, event_type, device="cam-pc-02"))
    [again] = other.send(event(0, 0.2, event_type, device="cam-pc-02"))[0].detections
    assert again.episode == episode and again.devices == ["vn-vision/cam-pc-02"]


def test_a_hotspot_opens_at_min_events_within_the_window_and_clears_when_it_cools() -> None:
    camera = Camera(event(0, 0))
    plates = [f"61A-{100 + i}.00" for i in range(8)]
    first_four = camera.send(*(event(i, i, plate=plates[i]) for i in range(4)))
    assert all(o.detections == [] for o in first_four)
    [fifth] = camera.send(event(4, 4, plate=plates[4]))
    [opened] = fifth.detections
    assert (opened.rule, opened.signal, opened.episode, opened.at) == (
        "camera-hotspot",
        "open",
        "camera-hotspot:25747:vn-vision.cam-pc-01",
        at(0),  # the cluster began with its first violation
    )
    assert (opened.module, opened.severity, opened.detail) == (Module.TRAFFIC, Severity.LOW, {"violations": "5"})
    # More violations and repeats: still one hotspot.
    more = camera.send(event(5, 5, plate=plates[5]), event(6, 5.5, plate=plates[5]), event(7, 6, plate=plates[6]))
    assert all(o.detections == [] for o in more)
    # Time passes: while three or more violations are within the last 15 minutes it stays hot.
    assert hotspot(camera.tick(18)) == []  # minutes 4, 5 and 6 are still within the window
    [cleared] = hotspot(camera.tick(20))  # only minute 6 is left
    assert (cleared.signal, cleared.episode, cleared.at) == ("clear", opened.episode, at(20))
    assert hotspot(camera.tick(21)) == []
    assert not camera.state.hotspot


def hotspot(found: list[Detection]) -> list[Detection]:
    return [d for d in found if d.rule == "camera-hotspot"]


def test_violations_spread_over_more_than_the_window_make_no_hotspot() -> None:
    camera = Camera(event(0, 0))
    outcomes = camera.send(*(event(i, i * 4, plate=f"61A-{200 + i}.00") for i in range(10)))
    assert all(o.detections == [] for o in outcomes)


def test_a_hot_camera_quiet_for_a_window_clears_on_its_next_violation() -> None:
    camera = Camera(event(0, 0))
    camera.send(*(event(i, i * 0.5, plate=f"61A-{300 + i}.00") for i in range(5)))
    assert camera.state.hotspot
    [out] = camera.send(event(5, 30, plate="61A-399.00"))
    assert [(d.signal, d.detail) for d in out.detections] == [("clear", {"violations": "1"})]


def test_camera_silence_after_five_minutes_opens_once_and_the_next_event_clears_it() -> None:
    camera = Camera(event(0, 0, OBSTRUCTION))
    camera.send(event(0, 0, OBSTRUCTION))
    assert camera.tick(5) == []
    [opened] = camera.tick(5.5)
    assert (opened.rule, opened.signal, opened.episode, opened.at) == (
        "camera-silence",
        "open",
        "camera-silence:25747:vn-vision.cam-pc-01",
        at(5.5),
    )
    assert (opened.module, opened.vendor, opened.auto_close, opened.detail) == (
        Module.DATA_QUALITY,
        "vn-vision",
        True,
        {"silent_minutes": "5"},
    )
    assert camera.tick(30) == []
    [out] = camera.send(event(1, 31, OBSTRUCTION))
    # The camera is back (and still sees the stalled vehicle it reported half an hour ago: a new event).
    assert [(d.rule, d.signal, d.at) for d in out.detections] == [
        ("camera-silence", "clear", at(31)),
        ("camera-event", "open", at(31)),
    ]


def test_a_replayed_event_changes_nothing() -> None:
    camera = Camera(event(0, 0))
    camera.send(*(event(i, i, plate=f"61A-{400 + i}.00") for i in range(6)))
    before = json.dumps(camera.state.to_builtins())
    outcomes = camera.send(event(5, 5, plate="61A-405.00"), event(2, 2, plate="61A-402.00"), event(9, 1))
    assert [(o.applied, o.duplicate, o.detections) for o in outcomes] == [(False, False, [])] * 3
    assert json.dumps(camera.state.to_builtins()) == before
    assert CameraState.from_builtins(json.loads(before)) == camera.state


def test_a_redelivered_event_keeps_the_duplicate_flag_its_row_was_written_with() -> None:
    # Rows of camera_events collapse to the last copy written: a re-sent duplicate flagged as new would be
    # counted as a violation again on the Traffic page.
    camera = Camera(event(0, 0, OBSTRUCTION))
    first = camera.send(*(event(i, i * 0.5, OBSTRUCTION) for i in range(6)), event(6, 3.1, confidence=0.2))
    assert [o.duplicate for o in first] == [False, True, True, True, True, True, True]
    again = camera.send(*(event(i, i * 0.5, OBSTRUCTION) for i in range(6)), event(6, 3.1, confidence=0.2))
    assert [(o.applied, o.duplicate) for o in again] == [(False, o.duplicate) for o in first]


@settings(max_examples=100, deadline=None)
@given(
    raw=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=40 * 60),
            st.sampled_from([RED, OBSTRUCTION, CameraEventType.SPEEDING, CameraEventType.CROWD]),
            st.sampled_from(["61A-100.00", "61A-200.00", "51F-300.00"]),
            st.sampled_from([0.4, 0.9]),
        ),
        min_size=1,
        max_size=40,
    ),
    data=st.data(),
)
def test_property_redelivery_anywhere_gives_what_one_delivery_gives(
    raw: list[tuple[int, CameraEventType, str, float]], data: st.DataObject
) -> None:
    items = [event(i, s / 60, kind, plate, confidence=c) for i, (s, kind, plate, c) in enumerate(raw)]
    once = Camera(items[0])
    flags = [o.duplicate for o in once.send(*items) if o.applied]
    delivered: list[CameraEvent] = []
    for i, item in enumerate(items):
        delivered.append(item)
        delivered.extend(items[j] for j in data.draw(st.lists(st.integers(min_value=0, max_value=i), max_size=2)))
    twice = Camera(items[0])
    outcomes = twice.send(*delivered)
    assert [o.duplicate for o in outcomes if o.applied] == flags
    assert twice.detections == once.detections
    assert twice.state == once.state
    # Every delivery writes the event's row again: a copy must carry the flag the first delivery decided.
    first_flag: dict[int, bool] = {}
    for item, out in zip(delivered, outcomes, strict=True):
        assert out.duplicate == first_flag.setdefault(item.seq, out.duplicate), item
