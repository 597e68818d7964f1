"""Building a site's upward report for a period from what the warehouse holds. Pure: no I/O, no clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from ioc import units, upward
from ioc.decision766 import Scheme, display_points
from ioc.events import ServiceRecord
from ioc.scope import Scope
from streams.reporting.periods import ReportPeriod
from streams.scoring766 import Scorecard, score

__all__ = ["CLOSED_STATES", "ReportInputs", "build_report", "child_scopes"]

CLOSED_STATES: Final = frozenset({"resolved", "closed"})


@dataclasses.dataclass(frozen=True)
class ReportInputs:
    """What a report is built from (rows as the warehouse returns them)."""

    dossiers: Sequence[ServiceRecord]
    incidents: Sequence[Mapping[str, Any]]
    resolved_at: Mapping[str, dt.datetime]
    reports: Sequence[Mapping[str, Any]]
    report_states: Mapping[str, str]


def child_scopes(scope: Scope) -> list[tuple[units.Unit, frozenset[str]]]:
    """The site's child units (in its edition) and the 2024 codes each covers."""
    tree = units.load_tree("2025" if scope.edition == "2025" else "2024")
    found = []
    for child in tree.children(scope.unit):
        codes = tree.subtree(child.code) if scope.edition == "2024" else _legacy(tree, child.code)
        found.append((child, frozenset(codes)))
    return found


def _legacy(tree: units.UnitTree, code: str) -> set[str]:
    codes: set[str] = set()
    for unit in tree.subtree(code):
        codes |= units.legacy_codes(unit)
    return codes


def _score(
    dossiers: Sequence[ServiceRecord],
    *,
    scheme: Scheme,
    codes: Collection[str],
    unit: str,
    period: ReportPeriod,
    as_of: dt.datetime,
) -> Scorecard:
    return score(
        dossiers,
        scheme,
        unit_codes=codes or {unit},
        period_start=period.start,
        period_end=period.end,
        as_of=max(as_of, period.start),
        unit=unit,
    )


def _score_figures(card: Scorecard, scheme: Scheme) -> upward.Score766:
    groups = []
    for group in card.groups:
        spec = scheme.group(group.code)
        groups.append(
            upward.GroupFigure(
                code=group.code,
                label_vi=spec.label_vi,
                label_en=spec.label_en,
                points=float(group.points_display),
                max_points=float(display_points(group.max_points)),
            )
        )
    indicators = []
    for indicator in card.indicators:
        spec_i = scheme.indicator(indicator.code)
        indicators.append(
            upward.IndicatorFigure(
                code=indicator.code,
                group=indicator.group,
                label_vi=spec_i.label_vi,
                label_en=spec_i.label_en,
                points=float(indicator.points_display),
                max_points=float(display_points(indicator.max_points)),
                rate=float(round(indicator.rate, 4)),
                numerator=indicator.numerator,
                denominator=indicator.denominator,
                collected=indicator.collected,
                no_data=indicator.no_data,
                measured=indicator.measured,
                lost_count=len(indicator.lost_dossiers),
                lost_dossiers=list(indicator.lost_dossiers[: upward.LOST_SAMPLE]),
            )
        )
    return upward.Score766(
        scheme=card.scheme_id,
        points=_rebased(card),
        max_points=float(display_points(card.max_points)),
        dossiers=card.dossiers,
        groups=groups,
        indicators=indicators,
        policy=card.policy_id,
        coverage=float(card.coverage_display),
    )


def _rebased(card: Scorecard) -> float:
    """The score out of 100 on the points measured; 0 with coverage 0 (the report's `coverage` says which)."""
    return 0.0 if card.score_display is None else float(card.score_display)


