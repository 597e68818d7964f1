"""Injectable scenarios: parsed from strings or presets, checked against a fleet, and how they bend values.

A scenario string is `<kind>:<targets>@+<start>[/<duration>]`, times like `90s`, `10m`, `1h30m`:

- `flood:<commune>@+10m[/40m]`: the commune's gauge rises fast above its alert level and stays there for
  the duration, then recedes; 2 min after the start three flood reports arrive from it and its nearest
  neighbour, and 5 min after the start the nearest camera reports stalled vehicles every 30 s for 10 min.
- `pollution:<commune>[,<commune>...]@+0m[/60m]`: PM2.5 at their air stations climbs through the AQI
  bands over the duration, holds for 30 min, then clears.
- `silent:<vendor or device>@+5m[/<duration>]`: the device (or every device of the vendor) stops sending.
- `impossible:<device>@+1m[/<duration>]`: the device reports physically impossible values (pm25 = 99999).
- `flood-device:<device>@+1m[/5m]`: the device sends at 100 times its rate.
- `violations:<commune>[,<commune>...]@+3m[/10m]`: a burst of violations at one junction per commune,
  with one plate caught again and again.
- `spoof:<vendor>[,<device>]@+2m`: the vendor's credentials try to publish as another vendor's device.

Presets (`demo`) expand into several strings chosen from the fleet. Parsing checks the syntax
(`parse_scenario`); `resolve_scenarios` also checks the targets exist in the fleet. Both raise
`ValueError` naming the bad part. The episode shapes (`flood_level`, `pollution_pm25`) are pure
functions the planner applies to the generators' values.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from ioc.fields import DEVICE_ID, UNIT_CODE, VENDOR_ID
from sensors.simulators.fleet import (
    CAMERA_STORY_WARDS,
    FLOOD_WARDS,
    POLLUTION_WARDS,
    DeviceSpec,
    Fleet,
    FleetUnit,
    distance_km,
)

__all__ = [
    "DEFAULT_DURATION_S",
    "FLOOD_CAMERA_AFTER_S",
    "FLOOD_CAMERA_EVENTS",
    "FLOOD_CAMERA_EVERY_S",
    "FLOOD_REPORTS_AFTER_S",
    "FLOOD_RISE_S",
    "POLLUTION_PEAK_PM25",
    "PRESETS",
    "Scenario",
    "ScenarioKind",
    "flood_level",
    "flood_rain_mm_h",
    "nearest_camera",
    "nearest_neighbour",
    "parse_duration",
    "parse_scenario",
    "pollution_pm25",
    "resolve_scenarios",
]


class ScenarioKind(enum.StrEnum):
    FLOOD = "flood"
    POLLUTION = "pollution"
    SILENT = "silent"
    IMPOSSIBLE = "impossible"
    FLOOD_DEVICE = "flood-device"
    VIOLATIONS = "violations"
    SPOOF = "spoof"


# How long each kind lasts when the string gives no `/<duration>`; None means until the run ends.
DEFAULT_DURATION_S: Final[Mapping[ScenarioKind, float | None]] = {
    ScenarioKind.FLOOD: 40 * 60.0,
    ScenarioKind.POLLUTION: 60 * 60.0,
    ScenarioKind.SILENT: None,
    ScenarioKind.IMPOSSIBLE: None,
    ScenarioKind.FLOOD_DEVICE: 5 * 60.0,
    ScenarioKind.VIOLATIONS: 10 * 60.0,
    ScenarioKind.SPOOF: 60.0,
}

# Ids are checked with ioc.fields' patterns here, so a typo in a scenario string is reported against the
# string rather than deep inside the plan; these scenarios act on communes, whose codes have 5 digits.
_COMMUNE_DIGITS: Final = 5
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([dhms])")
_UNIT_SECONDS: Final = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in `90s`, `10m`, `1h30m`, `2d`; raises ValueError for anything else (a bare number too)."""
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("empty duration: use e.g. 90s, 10m, 1h30m")
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(cleaned):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(cleaned):
        raise ValueError(f"bad duration {text!r}: use a number with a unit, e.g. 90s, 10m, 1h30m")
    return total


