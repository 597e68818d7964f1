"""The working-day calendar says when it runs out: covered, ending soon (from 1 October of its last year), or not."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ioc.workdays import COVERAGE_WARNING_DAYS, default_calendar, parse_calendar

CALENDAR = default_calendar()
LAST = CALENDAR.years[-1]


def test_the_shipped_table_is_covered_well_before_its_last_year_ends() -> None:
    found = CALENDAR.coverage(dt.date(LAST - 1, 6, 1))
    assert (found.state, found.ok, found.first_year, found.last_year) == ("covered", True, CALENDAR.years[0], LAST)


@pytest.mark.parametrize(
    ("day", "state", "days_left"),
    [
        (dt.date(LAST, 9, 30), "covered", 92),
        (dt.date(LAST, 10, 1), "ending-soon", 91),
        (dt.date(LAST, 12, 31), "ending-soon", 0),
        (dt.date(LAST + 1, 1, 1), "not-covered", -1),
    ],
)
def test_it_warns_from_the_last_quarter_of_its_last_year_and_after(day: dt.date, state: str, days_left: int) -> None:
    assert COVERAGE_WARNING_DAYS == 92
    found = CALENDAR.coverage(day)
    assert (found.state, found.days_left, found.ok) == (state, days_left, state == "covered")


def test_today_is_read_in_the_calendars_zone() -> None:
    # 30 September 17:30 UTC is already 1 October 00:30 in Hồ Chí Minh City.
    found = CALENDAR.coverage(dt.datetime(LAST, 9, 30, 17, 30, tzinfo=dt.UTC))
    assert (found.state, found.year) == ("ending-soon", LAST)
    assert CALENDAR.coverage(dt.datetime(LAST, 9, 30, 12, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))).ok
    with pytest.raises(ValueError, match="naive"):
        CALENDAR.coverage(dt.datetime(LAST, 9, 30, 12))


def test_a_year_missing_inside_the_table_is_not_covered() -> None:
    table = parse_calendar(
        {
            "version": "gap",
            "timezone": "Asia/Ho_Chi_Minh",
            "weekly_rest_days": ["saturday", "sunday"],
            "office_hours": [{"start": "07:30", "end": "11:30"}, {"start": "13:00", "end": "17:00"}],
            "years": [{"year": 2024, "days_off": []}, {"year": 2026, "days_off": []}],
        }
    )
    found = table.coverage(dt.date(2025, 3, 3))
    assert (found.state, found.year, found.last_year) == ("not-covered", 2025, 2026)
    assert table.coverage(dt.date(2026, 3, 3), warn_days=400).state == "ending-soon"
