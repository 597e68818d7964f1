"""Vietnamese working days and SLA deadlines, counted in office hours from a versioned holiday table.

The table (ioc/data/working-calendar.yaml) lists, per year, the civil-service days off and the rest days
worked in return: Vietnam swaps working days every year by notice, so the calendar is data, not rules.
A working day (WD) is one office day (07:30–11:30 and 13:00–17:00 by default): 0.5 WD is half of its
office hours. The clock starts at the next office opening and pauses while a case waits for the citizen
("chờ bổ sung"), as Decision 766 scores on-time handling. Outside the years listed the calendar falls
back to weekly rest days only; `coverage(today)` says so ahead of time (the operator's Calendar condition
and the dashboards' banner warn from `COVERAGE_WARNING_DAYS` before the last year ends). `load_calendar`
refuses an invalid table with `CalendarError`, whose message names every bad field by its path.

Every datetime in and out is timezone-aware; results are in the calendar's zone (Asia/Ho_Chi_Minh).
The reference model's SLAs (ioc.reference) give the working days; this module turns them into instants.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import importlib.resources
import math
import re
import zoneinfo
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import pydantic

from ioc.yamlfiles import YamlFileError, load_yaml

__all__ = [
    "COVERAGE_WARNING_DAYS",
    "CalendarDay",
    "CalendarError",
    "CalendarSpec",
    "CalendarYear",
    "Coverage",
    "OfficePeriod",
    "Weekday",
    "WorkingCalendar",
    "default_calendar",
    "load_calendar",
    "parse_calendar",
]

_ONE_DAY: Final = dt.timedelta(days=1)
_UTC: Final = dt.UTC


class Weekday(enum.StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def number(self) -> int:
        """As `date.weekday()` counts: Monday is 0."""
        return list(Weekday).index(self)


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


class _FieldError(ValueError):
    """A cross-field error that knows its path below the model that raised it."""

    def __init__(self, loc: str, message: str) -> None:
        super().__init__(f"{loc}: {message}")


_CLOCK: Final = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _clock(value: object) -> object:
    # YAML 1.1 reads an unquoted 07:30 as the integer 450, which pydantic would take as 450 seconds.
    if isinstance(value, dt.time):
        return value
    if not isinstance(value, str) or not _CLOCK.match(value):
        raise ValueError(f'{value!r} is not a quoted 24-hour time like "07:30"')
    return value


Clock = Annotated[dt.time, pydantic.BeforeValidator(_clock)]
Text = Annotated[str, pydantic.Field(min_length=1, max_length=300)]


class OfficePeriod(_Model):
    """One block of office hours on a working day, in the calendar's local time."""

    start: Clock
    end: Clock

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> OfficePeriod:
        if self.end <= self.start:
            raise _FieldError("end", f"{self.end:%H:%M} is not after start {self.start:%H:%M}")
        return self


class CalendarDay(_Model):
    """A day off or a worked rest day; `until` (inclusive) makes it a range, as notices write Tết."""

    date: dt.date
    until: dt.date | None = None
    name: Text = pydantic.Field(description="Vietnamese name, as the notice gives it.")
    source: Text = pydantic.Field(description="The statute, notice or report the entry comes from.")
    confirmed: bool = pydantic.Field(
        default=True, description="False when not checked against the notice or a press report of it."
    )
    note: str = ""

    @pydantic.model_validator(mode="after")
    def _range(self) -> CalendarDay:
        if self.until is not None and self.until < self.date:
            raise _FieldError("until", f"{self.until} is before date {self.date}")
        return self

    def dates(self) -> list[dt.date]:
        last = self.until or self.date
        return [self.date + dt.timedelta(days=i) for i in range((last - self.date).days + 1)]


class CalendarYear(_Model):
    year: Annotated[int, pydantic.Field(ge=1990, le=2200)]
    days_off: list[CalendarDay]
    worked_days: list[CalendarDay] = []
    note: str = ""


