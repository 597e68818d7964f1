"""Per-device rule evaluation and minute statistics for sensor readings: pure state in, findings out."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec

from ioc import aqi
from ioc.events import Detection, MeasureStats, Module, SensorReading
from ioc.reference import AqiBandRule, RateOfChangeRule, ReferenceModel, Rule, SilenceRule, ThresholdRule

__all__ = [
    "DeviceState",
    "MinuteStats",
    "Outcome",
    "SensorRules",
    "check_silence",
    "close_idle_minute",
    "observe",
    "sensor_rules",
    "sensor_rules_from",
]

POLLUTANTS: Final = frozenset(aqi.POLLUTANTS)
HOURS_KEPT: Final = 13
RISE_TOLERANCE: Final = 1e-9


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


@dataclasses.dataclass
class MinuteStats:
    """A closed minute of one device: its start and per-measure statistics."""

    minute: float
    measures: dict[str, MeasureStats]


@dataclasses.dataclass
class Outcome:
    detections: list[Detection] = dataclasses.field(default_factory=list)
    minutes: list[MinuteStats] = dataclasses.field(default_factory=list)
    aqi_hours: list[tuple[float, aqi.AqiResult]] = dataclasses.field(default_factory=list)
    applied: bool = True


class DeviceState(msgspec.Struct, kw_only=True):
    """What one sensor's rules remember; encoded with msgspec for the Faust table (saved on every flush).

    That is how long a threshold has been crossed, recent values for rate of change, hourly means for the VN_AQI
    NowCast and the open minute's statistics; `observe` applies one reading and
    returns `Detection`s for the incident workers, closed minutes for the unit roll-up, and finished hours of AQI.
    `check_silence` does the same for the passage of time. Replays are harmless: a reading not newer than the last one
    applied (observed time, then sequence) changes nothing, so state recovered from a changelog is never applied twice.
    Times are epoch seconds.
    """

    device_key: str
    vendor: str
    device: str
    unit: str
    kind: str
    lat: float | None = None
    lon: float | None = None
    last_observed: float = 0.0
    last_seq: int = -1
    last_received: float = 0.0
    silent: bool = False
    above_since: dict[str, float] = msgspec.field(default_factory=dict)
    active: dict[str, bool] = msgspec.field(default_factory=dict)
    # Per measure, the sliding-window minimum candidates [time, value] (increasing values): a rise is the
    # latest value minus the first; a steady gauge keeps one point, not one per reading.
    history: dict[str, list[list[float]]] = msgspec.field(default_factory=dict)
    minute: float = -1.0
    acc: dict[str, list[float]] = msgspec.field(default_factory=dict)
    hours: dict[str, list[list[float]]] = msgspec.field(default_factory=dict)
    hour: float = -1.0
    aqi_now: int = -1

    def to_builtins(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result

    @classmethod
    def from_builtins(cls, data: dict[str, Any]) -> DeviceState:
        return msgspec.convert(data, cls)

    def encode(self) -> bytes:
        return _state_encoder.encode(self)

    @classmethod
    def decode(cls, raw: bytes) -> DeviceState:
        return _state_decoder.decode(raw)

    @classmethod
    def first(cls, reading: SensorReading) -> DeviceState:
        return cls(
            device_key=f"{reading.vendor}/{reading.device}",
            vendor=reading.vendor,
            device=reading.device,
            unit=reading.unit,
            kind=reading.kind.value,
            lat=reading.lat,
            lon=reading.lon,
        )


_state_encoder: Final = msgspec.json.Encoder()
_state_decoder: Final = msgspec.json.Decoder(DeviceState)


class SensorRules(tuple[Rule, ...]):
    """The rules that look at sensor readings, with those each reading of a kind runs looked up once per kind."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._per_reading: dict[str, tuple[ThresholdRule | RateOfChangeRule, ...]] = {}

    def per_reading(self, kind: str) -> tuple[ThresholdRule | RateOfChangeRule, ...]:
        found = self._per_reading.get(kind)
        if found is None:
            found = self._per_reading[kind] = _per_reading(self, kind)
        return found


def _per_reading(rules: Sequence[Rule], kind: str) -> tuple[ThresholdRule | RateOfChangeRule, ...]:
    """Threshold and rate-of-change rules for readings of `kind`, in the model's order."""
    return tuple(r for r in rules if isinstance(r, ThresholdRule | RateOfChangeRule) and r.kind.value == kind)


def sensor_rules(model: ReferenceModel) -> SensorRules:
    """The reference model's rules that look at sensor readings (cameras have their own)."""
    return sensor_rules_from(model.rules)


