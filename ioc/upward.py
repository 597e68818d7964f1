"""The upward report contract: a site's Decision 766 and incident figures for a period, sealed for its parent.

A site (commune, district, province) reports upward (commune → province → centre). `streams.reporting`
builds an `UpwardReport`, seals it into a `SignedReport` with the site's Ed25519 key, puts it in the
`ioc.reports-outbox.v1` topic and pushes it to the parent; the parent's connector (`sensors.gateways`)
opens the envelope with the child's public key and keeps it once. `ioc report` exports the same report.

Idempotency: a report's `revision` is a hash of its figures (not of when it was generated), and its
idempotency key is `<report_id>:<revision>`. A report rebuilt with the same figures after a restart gets
the same key, so the parent counts it once; changed figures make a new revision that replaces the old.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Annotated, Final, Literal

import msgspec

from ioc import codecs, signing
from ioc.events import DeadLetterReason
from ioc.fields import UNIT_CODE_BODY, UnitCode

__all__ = [
    "ALGORITHM",
    "LOST_SAMPLE",
    "MAX_REPORT_BYTES",
    "ChildFigure",
    "CitizenReportStats",
    "GroupFigure",
    "IncidentStats",
    "IndicatorFigure",
    "PeriodKind",
    "Score766",
    "SignedReport",
    "UpwardReport",
    "idempotency_key",
    "make_report_id",
    "open_signed",
    "revision_of",
    "seal",
]

ALGORITHM: Final = "ed25519"
MAX_REPORT_BYTES: Final = 1024 * 1024
"""Largest report body accepted (bytes): a province's month, lost-dossier samples included, is a few dozen KiB."""

LOST_SAMPLE: Final = 100
"""Most lost-dossier ids a report lists per indicator; `lost_count` has them all."""

PeriodKind = Literal["day", "month", "quarter", "year"]
ReportId = Annotated[str, msgspec.Meta(pattern=rf"^{UNIT_CODE_BODY}:(day|month|quarter|year):[0-9A-Q-]{{4,10}}$")]
Count = Annotated[int, msgspec.Meta(ge=0)]
Label = Annotated[str, msgspec.Meta(max_length=300)]