class CalendarSpec(_Model):
    """The whole table; dates are checked against their year, the rest days and each other on load."""

    version: Annotated[str, pydantic.Field(min_length=1, max_length=32)]
    timezone: str
    weekly_rest_days: list[Weekday]
    office_hours: list[OfficePeriod] = pydantic.Field(min_length=1)
    years: list[CalendarYear] = pydantic.Field(min_length=1)

    @pydantic.field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as 'Asia/Ho_Chi_Minh'") from None
        return value

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> CalendarSpec:
        rest = self.weekly_rest_days
        for i, day in enumerate(rest):
            if day in rest[:i]:
                raise _FieldError(f"weekly_rest_days.{i}", f"{day.value} is listed twice")
        if len(set(rest)) == len(Weekday):
            raise _FieldError("weekly_rest_days", "every day of the week is a rest day")
        for i, period in enumerate(self.office_hours[1:], start=1):
            before = self.office_hours[i - 1]
            if period.start < before.end:
                raise _FieldError(
                    f"office_hours.{i}.start",
                    f"{period.start:%H:%M} is before the previous period ends ({before.end:%H:%M}): "
                    "list periods in order, without overlap",
                )
        for i, year in enumerate(self.years):
            if i and year.year <= self.years[i - 1].year:
                raise _FieldError(
                    f"years.{i}.year",
                    f"{year.year} follows {self.years[i - 1].year}: list each year once, in ascending order",
                )
            self._check_year(i, year, frozenset(d.number for d in rest))
        return self

    def _check_year(self, i: int, year: CalendarYear, rest: frozenset[int]) -> None:
        off: dict[dt.date, str] = {}
        for j, entry in enumerate(year.days_off):
            for day in entry.dates():
                here = f"years.{i}.days_off.{j}"
                if day.year != year.year:
                    raise _FieldError(f"{here}.{'until' if entry.until else 'date'}", f"{day} is not in {year.year}")
                if day in off:
                    raise _FieldError(f"{here}.date", f"{day} is already listed at {off[day]}")
                off[day] = here
        worked: dict[dt.date, str] = {}
        for j, entry in enumerate(year.worked_days):
            here = f"years.{i}.worked_days.{j}"
            for day in entry.dates():
                if day.year != year.year:
                    raise _FieldError(f"{here}.{'until' if entry.until else 'date'}", f"{day} is not in {year.year}")
                if day.weekday() not in rest:
                    rest_names = ", ".join(w.value for w in Weekday if w.number in rest)
                    raise _FieldError(
                        f"{here}.date",
                        f"{day} is a {list(Weekday)[day.weekday()].value}, not a weekly rest day ({rest_names}): "
                        "only a rest day can be worked in return for a day off",
                    )
                if day in off:
                    raise _FieldError(f"{here}.date", f"{day} is also a day off at {off[day]}: it cannot be both")
                if day in worked:
                    raise _FieldError(f"{here}.date", f"{day} is already listed at {worked[day]}")
                worked[day] = here


