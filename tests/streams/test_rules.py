"""Per-device sensor rules: the flood story, hysteresis, replays, minute statistics, VN_AQI bands, silence."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc import aqi
from ioc.events import Detection, Module, SensorKind, SensorReading, Severity
from ioc.reference import Rule, SilenceRule, ThresholdRule, default_reference_model
from streams import rules
from streams.rules import DeviceState, MinuteStats, Outcome

MODEL = default_reference_model()
RULES = rules.sensor_rules(MODEL)
BASE = dt.datetime(2025, 6, 1, 1, 0, tzinfo=dt.UTC)  # 08:00 in Bình Dương, on the hour
T0 = BASE.timestamp()
GAUGE = "acme-hydro/wl-dh-01"


def at(minutes: float) -> dt.datetime:
    return BASE + dt.timedelta(minutes=minutes)


def ts(minutes: float) -> float:
    return at(minutes).timestamp()


def reading(
    seq: int,
    minutes: float,
    values: dict[str, float],
    *,
    kind: SensorKind = SensorKind.WATER,
    vendor: str = "acme-hydro",
    device: str = "wl-dh-01",
    unit: str = "25957",
) -> SensorReading:
    return SensorReading(
        vendor=vendor, device=device, unit=unit, kind=kind, seq=seq, observed_at=at(minutes), values=values
    )


def level(seq: int, minutes: float, metres: float) -> SensorReading:
    return reading(seq, minutes, {"waterLevel": round(metres, 3)})


class Device:
    """One device's rule state, driven the way the readings worker drives it, and everything it said."""

    def __init__(self, first: SensorReading, rule_set: Sequence[Rule] = RULES) -> None:
        self.state = DeviceState.first(first)
        self.rules = rule_set
        self.detections: list[tuple[SensorReading | float, Detection]] = []
        self.minutes: list[MinuteStats] = []
        self.aqi_hours: list[tuple[float, aqi.AqiResult]] = []

    def _collect(self, cause: SensorReading | float, out: Outcome) -> Outcome:
        self.detections.extend((cause, d) for d in out.detections)
        self.minutes.extend(out.minutes)
        self.aqi_hours.extend(out.aqi_hours)
        return out

    def send(self, *readings: SensorReading) -> list[Outcome]:
        return [self._collect(r, rules.observe(self.state, r, r.observed_at.timestamp(), self.rules)) for r in readings]

    def tick(self, minutes: float) -> Outcome:
        return self._collect(ts(minutes), rules.check_silence(self.state, ts(minutes), self.rules))

    def found(self, rule: str, signal: str | None = None) -> list[Detection]:
        return [d for _, d in self.detections if d.rule == rule and (signal is None or d.signal == signal)]

    def minute(self, minutes: float) -> list[MinuteStats]:
        return [m for m in self.minutes if m.minute == ts(minutes)]


def flood(start_seq: int = 0) -> list[SensorReading]:
    """Đông Hòa's gauge every 30 s for 30 minutes: calm at 0.6 m for 10, rising 0.3 m a minute, held at 1.8 m."""
    out = []
    for step in range(60):
        minute = step / 2
        out.append(level(start_seq + step, minute, 0.6 if minute < 10 else min(1.8, 0.6 + (minute - 10) * 0.3)))
    return out


# --- the flood story --------------------------------------------------------------------------------------


def test_flood_story_gives_one_rise_and_one_level_open_named_by_the_first_crossing() -> None:
    gauge = Device(flood()[0])
    gauge.send(*flood())

    opens = [(cause, d) for cause, d in gauge.detections if d.signal == "open"]
    assert [(d.rule, d.at) for _, d in opens] == [("flood-rise", at(11)), ("flood-level", at(13))]
    rise, level_open = (d for _, d in opens)
    # The rise of 0.3 m is complete at minute 11; the level first reached 1.5 m at minute 13 and held it 5 minutes.
    assert isinstance(opens[0][0], SensorReading) and opens[0][0].observed_at == at(11)
    assert isinstance(opens[1][0], SensorReading) and opens[1][0].observed_at == at(18)
    assert level_open.episode == "flood-level:25957"  # not per device: the rule does not close by itself
    assert rise.episode == "flood-rise:25957"
    for d in (rise, level_open):
        assert (d.module, d.severity, d.unit, d.devices, d.vendor, d.auto_close) == (
            Module.ENVIRONMENT,
            Severity.HIGH,
            "25957",
            [GAUGE],
            None,
            False,
        )
    assert level_open.detail == {"value": "1.8", "above": "1.5"}
    assert rise.detail["minutes"] == "10"
    # Once the level is flat for the whole rate window, the rise is over (but the flood is not).
    assert [d.at for d in gauge.found("flood-rise", "clear")] == [at(24)]
    assert gauge.found("flood-level", "clear") == []


