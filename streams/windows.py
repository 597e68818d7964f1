"""Rolling device minutes up into unit windows: 1-minute tumbling and 15-minute windows hopping by 5. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

import msgspec

from ioc.events import DeviceMinute

__all__ = ["HOP_S", "LONG_S", "UnitWindows", "WindowRow", "read_unit", "windows_of", "write_unit"]

MINUTE_S: Final = 60
LONG_S: Final = 15 * 60
HOP_S: Final = 5 * 60
KEEP_S: Final = LONG_S + HOP_S


@dataclasses.dataclass(frozen=True)
class WindowRow:
    unit: str
    window: str
    window_start: float
    measure: str
    count: int
    sum: float
    min: float
    max: float
    devices: int

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0


def windows_of(minute: float) -> list[tuple[str, float]]:
    """The windows a minute belongs to: its own minute, and the three 15-minute windows covering it."""
    first_hop = minute - minute % HOP_S
    return [("1m", minute)] + [("15m", start) for start in (first_hop - 2 * HOP_S, first_hop - HOP_S, first_hop)]


class UnitWindows(msgspec.Struct, dict=True):
    """One unit's recent minutes, by device; encoded with msgspec for the Faust table.

    Each minute's statistics merged across its devices are kept beside it (not encoded) until a device's
    contribution to that minute changes: a province with thousands of devices rebuilds its windows each
    flush from a few minute totals, not from every device-minute it holds.

    Each unit keeps, per minute, each device's statistics as last reported (`DeviceMinute` replaces, never adds, so a
    replayed minute changes nothing); the rows for the windows a minute touches are rebuilt from those contributions.
    The "aqi" measure's max is the worst station's VN_AQI.
    """

    unit: str
    minutes: dict[str, dict[str, dict[str, list[float]]]] = msgspec.field(default_factory=dict)
    dirty: list[list[Any]] = msgspec.field(default_factory=list)

    def to_builtins(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result

    @classmethod
    def from_builtins(cls, data: dict[str, Any]) -> UnitWindows:
        return msgspec.convert(data, cls)

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, raw: bytes) -> UnitWindows:
        return msgspec.json.decode(raw, type=cls)

    def add(self, contribution: DeviceMinute) -> None:
        """Record (or replace) one device's minute and mark the windows it touches for rebuilding."""
        minute = contribution.minute.timestamp()
        newest = max([minute, *(float(m) for m in self.minutes)])
        kept_from = newest - KEEP_S  # every minute from here on is still held
        if minute < kept_from:
            return  # too late to matter: its windows were written long ago
        key = str(int(minute))
        measures = {name: [s.count, s.sum, s.min, s.max] for name, s in contribution.measures.items()}
        by_device = self.minutes.setdefault(key, {})
        if by_device.get(contribution.device_key) != measures:
            by_device[contribution.device_key] = measures
            self._merged().pop(key, None)
            self.touched().add(key)
        # A replay (the same minute again) still marks its windows: after a crash between saving this state
        # and storing the rows, the replay is what writes them.
        for window in windows_of(minute):
            # A window that starts before the minutes held would be rebuilt from part of its minutes and
            # replace its complete row: leave it as written.
            if window[1] >= kept_from and list(window) not in self.dirty:
                self.dirty.append(list(window))
        # Keep what the windows still to be rebuilt need.
        oldest_needed = min([kept_from, *(start for _, start in self.dirty)])
        for old in [m for m in self.minutes if float(m) < oldest_needed]:
            del self.minutes[old]
            self._merged().pop(old, None)
            self.touched().add(old)

    def touched(self) -> set[str]:
        """Minutes whose contributions changed (or that were dropped) since the store last saved them."""
        touched: set[str] | None = self.__dict__.get("_touched")
        if touched is None:
            touched = self.__dict__["_touched"] = set()
        return touched

    def _merged(self) -> dict[str, _Merged]:
        """Each held minute's statistics merged across its devices, as far as computed since a change."""
        cache: dict[str, _Merged] | None = self.__dict__.get("_merged_minutes")
        if cache is None:
            cache = self.__dict__["_merged_minutes"] = {}
        return cache

    def take_rows(self) -> list[WindowRow]:
        """Rebuild every window marked since the last call.

        Each minute the marked windows cover is merged across its devices once; a window then merges its
        minutes (a 15-minute window and the three that overlap it share the work).
        """
        if not self.dirty:
            return []
        spans = [(window, start, start + (MINUTE_S if window == "1m" else LONG_S)) for window, start in self.dirty]
        low_end = min(span[1] for span in spans)
        high_end = max(span[2] for span in spans)
        cache = self._merged()
        per_minute: list[tuple[float, _Merged]] = []
        for minute, by_device in self.minutes.items():
            at = float(minute)
            if low_end <= at < high_end:
                merged = cache.get(minute)
                if merged is None:
                    merged = cache[minute] = _Merged()
                    for device, measures in by_device.items():
                        for name, stats in measures.items():
                            merged.add_one(name, stats, device)
                per_minute.append((at, merged))
        rows: list[WindowRow] = []
        for window, start, end in spans:
            total = _Merged()
            for at, merged in per_minute:
                if start <= at < end:
                    for name, stats in merged.stats.items():
                        total.add(name, stats, merged.devices[name])
            rows.extend(
                WindowRow(self.unit, window, start, name, int(a[0]), a[1], a[2], a[3], len(total.devices[name]))
                for name, a in sorted(total.stats.items())
            )
        self.dirty = []
        return rows


