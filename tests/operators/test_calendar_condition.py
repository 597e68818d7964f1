"""The IOCSite Calendar condition: True while the working-day table covers today, False ahead of its end."""

from __future__ import annotations

import datetime as dt

from ioc.workdays import default_calendar
from operators import conditions

CALENDAR = default_calendar()
LAST = CALENDAR.years[-1]


def test_covered_is_true_and_names_the_last_covered_year() -> None:
    cond = conditions.calendar(CALENDAR.coverage(dt.date(LAST, 3, 1)), generation=4)
    assert (cond["type"], cond["status"], cond["reason"], cond["observedGeneration"]) == (
        "Calendar",
        "True",
        "Covered",
        4,
    )
    assert f"last covered year {LAST}" in cond["message"]


def test_the_last_quarter_of_the_last_year_is_ending_soon_with_the_year_to_add() -> None:
    cond = conditions.calendar(CALENDAR.coverage(dt.date(LAST, 11, 1)))
    assert (cond["status"], cond["reason"]) == ("False", "EndingSoon")
    assert f"last covered year is {LAST} (60 days left)" in cond["message"]
    assert f"add {LAST + 1}'s days off" in cond["message"]


def test_beyond_the_table_is_not_covered_and_says_deadlines_count_weekends_only() -> None:
    cond = conditions.calendar(CALENDAR.coverage(dt.date(LAST + 1, 2, 1)))
    assert (cond["status"], cond["reason"]) == ("False", "NotCovered")
    assert f"has no {LAST + 1}" in cond["message"] and "only weekly rest days" in cond["message"]


def test_the_warning_does_not_hold_the_site_back_from_ready() -> None:
    warned = conditions.calendar(CALENDAR.coverage(dt.date(LAST, 11, 1)))
    parts = ["Kubernetes"]
    merged = conditions.merge([], [conditions.condition("Kubernetes", True, "Applied"), warned])
    assert conditions.ready(merged, parts)["status"] == "True"
    assert conditions.phase([*merged, conditions.ready(merged, parts)], parts) == "Ready"
