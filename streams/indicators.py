"""Decision 766 scorecards for every unit of the tree and a period, from dossier snapshots. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from ioc.decision766 import Scheme
from ioc.events import ServiceRecord
from ioc.units import UnitTree
from streams.scoring766 import score
from streams.warehouse.rows import indicator_rows

__all__ = ["VN", "Period", "period_of", "record_from_row", "scorecards"]

VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")


class Period(msgspec.Struct, frozen=True):
    kind: str  # day | month
    first_day: dt.date

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.first_day, dt.time(), VN)

    @property
    def end(self) -> dt.datetime:
        if self.kind == "day":
            return dt.datetime.combine(self.first_day + dt.timedelta(days=1), dt.time(), VN)
        year, month = divmod(self.first_day.month, 12)
        return dt.datetime(self.first_day.year + year, month + 1, 1, tzinfo=VN)


def period_of(kind: str, at: dt.datetime) -> Period:
    local = at.astimezone(VN).date()
    return Period(kind, local if kind == "day" else local.replace(day=1))


def record_from_row(row: dict[str, Any]) -> ServiceRecord:
    """A `dossiers` row back into the ServiceRecord it was made from."""
    fields = {k: v for k, v in row.items() if k != "path"}
    fields["satisfaction"] = fields.get("satisfaction") or None
    for flag in (
        "fully_online",
        "requires_payment",
        "paid_online",
        "digitised",
        "result_digital",
        "synced_to_national_portal",
    ):
        fields[flag] = bool(fields[flag])
    return msgspec.convert(fields, ServiceRecord, strict=False)


def scorecards(
    records: Sequence[ServiceRecord],
    scheme: Scheme,
    tree: UnitTree,
    period: Period,
    *,
    as_of: dt.datetime,
    units: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Indicator rows for every unit (default: the whole tree) for one period.

    The dossiers agent calls this with the dossiers of a period (read back from the warehouse, the source of truth) and
    writes the rows it returns; a province's card covers its whole subtree. Periods are Vietnamese calendar days and
    months (Asia/Ho_Chi_Minh), as DVCQG reports them.
    """
    rows: list[dict[str, Any]] = []
    for unit in units if units is not None else (u.code for u in tree):
        card = score(
            records,
            scheme,
            unit_codes=tree.subtree(unit),
            period_start=period.start,
            period_end=period.end,
            as_of=max(as_of, period.start),
            unit=unit,
        )
        rows.extend(
            indicator_rows(
                card.to_rows(),
                unit=unit,
                path=tree.path(unit),
                period_kind=period.kind,
                period_start=period.first_day,
                scheme=scheme.id,
                computed_at=as_of,
            )
        )
    return rows
