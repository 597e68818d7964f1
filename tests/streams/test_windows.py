"""Unit roll-up windows: 1-minute tumbling and 15-minute hopping by 5, contributions replaced, never added."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.events import DeviceMinute, MeasureStats
from streams.agents.common import WindowStore
from streams.windows import HOP_S, LONG_S, UnitWindows, WindowRow, windows_of

BASE = dt.datetime(2025, 6, 1, 1, 0, tzinfo=dt.UTC)  # on a 5-minute boundary
T0 = BASE.timestamp()
KEEP_S = LONG_S + HOP_S


def ts(minutes: int) -> float:
    return T0 + minutes * 60


def stats(*values: float) -> MeasureStats:
    return MeasureStats(count=len(values), sum=sum(values), min=min(values), max=max(values))


def contribution(device: str, minute: int, unit: str = "724", **measures: MeasureStats) -> DeviceMinute:
    return DeviceMinute(
        device_key=f"acme-hydro/{device}",
        unit="25957",
        target_unit=unit,
        minute=BASE + dt.timedelta(minutes=minute),
        measures=measures or {"waterLevel": stats(1.0)},
    )


def rows_by(rows: list[WindowRow]) -> dict[tuple[str, float, str], WindowRow]:
    keyed = {(r.window, r.window_start, r.measure): r for r in rows}
    assert len(keyed) == len(rows), "a window and measure appears twice"
    return keyed


def test_windows_of_a_minute() -> None:
    assert windows_of(ts(7)) == [("1m", ts(7)), ("15m", ts(-5)), ("15m", ts(0)), ("15m", ts(5))]
    assert windows_of(ts(0)) == [("1m", ts(0)), ("15m", ts(-10)), ("15m", ts(-5)), ("15m", ts(0))]
    assert windows_of(ts(14)) == [("1m", ts(14)), ("15m", ts(0)), ("15m", ts(5)), ("15m", ts(10))]


@given(st.integers(min_value=-10_000, max_value=10_000))
def test_property_a_minute_is_in_exactly_the_hop_aligned_15_minute_windows_covering_it(n: int) -> None:
    minute = ts(n)
    found = windows_of(minute)
    assert found[0] == ("1m", minute)
    starts = [start for kind, start in found[1:] if kind == "15m"]
    expected = [s for s in range(int(minute) - LONG_S + 1, int(minute) + 1) if s % HOP_S == 0]
    assert starts == expected and len(starts) == LONG_S // HOP_S


def test_replacing_a_devices_minute_does_not_double_count() -> None:
    unit = UnitWindows("724")
    unit.add(contribution("wl-1", 3, waterLevel=stats(1.0, 2.0)))
    unit.add(contribution("wl-1", 3, waterLevel=stats(1.0, 2.0)))  # re-sent
    first = rows_by(unit.take_rows())
    assert (first["1m", ts(3), "waterLevel"].count, first["1m", ts(3), "waterLevel"].sum) == (2, 3.0)
    unit.add(contribution("wl-1", 3, waterLevel=stats(1.0, 2.0, 6.0)))  # the device's corrected minute
    again = rows_by(unit.take_rows())
    for key in [("1m", ts(3), "waterLevel"), ("15m", ts(-10), "waterLevel"), ("15m", ts(0), "waterLevel")]:
        row = again[key]
        assert (row.count, row.sum, row.min, row.max, row.devices, row.mean) == (3, 9.0, 1.0, 6.0, 1, 3.0)


def test_rows_cover_several_devices_and_measures() -> None:
    unit = UnitWindows("724")
    unit.add(contribution("wl-1", 2, waterLevel=stats(1.0, 1.2)))
    unit.add(contribution("wl-2", 2, waterLevel=stats(0.4), rainfall=stats(12.0)))
    unit.add(contribution("aq-1", 4, aqi=MeasureStats(count=1, sum=87, min=87, max=87)))
    unit.add(contribution("aq-2", 4, aqi=MeasureStats(count=1, sum=163, min=163, max=163)))
    rows = rows_by(unit.take_rows())
    assert set(rows) == {
        ("1m", ts(2), "waterLevel"),
        ("1m", ts(2), "rainfall"),
        ("1m", ts(4), "aqi"),
        *(("15m", ts(s), m) for s in (-10, -5, 0) for m in ("waterLevel", "rainfall", "aqi")),
    }
    level = rows["1m", ts(2), "waterLevel"]
    assert (level.unit, level.count, level.sum, level.min, level.max, level.devices) == ("724", 3, 2.6, 0.4, 1.2, 2)
    assert rows["1m", ts(2), "rainfall"].devices == 1
    assert rows["15m", ts(0), "aqi"].max == 163  # the worst station
    assert rows["15m", ts(0), "aqi"].devices == 2
    assert unit.take_rows() == []  # nothing marked since


def test_only_the_windows_a_minute_touches_are_rebuilt() -> None:
    unit = UnitWindows("724")
    for minute in range(10):
        unit.add(contribution("wl-1", minute))
    unit.take_rows()
    unit.add(contribution("wl-2", 12))
    assert {(r.window, r.window_start) for r in unit.take_rows()} == {
        ("1m", ts(12)),
        ("15m", ts(0)),
        ("15m", ts(5)),
        ("15m", ts(10)),
    }


def test_old_minutes_are_pruned() -> None:
    unit = UnitWindows("724")
    for minute in range(0, 60):
        unit.add(contribution("wl-1", minute))
        unit.take_rows()
    kept = sorted(float(m) for m in unit.minutes)
    assert kept[0] >= ts(59) - KEEP_S
    assert kept[-1] == ts(59)
    assert len(kept) == KEEP_S // 60 + 1


def test_late_contributions_are_ignored() -> None:
    unit = UnitWindows("724")
    unit.add(contribution("wl-1", 40))
    unit.take_rows()
    before = json.dumps(unit.to_builtins())
    unit.add(contribution("wl-2", 40 - KEEP_S // 60 - 1))  # 21 minutes before the newest: its windows are long written
    assert unit.take_rows() == []
    assert json.dumps(unit.to_builtins()) == before


def test_a_late_contribution_never_rewrites_a_window_with_part_of_its_minutes() -> None:
    unit = UnitWindows("724")
    for minute in range(26):
        unit.add(contribution("wl-1", minute, waterLevel=stats(1.0)))
        unit.take_rows()
    # wl-2's minute 6 arrives late; the window starting at minute 0 lost minutes 0-4 to pruning long ago.
    unit.add(contribution("wl-2", 6, waterLevel=stats(5.0)))
    rows = rows_by(unit.take_rows())
    assert ("15m", ts(0), "waterLevel") not in rows
    assert rows["1m", ts(6), "waterLevel"].count == 2
    assert rows["15m", ts(5), "waterLevel"].count == 16  # minutes 5-19 of wl-1 and wl-2's minute 6


def test_a_backlog_of_minutes_between_two_flushes_rebuilds_complete_windows() -> None:
    unit = UnitWindows("724")
    for minute in range(12):  # a worker catching up: many minutes before the rows are taken
        unit.add(contribution("wl-1", minute))
    unit.add(contribution("wl-1", 30))
    rows = rows_by(unit.take_rows())
    assert rows["15m", ts(0), "waterLevel"].count == 12
    assert rows["15m", ts(-10), "waterLevel"].count == 5


def test_round_trips_through_json() -> None:
    unit = UnitWindows("724")
    unit.add(contribution("wl-1", 3, waterLevel=stats(1.0, 2.0)))
    copy = UnitWindows.from_builtins(json.loads(json.dumps(unit.to_builtins())))
    assert copy.take_rows() == unit.take_rows()


_contributions = st.lists(
    st.tuples(
        st.sampled_from(["wl-1", "wl-2", "wl-3"]),
        st.integers(min_value=0, max_value=60),
        st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=3),
        st.booleans(),  # take the rows after this one
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(_contributions)
def test_property_every_row_written_is_the_whole_window_as_last_reported(
    steps: list[tuple[str, int, list[int], bool]],
) -> None:
    unit = UnitWindows("724")
    accepted: dict[tuple[str, float], MeasureStats] = {}
    newest = float("-inf")
    written: dict[tuple[str, float], WindowRow] = {}
    for i, (device, minute, values, flush) in enumerate(steps):
        measure = stats(*(float(v) for v in values))
        newest = max(newest, ts(minute))
        if ts(minute) >= newest - KEEP_S:
            accepted[device, ts(minute)] = measure
        unit.add(contribution(device, minute, waterLevel=measure))
        if not flush and i < len(steps) - 1:
            continue
        for row in unit.take_rows():
            length = 60 if row.window == "1m" else LONG_S
            inside = [(d, m) for (d, m) in accepted if row.window_start <= m < row.window_start + length]
            expected = [accepted[k] for k in inside]
            assert row.count == sum(s.count for s in expected)
            assert row.sum == sum(s.sum for s in expected)
            assert row.min == min(s.min for s in expected)
            assert row.max == max(s.max for s in expected)
            assert row.devices == len({d for d, _ in inside})
            written[row.window, row.window_start] = row
    # The newest minute's own windows are always written.
    assert ("1m", newest) in written


def test_a_replayed_minute_marks_its_windows_again() -> None:
    # A worker that saved this state but died before storing the rows gets the minute again on restart:
    # the replay must write those rows, with the same figures.
    unit = UnitWindows("724")
    unit.add(contribution("wl-1", 3, waterLevel=stats(1.0, 2.0)))
    first = unit.take_rows()
    restored = UnitWindows.decode(unit.encode())
    assert restored.take_rows() == []
    restored.add(contribution("wl-1", 3, waterLevel=stats(1.0, 2.0)))
    assert restored.take_rows() == first


def test_merged_minutes_kept_between_flushes_match_a_state_rebuilt_from_json() -> None:
    live = UnitWindows("724")
    for minute in range(12):
        for device in ("wl-1", "wl-2", "wl-3"):
            live.add(contribution(device, minute, waterLevel=stats(float(minute), float(minute + 1))))
        live.take_rows()
    restored = UnitWindows.decode(live.encode())
    for unit in (live, restored):
        unit.add(contribution("wl-4", 11, waterLevel=stats(50.0)))  # a new device joins a minute already merged
        unit.add(contribution("wl-1", 10, waterLevel=stats(-5.0)))  # a device's corrected minute
    assert rows_by(live.take_rows()) == rows_by(restored.take_rows())
    assert "_merged_minutes" not in live.encode().decode()


def _store(table: dict[bytes, bytes]) -> WindowStore:
    return WindowStore(table, decode=UnitWindows.decode, encode=UnitWindows.encode, partition_of=lambda unit: 0)


def _unit(store: WindowStore) -> UnitWindows:
    return store.get(0, "724", lambda: UnitWindows("724"))


def test_the_store_writes_only_the_minutes_that_changed_and_reads_a_unit_back_whole() -> None:
    table: dict[bytes, bytes] = {}
    store = _store(table)
    unit = _unit(store)
    for minute in range(3):
        for device in ("wl-1", "wl-2"):
            unit.add(contribution(device, minute))
    store.mark(0, "724")
    store.save(0)
    assert sorted(table) == [
        b"724",
        b"724@" + str(int(ts(0))).encode(),
        b"724@" + str(int(ts(1))).encode(),
        b"724@" + str(int(ts(2))).encode(),
    ]

    writes: list[bytes] = []

    class Recording(dict[bytes, bytes]):
        def __setitem__(self, key: bytes, value: bytes) -> None:
            writes.append(key)
            super().__setitem__(key, value)

    recording = Recording(table)
    store = _store(recording)
    again = _unit(store)
    assert again.minutes == unit.minutes and again.dirty == unit.dirty
    again.add(contribution("wl-3", 2))
    store.mark(0, "724")
    store.save(0)
    assert sorted(writes) == [b"724", b"724@" + str(int(ts(2))).encode()]  # one minute changed, one rewritten
    assert rows_by(_unit(_store(recording)).take_rows()) == rows_by(again.take_rows())


def test_the_store_deletes_the_minutes_a_unit_no_longer_holds() -> None:
    table: dict[bytes, bytes] = {}
    store = _store(table)
    unit = _unit(store)
    unit.add(contribution("wl-1", 0))
    unit.take_rows()
    store.mark(0, "724")
    store.save(0)
    unit.add(contribution("wl-1", 40))  # 40 minutes on: minute 0 is no longer needed
    unit.take_rows()
    store.mark(0, "724")
    store.save(0)
    assert b"724@" + str(int(ts(0))).encode() not in table
    assert b"724@" + str(int(ts(40))).encode() in table


def test_the_store_reads_a_unit_stored_whole_by_an_earlier_version() -> None:
    old = UnitWindows("724")
    old.add(contribution("wl-1", 3, waterLevel=stats(1.0, 2.0)))
    table = {b"724": old.encode()}
    store = _store(table)
    unit = _unit(store)
    assert unit.minutes == old.minutes and unit.dirty == old.dirty
    store.mark(0, "724")
    store.save(0)  # split into a header and one key per minute
    assert b"724@" + str(int(ts(3))).encode() in table
    assert rows_by(_unit(_store(table)).take_rows()) == rows_by(old.take_rows())


def test_a_dropped_partition_is_read_from_the_table_again() -> None:
    table: dict[bytes, bytes] = {}
    store = _store(table)
    _unit(store).add(contribution("wl-1", 3))  # applied, never saved: its event will come again
    store.drop(0)
    assert _unit(store).minutes == {}