@pytest.mark.parametrize(("low", "high"), [(0.4, 0.7), (0.6, 0.9), (1.2, 1.5)])
def test_a_rise_of_exactly_the_rules_rise_opens(low: float, high: float) -> None:
    # 0.7 - 0.4 is 0.29999999999999993 in binary floating point: still a rise of 0.3 m on a millimetre gauge.
    gauge = Device(level(0, 0, low))
    gauge.send(level(0, 0, low), level(1, 5, high))
    assert [d.detail["rise"] for d in gauge.found("flood-rise", "open")] == ["0.30"]


def test_a_slow_rise_is_not_a_fast_rise() -> None:
    gauge = Device(level(0, 0, 0.5))
    gauge.send(*(level(i, i, 0.5 + i * 0.02) for i in range(31)))  # 0.2 m per 10 minutes, 0.6 m in all
    assert gauge.found("flood-rise") == []


def test_hysteresis_a_dip_between_clear_below_and_above_does_not_clear_below_clears_a_new_crossing_reopens() -> None:
    gauge = Device(flood()[0])
    gauge.send(*flood())
    assert len(gauge.found("flood-level", "open")) == 1
    seq = 60
    # 1.4 m and 1.35 m: below the alert level, above clear_below (1.3 m): still flooded.
    for minute in range(30, 45):
        gauge.send(level(seq, minute, 1.4 if minute < 40 else 1.35))
        seq += 1
    assert gauge.found("flood-level", "clear") == []
    assert gauge.state.active["flood-level"]
    # Below 1.3 m clears, once.
    gauge.send(level(seq, 45, 1.25), level(seq + 1, 46, 1.2))
    seq += 2
    clears = gauge.found("flood-level", "clear")
    assert [(d.at, d.episode, d.detail) for d in clears] == [(at(45), "flood-level:25957", {"value": "1.25"})]
    # Back above 1.5 m at minute 50: a new open after five more minutes, named by the new crossing.
    for minute in range(47, 58):
        gauge.send(level(seq, minute, 1.4 if minute < 50 else 1.6))
        seq += 1
    opens = gauge.found("flood-level", "open")
    assert [d.at for d in opens] == [at(13), at(50)]
    assert opens[1].episode == opens[0].episode


def test_per_device_episode_only_for_auto_close_rules() -> None:
    base = MODEL.rule("noise-high")
    assert isinstance(base, ThresholdRule)
    for auto_close, episode in ((False, "noise-high:25747"), (True, "noise-high:25747:acme-hydro.nz-01")):
        rule = base.model_copy(update={"auto_close": auto_close})
        noise = [
            reading(i, i, {"LAeq": 75.0 if i <= 16 else 60.0}, kind=SensorKind.NOISE, device="nz-01", unit="25747")
            for i in range(18)
        ]
        meter = Device(noise[0], [rule])
        meter.send(*noise)
        assert [(d.signal, d.episode, d.at, d.auto_close) for _, d in meter.detections] == [
            ("open", episode, at(0), auto_close),
            ("clear", episode, at(17), auto_close),
        ]


# --- replays ------------------------------------------------------------------------------------------------


def test_a_replayed_or_older_reading_changes_nothing() -> None:
    gauge = Device(flood()[0])
    gauge.send(*flood()[:40])
    before = json.dumps(gauge.state.to_builtins())
    older = level(99, 5, 3.0)  # a higher sequence number but observed earlier: late, not newer
    outcomes = gauge.send(flood()[39], flood()[12], older)
    assert [o.applied for o in outcomes] == [False, False, False]
    assert all(not (o.detections or o.minutes or o.aqi_hours) for o in outcomes)
    assert json.dumps(gauge.state.to_builtins()) == before


def test_same_instant_higher_sequence_is_newer() -> None:
    gauge = Device(level(0, 0, 0.6))
    outcomes = gauge.send(level(0, 0, 0.6), level(1, 0, 0.7), level(1, 0, 0.8))
    assert [o.applied for o in outcomes] == [True, True, False]