def sensor_rules_from(rules: Iterable[Rule]) -> SensorRules:
    """The rules among `rules` that look at sensor readings, in their order (a site's, see streams/siteconfig.py)."""
    return SensorRules(r for r in rules if isinstance(r, ThresholdRule | RateOfChangeRule | AqiBandRule | SilenceRule))


def _detection(state: DeviceState, rule: Rule, signal: str, at: float, *, per_device: bool, **detail: str) -> Detection:
    subject = f":{state.vendor}.{state.device}" if per_device else ""
    return Detection(
        episode=f"{rule.id}:{state.unit}{subject}",
        rule=rule.id,
        module=rule.module,
        unit=state.unit,
        signal=signal,  # type: ignore[arg-type]
        at=_utc(at),
        severity=rule.severity,
        title=rule.title_vi,
        vendor=state.vendor if rule.module is Module.DATA_QUALITY else None,
        devices=[state.device_key],
        detail=detail,
        lat=state.lat,
        lon=state.lon,
        auto_close=rule.auto_close,
    )


def observe(state: DeviceState, reading: SensorReading, received_at: float, rules: Sequence[Rule]) -> Outcome:
    """Apply one reading to its device's state (in place); what it means for incidents and aggregates."""
    t = reading.observed_at.timestamp()
    if (t, reading.seq) <= (state.last_observed, state.last_seq):
        return Outcome(applied=False)
    out = Outcome()
    state.last_observed, state.last_seq = t, reading.seq
    state.last_received = max(state.last_received, received_at)
    if reading.lat is not None:
        state.lat, state.lon = reading.lat, reading.lon
    if state.silent:
        state.silent = False
        for rule in rules:
            if isinstance(rule, SilenceRule) and rule.kind in (None, state.kind):
                out.detections.append(_detection(state, rule, "clear", t, per_device=True))
    _minutes(state, reading, t, out, rules)
    per_reading = rules.per_reading(state.kind) if isinstance(rules, SensorRules) else _per_reading(rules, state.kind)
    for rule in per_reading:
        if isinstance(rule, ThresholdRule):
            _threshold(state, rule, reading.values.get(rule.measure), t, out)
        else:
            _rate_of_change(state, rule, reading.values.get(rule.measure), t, out)
    return out


def _threshold(state: DeviceState, rule: ThresholdRule, value: float | None, t: float, out: Outcome) -> None:
    if value is None:
        return
    if value >= rule.above:
        since = state.above_since.setdefault(rule.id, t)
        if not state.active.get(rule.id) and t - since >= rule.for_minutes * 60:
            state.active[rule.id] = True
            out.detections.append(
                _detection(
                    state, rule, "open", since, per_device=rule.auto_close, value=f"{value:g}", above=f"{rule.above:g}"
                )
            )
    elif value < rule.clear_below:
        state.above_since.pop(rule.id, None)
        if state.active.pop(rule.id, False):
            out.detections.append(_detection(state, rule, "clear", t, per_device=rule.auto_close, value=f"{value:g}"))


def _rate_of_change(state: DeviceState, rule: RateOfChangeRule, value: float | None, t: float, out: Outcome) -> None:
    if value is None:
        return
    # Monotonic queue: drop points older than the window, and points not below the new value (they can
    # never be the window's minimum again).
    window = state.history.setdefault(rule.measure, [])
    horizon = t - rule.per_minutes * 60
    while window and window[0][0] < horizon:
        window.pop(0)
    while window and window[-1][1] >= value:
        window.pop()
    window.append([t, value])
    rise = value - window[0][1]
    # A difference of decimal readings is inexact in binary (0.7 - 0.4 < 0.3): a rise of exactly `rise` counts.
    if rise >= rule.rise - RISE_TOLERANCE and not state.active.get(rule.id):
        state.active[rule.id] = True
        out.detections.append(
            _detection(
                state, rule, "open", t, per_device=rule.auto_close, rise=f"{rise:.2f}", minutes=f"{rule.per_minutes:g}"
            )
        )
    elif rise < rule.rise / 2 and state.active.pop(rule.id, False):
        out.detections.append(_detection(state, rule, "clear", t, per_device=rule.auto_close, rise=f"{rise:.2f}"))