class _Merged:
    """Statistics per measure (count, sum, min, max) and the devices behind them, merged as they come."""

    __slots__ = ("devices", "stats")

    def __init__(self) -> None:
        self.stats: dict[str, list[float]] = {}
        self.devices: dict[str, set[str]] = {}

    def add_one(self, name: str, stats: list[float], device: str) -> None:
        acc = self.stats.get(name)
        if acc is None:
            self.stats[name] = list(stats)
            self.devices[name] = {device}
            return
        acc[0] += stats[0]
        acc[1] += stats[1]
        acc[2] = min(acc[2], stats[2])
        acc[3] = max(acc[3], stats[3])
        self.devices[name].add(device)

    def add(self, name: str, stats: list[float], devices: set[str]) -> None:
        acc = self.stats.get(name)
        if acc is None:
            self.stats[name] = list(stats)
            self.devices[name] = set(devices)
            return
        acc[0] += stats[0]
        acc[1] += stats[1]
        acc[2] = min(acc[2], stats[2])
        acc[3] = max(acc[3], stats[3])
        self.devices[name] |= devices


class _Header(msgspec.Struct):
    """A unit's entry in its table: the windows to rebuild and the minutes held (each under its own key).

    `minutes` is only ever read: a whole `UnitWindows` stored by an earlier version decodes as a header
    that still carries its minutes.
    """

    unit: str
    dirty: list[list[Any]] = msgspec.field(default_factory=list)
    held: list[str] = msgspec.field(default_factory=list)
    minutes: dict[str, dict[str, dict[str, list[float]]]] = msgspec.field(default_factory=dict)


_header_decoder: Final = msgspec.json.Decoder(_Header)
_minute_decoder: Final = msgspec.json.Decoder(dict[str, dict[str, list[float]]])
_encoder: Final = msgspec.json.Encoder()


def read_unit(table: Mapping[bytes, bytes], unit: str) -> UnitWindows | None:
    """A unit's windows as `write_unit` stored them (or as an earlier version stored them whole); None if absent."""
    raw = table.get(unit.encode())
    if raw is None:
        return None
    header = _header_decoder.decode(raw)
    state = UnitWindows(header.unit, dict(header.minutes), header.dirty)
    if header.minutes:  # stored whole by an earlier version: the next write splits it
        state.touched().update(header.minutes)
    for minute in header.held:
        part = table.get(_minute_key(unit, minute))
        if part is not None:
            state.minutes[minute] = _minute_decoder.decode(part)
    return state


def write_unit(table: MutableMapping[bytes, bytes], state: UnitWindows) -> None:
    """Store a unit's windows a key per unit and per unit-minute: its header, and the minutes touched since.

    A unit's state holds 20 minutes of every device under it (a province: thousands of devices); stored
    whole it would be rewritten to the changelog on every flush and outgrow a Kafka message. Here a write
    puts the unit's small header and only the minutes that changed since the last write (usually the
    newest), and deletes the minutes it dropped.
    """
    touched = state.touched()
    for minute in touched:
        key = _minute_key(state.unit, minute)
        if minute in state.minutes:
            table[key] = _encoder.encode(state.minutes[minute])
        elif key in table:
            del table[key]
    touched.clear()
    table[state.unit.encode()] = _encoder.encode(
        _Header(unit=state.unit, dirty=state.dirty, held=sorted(state.minutes))
    )


def _minute_key(unit: str, minute: str) -> bytes:
    return f"{unit}@{minute}".encode()
