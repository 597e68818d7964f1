"""Time windows of the history pages and the export of what a page shows (CSV, Parquet). Pure, no I/O.

A page asks for any date range (`day_window`: from one local day to another, checked); the data layer's
range queries take the `Window` as `start`/`end` parameters. An export is the rows and columns a table or
chart shows, masked as the page masks them, written as CSV (UTF-8 with a BOM, so spreadsheet programs read
Vietnamese) or Parquet (pyarrow); `SiteData.export` records each one in the audit log.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
import pyarrow.parquet as pq  # type: ignore[import-untyped]

__all__ = ["EXPORT_FORMATS", "LOCAL_TZ", "MAX_DAYS", "BadRange", "ExportFormat", "Window", "day_window", "export_bytes"]

LOCAL_TZ: Final = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
MAX_DAYS: Final = 366
"""The longest range a page reads at once: a year of hourly rows per station stays a few MB."""

ExportFormat = Literal["csv", "parquet"]
EXPORT_FORMATS: Final[Mapping[ExportFormat, str]] = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


class BadRange(ValueError):
    """A date range a page cannot show; `reason` names the rule ("reversed", "too_long", "future")."""

    def __init__(self, reason: str, message: str, *, days: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.days = days


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """A half-open time range [start, end), both timezone-aware."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise BadRange("naive", "a time window needs timezone-aware ends")
        if self.end <= self.start:
            raise BadRange(
                "reversed", f"the window ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})"
            )

    @classmethod
    def last(cls, now: dt.datetime, *, hours: float = 0.0, days: float = 0.0) -> Window:
        """The hours or days up to `now`."""
        return cls(now - dt.timedelta(hours=hours, days=days), now)

    @property
    def params(self) -> dict[str, Any]:
        """The window as a range query's `start` and `end` parameters."""
        return {"start": self.start, "end": self.end}


def day_window(first: dt.date, last: dt.date, *, today: dt.date | None = None) -> Window:
    """Local days `first` to `last`, both included; refused when reversed, longer than a year or in the future."""
    if last < first:
        raise BadRange("reversed", f"the range ends on {last:%d/%m/%Y}, before it starts on {first:%d/%m/%Y}")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise BadRange("too_long", f"{days} days is more than the {MAX_DAYS} a page shows at once", days=MAX_DAYS)
    if today is not None and first > today:
        raise BadRange("future", f"the range starts on {first:%d/%m/%Y}, after today ({today:%d/%m/%Y})")
    start = dt.datetime.combine(first, dt.time(), LOCAL_TZ)
    return Window(start, dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), LOCAL_TZ))


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    return value


def export_bytes(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], fmt: ExportFormat) -> bytes:
    """`rows` as a file of the given (field, header) columns, in order; times in UTC, lists joined."""
    fields = [field for field, _ in columns]
    headers = [header for _, header in columns]
    table = [[_cell(row.get(field)) for field in fields] for row in rows]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        for values in table:
            writer.writerow(["" if v is None else v.isoformat() if isinstance(v, dt.datetime) else v for v in values])
        return ("\ufeff" + out.getvalue()).encode("utf-8")
    arrays = {}
    for i, header in enumerate(headers):
        column = [values[i] for values in table]
        try:
            arrays[header] = pa.array(column)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds in one column: keep it as text
            arrays[header] = pa.array([None if v is None else str(v) for v in column], type=pa.string())
    buffer = io.BytesIO()
    pq.write_table(pa.table(arrays), buffer)
    return buffer.getvalue()