def _counts(values: Sequence[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def _incident_stats(
    incidents: Sequence[Mapping[str, Any]], resolved_at: Mapping[str, dt.datetime], as_of: dt.datetime
) -> upward.IncidentStats:
    closed = [i for i in incidents if str(i["state"]) in CLOSED_STATES]
    active = [i for i in incidents if str(i["state"]) not in CLOSED_STATES]
    overdue = [i for i in active if i.get("sla_due_at") is not None and i["sla_due_at"] < as_of]
    hours = [
        (resolved_at[str(i["incident_id"])] - i["opened_at"]).total_seconds() / 3600
        for i in closed
        if str(i["incident_id"]) in resolved_at
    ]
    return upward.IncidentStats(
        opened=len(incidents),
        resolved=len(closed),
        still_open=len(active),
        overdue=len(overdue),
        escalated=sum(int(i.get("escalation_level") or 0) > 0 for i in incidents),
        mean_hours_to_resolve=round(sum(hours) / len(hours), 2) if hours else None,
        by_module=_counts([str(i["module"]) for i in incidents]),
        by_severity=_counts([str(i["severity"]) for i in incidents]),
        by_state=_counts([str(i["state"]) for i in incidents]),
    )


def _report_stats(reports: Sequence[Mapping[str, Any]], states: Mapping[str, str]) -> upward.CitizenReportStats:
    state_of = [states.get(str(r["incident_id"]), "open") for r in reports]
    return upward.CitizenReportStats(
        received=len(reports),
        resolved=sum(s in CLOSED_STATES for s in state_of),
        by_category=_counts([str(r["category"]) for r in reports]),
        by_state=_counts(state_of),
        by_source=_counts([str(r["source"]) for r in reports]),
    )


def build_report(
    scope: Scope,
    period: ReportPeriod,
    inputs: ReportInputs,
    scheme: Scheme,
    *,
    generated_at: dt.datetime,
) -> upward.UpwardReport:
    """The site's report for `period`, as of `generated_at` (which must be timezone-aware).

    The Decision 766 scorecard is scored here, from the period's dossier snapshots, with the same scorer the stream
    workers use (streams.scoring766) over the site's whole subtree, and for each child unit for the parent's ranking.
    Incident statistics cover incidents opened in the period about places in the subtree; citizen-report statistics
    cover reports submitted in it, each in its incident's current state. `streams.reporting.source` gathers the inputs;
    the result is an `ioc.upward.UpwardReport`.
    """
    if generated_at.utcoffset() is None:
        raise ValueError(f"generated_at must be timezone-aware, got {generated_at.isoformat()}")
    tree = units.load_tree("2025" if scope.edition == "2025" else "2024")
    site = tree.get(scope.unit)
    card = _score(inputs.dossiers, scheme=scheme, codes=scope.units, unit=scope.unit, period=period, as_of=generated_at)
    children = []
    for child, codes in child_scopes(scope):
        child_card = _score(
            inputs.dossiers, scheme=scheme, codes=codes, unit=child.code, period=period, as_of=generated_at
        )
        children.append(
            upward.ChildFigure(
                unit=child.code,
                name=child.full_name,
                points=_rebased(child_card),
                coverage=float(child_card.coverage_display),
                dossiers=child_card.dossiers,
                incidents_opened=sum(str(i["unit"]) in codes for i in inputs.incidents),
                citizen_reports=sum(str(r["unit"]) in codes for r in inputs.reports),
            )
        )
    return upward.UpwardReport(
        report_id=upward.make_report_id(scope.unit, period.kind, period.label),
        unit=scope.unit,
        unit_name=site.full_name,
        level=str(site.level),
        edition="2025" if scope.edition == "2025" else "2024",
        parent_unit=site.parent,
        period_kind=period.kind,
        period_label=period.label,
        period_start=period.first_day,
        period_end=period.end_day,
        generated_at=generated_at.astimezone(dt.UTC).replace(microsecond=0),
        score=_score_figures(card, scheme),
        incidents=_incident_stats(inputs.incidents, inputs.resolved_at, generated_at),
        citizen_reports=_report_stats(inputs.reports, inputs.report_states),
        children=children,
    )
