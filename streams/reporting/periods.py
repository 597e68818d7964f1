"""Reporting periods: a day, month, quarter or year of Vietnamese local time, named as DVCQG names them. Pure."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Final, Literal
from zoneinfo import ZoneInfo

__all__ = ["VN", "PeriodKind", "ReportPeriod", "current", "parse_period", "previous"]

VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")

PeriodKind = Literal["day", "month", "quarter", "year"]

_DAY: Final = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTH: Final = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER: Final = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR: Final = re.compile(r"^(\d{4})$")


def _add_months(day: dt.date, months: int) -> dt.date:
    years, month0 = divmod(day.month - 1 + months, 12)
    return dt.date(day.year + years, month0 + 1, 1)


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class ReportPeriod:
    """A period: its kind and first local day; `end_day` is the day after its last.

    Decision 766 results are filtered by month, quarter or year on Cổng DVCQG; a period here is the same calendar span
    in Asia/Ho_Chi_Minh, labelled `2025-06-15`, `2025-06`, `2025-Q2` or `2025`. `parse_period` reads a label back (`ioc
    report --period`), `current` and `previous` give the periods around an instant.
    """

    kind: PeriodKind
    first_day: dt.date

    @property
    def end_day(self) -> dt.date:
        if self.kind == "day":
            return self.first_day + dt.timedelta(days=1)
        return _add_months(self.first_day, {"month": 1, "quarter": 3, "year": 12}[self.kind])

    @property
    def start(self) -> dt.datetime:
        """The period's first instant (local midnight)."""
        return dt.datetime.combine(self.first_day, dt.time(), VN)

    @property
    def end(self) -> dt.datetime:
        """The instant after the period (local midnight of `end_day`)."""
        return dt.datetime.combine(self.end_day, dt.time(), VN)

    @property
    def label(self) -> str:
        if self.kind == "day":
            return self.first_day.isoformat()
        if self.kind == "month":
            return f"{self.first_day:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.first_day.year}-Q{(self.first_day.month - 1) // 3 + 1}"
        return f"{self.first_day.year}"

    def previous(self) -> ReportPeriod:
        """The period just before this one, of the same kind."""
        if self.kind == "day":
            return ReportPeriod("day", self.first_day - dt.timedelta(days=1))
        back = {"month": -1, "quarter": -3, "year": -12}[self.kind]
        return ReportPeriod(self.kind, _add_months(self.first_day, back))


def parse_period(text: str) -> ReportPeriod:
    """`2025-06-15`, `2025-06`, `2025-Q2` or `2025`; raises ValueError saying which shapes are valid."""
    text = text.strip()
    try:
        if found := _DAY.match(text):
            return ReportPeriod("day", dt.date(int(found[1]), int(found[2]), int(found[3])))
        if found := _MONTH.match(text):
            return ReportPeriod("month", dt.date(int(found[1]), int(found[2]), 1))
        if found := _QUARTER.match(text):
            return ReportPeriod("quarter", dt.date(int(found[1]), (int(found[2]) - 1) * 3 + 1, 1))
        if found := _YEAR.match(text):
            return ReportPeriod("year", dt.date(int(found[1]), 1, 1))
    except ValueError:
        pass
    raise ValueError(f"period {text!r} is not a day (2025-06-15), month (2025-06), quarter (2025-Q2) or year (2025)")


def current(kind: PeriodKind, at: dt.datetime) -> ReportPeriod:
    """The period of `kind` that contains `at` (local time)."""
    local = at.astimezone(VN).date()
    if kind == "day":
        return ReportPeriod("day", local)
    if kind == "month":
        return ReportPeriod("month", local.replace(day=1))
    if kind == "quarter":
        return ReportPeriod("quarter", dt.date(local.year, (local.month - 1) // 3 * 3 + 1, 1))
    return ReportPeriod("year", dt.date(local.year, 1, 1))


def previous(kind: PeriodKind, at: dt.datetime) -> ReportPeriod:
    """The period of `kind` just before the one containing `at`."""
    return current(kind, at).previous()