class CalendarError(ValueError):
    """An invalid calendar; `errors` lists (field path, message) pairs, and the message names them."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {loc}: {msg}" for loc, msg in errors)
        super().__init__(f"invalid working calendar {source}:\n{lines}")


def parse_calendar(data: Any, source: str = "<data>") -> WorkingCalendar:
    """Validate already-parsed data (a dict from YAML) and build the calendar."""
    try:
        spec = CalendarSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        errors: list[tuple[str, str]] = []
        for err in exc.errors(include_url=False):
            message = str(err["msg"]).removeprefix("Value error, ")
            loc = ".".join(str(p) for p in err["loc"]) or "(root)"
            # Cross-field errors carry their precise path below the model that raised them.
            if isinstance(err.get("ctx", {}).get("error"), _FieldError):
                inner, message = message.split(": ", 1)
                loc = inner if loc == "(root)" else f"{loc}.{inner}"
            errors.append((loc, message))
        raise CalendarError(source, errors) from None
    return WorkingCalendar(spec)


def load_calendar(path: str | Path) -> WorkingCalendar:
    """Load and validate a calendar from a YAML file."""
    try:
        data = load_yaml(Path(path))
    except YamlFileError as exc:
        raise CalendarError(exc.source, [("(file)", exc.message)]) from None
    return parse_calendar(data, str(path))


@functools.cache
def default_calendar() -> WorkingCalendar:
    """The calendar that ships with the platform (ioc/data/working-calendar.yaml)."""
    text = importlib.resources.files("ioc.data").joinpath("working-calendar.yaml").read_text(encoding="utf-8")
    return parse_calendar(load_yaml(text, "ioc/data/working-calendar.yaml"), "ioc/data/working-calendar.yaml")


COVERAGE_WARNING_DAYS: Final = 92
"""Days before the table's last year ends from which its users are warned (1 October): the ministry's notice of
the next year's days off and swapped days comes in the autumn, and deadlines past the table's end would skip
weekends only, holidays counted as working days."""


@dataclasses.dataclass(frozen=True, slots=True)
class Coverage:
    """Whether the table covers a day's year, and for how long it still will: for a warning before it runs out."""

    state: Literal["covered", "ending-soon", "not-covered"]
    year: int
    """The year asked about (the local year of "today")."""
    first_year: int
    last_year: int
    days_left: int
    """Days from "today" to the end of `last_year` (negative once past it)."""

    @property
    def ok(self) -> bool:
        return self.state == "covered"


@dataclasses.dataclass(frozen=True, slots=True)
class _Interval:
    start: dt.datetime
    end: dt.datetime