_readings = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=90 * 60),  # seconds after BASE
        st.integers(min_value=0, max_value=40),  # sequence number
        st.floats(min_value=0.0, max_value=3.0, allow_nan=False),
        st.sampled_from([SensorKind.WATER, SensorKind.AIR]),
    ),
    min_size=1,
    max_size=60,
)


def _build(raw: list[tuple[int, int, float, SensorKind]], kind: SensorKind) -> list[SensorReading]:
    key = "waterLevel" if kind is SensorKind.WATER else "pm25"
    scale = 1.0 if kind is SensorKind.WATER else 100.0
    return [reading(seq, s / 60, {key: v * scale}, kind=kind) for s, seq, v, _ in raw]


def _recovered(state: DeviceState) -> DeviceState:
    """The state as the Faust table gives it back after a restart (through JSON)."""
    return DeviceState.from_builtins(json.loads(json.dumps(state.to_builtins())))


def _run(device: Device, items: Sequence[SensorReading]) -> list[Detection]:
    found: list[Detection] = []
    for out in device.send(*items):
        found.extend(out.detections)
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_readings, kind=st.sampled_from([SensorKind.WATER, SensorKind.AIR]), cut=st.integers(min_value=0))
def test_property_applying_readings_again_or_a_prefix_again_changes_nothing(
    raw: list[tuple[int, int, float, SensorKind]], kind: SensorKind, cut: int
) -> None:
    items = _build(raw, kind)
    device = Device(items[0])
    _run(device, items)
    state = _recovered(device.state)
    emitted = (len(device.detections), len(device.minutes), len(device.aqi_hours))

    # State recovered from the changelog, then the whole sequence again, then a prefix again.
    device.state = state
    prefix = items[: cut % (len(items) + 1)]
    assert _run(device, items) == []
    assert _run(device, prefix) == []
    assert (len(device.detections), len(device.minutes), len(device.aqi_hours)) == emitted
    assert _recovered(device.state) == state


@settings(max_examples=100, deadline=None)
@given(raw=_readings, kind=st.sampled_from([SensorKind.WATER, SensorKind.AIR]), data=st.data())
def test_property_redelivery_anywhere_gives_what_one_delivery_gives(
    raw: list[tuple[int, int, float, SensorKind]], kind: SensorKind, data: st.DataObject
) -> None:
    items = _build(raw, kind)
    once = Device(items[0])
    expected = _run(once, items)
    # At-least-once delivery: any message may come again later (after a crash, before its offset was committed).
    delivered: list[SensorReading] = []
    for i, item in enumerate(items):
        delivered.append(item)
        again = data.draw(st.lists(st.integers(min_value=0, max_value=i), max_size=2))
        delivered.extend(items[j] for j in again)
    twice = Device(items[0])
    assert _run(twice, delivered) == expected
    assert twice.minutes == once.minutes
    assert twice.state.to_builtins() == once.state.to_builtins()


# --- minute statistics -----------------------------------------------------------------------------------------


def test_minutes_close_when_the_next_minute_starts_with_their_statistics() -> None:
    gauge = Device(level(0, 0, 1.0))
    gauge.send(level(0, 5 / 60, 1.0), level(1, 35 / 60, 3.0))
    assert gauge.minutes == []
    gauge.send(level(2, 70 / 60, 5.0))
    [closed] = gauge.minutes
    assert closed.minute == T0
    stats = closed.measures["waterLevel"]
    assert (stats.count, stats.sum, stats.min, stats.max) == (2, 4.0, 1.0, 3.0)
    assert "aqi" not in closed.measures  # only air stations have an index
    # A reading observed earlier than the last one applied is late: it does not reach the minute's statistics.
    late = gauge.send(level(10, 50 / 60, 100.0))
    assert not late[0].applied
    gauge.send(level(11, 100 / 60, 7.0), level(12, 2, 0.5))
    assert [m.minute for m in gauge.minutes] == [T0, ts(1)]
    stats = gauge.minutes[1].measures["waterLevel"]
    assert (stats.count, stats.sum, stats.min, stats.max) == (2, 12.0, 5.0, 7.0)


