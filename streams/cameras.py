"""Per-camera de-duplication, safety incidents and violation hotspots: pure state in, findings out."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from ioc.events import VIOLATION_TYPES, CameraEvent, CameraEventType, Detection, Module, Severity
from ioc.reference import CameraRule, HotspotRule, ReferenceModel, Rule, SilenceRule

__all__ = [
    "CameraOutcome",
    "CameraRules",
    "CameraState",
    "camera_rules",
    "camera_rules_from",
    "check_silence",
    "observe",
]

REMEMBERED_DUPLICATES: Final = 128
SAFETY_SEVERITY: Final[dict[CameraEventType, Severity]] = {
    CameraEventType.ACCIDENT: Severity.HIGH,
    CameraEventType.FIRE_SMOKE: Severity.CRITICAL,
    CameraEventType.OBSTRUCTION: Severity.MEDIUM,
    CameraEventType.CROWD: Severity.MEDIUM,
    CameraEventType.INTRUSION: Severity.MEDIUM,
}
SAFETY_TITLES: Final[dict[CameraEventType, str]] = {
    CameraEventType.ACCIDENT: "Tai nạn giao thông",
    CameraEventType.FIRE_SMOKE: "Phát hiện cháy, khói",
    CameraEventType.OBSTRUCTION: "Ùn tắc, phương tiện dừng đỗ",
    CameraEventType.CROWD: "Tụ tập đông người",
    CameraEventType.INTRUSION: "Xâm nhập khu vực cấm",
}


@dataclasses.dataclass(frozen=True)
class CameraRules:
    event: CameraRule
    hotspot: HotspotRule
    silence: SilenceRule | None


def camera_rules(model: ReferenceModel) -> CameraRules:
    return camera_rules_from(model.rules)


def camera_rules_from(rules: Sequence[Rule]) -> CameraRules:
    """The camera rules among `rules` (a model's, or a site's as streams/siteconfig.py merges them)."""
    event = next(r for r in rules if isinstance(r, CameraRule))
    hotspot = next(r for r in rules if isinstance(r, HotspotRule))
    silence = next((r for r in rules if isinstance(r, SilenceRule) and r.kind == "camera"), None)
    return CameraRules(event, hotspot, silence)


@dataclasses.dataclass
class CameraOutcome:
    duplicate: bool = False
    detections: list[Detection] = dataclasses.field(default_factory=list)
    incident_episode: str = ""
    applied: bool = True


class CameraState(msgspec.Struct, kw_only=True):
    """What one camera's rules remember; encoded with msgspec for the Faust table.

    An AI camera reports the same thing many times: one plate running one red light is one violation, a stalled vehicle
    seen twenty times is one obstruction. This state remembers what the camera reported within the de-duplication window
    and its recent violations; `observe` says whether an event is a duplicate and which `Detection`s it raises (safety
    events become incidents; a cluster of violations at one camera's junction becomes a hotspot). Replays (not newer
    than the last applied event) change nothing.
    """

    device_key: str
    vendor: str
    device: str
    unit: str
    lat: float | None = None
    lon: float | None = None
    last_observed: float = 0.0
    last_seq: int = -1
    last_received: float = 0.0
    silent: bool = False
    seen: dict[str, float] = msgspec.field(default_factory=dict)  # type|plate → last time reported
    violations: list[float] = msgspec.field(default_factory=list)
    hotspot: bool = False
    # The latest events flagged as duplicates ("<time>:<seq>"): a redelivered one must be flagged again, as
    # its row is written again and the last copy written is the one kept.
    duplicates: list[str] = msgspec.field(default_factory=list)

    def to_builtins(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result

    @classmethod
    def from_builtins(cls, data: dict[str, Any]) -> CameraState:
        return msgspec.convert(data, cls)

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, raw: bytes) -> CameraState:
        return msgspec.json.decode(raw, type=cls)

    @classmethod
    def first(cls, event: CameraEvent) -> CameraState:
        return cls(
            device_key=f"{event.vendor}/{event.device}",
            vendor=event.vendor,
            device=event.device,
            unit=event.unit,
            lat=event.lat,
            lon=event.lon,
        )


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _detection(state: CameraState, episode: str, rule: Rule, signal: str, at: float, **kw: Any) -> Detection:
    return Detection(
        episode=episode,
        rule=rule.id,
        module=kw.pop("module", rule.module),
        unit=state.unit,
        signal=signal,  # type: ignore[arg-type]
        at=_utc(at),
        severity=kw.pop("severity", rule.severity),
        title=kw.pop("title", rule.title_vi),
        vendor=state.vendor if rule.module is Module.DATA_QUALITY else None,
        devices=[state.device_key],
        lat=state.lat,
        lon=state.lon,
        auto_close=rule.auto_close,
        **kw,
    )


def observe(state: CameraState, event: CameraEvent, received_at: float, rules: CameraRules) -> CameraOutcome:
    """Apply one camera event to its camera's state (in place)."""
    t = event.observed_at.timestamp()
    event_id = f"{t!r}:{event.seq}"
    if (t, event.seq) <= (state.last_observed, state.last_seq):
        return CameraOutcome(duplicate=event_id in state.duplicates, applied=False)
    state.last_observed, state.last_seq = t, event.seq
    state.last_received = max(state.last_received, received_at)
    if event.lat is not None:
        state.lat, state.lon = event.lat, event.lon
    out = CameraOutcome()
    if state.silent and rules.silence is not None:
        state.silent = False
        episode = f"{rules.silence.id}:{state.unit}:{state.vendor}.{state.device}"
        out.detections.append(_detection(state, episode, rules.silence, "clear", t))
    window = rules.event.dedupe_minutes * 60
    state.seen = {k: v for k, v in state.seen.items() if t - v <= window}
    key = f"{event.event_type.value}|{event.plate or ''}"
    if key in state.seen or event.confidence < rules.event.min_confidence:
        out.duplicate = True
        state.duplicates.append(event_id)
        del state.duplicates[:-REMEMBERED_DUPLICATES]
        if key in state.seen:
            state.seen[key] = t  # a vehicle still there keeps the window open
        return out
    state.seen[key] = t
    if event.event_type in VIOLATION_TYPES:
        _violation(state, t, rules.hotspot, out)
    else:
        episode = f"camera-{event.event_type.value.replace('_', '-')}:{state.unit}"
        out.incident_episode = episode
        detail = {"event_type": event.event_type.value, "camera": state.device_key}
        if event.object_count is not None:
            detail["object_count"] = str(event.object_count)
        out.detections.append(
            _detection(
                state,
                episode,
                rules.event,
                "open",
                t,
                module=Module.SECURITY if event.event_type is CameraEventType.INTRUSION else Module.TRAFFIC,
                severity=SAFETY_SEVERITY[event.event_type],
                title=SAFETY_TITLES[event.event_type],
                detail=detail,
            )
        )
    return out


