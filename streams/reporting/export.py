"""Writing an upward report as CSV, XLSX or JSON (`ioc report export`), with Vietnamese and English labels."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Mapping
from typing import Final, Literal

import msgspec

from ioc import codecs
from ioc.reference import ReferenceModel, default_reference_model
from ioc.upward import Score766, UpwardReport

__all__ = ["FORMATS", "Fact", "Format", "export", "facts", "score_text"]

Format = Literal["csv", "xlsx", "json"]
FORMATS: Final[tuple[Format, ...]] = ("csv", "xlsx", "json")

_INCIDENT_FIGURES: Final[tuple[tuple[str, str, str], ...]] = (
    ("opened", "Sự cố phát sinh", "Incidents opened"),
    ("resolved", "Đã xử lý", "Resolved"),
    ("still_open", "Đang xử lý", "Still open"),
    ("overdue", "Quá hạn", "Overdue"),
    ("escalated", "Chuyển cấp trên", "Escalated"),
    ("mean_hours_to_resolve", "Thời gian xử lý trung bình (giờ)", "Mean hours to resolve"),
)
_STATE_LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "open": ("Mới", "Open"),
    "acknowledged": ("Đã xác nhận", "Acknowledged"),
    "dispatched": ("Đã giao xử lý", "Dispatched"),
    "resolved": ("Đã xử lý", "Resolved"),
    "closed": ("Đã đóng", "Closed"),
}
_SEVERITY_LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "low": ("Thấp", "Low"),
    "medium": ("Trung bình", "Medium"),
    "high": ("Cao", "High"),
    "critical": ("Khẩn cấp", "Critical"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Fact:
    """One figure of a report, tidy: which part it belongs to, what it is, and its value."""

    section: str
    key: str
    label_vi: str
    label_en: str
    value: float | int | None
    max_value: float | None = None
    numerator: int | None = None
    denominator: int | None = None
    rate: float | None = None


_COLUMNS: Final[tuple[str, ...]] = (
    "report_id",
    "unit",
    "period",
    "section",
    "key",
    "label_vi",
    "label_en",
    "value",
    "max_value",
    "numerator",
    "denominator",
    "rate",
)


def _by(section: str, counts: Mapping[str, int], labels: Mapping[str, tuple[str, str]]) -> list[Fact]:
    return [Fact(section, key, *labels.get(key, (key, key)), value) for key, value in counts.items()]


def facts(report: UpwardReport, model: ReferenceModel | None = None) -> list[Fact]:
    """Every figure of the report as a tidy list, in the order a reader expects."""
    model = model or default_reference_model()
    modules = {m.value: (info.label_vi, info.label_en) for m, info in model.modules.items()}
    categories = {code: (c.label_vi, c.label_en) for code, c in model.report_categories.items()}
    score = report.score
    found = [
        Fact(
            "score766",
            "total",
            "Tổng điểm QĐ 766",
            "Decision 766 total",
            None if score.coverage == 0 else score.points,  # nothing measured: no score, not 0
            score.max_points,
            score.dossiers,
        )
    ]
    if score.coverage is not None:
        found.append(
            Fact("score766", "coverage", "Số điểm đo được", "Points measured", score.coverage, score.max_points)
        )
    found += [Fact("score766_group", g.code, g.label_vi, g.label_en, g.points, g.max_points) for g in score.groups]
    found += [
        Fact(
            "score766_indicator",
            i.code,
            i.label_vi,
            i.label_en,
            i.points,
            i.max_points,
            i.numerator,
            i.denominator,
            i.rate,
        )
        for i in score.indicators
    ]
    incidents = report.incidents
    found += [Fact("incidents", key, vi, en, getattr(incidents, key)) for key, vi, en in _INCIDENT_FIGURES]
    found += _by("incidents_by_module", incidents.by_module, modules)
    found += _by("incidents_by_severity", incidents.by_severity, _SEVERITY_LABELS)
    found += _by("incidents_by_state", incidents.by_state, _STATE_LABELS)
    reports = report.citizen_reports
    found += [
        Fact("citizen_reports", "received", "Phản ánh tiếp nhận", "Reports received", reports.received),
        Fact("citizen_reports", "resolved", "Phản ánh đã xử lý", "Reports resolved", reports.resolved),
    ]
    found += _by("citizen_reports_by_category", reports.by_category, categories)
    found += _by("citizen_reports_by_state", reports.by_state, _STATE_LABELS)
    found += _by("citizen_reports_by_source", reports.by_source, {})
    for child in report.children:
        found += [
            Fact(
                "child_score766",
                child.unit,
                child.name,
                child.name,
                None if child.coverage == 0 else child.points,
                score.max_points,
                child.dossiers,
            ),
            Fact("child_incidents_opened", child.unit, child.name, child.name, child.incidents_opened),
            Fact("child_citizen_reports", child.unit, child.name, child.name, child.citizen_reports),
        ]
    return found


def score_text(score: Score766) -> str:
    """ "82.4 / 100 trên 54 điểm đo được / on 54 points measured", or that nothing was measured."""
    if score.coverage is None:  # a report made before the no-data policy
        return f"{score.points} / {score.max_points}"
    if score.coverage == 0:
        return "Chưa có dữ liệu / No data"
    measured = f"{score.coverage:g}"
    return f"{score.points} / {score.max_points:g} trên {measured} điểm đo được / on {measured} points measured"


def _rows(report: UpwardReport, found: Iterable[Fact]) -> list[list[object]]:
    return [
        [
            report.report_id,
            report.unit,
            report.period_label,
            f.section,
            f.key,
            f.label_vi,
            f.label_en,
            f.value,
            f.max_value,
            f.numerator,
            f.denominator,
            f.rate,
        ]
        for f in found
    ]


def _csv(report: UpwardReport, model: ReferenceModel | None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_COLUMNS)
    writer.writerows(_rows(report, facts(report, model)))
    # A BOM, so Excel opens the Vietnamese text as UTF-8 rather than the system code page.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _xlsx(report: UpwardReport, model: ReferenceModel | None) -> bytes:
    from openpyxl import Workbook  # noqa: PLC0415 - openpyxl is only needed for this format
    from openpyxl.styles import Font  # noqa: PLC0415

    found = facts(report, model)
    book = Workbook()
    summary = book.active
    assert summary is not None
    summary.title = "Tong hop - Summary"
    for row in (
        ("Báo cáo / Report", report.report_id),
        ("Đơn vị / Unit", f"{report.unit} {report.unit_name}"),
        ("Kỳ / Period", f"{report.period_label} ({report.period_start} → {report.period_end})"),
        ("Lập lúc / Generated at (UTC)", report.generated_at.isoformat()),
        ("Phiên bản số liệu / Revision", report.revision),
        ("Tổng điểm QĐ 766 / Decision 766 total", score_text(report.score)),
        ("Hồ sơ tiếp nhận / Dossiers received", report.score.dossiers),
        ("Sự cố phát sinh / Incidents opened", report.incidents.opened),
        ("Phản ánh tiếp nhận / Citizen reports", report.citizen_reports.received),
    ):
        summary.append(list(row))
    sheets: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("Chi so 766 - Indicators", ("score766", "score766_group", "score766_indicator")),
        ("Su co - Incidents", ("incidents", "incidents_by_module", "incidents_by_severity", "incidents_by_state")),
        (
            "Phan anh - Reports",
            ("citizen_reports", "citizen_reports_by_category", "citizen_reports_by_state", "citizen_reports_by_source"),
        ),
        ("Don vi con - Children", ("child_score766", "child_incidents_opened", "child_citizen_reports")),
    )
    headers = (
        "Phần / Section",
        "Mã / Key",
        "Tên / Label (vi)",
        "Label (en)",
        "Giá trị / Value",
        "Tối đa / Max",
        "Tử số / Numerator",
        "Mẫu số / Denominator",
        "Tỷ lệ / Rate",
    )
    for title, sections in sheets:
        sheet = book.create_sheet(title)
        sheet.append(list(headers))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for f in found:
            if f.section in sections:
                sheet.append(
                    [f.section, f.key, f.label_vi, f.label_en, f.value, f.max_value, f.numerator, f.denominator, f.rate]
                )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export(report: UpwardReport, fmt: Format, model: ReferenceModel | None = None) -> bytes:
    """The report's bytes in `fmt` (csv, xlsx or json).

    JSON is the report exactly as it is signed and pushed (ioc.upward.UpwardReport). CSV is one tidy table of facts
    (`section, key, labels, value, max, numerator, denominator, rate`), easy to pivot in a spreadsheet or load anywhere.
    XLSX has one sheet per part (summary, Decision 766 indicators, incidents, citizen reports, child units) with
    bilingual headers, for people who open it in Excel or LibreOffice.
    """
    if fmt == "json":
        return msgspec.json.format(codecs.encode(report), indent=2) + b"\n"
    if fmt == "csv":
        return _csv(report, model)
    if fmt == "xlsx":
        return _xlsx(report, model)
    raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