@dataclasses.dataclass(frozen=True, slots=True)
class Scenario:
    """One scenario: what, on which targets, from when (seconds after the run starts) and for how long."""

    kind: ScenarioKind
    targets: tuple[str, ...]
    start_s: float
    duration_s: float | None  # None: the kind's default (DEFAULT_DURATION_S)
    text: str

    def end_s(self, run_s: float) -> float:
        """When the scenario stops, in seconds after the run starts (the run's end if it never does)."""
        length = self.duration_s if self.duration_s is not None else DEFAULT_DURATION_S[self.kind]
        return run_s if length is None else self.start_s + length

    @property
    def length_s(self) -> float | None:
        return self.duration_s if self.duration_s is not None else DEFAULT_DURATION_S[self.kind]


def _time(text: str, what: str, scenario: str) -> float:
    try:
        return parse_duration(text.removeprefix("+"))
    except ValueError:
        raise ValueError(f"scenario {scenario!r}: bad {what} {text!r}: use e.g. +10m, +90s, +1h30m") from None


def _check_targets(kind: ScenarioKind, targets: tuple[str, ...], text: str) -> None:
    def bad(target: str, expected: str) -> ValueError:
        return ValueError(f"scenario {text!r}: {target!r} is not {expected}")

    if kind in (ScenarioKind.FLOOD, ScenarioKind.POLLUTION, ScenarioKind.VIOLATIONS):
        for target in targets:
            if not (UNIT_CODE.match(target) and len(target) == _COMMUNE_DIGITS):
                raise bad(target, "a commune code (5 digits, e.g. 25957)")
        if kind is ScenarioKind.FLOOD and len(targets) != 1:
            raise ValueError(f"scenario {text!r}: flood takes one commune, got {len(targets)}")
    elif kind is ScenarioKind.SPOOF:
        if len(targets) > 2:
            raise ValueError(f"scenario {text!r}: spoof takes <vendor>[,<device>], got {len(targets)} targets")
        if not VENDOR_ID.match(targets[0]):
            raise bad(targets[0], "a vendor id")
        if len(targets) == 2 and not DEVICE_ID.match(targets[1]):
            raise bad(targets[1], "a device id")
    else:
        if len(targets) != 1:
            raise ValueError(f"scenario {text!r}: {kind.value} takes one target, got {len(targets)}")
        if not DEVICE_ID.match(targets[0]):
            raise bad(targets[0], "a device or vendor id")


def parse_scenario(text: str) -> Scenario:
    """Parse one `<kind>:<targets>@+<start>[/<duration>]` string; ValueError names the bad part."""
    cleaned = text.strip()
    example = "e.g. flood:25957@+10m"
    kind_text, colon, rest = cleaned.partition(":")
    if not colon:
        if kind_text in PRESETS:
            raise ValueError(f"{kind_text!r} is a preset: expand it with resolve_scenarios")
        raise ValueError(f"scenario {text!r}: expected <kind>:<targets>@+<start>, {example}")
    try:
        kind = ScenarioKind(kind_text)
    except ValueError:
        known = ", ".join(k.value for k in ScenarioKind)
        raise ValueError(f"scenario {text!r}: unknown kind {kind_text!r} (known: {known})") from None
    target_text, at, when = rest.partition("@")
    if not at:
        raise ValueError(f"scenario {text!r}: no start time: add @+<time>, {example}")
    targets = tuple(t.strip() for t in target_text.split(",")) if target_text.strip() else ()
    if not targets or any(not t for t in targets):
        raise ValueError(f"scenario {text!r}: names no target (or an empty one) before '@'")
    _check_targets(kind, targets, text)
    start_text, slash, duration_text = when.partition("/")
    start = _time(start_text, "start time", text)
    duration = _time(duration_text, "duration", text) if slash else None
    if duration is not None and duration <= 0:
        raise ValueError(f"scenario {text!r}: the duration must be longer than zero")
    return Scenario(kind, targets, start, duration, cleaned)


# --- presets ---------------------------------------------------------------------------------------------


def _first(devices: Iterable[DeviceSpec], avoid_units: Iterable[str] = ()) -> DeviceSpec | None:
    avoided = set(avoid_units)
    ordered = sorted(devices, key=lambda d: d.device)
    return next((d for d in ordered if d.unit not in avoided), None) or next(iter(ordered), None)


