"""Upward reports carry an honest 766 score: re-based on the points measured, with its coverage and policy."""

from __future__ import annotations

import dataclasses

from ioc.decision766 import default_scheme
from ioc.scope import site_scope
from streams.reporting import build_report, facts, parse_period
from streams.reporting.export import score_text
from streams.scoring766 import MEASURED_ONLY
from tests.reporting.test_build import GENERATED, _inputs


def test_a_child_without_dossiers_reports_no_score_and_ranks_below_one_with_data() -> None:
    report = build_report(
        site_scope("724"), parse_period("2025-06"), _inputs(), default_scheme(), generated_at=GENERATED
    )
    assert report.score.policy == MEASURED_ONLY.id
    # Two dossiers, HS-A processed: every collected indicator but 3.6 (no fee) has a denominator.
    assert report.score.coverage == 48.0
    assert 0 < report.score.points <= 100
    assert {i.code for i in report.score.indicators if not i.measured} >= {"1.1", "3.6", "5.2", "5.3"}
    children = {c.unit: c for c in report.children}
    quiet = [c for c in report.children if c.dossiers == 0]
    assert quiet and all((c.coverage, c.points) == (0.0, 0.0) for c in quiet)
    assert children["25957"].coverage and children["25957"].points > 0
    # Exported, "no data" is an empty value, not a zero, and the total states its coverage.
    by_key = {(f.section, f.key): f for f in facts(report)}
    assert all(by_key[("child_score766", c.unit)].value is None for c in quiet)
    assert by_key[("score766", "coverage")].value == 48.0
    assert score_text(report.score) == f"{report.score.points} / 100 trên 48 điểm đo được / on 48 points measured"


def test_a_report_with_nothing_measured_says_so() -> None:
    inputs = dataclasses.replace(_inputs(), dossiers=[])
    report = build_report(site_scope("724"), parse_period("2025-06"), inputs, default_scheme(), generated_at=GENERATED)
    assert (report.score.points, report.score.coverage) == (0.0, 0.0)
    assert score_text(report.score) == "Chưa có dữ liệu / No data"
    assert {(f.section, f.key): f for f in facts(report)}[("score766", "total")].value is None
