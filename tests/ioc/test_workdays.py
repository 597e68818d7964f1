"""Working days and SLA deadlines: the packaged calendar, office-hour arithmetic, pauses and bad tables."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc import workdays

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT = Path(workdays.__file__).parent / "data" / "working-calendar.yaml"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=VN)


@pytest.fixture(scope="module")
def cal() -> workdays.WorkingCalendar:
    return workdays.default_calendar()


@pytest.fixture
def data() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT.read_text(encoding="utf-8"))


def test_default_calendar_loads_and_is_cached(cal: workdays.WorkingCalendar) -> None:
    assert workdays.default_calendar() is cal
    assert cal.years == (2024, 2025, 2026, 2027)
    assert cal.day_length == dt.timedelta(hours=8)
    assert str(cal.timezone) == "Asia/Ho_Chi_Minh"
    assert cal.covers(2026)
    assert not cal.covers(2023)
    assert not cal.covers(2028)


def test_tet_2026_report_filed_the_friday_before_is_due_the_monday_after(cal: workdays.WorkingCalendar) -> None:
    # Tết Bính Ngọ: off Sat 14/02 to Sun 22/02/2026. Fri 10:00 + 1 WD = 5.5 h on Friday + 2.5 h on Mon 23/02.
    assert all(not cal.is_working_day(dt.date(2026, 2, d)) for d in range(14, 23))
    due = cal.add_working_days(at(2026, 2, 13, 10), 1)
    assert due == at(2026, 2, 23, 10)
    assert due.tzinfo is not None
    assert due.utcoffset() == dt.timedelta(hours=7)
    entry = cal.day_off(dt.date(2026, 2, 17))
    assert entry is not None
    assert "Tết Nguyên đán" in entry.name


def test_worked_saturday_26_april_2025_counts(cal: workdays.WorkingCalendar) -> None:
    assert cal.is_working_day(dt.date(2025, 4, 26))
    assert not cal.is_working_day(dt.date(2025, 5, 2))  # the Friday swapped for it
    # Fri 25/04 16:00 + 0.25 WD (2 h): 1 h on Friday, 1 h on the worked Saturday morning.
    assert cal.add_working_days(at(2025, 4, 25, 16), 0.25) == at(2025, 4, 26, 8, 30)
    # Tue 29/04 17:00 + 1 WD: 30/4 to 4/5 are off, so the day is Mon 05/05.
    assert cal.add_working_days(at(2025, 4, 29, 17), 1) == at(2025, 5, 5, 17)


def test_compensatory_monday_27_april_2026_does_not_count(cal: workdays.WorkingCalendar) -> None:
    assert not cal.is_working_day(dt.date(2026, 4, 26))
    assert not cal.is_working_day(dt.date(2026, 4, 27))
    assert cal.add_working_days(at(2026, 4, 24, 10), 1) == at(2026, 4, 28, 10)
    assert cal.working_days_between(at(2026, 4, 24, 17), at(2026, 4, 28, 7, 30)) == 0


def test_other_swaps_in_the_table(cal: workdays.WorkingCalendar) -> None:
    assert not cal.is_working_day(dt.date(2024, 4, 29))
    assert cal.is_working_day(dt.date(2024, 5, 4))
    assert not cal.is_working_day(dt.date(2026, 8, 31))
    assert cal.is_working_day(dt.date(2026, 8, 22))
    assert cal.is_working_day(dt.date(2026, 1, 10))


def test_outside_the_table_only_weekends_are_off(cal: workdays.WorkingCalendar) -> None:
    assert cal.is_working_day(dt.date(2028, 1, 3))  # a Monday; 2028's holidays are unknown
    assert cal.is_working_day(dt.date(2028, 5, 1))  # Labour Day too: the caller must warn via covers()
    assert not cal.is_working_day(dt.date(2028, 1, 1))  # a Saturday


def test_is_working_day_reads_an_aware_datetime_in_local_time(cal: workdays.WorkingCalendar) -> None:
    # 2026-02-13 20:00 UTC is already Saturday 14/02 03:00 in Vietnam: a day of Tết.
    assert not cal.is_working_day(dt.datetime(2026, 2, 13, 20, tzinfo=dt.UTC))
    assert cal.is_working_day(dt.datetime(2026, 2, 13, 2, tzinfo=dt.UTC))


def test_fractional_days_are_office_hours(cal: workdays.WorkingCalendar) -> None:
    monday = at(2026, 3, 2, 7, 30)
    assert cal.add_working_days(monday, 0.5) == at(2026, 3, 2, 11, 30)  # the morning, not 13:00
    assert cal.add_working_days(monday, 1) == at(2026, 3, 2, 17)  # the same day's close, not Tuesday
    assert cal.add_working_days(monday, 1.5) == at(2026, 3, 3, 11, 30)
    assert cal.add_working_days(at(2026, 3, 2, 10), 0.5) == at(2026, 3, 2, 15, 30)  # across lunch
    assert cal.add_working_days(monday, 5) == at(2026, 3, 6, 17)
    assert cal.add_working_days(monday, 5.125) == at(2026, 3, 9, 8, 30)
    assert cal.working_days_between(monday, at(2026, 3, 2, 15, 30)) == pytest.approx(6.5 / 8)


def test_start_outside_office_hours_counts_from_the_next_opening(cal: workdays.WorkingCalendar) -> None:
    assert cal.add_working_days(at(2026, 3, 2, 6), 0.5) == at(2026, 3, 2, 11, 30)  # before opening
    assert cal.add_working_days(at(2026, 3, 2, 12), 0.5) == at(2026, 3, 2, 17)  # at lunch
    assert cal.add_working_days(at(2026, 3, 6, 18), 0.5) == at(2026, 3, 9, 11, 30)  # Friday evening
    assert cal.add_working_days(at(2026, 3, 7, 9), 0.25) == at(2026, 3, 9, 9, 30)  # Saturday
    assert cal.add_working_days(at(2026, 3, 6, 18), 0) == at(2026, 3, 9, 7, 30)


def test_add_hours_is_clock_time(cal: workdays.WorkingCalendar) -> None:
    assert cal.add_hours(at(2026, 2, 13, 22), 4) == at(2026, 2, 14, 2)  # Tết or not
    moved = cal.add_hours(dt.datetime(2026, 2, 13, 3, tzinfo=dt.UTC), 1.5)
    assert moved == at(2026, 2, 13, 11, 30)
    assert moved.tzinfo == VN


def test_a_pause_extends_the_deadline_by_its_office_time(cal: workdays.WorkingCalendar) -> None:
    start = at(2026, 3, 2, 7, 30)
    assert cal.deadline(start, 1) == at(2026, 3, 2, 17)
    # Waiting for the citizen from Mon 09:30 to Tue 09:30: one full office day paused.
    pause = (at(2026, 3, 2, 9, 30), at(2026, 3, 3, 9, 30))
    assert cal.deadline(start, 1, [pause]) == at(2026, 3, 3, 17)
    # A pause over a weekend costs no office time.
    assert cal.deadline(start, 5, [(at(2026, 3, 6, 17), at(2026, 3, 9, 7, 30))]) == at(2026, 3, 6, 17)
    # Overlapping pauses count once; a pause before the start is ignored.
    overlapping = [pause, (at(2026, 3, 2, 13), at(2026, 3, 3, 8, 30)), (at(2026, 2, 1), at(2026, 2, 2))]
    assert cal.deadline(start, 1, overlapping) == at(2026, 3, 3, 17)
    # A pause beginning before the start counts only from the start.
    assert cal.deadline(start, 1, [(at(2026, 3, 1), at(2026, 3, 2, 11, 30))]) == at(2026, 3, 3, 11, 30)


def test_a_pause_after_the_deadline_changes_nothing(cal: workdays.WorkingCalendar) -> None:
    start = at(2026, 3, 2, 7, 30)
    assert cal.deadline(start, 1, [(at(2026, 3, 2, 17), at(2026, 3, 10))]) == at(2026, 3, 2, 17)
    assert cal.deadline(start, 15, []) == cal.add_working_days(start, 15)


def test_a_pause_across_tet_2026(cal: workdays.WorkingCalendar) -> None:
    # 15 WD from Mon 09/02, waiting from Wed 11/02 07:30 to Tue 24/02 07:30: the pause holds 4 office days
    # (Wed 11 to Fri 13 and Mon 23); Tết in between is off anyway.
    start = at(2026, 2, 9, 7, 30)
    plain = cal.add_working_days(start, 15)
    paused = cal.deadline(start, 15, [(at(2026, 2, 11, 7, 30), at(2026, 2, 24, 7, 30))])
    assert cal.working_days_between(plain, paused) == pytest.approx(4)


def test_working_days_between_is_antisymmetric(cal: workdays.WorkingCalendar) -> None:
    a, b = at(2026, 2, 13, 10), at(2026, 2, 23, 10)
    assert cal.working_days_between(a, b) == pytest.approx(1)
    assert cal.working_days_between(b, a) == pytest.approx(-1)
    assert cal.working_days_between(a, a) == 0


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(min_value=dt.datetime(2023, 12, 1), max_value=dt.datetime(2028, 3, 1)),
    days=st.floats(min_value=0, max_value=40, allow_nan=False),
)
def test_between_inverts_add(start: dt.datetime, days: float) -> None:
    cal = workdays.default_calendar()
    begin = start.replace(tzinfo=VN)
    end = cal.add_working_days(begin, days)
    assert end >= begin
    assert cal.working_days_between(begin, end) == pytest.approx(days, abs=1e-6)
    assert cal.is_working_day(end)  # a deadline always falls in (or at the edge of) office hours


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.add_working_days(dt.datetime(2026, 3, 2, 8), 1),
        lambda c: c.working_days_between(at(2026, 3, 2), dt.datetime(2026, 3, 3)),
        lambda c: c.add_hours(dt.datetime(2026, 3, 2, 8), 1),
        lambda c: c.deadline(at(2026, 3, 2), 1, [(dt.datetime(2026, 3, 2), at(2026, 3, 3))]),
        lambda c: c.is_working_day(dt.datetime(2026, 3, 2, 8)),
    ],
)
def test_naive_datetimes_are_refused(cal: workdays.WorkingCalendar, call) -> None:
    with pytest.raises(ValueError, match="is naive: pass a timezone-aware datetime"):
        call(cal)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda c: c.add_working_days(at(2026, 3, 2), -1), "days -1 is invalid"),
        (lambda c: c.add_hours(at(2026, 3, 2), float("nan")), "hours nan is invalid"),
        (lambda c: c.deadline(at(2026, 3, 2), 1, [(at(2026, 3, 3), at(2026, 3, 2))]), "paused[0] ends"),
    ],
)
def test_bad_amounts_and_pauses_are_refused(cal: workdays.WorkingCalendar, call, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        call(cal)


def _errors(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(workdays.CalendarError) as info:
        workdays.parse_calendar(data, "test")
    assert "invalid working calendar test" in str(info.value)
    return info.value.errors


def _year(data: dict[str, Any], year: int) -> dict[str, Any]:
    return next(y for y in data["years"] if y["year"] == year)


@pytest.mark.parametrize(
    ("mutate", "field", "needle"),
    [
        (
            lambda d: _year(d, 2025)["worked_days"].append({"date": dt.date(2025, 4, 30), "name": "x", "source": "y"}),
            "years.1.worked_days.1.date",
            "2025-04-30 is a wednesday, not a weekly rest day",
        ),
        (
            lambda d: _year(d, 2025)["days_off"].append({"date": dt.date(2025, 4, 26), "name": "x", "source": "y"}),
            "years.1.worked_days.0.date",
            "2025-04-26 is also a day off at years.1.days_off.7",
        ),
        (
            lambda d: _year(d, 2026)["days_off"].append({"date": dt.date(2026, 2, 20), "name": "x", "source": "y"}),
            "years.2.days_off.8.date",
            "2026-02-20 is already listed at years.2.days_off.2",
        ),
        (
            lambda d: _year(d, 2024)["days_off"].append({"date": dt.date(2025, 1, 2), "name": "x", "source": "y"}),
            "years.0.days_off.7.date",
            "2025-01-02 is not in 2024",
        ),
        (lambda d: d["years"].reverse(), "years.1.year", "2026 follows 2027"),
        (lambda d: d["years"].append(copy.deepcopy(d["years"][-1])), "years.4.year", "2027 follows 2027"),
        (lambda d: d["office_hours"].reverse(), "office_hours.1.start", "before the previous period ends"),
        (lambda d: d["office_hours"][0].update(end="07:00"), "office_hours.0.end", "is not after start"),
        (lambda d: d["office_hours"][0].update(start=450), "office_hours.0.start", 'quoted 24-hour time like "07:30"'),
        (lambda d: d.update(timezone="Asia/Saigon City"), "timezone", "not an IANA time zone"),
        (lambda d: d.update(weekly_rest_days=["saturday", "sunday", "saturday"]), "weekly_rest_days.2", "twice"),
        (lambda d: d.update(weekly_rest_days=["caturday"]), "weekly_rest_days.0", "Input should be"),
        (
            lambda d: _year(d, 2026)["days_off"][2].update(until=dt.date(2026, 2, 1)),
            "years.2.days_off.2.until",
            "is before date",
        ),
        (lambda d: _year(d, 2027)["days_off"][0].pop("name"), "years.3.days_off.0.name", "Field required"),
        (lambda d: d.update(holidays=[]), "holidays", "Extra inputs"),
    ],
)
def test_invalid_calendar_names_the_field(data: dict[str, Any], mutate, field: str, needle: str) -> None:
    mutate(data)
    errors = _errors(data)
    assert any(loc == field and needle in msg for loc, msg in errors), errors


def test_load_calendar_refuses_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "calendar.yaml"
    broken.write_text("version: [unclosed\n", encoding="utf-8")
    with pytest.raises(workdays.CalendarError) as info:
        workdays.load_calendar(broken)
    assert info.value.errors[0][0] == "(file)"
    good = tmp_path / "good.yaml"
    good.write_text(DEFAULT.read_text(encoding="utf-8"), encoding="utf-8")
    assert workdays.load_calendar(good).version == workdays.default_calendar().version


def test_packaged_table_marks_what_is_not_confirmed(cal: workdays.WorkingCalendar) -> None:
    year_2027 = next(y for y in cal.spec.years if y.year == 2027)
    assert year_2027.note
    tet = cal.day_off(dt.date(2027, 2, 8))
    assert tet is not None
    assert not tet.confirmed
    tet_2026 = cal.day_off(dt.date(2026, 2, 16))
    assert tet_2026 is not None
    assert tet_2026.confirmed
    assert cal.day_off(dt.date(2026, 11, 24)) is None  # Ngày Văn hóa Việt Nam: not in the Labour Code yet