def _demo(fleet: Fleet) -> list[str]:
    """SCENARIOS.md stories 1, 2, 3 and 5 at the times it gives, on the devices this fleet has."""
    parts: list[str] = []
    # Story 1: flood in Đông Hòa at +10 min (reports at +12, the camera at +15 follow from the scenario).
    if fleet.in_unit("25957", "water"):
        parts.append("flood:25957@+10m")
    # Story 2: PM2.5 climbing for an hour in Bình Hòa and Lái Thiêu.
    polluted = [u for u in POLLUTION_WARDS if fleet.in_unit(u, "air")]
    if polluted:
        parts.append(f"pollution:{','.join(polluted)}@+0m/60m")
    # Story 3: violations on the main road through Thủ Dầu Một and Thuận An.
    watched = [u for u in CAMERA_STORY_WARDS if fleet.in_unit(u, "camera")]
    if watched:
        parts.append(f"violations:{','.join(watched)}@+3m")
    # Story 5: a vendor misbehaves, away from the other stories' wards so each incident stands alone.
    story_units = {*FLOOD_WARDS, *POLLUTION_WARDS, *CAMERA_STORY_WARDS}
    camera = _first(fleet.of_kind("camera"), story_units)
    if camera is not None:
        parts.append(f"silent:{camera.device}@+5m")
    air = _first(fleet.of_kind("air"), story_units)
    if air is not None:
        parts.append(f"impossible:{air.device}@+1m")
    chatty = _first(fleet.of_kind("traffic"), story_units) or _first(fleet.of_kind("noise"), story_units)
    if chatty is not None:
        parts.append(f"flood-device:{chatty.device}@+1m")
    impostor = next((v for v in ("lotus-vision", "vnpt-cam") if v in fleet.vendor_ids), None)
    if impostor is not None and any(d.vendor != impostor for d in fleet.devices):
        parts.append(f"spoof:{impostor}@+2m")
    return parts


PRESETS: Final[Mapping[str, Callable[[Fleet], list[str]]]] = {"demo": _demo}


# --- checking targets against a fleet ---------------------------------------------------------------------


def nearest_camera(fleet: Fleet, lat: float, lon: float) -> DeviceSpec | None:
    """The camera closest to a point (ties: lowest device id), or None without cameras."""
    cameras = fleet.of_kind("camera")
    if not cameras:
        return None
    return min(cameras, key=lambda d: (round(distance_km(lat, lon, d.lat, d.lon), 4), d.device))


def nearest_neighbour(fleet: Fleet, unit: FleetUnit) -> FleetUnit | None:
    """The closest other commune of the same district in the fleet (ties: lowest code)."""
    others = [u for u in fleet.units if u.district == unit.district and u.code != unit.code]
    if not others:
        return None
    return min(others, key=lambda u: (round(distance_km(unit.lat, unit.lon, u.lat, u.lon), 4), u.code))


def _resolve(scenario: Scenario, fleet: Fleet) -> Scenario:
    text, kind = scenario.text, scenario.kind

    def need(condition: bool, message: str) -> None:
        if not condition:
            raise ValueError(f"scenario {text!r}: {message}")

    if kind in (ScenarioKind.FLOOD, ScenarioKind.POLLUTION, ScenarioKind.VIOLATIONS):
        wanted = {ScenarioKind.FLOOD: "water", ScenarioKind.POLLUTION: "air", ScenarioKind.VIOLATIONS: "camera"}[kind]
        for code in scenario.targets:
            need(fleet.has_unit(code), f"commune {code} is not covered by this fleet")
            need(bool(fleet.in_unit(code, wanted)), f"commune {code} has no {wanted} device in this fleet")
        return scenario
    if kind is ScenarioKind.SILENT:
        target = scenario.targets[0]
        need(
            target in fleet.vendor_ids or any(d.device == target for d in fleet.devices),
            f"{target!r} is neither a vendor nor a device of this fleet",
        )
        return scenario
    if kind is ScenarioKind.SPOOF:
        impostor = scenario.targets[0]
        need(impostor in fleet.vendor_ids, f"{impostor!r} is not a vendor of this fleet")
        if len(scenario.targets) == 2:
            victim = scenario.targets[1]
            need(any(d.device == victim for d in fleet.devices), f"{victim!r} is not a device of this fleet")
            need(fleet.device(victim).vendor != impostor, f"{victim!r} belongs to {impostor} itself: nothing to spoof")
            return scenario
        others = sorted((d for d in fleet.devices if d.vendor != impostor), key=lambda d: (d.kind != "air", d.device))
        need(bool(others), f"no device of another vendor than {impostor} to spoof")
        return dataclasses.replace(scenario, targets=(impostor, others[0].device))
    device_id = scenario.targets[0]
    need(any(d.device == device_id for d in fleet.devices), f"{device_id!r} is not a device of this fleet")
    if kind is ScenarioKind.IMPOSSIBLE:
        need(fleet.device(device_id).kind != "camera", "impossible values are for sensors, not cameras")
    return scenario