def test_a_gap_of_minutes_closes_only_the_minute_with_data() -> None:
    gauge = Device(level(0, 0, 1.0))
    gauge.send(level(0, 0.1, 1.0), level(1, 7.5, 2.0))
    assert [m.minute for m in gauge.minutes] == [ts(0)]


def test_close_idle_minute_closes_a_quiet_devices_minute_once() -> None:
    gauge = Device(level(0, 0, 1.0))
    gauge.send(level(0, 10 / 60, 1.0), level(1, 20 / 60, 2.0))
    assert rules.close_idle_minute(gauge.state, ts(1) + 59, RULES).minutes == []
    out = rules.close_idle_minute(gauge.state, ts(2), RULES)
    assert [(m.minute, m.measures["waterLevel"].count) for m in out.minutes] == [(T0, 2)]
    assert rules.close_idle_minute(gauge.state, ts(5), RULES).minutes == []
    # Silence checks close idle minutes too.
    gauge.send(level(2, 3.5, 1.0))
    assert [m.minute for m in gauge.tick(5.5).minutes] == [ts(3)]


def test_a_reading_for_a_minute_closed_as_idle_does_not_replace_its_statistics() -> None:
    # Unit windows replace a device's minute with the last one sent: sending minute 0 again with only the
    # straggler would drop the two readings already counted.
    gauge = Device(level(0, 0, 1.0))
    gauge.send(level(0, 10 / 60, 1.0), level(1, 20 / 60, 2.0))
    gauge.minutes.extend(rules.close_idle_minute(gauge.state, ts(2), RULES).minutes)
    straggler = gauge.send(level(2, 40 / 60, 9.0))  # newer than the last reading, arrived after the close
    assert straggler[0].applied
    gauge.send(level(3, 1.5, 4.0), level(4, 2.5, 5.0))
    sent_for_minute_0 = gauge.minute(0)
    assert [m.measures["waterLevel"].count for m in sent_for_minute_0] == [2]
    assert [m.measures["waterLevel"].sum for m in gauge.minute(1)] == [4.0]


# --- VN_AQI bands ------------------------------------------------------------------------------------------------


def _pm25(minute: int) -> float:
    """Thuận An's industrial area: clean for an hour, PM2.5 climbing for two, two bad hours, then clean."""
    if minute < 60:
        return 20.0
    if minute < 180:
        return 20.0 + (minute - 60) * 1.5
    if minute < 240:
        return 200.0
    return 8.0


def _station(minutes: int) -> Device:
    def air(i: int) -> SensorReading:
        return reading(
            i, i + 0.5, {"pm25": _pm25(i)}, kind=SensorKind.AIR, vendor="envi", device="aq-bh-01", unit="25987"
        )

    station = Device(air(0))
    station.send(*(air(i) for i in range(minutes)))
    return station


def test_pm25_climbing_through_the_bands_opens_aqi_bad_after_30_minutes_and_closes_it_below_101() -> None:
    station = _station(420)
    series = [(m.minute, m.measures["aqi"].max) for m in station.minutes if "aqi" in m.measures]
    # NowCast needs two of the last three hours: the first hour has no index.
    assert series[0][0] == ts(60)
    assert all(minute >= ts(60) for minute, _ in series)
    climbing = [aqi.band(int(v)).level for minute, v in series if minute < ts(240)]
    assert climbing == sorted(climbing)
    assert {1, 2, 4, 5} <= set(climbing)

    first_bad = min(minute + 60 for minute, v in series if v >= 151)  # the end of the first bad minute
    opens = station.found("aqi-bad", "open")
    clears = station.found("aqi-bad", "clear")
    assert [d.at.timestamp() for d in opens] == [first_bad]
    cause = next(c for c, d in station.detections if d is opens[0])
    assert isinstance(cause, SensorReading)
    assert cause.observed_at.timestamp() == first_bad + 30 * 60 + 30  # the reading that closed its 30th minute
    [opened] = opens
    assert opened.episode == "aqi-bad:25987:envi.aq-bh-01"
    assert (opened.auto_close, opened.severity, opened.module) == (True, Severity.MEDIUM, Module.ENVIRONMENT)
    assert opened.detail["band"] in ("Xấu", "Rất xấu")
    # Between 101 and 150 (Kém) the episode holds; it clears at the end of the first minute below 101.
    assert any(101 <= v < 151 for minute, v in series if first_bad < minute < clears[0].at.timestamp())
    first_good = min(minute + 60 for minute, v in series if minute > first_bad and v < 101)
    assert [d.at.timestamp() for d in clears] == [first_good]
    assert clears[0].episode == opened.episode and clears[0].auto_close