class WorkingCalendar:
    """Working days and office time for one calendar table; every method is pure."""

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self.timezone = zoneinfo.ZoneInfo(spec.timezone)
        self._rest = frozenset(d.number for d in spec.weekly_rest_days)
        self._periods = tuple((p.start, p.end) for p in spec.office_hours)
        self.day_length: dt.timedelta = sum(
            (dt.datetime.combine(dt.date.min, e) - dt.datetime.combine(dt.date.min, s) for s, e in self._periods),
            dt.timedelta(),
        )
        self._years = frozenset(y.year for y in spec.years)
        self._off = {day: entry for y in spec.years for entry in y.days_off for day in entry.dates()}
        self._worked = {day: entry for y in spec.years for entry in y.worked_days for day in entry.dates()}

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(sorted(self._years))

    def covers(self, year: int) -> bool:
        """Whether the table lists `year`; outside it only weekly rest days are known (warn the user)."""
        return year in self._years

    def coverage(self, today: dt.date, warn_days: int = COVERAGE_WARNING_DAYS) -> Coverage:
        """How `today` (a date, or an aware datetime read in the calendar's zone) stands against the table's years.

        "not-covered" when the table lacks today's year; "ending-soon" within `warn_days` of the end of its last
        year; "covered" otherwise.
        """
        day = self._date(today, "today")
        years = self.years
        days_left = (dt.date(years[-1], 12, 31) - day).days
        if day.year not in self._years:
            state: Literal["covered", "ending-soon", "not-covered"] = "not-covered"
        elif days_left < warn_days:
            state = "ending-soon"
        else:
            state = "covered"
        return Coverage(state, day.year, years[0], years[-1], days_left)

    def day_off(self, day: dt.date) -> CalendarDay | None:
        """The table's entry that makes `day` a day off (a holiday or a swapped day), if any."""
        return self._off.get(self._date(day, "day"))

    def is_working_day(self, day: dt.date) -> bool:
        """Whether `day` is a working day. An aware datetime is read as its local date; a naive one is refused."""
        day = self._date(day, "day")
        if day in self._worked:
            return True
        if day in self._off:
            return False
        return day.weekday() not in self._rest

    def add_hours(self, start: dt.datetime, hours: float) -> dt.datetime:
        """Clock hours after `start` (for alarms, which run around the clock), in the calendar's zone."""
        moment = self._local(start, "start")
        _check_amount(hours, "hours")
        # In UTC so that elapsed time stays exact even in a zone with daylight saving.
        return (moment.astimezone(_UTC) + dt.timedelta(hours=hours)).astimezone(self.timezone)

    def add_working_days(self, start: dt.datetime, days: float) -> dt.datetime:
        """The instant `days` working days of office time after `start`.

        A start outside office hours counts from the next opening. The result is the earliest instant with
        that much office time behind it: 1 WD from Monday 07:30 is Monday 17:00, 0.5 WD is 11:30.
        """
        moment = self._local(start, "start")
        _check_amount(days, "days")
        return self._advance(moment, self._office(days))

    def working_days_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Office time from `start` to `end` in working days; negative when `end` is earlier."""
        first, last = self._local(start, "start"), self._local(end, "end")
        if last < first:
            return -self._office_time(last, first) / self.day_length
        return self._office_time(first, last) / self.day_length

    def deadline(
        self,
        start: dt.datetime,
        working_days: float,
        paused: Sequence[tuple[dt.datetime, dt.datetime]] = (),
    ) -> dt.datetime:
        """When `working_days` of office time have run from `start`, not counting time in `paused`.

        `paused` holds (from, to) intervals in which the clock stops, such as waiting for the citizen to
        supplement a dossier ("chờ bổ sung"); they may overlap or lie partly before `start`.
        """
        cursor = self._local(start, "start")
        _check_amount(working_days, "working_days")
        remaining = self._office(working_days)
        for pause in self._pauses(paused, cursor):
            if pause.start > cursor:
                available = self._office_time(cursor, pause.start)
                if remaining <= available:
                    break
                remaining -= available
            cursor = max(cursor, pause.end)
        return self._advance(cursor, remaining)

    def _date(self, day: dt.date, name: str) -> dt.date:
        if isinstance(day, dt.datetime):
            return self._local(day, name).date()
        return day

    def _local(self, moment: dt.datetime, name: str) -> dt.datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(
                f"{name} {moment.isoformat()} is naive: pass a timezone-aware datetime "
                f"(for example with tzinfo=ZoneInfo({self.spec.timezone!r}))"
            )
        return moment.astimezone(self.timezone)

    def _office(self, days: float) -> dt.timedelta:
        # timedelta rounds to whole microseconds, so sums of office time stay exact.
        return dt.timedelta(seconds=days * self.day_length.total_seconds())

    def _open_periods(self, day: dt.date) -> list[_Interval]:
        if not self.is_working_day(day):
            return []
        return [
            _Interval(
                dt.datetime.combine(day, s, tzinfo=self.timezone), dt.datetime.combine(day, e, tzinfo=self.timezone)
            )
            for s, e in self._periods
        ]

    def _advance(self, start: dt.datetime, office: dt.timedelta) -> dt.datetime:
        remaining = office
        day = start.date()
        while True:
            for period in self._open_periods(day):
                if period.end <= start:
                    continue
                begin = max(period.start, start)
                available = period.end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += _ONE_DAY

    def _office_time(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        total = dt.timedelta()
        day = start.date()
        while day <= end.date():
            for period in self._open_periods(day):
                overlap = min(period.end, end) - max(period.start, start)
                if overlap > dt.timedelta():
                    total += overlap
            day += _ONE_DAY
        return total

    def _pauses(self, paused: Sequence[tuple[dt.datetime, dt.datetime]], start: dt.datetime) -> list[_Interval]:
        intervals: list[_Interval] = []
        for i, (begin, end) in enumerate(paused):
            first, last = self._local(begin, f"paused[{i}] start"), self._local(end, f"paused[{i}] end")
            if last < first:
                raise ValueError(f"paused[{i}] ends ({last.isoformat()}) before it starts ({first.isoformat()})")
            if last > start:
                intervals.append(_Interval(max(first, start), last))
        intervals.sort(key=lambda p: p.start)
        merged: list[_Interval] = []
        for interval in intervals:
            if merged and interval.start <= merged[-1].end:
                merged[-1] = _Interval(merged[-1].start, max(merged[-1].end, interval.end))
            else:
                merged.append(interval)
        return merged


def _check_amount(value: float, name: str) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} {value!r} is invalid: pass a finite amount, 0 or more")
