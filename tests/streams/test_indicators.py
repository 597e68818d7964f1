"""Decision 766 scorecards for every unit and a period: subtrees, Vietnamese periods, warehouse rows back to records."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ioc import decision766
from ioc.events import DossierChannel, DossierStatus, ServiceRecord
from ioc.units import load_tree
from streams import indicators
from streams.indicators import Period
from streams.warehouse.rows import dossier_row

SCHEME = decision766.default_scheme()
TREE = load_tree("2024")
VN = ZoneInfo("Asia/Ho_Chi_Minh")
JUNE = Period("month", dt.date(2025, 6, 1))
AS_OF = dt.datetime(2025, 7, 1, 9, 0, tzinfo=VN)
INDICATORS = len(list(SCHEME.indicators()))


def local(day: int, hour: int = 9, minute: int = 0, month: int = 6, year: int = 2025) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=VN)


def record(dossier_id: str, unit: str, received: dt.datetime, *, on_time: bool = True, **extra: Any) -> ServiceRecord:
    due = received + dt.timedelta(days=5)
    finished = due - dt.timedelta(days=1) if on_time else due + dt.timedelta(days=2)
    fields: dict[str, Any] = {
        "dossier_id": dossier_id,
        "status_version": 2,
        "unit": unit,
        "procedure_code": "1.001612",
        "status": DossierStatus.PROCESSED,
        "channel": DossierChannel.ONLINE,
        "received_at": received,
        "due_at": due,
        "occurred_at": finished,
        "finished_at": finished,
    }
    fields.update(extra)
    return ServiceRecord(**fields)


def by(rows: list[dict[str, Any]], unit: str, code: str) -> dict[str, Any]:
    [row] = [r for r in rows if r["unit"] == unit and r["code"] == code]
    return row


# --- periods ------------------------------------------------------------------------------------------------


def test_periods_are_vietnamese_days_and_months() -> None:
    assert (JUNE.start, JUNE.end) == (local(1, 0), local(1, 0, month=7))
    december = Period("month", dt.date(2025, 12, 1))
    assert (december.start, december.end) == (local(1, 0, month=12), local(1, 0, month=1, year=2026))
    day = Period("day", dt.date(2025, 6, 30))
    assert (day.start, day.end) == (local(30, 0), local(1, 0, month=7))
    # 23:30 on 30 June in Bình Dương is 16:30 UTC: June, and 30 June.
    late = local(30, 23, 30).astimezone(dt.UTC)
    assert indicators.period_of("month", late) == JUNE
    assert indicators.period_of("day", late) == day
    # 00:30 on 1 July in Bình Dương is still 30 June in UTC: July.
    early = local(1, 0, 30, month=7).astimezone(dt.UTC)
    assert early.date() == dt.date(2025, 6, 30)
    assert indicators.period_of("month", early) == Period("month", dt.date(2025, 7, 1))
    assert indicators.period_of("day", early) == Period("day", dt.date(2025, 7, 1))


def test_a_dossier_received_at_2330_on_the_last_day_belongs_to_that_month() -> None:
    received = local(30, 23, 30).astimezone(dt.UTC)
    records = [
        record("D-LATE", "25957", received, status=DossierStatus.RECEIVED, occurred_at=received, finished_at=None)
    ]
    june = indicators.scorecards(records, SCHEME, TREE, JUNE, as_of=AS_OF, units=["25957"])
    july = indicators.scorecards(
        records, SCHEME, TREE, Period("month", dt.date(2025, 7, 1)), as_of=AS_OF, units=["25957"]
    )
    assert by(june, "25957", "1.4")["denominator"] == 1
    assert by(july, "25957", "1.4")["denominator"] == 0
    last_day = indicators.scorecards(records, SCHEME, TREE, Period("day", dt.date(2025, 6, 30)), as_of=AS_OF)
    assert by(last_day, "25957", "1.4")["denominator"] == 1
    assert {r["period_kind"] for r in last_day} == {"day"}
    assert {r["period_start"] for r in last_day} == {dt.date(2025, 6, 30)}


# --- scorecards ----------------------------------------------------------------------------------------------


def _month() -> list[ServiceRecord]:
    return [
        record("DH-1", "25957", local(2)),  # Đông Hòa, on time
        record("DH-2", "25957", local(3), on_time=False),  # Đông Hòa, late
        record("BA-1", "25951", local(4)),  # Bình An (also Dĩ An district)
        record("PC-1", "25747", local(5), on_time=False),  # Phú Cường, Thủ Dầu Một: another district
        record("OLD", "25957", local(20, month=5)),  # May: not June's
    ]


def test_a_districts_scorecard_covers_its_communes() -> None:
    rows = indicators.scorecards(_month(), SCHEME, TREE, JUNE, as_of=AS_OF, units=["724", "25957", "25951", "74"])
    on_time = {
        unit: (by(rows, unit, "2.1")["numerator"], by(rows, unit, "2.1")["denominator"]) for unit in rows_units(rows)
    }
    assert on_time == {"25957": (1, 2), "25951": (1, 1), "724": (2, 3), "74": (2, 4)}
    assert by(rows, "724", "2.1")["lost_dossiers"] == ["DH-2"]
    assert by(rows, "74", "2.1")["lost_dossiers"] == ["DH-2", "PC-1"]
    district = [r for r in rows if r["unit"] == "724"]
    assert len(district) == INDICATORS
    assert {(r["path"], r["period_kind"], r["period_start"], r["scheme"]) for r in district} == {
        ("74/724", "month", dt.date(2025, 6, 1), SCHEME.id)
    }
    assert {r["computed_at"] for r in rows} == {AS_OF.astimezone(dt.UTC)}


def rows_units(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({r["unit"] for r in rows})


def test_every_unit_of_the_tree_gets_a_card_by_default() -> None:
    rows = indicators.scorecards(_month(), SCHEME, TREE, JUNE, as_of=AS_OF)
    assert len(rows) == len(TREE) * INDICATORS
    assert rows_units(rows) == sorted(u.code for u in TREE)
    assert all(r["path"] == TREE.path(r["unit"]) for r in rows)
    # A ward without dossiers has no data, not zero points.
    quiet = by(rows, "25960", "2.1")
    assert (quiet["denominator"], quiet["no_data"]) == (0, 1)
    # ... and earns nothing for it: no row of that ward counts in a score.
    assert {(r["points"], r["measured"], r["policy"]) for r in rows if r["unit"] == "25960"} == {
        (0.0, 0, "766-nodata.measured-only.v1")
    }


def test_a_card_for_a_period_not_yet_begun_is_computed_as_of_its_start() -> None:
    july = Period("month", dt.date(2025, 7, 1))
    rows = indicators.scorecards(_month(), SCHEME, TREE, july, as_of=local(15), units=["724"])
    assert by(rows, "724", "2.1")["denominator"] == 0
    assert {r["computed_at"] for r in rows} == {local(15).astimezone(dt.UTC)}


def test_the_latest_snapshot_of_a_dossier_decides_and_replays_count_once() -> None:
    first = record(
        "DH-1",
        "25957",
        local(2),
        status_version=1,
        status=DossierStatus.RECEIVED,
        finished_at=None,
        occurred_at=local(2),
    )
    final = record("DH-1", "25957", local(2), on_time=False)
    rows = indicators.scorecards([final, first, final, first], SCHEME, TREE, JUNE, as_of=AS_OF, units=["25957"])
    assert (by(rows, "25957", "2.1")["numerator"], by(rows, "25957", "2.1")["denominator"]) == (0, 1)


# --- warehouse rows back to records --------------------------------------------------------------------------

_times = st.datetimes(
    min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2026, 12, 31), timezones=st.sampled_from([dt.UTC, VN])
).map(lambda t: t.replace(microsecond=0))


@st.composite
def service_records(draw: st.DrawFn) -> ServiceRecord:
    received = draw(_times)
    status = draw(st.sampled_from(list(DossierStatus)))
    finished = status in (DossierStatus.PROCESSED, DossierStatus.RETURNED) or draw(st.booleans())
    requires_payment = draw(st.booleans())
    return ServiceRecord(
        dossier_id=draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,20}\Z")),
        status_version=draw(st.integers(min_value=0, max_value=2**31)),
        unit=draw(st.sampled_from(["25957", "25951", "25747"])),
        procedure_code=draw(st.text(max_size=20)),
        status=status,
        channel=draw(st.sampled_from(list(DossierChannel))),
        received_at=received,
        due_at=received + dt.timedelta(seconds=draw(st.integers(min_value=0, max_value=90 * 86400))),
        occurred_at=draw(_times),
        finished_at=draw(_times) if finished else None,
        fully_online=draw(st.booleans()),
        requires_payment=requires_payment,
        paid_online=requires_payment and draw(st.booleans()),
        digitised=draw(st.booleans()),
        result_digital=draw(st.booleans()),
        supplement_count=draw(st.integers(min_value=0, max_value=5)),
        supplement_days=draw(st.floats(min_value=0, max_value=30, allow_nan=False)),
        synced_to_national_portal=draw(st.booleans()),
        satisfaction=draw(st.sampled_from([None, "satisfied", "neutral", "unsatisfied"])),
    )


@settings(max_examples=200, deadline=None)
@given(service_records())
def test_property_record_from_row_round_trips_dossier_rows(original: ServiceRecord) -> None:
    row = dossier_row(original, TREE.path(original.unit))
    back = indicators.record_from_row(row)
    assert back == original
    assert back.satisfaction == original.satisfaction
    assert dossier_row(back, TREE.path(back.unit)) == row


def test_record_from_row_takes_a_row_as_the_warehouse_returns_it() -> None:
    original = record("DH-1", "25957", local(2), satisfaction="satisfied", digitised=True)
    row = dossier_row(original, "74/724/25957")
    assert row["digitised"] == 1 and row["received_at"].tzinfo is not None
    back = indicators.record_from_row(row)
    assert back == original
    assert back.digitised is True and back.fully_online is False
    unrated = indicators.record_from_row({**row, "satisfaction": ""})
    assert unrated.satisfaction is None
