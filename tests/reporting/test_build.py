"""Building and exporting upward reports: periods, the 766 scorecard of a subtree, incident statistics, formats."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from openpyxl import load_workbook

from ioc import units, upward
from ioc.decision766 import default_scheme
from ioc.events import DossierStatus
from ioc.scope import site_scope
from streams.reporting import ReportInputs, build_report, export, facts, parse_period
from streams.reporting.periods import ReportPeriod, current, previous
from streams.reporting.pusher import classify
from tests.reporting.samples import VN, sample_report, snapshot

GENERATED = dt.datetime(2025, 7, 2, 8, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "kind", "first", "end", "label"),
    [
        ("2025-06-15", "day", dt.date(2025, 6, 15), dt.date(2025, 6, 16), "2025-06-15"),
        ("2025-06", "month", dt.date(2025, 6, 1), dt.date(2025, 7, 1), "2025-06"),
        ("2025-12", "month", dt.date(2025, 12, 1), dt.date(2026, 1, 1), "2025-12"),
        ("2025-Q4", "quarter", dt.date(2025, 10, 1), dt.date(2026, 1, 1), "2025-Q4"),
        ("2025", "year", dt.date(2025, 1, 1), dt.date(2026, 1, 1), "2025"),
    ],
)
def test_periods_parse_and_name_themselves(text: str, kind: str, first: dt.date, end: dt.date, label: str) -> None:
    period = parse_period(text)
    assert (period.kind, period.first_day, period.end_day, period.label) == (kind, first, end, label)
    assert period.start.utcoffset() == dt.timedelta(hours=7)


@pytest.mark.parametrize("text", ["2025-13", "2025-Q5", "25-06", "june", "2025-02-30", ""])
def test_bad_periods_say_what_is_valid(text: str) -> None:
    with pytest.raises(ValueError, match="month \\(2025-06\\)"):
        parse_period(text)


def test_current_and_previous_periods_follow_vietnamese_time() -> None:
    # 31 May 2025, 18:00 UTC is already 1 June in Vietnam.
    at = dt.datetime(2025, 5, 31, 18, tzinfo=dt.UTC)
    assert current("month", at) == ReportPeriod("month", dt.date(2025, 6, 1))
    assert previous("month", at) == ReportPeriod("month", dt.date(2025, 5, 1))
    assert previous("quarter", at) == ReportPeriod("quarter", dt.date(2025, 1, 1))
    assert current("day", at).previous() == ReportPeriod("day", dt.date(2025, 5, 31))


def _inputs() -> ReportInputs:
    june = dt.datetime(2025, 6, 3, 9, tzinfo=VN)
    dossiers = [
        snapshot("HS-A", 1, received=june),
        snapshot("HS-A", 2, status=DossierStatus.PROCESSED, received=june, digitised=True, result_digital=True),
        snapshot("HS-B", 1, unit="25951", received=june),  # another ward of Dĩ An
        snapshot("HS-C", 1, unit="25747", received=june),  # Thủ Dầu Một: outside Dĩ An
    ]
    opened = dt.datetime(2025, 6, 5, 1, tzinfo=dt.UTC)
    incidents = [
        {
            "incident_id": "i1",
            "rule": "flood-level",
            "module": "environment",
            "unit": "25957",
            "severity": "high",
            "state": "closed",
            "opened_at": opened,
            "sla_due_at": opened + dt.timedelta(hours=4),
            "escalation_level": 0,
        },
        {
            "incident_id": "i2",
            "rule": "citizen-report",
            "module": "citizen_reports",
            "unit": "25951",
            "severity": "medium",
            "state": "open",
            "opened_at": opened,
            "sla_due_at": opened + dt.timedelta(days=1),
            "escalation_level": 1,
        },
    ]
    reports = [{"report_id": "r1", "category": "flooding", "source": "open311", "unit": "25951", "incident_id": "i2"}]
    return ReportInputs(
        dossiers=dossiers,
        incidents=incidents,
        resolved_at={"i1": opened + dt.timedelta(hours=3)},
        reports=reports,
        report_states={"i2": "open"},
    )


def test_a_district_report_scores_its_subtree_and_counts_its_incidents() -> None:
    report = build_report(
        site_scope("724"), parse_period("2025-06"), _inputs(), default_scheme(), generated_at=GENERATED
    )
    assert report.report_id == "724:month:2025-06"
    assert (report.unit, report.level, report.parent_unit) == ("724", "district", "74")
    assert report.score.dossiers == 2  # HS-C is Thủ Dầu Một's
    assert report.score.max_points == 100.0
    assert sum(g.max_points for g in report.score.groups) == 100.0
    stats = report.incidents
    assert (stats.opened, stats.resolved, stats.still_open, stats.overdue, stats.escalated) == (2, 1, 1, 1, 1)
    assert stats.mean_hours_to_resolve == 3.0
    assert stats.by_module == {"citizen_reports": 1, "environment": 1}
    assert report.citizen_reports.by_category == {"flooding": 1}
    assert report.citizen_reports.by_state == {"open": 1}
    children = {c.unit: c for c in report.children}
    assert set(children) == {u.code for u in units.load_tree("2024").children("724")}
    assert children["25957"].dossiers == 1 and children["25957"].incidents_opened == 1
    assert children["25951"].citizen_reports == 1


def test_a_report_rebuilt_from_the_same_rows_has_the_same_revision() -> None:
    period = parse_period("2025-06")
    first = build_report(site_scope("724"), period, _inputs(), default_scheme(), generated_at=GENERATED)
    again = build_report(
        site_scope("724"), period, _inputs(), default_scheme(), generated_at=GENERATED + dt.timedelta(hours=1)
    )
    assert upward.revision_of(first) == upward.revision_of(again)


def test_generated_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_report(
            site_scope("724"),
            parse_period("2025-06"),
            _inputs(),
            default_scheme(),
            generated_at=dt.datetime(2025, 7, 1),
        )


def test_json_export_is_the_report_itself() -> None:
    report = sample_report()
    decoded = json.loads(export(report, "json"))
    assert decoded["report_id"] == "724:month:2025-06"
    assert decoded["schema"] == "ioc.upward-report.v1"


def test_csv_export_is_one_tidy_table_with_both_languages() -> None:
    text = export(sample_report(), "csv").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    by_key = {(r["section"], r["key"]): r for r in rows}
    assert by_key[("score766", "total")]["value"] == "71.5"
    indicator = by_key[("score766_indicator", "2.1")]
    assert (indicator["numerator"], indicator["denominator"], indicator["rate"]) == ("9", "12", "0.75")
    assert by_key[("incidents_by_module", "environment")]["label_vi"] == "Môi trường"
    assert by_key[("citizen_reports_by_category", "flooding")]["label_en"] == "Flooding"
    assert by_key[("child_score766", "25957")]["label_vi"] == "phường Đông Hòa"
    assert {r["report_id"] for r in rows} == {"724:month:2025-06"}


def test_xlsx_export_has_a_sheet_per_part(tmp_path) -> None:
    path = tmp_path / "report.xlsx"
    path.write_bytes(export(sample_report(), "xlsx"))
    book = load_workbook(path)
    assert book.sheetnames == [
        "Tong hop - Summary",
        "Chi so 766 - Indicators",
        "Su co - Incidents",
        "Phan anh - Reports",
        "Don vi con - Children",
    ]
    indicators = list(book["Chi so 766 - Indicators"].iter_rows(values_only=True))
    assert indicators[0][1] == "Mã / Key"
    assert ("score766_indicator", "2.1") in {(r[0], r[1]) for r in indicators}
    assert len(facts(sample_report())) > 10


def test_push_statuses_are_classified() -> None:
    assert classify(201) == "delivered"
    assert classify(200) == "duplicate"
    assert [classify(s) for s in (500, 502, 503, 408, 429)] == ["retry"] * 5
    assert [classify(s) for s in (400, 401, 403, 413, 422)] == ["refused"] * 5