def _minutes(state: DeviceState, reading: SensorReading, t: float, out: Outcome, rules: Sequence[Rule]) -> None:
    minute = t - t % 60
    if minute > state.minute:
        _close_minute(state, out, rules)
        state.minute = minute
    elif minute < state.minute:
        return  # late for a minute already closed: stored as a row, not re-aggregated
    hour = t - t % 3600
    if hour > state.hour and any(name in POLLUTANTS for name in reading.values):
        if state.hour >= 0:  # the previous hour is complete: its official hourly index
            result = _aqi_at(state, state.hour)
            if result is not None:
                out.aqi_hours.append((state.hour, result))
        state.hour = hour
    for name, value in reading.values.items():
        stats = state.acc.get(name)
        if stats is None:
            state.acc[name] = [1, value, value, value]
        else:
            stats[0] += 1
            stats[1] += value
            stats[2] = min(stats[2], value)
            stats[3] = max(stats[3], value)
        if name in POLLUTANTS:
            _hourly(state, name, value, t)


def _hourly(state: DeviceState, name: str, value: float, t: float) -> None:
    hour = t - t % 3600
    series = state.hours.setdefault(name, [])
    if series and series[-1][0] == hour:
        series[-1][1] += value
        series[-1][2] += 1
        return
    if series and series[-1][0] > hour:
        return  # a late reading for a finished hour
    series.append([hour, value, 1])
    del series[:-HOURS_KEPT]


def _aqi_at(state: DeviceState, hour: float) -> aqi.AqiResult | None:
    """VN_AQI^h for the hour starting at `hour`, from the hourly means kept (newest first)."""
    inputs: dict[str, list[float | None]] = {}
    for name, series in state.hours.items():
        means = {s[0]: s[1] / s[2] for s in series if s[0] <= hour and s[2] > 0}
        inputs[name] = [means.get(hour - 3600 * i) for i in range(12)]
    try:
        return aqi.hourly_aqi(inputs)
    except ValueError:
        return None


def _close_minute(state: DeviceState, out: Outcome, rules: Sequence[Rule]) -> None:
    if state.minute < 0 or not state.acc:
        state.acc = {}
        return
    measures = {k: MeasureStats(count=int(v[0]), sum=v[1], min=v[2], max=v[3]) for k, v in state.acc.items()}
    if state.hours:
        current = _aqi_at(state, state.minute - state.minute % 3600)
        if current is not None:
            state.aqi_now = current.aqi
            measures["aqi"] = MeasureStats(count=1, sum=current.aqi, min=current.aqi, max=current.aqi)
            for rule in rules:
                if isinstance(rule, AqiBandRule) and state.kind == "air":
                    _aqi_band(state, rule, current.aqi, state.minute + 60, out)
    out.minutes.append(MinuteStats(state.minute, measures))
    state.acc = {}


def _aqi_band(state: DeviceState, rule: AqiBandRule, value: int, t: float, out: Outcome) -> None:
    if value >= rule.min_aqi:
        since = state.above_since.setdefault(rule.id, t)
        if not state.active.get(rule.id) and t - since >= rule.for_minutes * 60:
            state.active[rule.id] = True
            label = aqi.band(value).label_vi
            out.detections.append(_detection(state, rule, "open", since, per_device=True, aqi=str(value), band=label))
    elif value < rule.clear_below:
        state.above_since.pop(rule.id, None)
        if state.active.pop(rule.id, False):
            out.detections.append(_detection(state, rule, "clear", t, per_device=True, aqi=str(value)))


def close_idle_minute(state: DeviceState, now: float, rules: Sequence[Rule]) -> Outcome:
    """Close the device's open minute once it is well past (a device that stopped sending)."""
    out = Outcome()
    if state.minute >= 0 and state.acc and now - state.minute >= 120:
        _close_minute(state, out, rules)
        # The minute is closed for good: a straggler for it is late (sending the minute again with only the
        # straggler would replace, at the units, the statistics just sent).
        state.minute += 60
    return out


def check_silence(state: DeviceState, now: float, rules: Sequence[Rule]) -> Outcome:
    """Open a silence detection for a device quiet for longer than its kind's silence rule allows."""
    out = close_idle_minute(state, now, rules)
    if state.silent or state.last_received <= 0:
        return out
    for rule in rules:
        if isinstance(rule, SilenceRule) and rule.kind in (None, state.kind):
            if now - _last_heard(state) > rule.silent_minutes * 60:
                state.silent = True
                quiet = int((now - _last_heard(state)) // 60)
                out.detections.append(_detection(state, rule, "open", now, per_device=True, silent_minutes=str(quiet)))
            break
    return out


def _last_heard(state: Any) -> float:
    """When the device was last heard of: the later of when its data arrived and the time it carried.

    In production the two agree within seconds. Under a simulated clock (a demo replaying hours in
    minutes) only the carried time keeps pace with the workers' clock; arrival alone would make every
    device look silent.
    """
    return max(float(state.last_received), float(state.last_observed))
