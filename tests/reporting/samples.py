"""Sample upward reports and dossier snapshots for the reporting, gateway and CLI tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ioc import upward
from ioc.events import DossierChannel, DossierStatus, ServiceRecord

VN = dt.timezone(dt.timedelta(hours=7))


def sample_report(unit: str = "724", period: str = "2025-06", **changes: Any) -> upward.UpwardReport:
    """A small, valid report of `unit` for a month."""
    year, month = (int(p) for p in period.split("-"))
    first = dt.date(year, month, 1)
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    fields: dict[str, Any] = {
        "report_id": upward.make_report_id(unit, "month", period),
        "unit": unit,
        "unit_name": "thành phố Dĩ An",
        "level": "district",
        "edition": "2024",
        "parent_unit": "74",
        "period_kind": "month",
        "period_label": period,
        "period_start": first,
        "period_end": following,
        "generated_at": dt.datetime(2025, 7, 1, 8, tzinfo=dt.UTC),
        "score": upward.Score766(
            scheme="qd766-2022",
            points=71.5,
            max_points=100.0,
            dossiers=12,
            groups=[
                upward.GroupFigure(code="2", label_vi="Tiến độ", label_en="Progress", points=15.0, max_points=20.0)
            ],
            indicators=[
                upward.IndicatorFigure(
                    code="2.1",
                    group="2",
                    label_vi="Hồ sơ đúng hạn",
                    label_en="On time",
                    points=15.0,
                    max_points=20.0,
                    rate=0.75,
                    numerator=9,
                    denominator=12,
                    collected=True,
                    no_data=False,
                    lost_count=3,
                    lost_dossiers=["HS-1", "HS-2", "HS-3"],
                )
            ],
        ),
        "incidents": upward.IncidentStats(
            opened=3,
            resolved=2,
            still_open=1,
            overdue=1,
            escalated=0,
            mean_hours_to_resolve=5.5,
            by_module={"environment": 2, "citizen_reports": 1},
            by_severity={"high": 1, "medium": 2},
            by_state={"closed": 2, "open": 1},
        ),
        "citizen_reports": upward.CitizenReportStats(
            received=1, resolved=0, by_category={"flooding": 1}, by_state={"open": 1}, by_source={"open311": 1}
        ),
        "children": [
            upward.ChildFigure(
                unit="25957", name="phường Đông Hòa", points=71.5, dossiers=12, incidents_opened=3, citizen_reports=1
            )
        ],
    }
    fields.update(changes)
    return upward.UpwardReport(**fields)


def snapshot(
    dossier_id: str,
    version: int,
    *,
    unit: str = "25957",
    status: DossierStatus = DossierStatus.RECEIVED,
    received: dt.datetime | None = None,
    due_days: int = 5,
    **extra: Any,
) -> ServiceRecord:
    """One status snapshot of a dossier (finished ones get finished_at = occurred_at)."""
    received = received or dt.datetime(2025, 6, 2, 9, tzinfo=VN)
    occurred = extra.pop("occurred_at", received + dt.timedelta(hours=version))
    finished = occurred if status in (DossierStatus.PROCESSED, DossierStatus.RETURNED) else None
    return ServiceRecord(
        dossier_id=dossier_id,
        status_version=version,
        unit=unit,
        procedure_code="1.001612",
        status=status,
        channel=DossierChannel.ONLINE,
        received_at=received,
        due_at=received + dt.timedelta(days=due_days),
        occurred_at=occurred,
        finished_at=extra.pop("finished_at", finished),
        **extra,
    )