def _violation(state: CameraState, t: float, rule: HotspotRule, out: CameraOutcome) -> None:
    window = rule.window_minutes * 60
    state.violations = [v for v in state.violations if t - v <= window] + [t]
    episode = f"{rule.id}:{state.unit}:{state.vendor}.{state.device}"
    count = len(state.violations)
    if count >= rule.min_events and not state.hotspot:
        state.hotspot = True
        out.detections.append(
            _detection(state, episode, rule, "open", state.violations[0], detail={"violations": str(count)})
        )
    elif count < rule.min_events / 2 and state.hotspot:
        state.hotspot = False
        out.detections.append(_detection(state, episode, rule, "clear", t, detail={"violations": str(count)}))


def check_silence(state: CameraState, now: float, rules: CameraRules) -> Sequence[Detection]:
    """The passage of time for one camera: a hotspot that cooled down clears, a quiet camera is reported."""
    found: list[Detection] = []
    if state.hotspot:
        window = rules.hotspot.window_minutes * 60
        state.violations = [v for v in state.violations if now - v <= window]
        if len(state.violations) < rules.hotspot.min_events / 2:
            state.hotspot = False
            episode = f"{rules.hotspot.id}:{state.unit}:{state.vendor}.{state.device}"
            found.append(_detection(state, episode, rules.hotspot, "clear", now))
    rule = rules.silence
    if rule is None or state.silent or state.last_received <= 0:
        return found
    if now - _last_heard(state) <= rule.silent_minutes * 60:
        return found
    state.silent = True
    episode = f"{rule.id}:{state.unit}:{state.vendor}.{state.device}"
    quiet = str(int((now - _last_heard(state)) // 60))
    found.append(_detection(state, episode, rule, "open", now, detail={"silent_minutes": quiet}))
    return found


def _last_heard(state: Any) -> float:
    """When the device was last heard of: the later of when its data arrived and the time it carried.

    In production the two agree within seconds. Under a simulated clock (a demo replaying hours in
    minutes) only the carried time keeps pace with the workers' clock; arrival alone would make every
    device look silent.
    """
    return max(float(state.last_received), float(state.last_observed))