class _Part(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of the report's parts: frozen and strict about unknown fields."""


class IndicatorFigure(_Part, frozen=True):
    """One Decision 766 sub-indicator: points, rate, counts, and the dossiers that cost points."""

    code: str
    group: str
    label_vi: Label
    label_en: Label
    points: float
    max_points: float
    rate: float
    numerator: Count
    denominator: Count
    collected: bool
    no_data: bool
    measured: Annotated[
        bool, msgspec.Meta(description="Its points count in the score and its maximum in coverage.")
    ] = True
    lost_count: Count = 0
    lost_dossiers: Annotated[list[str], msgspec.Meta(max_length=LOST_SAMPLE)] = []


class GroupFigure(_Part, frozen=True):
    """One of the five groups (publicity, progress, online services, digitisation, satisfaction)."""

    code: str
    label_vi: Label
    label_en: Label
    points: float
    max_points: float


class Score766(_Part, frozen=True):
    """The site's Decision 766 scorecard for the period (its whole subtree)."""

    scheme: str
    points: Annotated[
        float, msgspec.Meta(description="Out of max_points, re-based on the `coverage` points measured; 0 when none.")
    ]
    max_points: float
    dossiers: Annotated[Count, msgspec.Meta(description="Dossiers received in the period, withdrawn included.")]
    groups: list[GroupFigure]
    indicators: list[IndicatorFigure]
    policy: Annotated[str, msgspec.Meta(description="The no-data policy's id (docs/decision-766.md).")] = ""
    coverage: Annotated[
        float | None, msgspec.Meta(description="Points measured (of 100); None in reports made before the policy.")
    ] = None


class IncidentStats(_Part, frozen=True):
    """Incidents opened in the period about places in the site's subtree, and what became of them."""

    opened: Count
    resolved: Annotated[Count, msgspec.Meta(description="Of those opened, resolved or closed by generated_at.")]
    still_open: Count
    overdue: Annotated[Count, msgspec.Meta(description="Still open and past their SLA at generated_at.")]
    escalated: Count
    mean_hours_to_resolve: float | None = None
    by_module: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    by_state: dict[str, int] = {}


class CitizenReportStats(_Part, frozen=True):
    """Citizens' field reports submitted in the period, by category and by their incident's state."""

    received: Count
    resolved: Count
    by_category: dict[str, int] = {}
    by_state: dict[str, int] = {}
    by_source: dict[str, int] = {}


class ChildFigure(_Part, frozen=True):
    """One child unit's headline figures, so the parent can rank them without another report."""

    unit: UnitCode
    name: Label
    points: Annotated[float, msgspec.Meta(description="Re-based on the child's `coverage`; 0 when nothing measured.")]
    dossiers: Count
    incidents_opened: Count
    citizen_reports: Count
    coverage: Annotated[float | None, msgspec.Meta(description="Points measured (of 100).")] = None


class UpwardReport(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="schema",
    tag="ioc.upward-report.v1",
):
    """A site's report for one period: Decision 766 scorecard, incident and citizen-report statistics."""

    report_id: ReportId
    revision: Annotated[str, msgspec.Meta(pattern=r"^([0-9a-f]{16})?$", description="Hash of the figures.")] = ""
    unit: UnitCode
    unit_name: Label
    level: str
    edition: Literal["2024", "2025"]
    parent_unit: UnitCode | None = None
    period_kind: PeriodKind
    period_label: Annotated[str, msgspec.Meta(max_length=10, description="2025-06, 2025-Q2, 2025, 2025-06-15.")]
    period_start: Annotated[dt.date, msgspec.Meta(description="First local (Asia/Ho_Chi_Minh) day of the period.")]
    period_end: Annotated[dt.date, msgspec.Meta(description="The day after the period's last day.")]
    generated_at: Annotated[dt.datetime, msgspec.Meta(tz=True)]
    score: Score766
    incidents: IncidentStats
    citizen_reports: CitizenReportStats
    children: list[ChildFigure] = []


class SignedReport(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="schema",
    tag="ioc.signed-report.v1",
):
    """An `UpwardReport` as its exact JSON bytes, with the sender's Ed25519 signature over those bytes.

    The body travels as bytes (base64 in JSON) so that no re-encoding anywhere can change what was signed;
    the outbox holds this envelope, the push sends it, and a parent may relay it unchanged further up.
    """

    report_id: ReportId
    unit: UnitCode
    idempotency_key: Annotated[str, msgspec.Meta(max_length=128)]
    key_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
    algorithm: Literal["ed25519"] = ALGORITHM
    body: Annotated[bytes, msgspec.Meta(description="The UpwardReport's JSON bytes (base64).")]
    signature: Annotated[bytes, msgspec.Meta(description="Ed25519 signature of `body` (base64).")]


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def make_report_id(unit: str, period_kind: str, period_label: str) -> str:
    """`<unit>:<kind>:<label>`, e.g. `74:month:2025-06`: one report per site and period."""
    return f"{unit}:{period_kind}:{period_label}"


def revision_of(report: UpwardReport) -> str:
    """A hash of the report's figures, leaving out when it was generated and any earlier revision."""
    neutral = msgspec.structs.replace(report, generated_at=_EPOCH, revision="")
    return hashlib.sha256(codecs.encode(neutral)).hexdigest()[:16]


def idempotency_key(report: UpwardReport) -> str:
    """`<report_id>:<revision>`: the same figures for the same site and period always give the same key."""
    return f"{report.report_id}:{report.revision or revision_of(report)}"


def seal(report: UpwardReport, private_key_b64: str, key_id: str) -> SignedReport:
    """Stamp the report's revision, encode it and sign the bytes with the site's private key."""
    # Round-trip first: a report built in code may hold an int where the contract says float, which
    # encodes differently from what the receiver decodes, and the revision must be the same on both ends.
    normal = msgspec.json.decode(codecs.encode(report), type=UpwardReport)
    stamped = msgspec.structs.replace(normal, revision=revision_of(normal))
    body = codecs.encode(stamped)
    return SignedReport(
        report_id=stamped.report_id,
        unit=stamped.unit,
        idempotency_key=idempotency_key(stamped),
        key_id=key_id,
        body=body,
        signature=signing.sign_document(private_key_b64, body),
    )


def open_signed(envelope: SignedReport, public_keys: Mapping[str, str]) -> UpwardReport:
    """The report inside `envelope`, after checking its key, signature and that the envelope matches it.

    Raises `signing.SignatureError` (unknown key, bad signature) or `codecs.ContractError` (a body that is
    not a report, or an envelope whose report id, unit or idempotency key disagree with the body).
    """
    public = public_keys.get(envelope.key_id)
    if public is None:
        raise signing.SignatureError("unknown-key", f"no public key for key id {envelope.key_id!r}")
    if len(envelope.body) > MAX_REPORT_BYTES:
        raise codecs.ContractError(
            DeadLetterReason.TOO_LARGE, f"report body is {len(envelope.body)} bytes; limit {MAX_REPORT_BYTES}"
        )
    signing.verify_document(public, envelope.body, envelope.signature)
    try:
        report = msgspec.json.decode(envelope.body, type=UpwardReport)
    except msgspec.ValidationError as exc:
        raise codecs.ContractError(DeadLetterReason.SCHEMA, f"signed body is not an upward report: {exc}") from None
    except msgspec.DecodeError as exc:
        raise codecs.ContractError(DeadLetterReason.NOT_JSON, f"signed body is not JSON: {exc}") from None
    for field, inside, outside in (
        ("report_id", report.report_id, envelope.report_id),
        ("unit", report.unit, envelope.unit),
        ("idempotency_key", idempotency_key(report), envelope.idempotency_key),
    ):
        if inside != outside:
            raise codecs.ContractError(
                DeadLetterReason.SCHEMA, f"envelope `{field}` is {outside!r} but the signed report says {inside!r}"
            )
    if report.revision != revision_of(report):
        raise codecs.ContractError(DeadLetterReason.SCHEMA, "the report's `revision` does not match its figures")
    return report