def resolve_scenarios(texts: Iterable[str], fleet: Fleet) -> tuple[Scenario, ...]:
    """Expand presets, parse every string and check its targets against `fleet`, in the order given."""
    resolved: list[Scenario] = []
    for text in texts:
        name = text.strip()
        expanded = PRESETS[name](fleet) if name in PRESETS else [name]
        resolved.extend(_resolve(parse_scenario(part), fleet) for part in expanded)
    return tuple(resolved)


# --- what the episodes do to values -------------------------------------------------------------------------

FLOOD_RISE_S: Final = 8 * 60.0  # from normal to above the alert level: the rate-of-change rule fires
FLOOD_RECEDE_S: Final = 25 * 60.0
FLOOD_REPORTS_AFTER_S: Final = 2 * 60.0
FLOOD_CAMERA_AFTER_S: Final = 5 * 60.0
FLOOD_CAMERA_EVERY_S: Final = 30.0
FLOOD_CAMERA_EVENTS: Final = 20  # one obstruction that the platform must show as one incident, not twenty

POLLUTION_PEAK_PM25: Final = 175.0  # µg/m³: past 150, VN_AQI's "Xấu" band and into "Rất xấu"
POLLUTION_HOLD_S: Final = 30 * 60.0
POLLUTION_CLEAR_S: Final = 30 * 60.0


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def flood_level(since_s: float, normal_m: float, alert_m: float, length_s: float, wobble: float) -> float:
    """A flooded gauge's level `since_s` after the flood starts; `wobble` in [-1, 1] is its noise.

    Rises from the normal level to 0.45 m above the alert level in FLOOD_RISE_S, stays at least 0.1 m
    above it until `length_s`, then falls back over FLOOD_RECEDE_S.
    """
    peak = alert_m + 0.45
    if since_s < 0:
        return normal_m
    if since_s < FLOOD_RISE_S:
        return normal_m + (peak - normal_m) * _smoothstep(since_s / FLOOD_RISE_S) + 0.01 * wobble
    if since_s < length_s:
        swell = 0.08 * math.sin(2 * math.pi * since_s / 1800.0)
        return max(alert_m + 0.1, peak + swell + 0.03 * wobble)
    receded = _smoothstep((since_s - length_s) / FLOOD_RECEDE_S)
    return peak + (normal_m - peak) * receded + 0.01 * wobble


def flood_rain_mm_h(since_s: float, length_s: float) -> float:
    """Rainfall on the flooded district's gauges: a downpour from 15 min before the flood to its end."""
    if -15 * 60.0 <= since_s < length_s:
        return 55.0 + 25.0 * math.sin(math.pi * max(0.0, since_s + 900.0) / (length_s + 900.0))
    return 0.0


def pollution_pm25(since_s: float, normal: float, length_s: float, peak: float = POLLUTION_PEAK_PM25) -> float:
    """PM2.5 during an episode: climbs from normal to `peak` over `length_s`, holds, then clears."""
    if since_s < 0:
        return normal
    if since_s < length_s:
        progress = since_s / length_s
        return normal + (peak - normal) * math.pow(progress, 1.5)
    if since_s < length_s + POLLUTION_HOLD_S:
        return peak
    cleared = _smoothstep((since_s - length_s - POLLUTION_HOLD_S) / POLLUTION_CLEAR_S)
    return peak + (normal - peak) * cleared