def test_aqi_hourly_is_emitted_for_the_finished_hour_when_the_next_one_starts() -> None:
    station = _station(181)
    hours = [h for h, _ in station.aqi_hours]
    # Hour 0 alone cannot have a NowCast; hours 1 and 2 are emitted by the first readings of hours 2 and 3.
    assert hours == [ts(60), ts(120)]
    means = {0: 20.0, 1: sum(_pm25(m) for m in range(60, 120)) / 60, 2: sum(_pm25(m) for m in range(120, 180)) / 60}
    assert station.aqi_hours[0][1] == aqi.hourly_aqi({"pm25": [means[1], means[0]]})
    assert station.aqi_hours[1][1] == aqi.hourly_aqi({"pm25": [means[2], means[1], means[0]]})


def test_a_short_bad_spell_does_not_open_aqi_bad() -> None:
    rule = MODEL.rule("aqi-bad")
    station = _station(140)  # the index passed 151 at minute 121: under 30 minutes of it
    assert station.state.above_since.get(rule.id) is not None
    assert station.found("aqi-bad") == []


# --- silence -----------------------------------------------------------------------------------------------------


def test_silence_after_ten_minutes_opens_once_and_the_next_reading_clears_it() -> None:
    gauge = Device(level(0, 0, 0.6))
    gauge.send(level(0, 0, 0.6), level(1, 1, 0.6))
    assert gauge.tick(11).detections == []  # exactly ten minutes: not yet
    [opened] = gauge.tick(11 + 1 / 60).detections
    assert (opened.rule, opened.signal, opened.at, opened.episode) == (
        "device-silence",
        "open",
        at(11 + 1 / 60),
        "device-silence:25957:acme-hydro.wl-dh-01",
    )
    assert (opened.module, opened.vendor, opened.auto_close, opened.devices) == (
        Module.DATA_QUALITY,
        "acme-hydro",
        True,
        [GAUGE],
    )
    assert opened.detail == {"silent_minutes": "10"}
    assert gauge.tick(30).detections == []
    assert gauge.tick(300).detections == []
    # A replay of an old reading is not a sign of life.
    assert gauge.send(level(1, 1, 0.6))[0].detections == []
    [cleared] = gauge.send(level(2, 301, 0.6))[0].detections
    assert (cleared.signal, cleared.at, cleared.episode) == ("clear", at(301), opened.episode)
    assert gauge.send(level(3, 302, 0.6))[0].detections == []
    # Quiet again: a new open.
    assert [d.signal for d in gauge.tick(313).detections] == ["open"]


def test_silence_is_measured_from_when_the_platform_received_the_last_reading() -> None:
    gauge = Device(level(0, 0, 0.6))
    rules.observe(gauge.state, level(0, 0, 0.6), ts(8), RULES)  # a device whose clock is 8 minutes behind
    assert gauge.tick(17).detections == []
    assert len(gauge.tick(18.5).detections) == 1


def test_a_device_that_never_sent_is_never_silent_and_camera_silence_is_not_for_sensors() -> None:
    state = DeviceState.first(level(0, 0, 0.6))
    assert rules.check_silence(state, ts(60), RULES).detections == []
    # sensor_rules keeps the camera's silence rule too; it must never match a sensor.
    camera_only = [r for r in RULES if isinstance(r, SilenceRule) and r.kind == "camera"]
    assert camera_only
    gauge = Device(level(0, 0, 0.6), camera_only)
    gauge.send(level(0, 0, 0.6))
    assert gauge.tick(60).detections == []


@pytest.mark.parametrize("kind", [SensorKind.AIR, SensorKind.NOISE, SensorKind.TRAFFIC])
def test_every_sensor_kind_falls_under_device_silence(kind: SensorKind) -> None:
    values = {SensorKind.AIR: {"pm25": 10.0}, SensorKind.NOISE: {"LAeq": 50.0}, SensorKind.TRAFFIC: {"intensity": 3.0}}
    first = reading(0, 0, values[kind], kind=kind, device="x-1")
    device = Device(first)
    device.send(first)
    assert [d.rule for d in device.tick(10.5).detections] == ["device-silence"]
