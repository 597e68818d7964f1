"""Open311 GeoReport v2 on top of the platform's contracts: services, request fields and statuses. Pure."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Final, Literal

import msgspec

from dashboards.api import models
from dashboards.sites import Site, UnitOutsideSite
from ioc import codecs, units
from ioc.events import CitizenReport, IncidentState
from ioc.reference import ReferenceModel

# Services are the reference model's report categories (Vietnamese and English names). A submitted
# request's fields become a `CitizenReport` (source `open311`), validated by the contract itself, with
# errors that name the Open311 field (`description`, `long`, `media_url`...) rather than the contract's.
# A request's status follows its incident: Open311 knows only `open` and `closed`; `ioc_state` and the
# bilingual labels say where in the lifecycle it is. The routes (dashboards.api.app) do the I/O.

__all__ = [
    "ACTION_LABELS",
    "FIELDS",
    "RECEIVED",
    "STATE_LABELS",
    "UNIT_ATTRIBUTE",
    "RequestError",
    "Submission",
    "duplicate_key",
    "fingerprint",
    "history",
    "new_report_id",
    "open311_status",
    "parse_submission",
    "service_definition",
    "services",
]

RECEIVED: Final = "received"
"""`ioc_state` of a request the API took but the stream workers have not stored yet."""

UNIT_ATTRIBUTE: Final = "attribute[unit]"

FIELDS: Final[tuple[str, ...]] = (
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "description",
    "media_url",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    UNIT_ATTRIBUTE,
)
"""Every field a request may carry (Open311 GeoReport v2 plus the `unit` attribute)."""

STATE_LABELS: Final[Mapping[str, tuple[str, str]]] = {
    RECEIVED: ("Đã gửi, đang chờ tiếp nhận", "Submitted, awaiting intake"),
    "open": ("Đã tiếp nhận", "Received"),
    "acknowledged": ("Đã xác nhận, đang xem xét", "Acknowledged, being looked at"),
    "dispatched": ("Đã chuyển đơn vị xử lý", "Dispatched to the unit handling it"),
    "resolved": ("Đã xử lý xong", "Resolved"),
    "closed": ("Đã đóng", "Closed"),
}

ACTION_LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "opened": ("Tiếp nhận phản ánh", "Report received"),
    "updated": ("Cập nhật thông tin", "Details updated"),
    "acknowledge": ("Xác nhận", "Acknowledged"),
    "dispatch": ("Chuyển đơn vị xử lý", "Dispatched"),
    "resolve": ("Đã xử lý", "Resolved"),
    "close": ("Đóng phản ánh", "Closed"),
    "reopen": ("Mở lại", "Reopened"),
    "escalate": ("Chuyển cấp trên do quá hạn", "Escalated: deadline passed"),
    "cleared": ("Điều kiện đã hết", "Condition cleared"),
    "linked": ("Gắn phản ánh liên quan", "Related report linked"),
    "reject": ("Từ chối tiếp nhận", "Rejected"),
    "request_info": ("Đề nghị bổ sung thông tin", "More information requested"),
    "supply_info": ("Đã bổ sung thông tin", "Information supplied"),
    "answer": ("Trả lời phản ánh", "Answered"),
}

_CLOSED: Final = frozenset({IncidentState.RESOLVED, IncidentState.CLOSED})
_CONTRACT_TO_FIELD: Final[Mapping[str, str]] = {
    "text": "description",
    "lat": "lat",
    "lon": "long",
    "address": "address_string",
    "media_urls": "media_url",
    "contact.phone": "phone",
    "contact.email": "email",
    "contact.name": "first_name",
    "category": "service_code",
    "unit": UNIT_ATTRIBUTE,
}
_PATH: Final = re.compile(r"`\$\.([A-Za-z_.]+)")


class RequestError(ValueError):
    """A request that cannot be taken: its HTTP status, and a message naming the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def open311_status(state: str) -> Literal["open", "closed"]:
    """Open311's two statuses: a resolved or closed incident is `closed`, anything else `open`."""
    return "closed" if state in _CLOSED else "open"


def services(model: ReferenceModel, lang: str) -> list[models.Service]:
    """The report categories as Open311 services, named in `lang` (vi or en), in the model's order."""
    found = []
    for code, category in model.report_categories.items():
        module = model.modules.get(category.module)
        found.append(
            models.Service(
                service_code=code,
                service_name=category.label_en if lang == "en" else category.label_vi,
                description=f"{category.label_vi} / {category.label_en}",
                metadata=True,
                type="realtime",
                keywords=",".join(dict.fromkeys([code, category.module.value])),
                group=(module.label_en if lang == "en" else module.label_vi) if module else category.module.value,
                name_vi=category.label_vi,
                name_en=category.label_en,
            )
        )
    return found


def service_definition(model: ReferenceModel, code: str) -> models.ServiceDefinition:
    """The attributes a request for `code` may carry; raises KeyError for an unknown service."""
    if code not in model.report_categories:
        raise KeyError(code)
    return models.ServiceDefinition(
        service_code=code,
        attributes=[
            models.ServiceAttribute(
                variable=True,
                code="unit",
                datatype="string",
                required=False,
                datatype_description="GSO code of the commune (2024), e.g. 25957; placed from lat/long when absent.",
                order=1,
                description="Phường/xã nơi phản ánh / The commune the report is about",
            )
        ],
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Submission:
    """A request checked and placed: the report to produce, as soon as it gets its id and time."""

    fields: Mapping[str, str | list[str]]
    unit: str
    category: str

    def report(self, report_id: str, submitted_at: dt.datetime) -> CitizenReport:
        """The `CitizenReport` for this submission; raises RequestError naming the Open311 field."""
        f = self.fields
        name = " ".join(part for part in (_one(f, "first_name"), _one(f, "last_name")) if part) or None
        contact = {"name": name, "phone": _one(f, "phone"), "email": _one(f, "email")}
        lat, lon = _coordinates(f)
        data = {
            "report_id": report_id,
            "source": "open311",
            "category": self.category,
            "unit": self.unit,
            "submitted_at": submitted_at,
            "text": _one(f, "description") or "",
            "lat": lat,
            "lon": lon,
            "address": _one(f, "address_string"),
            "media_urls": _many(f, "media_url"),
            "contact": {k: v for k, v in contact.items() if v is not None} or None,
        }
        try:
            return msgspec.convert(data, CitizenReport)
        except msgspec.ValidationError as exc:
            message = str(exc)
            found = _PATH.search(message)
            path = found.group(1) if found else ""
            field = _CONTRACT_TO_FIELD.get(path, path or None)
            text = _PATH.sub(f"`{field}`", message) if field else message
            raise RequestError(400, f"{text.replace(' - at ', ' at ')}", field) from None


def _one(fields: Mapping[str, str | list[str]], name: str) -> str | None:
    value = fields.get(name)
    if isinstance(value, list):
        if len(value) > 1:
            raise RequestError(400, f"`{name}` is given {len(value)} times; give it once", name)
        value = value[0] if value else None
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(400, f"`{name}` must be a string", name)
    stripped = value.strip()
    return stripped or None


def _many(fields: Mapping[str, str | list[str]], name: str) -> list[str]:
    value = fields.get(name)
    values = value if isinstance(value, list) else [] if value is None else [value]
    if not all(isinstance(v, str) for v in values):
        raise RequestError(400, f"every `{name}` must be a string", name)
    return [v.strip() for v in values if v.strip()]


def _number(fields: Mapping[str, str | list[str]], name: str, low: float, high: float) -> float | None:
    text = _one(fields, name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RequestError(400, f"`{name}` is {text[:40]!r}, not a number", name) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise RequestError(400, f"`{name}` must be a number from {low:g} to {high:g}", name)
    return value


def _coordinates(fields: Mapping[str, str | list[str]]) -> tuple[float | None, float | None]:
    lat = _number(fields, "lat", -90, 90)
    lon = _number(fields, "long", -180, 180)
    if (lat is None) != (lon is None):
        missing = "long" if lon is None else "lat"
        raise RequestError(400, f"`lat` and `long` go together: `{missing}` is missing", missing)
    return lat, lon


def parse_submission(fields: Mapping[str, str | list[str]], site: Site) -> Submission:
    """Check a request's fields and place it in a commune of the site; raises RequestError.

    The place is `attribute[unit]` when given (the reporter knows best), else the commune nearest to
    lat/long (the address breaks ties between communes sharing a marker point; see `Site.place`).
    A place outside the site is refused (422): another site's API takes it.
    """
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise RequestError(400, f"unknown field(s) {', '.join(unknown)}; Open311 fields are {', '.join(FIELDS)}")
    code = _one(fields, "service_code")
    if code is None:
        raise RequestError(400, "`service_code` is required: GET services.json lists them", "service_code")
    if code not in site.model.report_categories:
        raise RequestError(400, f"`service_code` {code[:64]!r} is not a service: GET services.json", "service_code")
    if _one(fields, "description") is None:
        raise RequestError(400, "`description` is required: say what is wrong, in a few words", "description")
    jurisdiction = _one(fields, "jurisdiction_id")
    if jurisdiction is not None and not site.contains(jurisdiction):
        raise RequestError(
            404, f"`jurisdiction_id` {jurisdiction[:16]!r} is not served here (site {site.unit})", "jurisdiction_id"
        )
    lat, lon = _coordinates(fields)
    unit = _one(fields, UNIT_ATTRIBUTE)
    if unit is not None:
        if unit not in units.load_tree("2024"):
            raise RequestError(422, f"`{UNIT_ATTRIBUTE}` {unit[:16]!r} is not a unit code", UNIT_ATTRIBUTE)
        if not site.accepts_reports_for(unit):
            raise RequestError(422, f"`{UNIT_ATTRIBUTE}` {unit} is not within site {site.unit}", UNIT_ATTRIBUTE)
    elif lat is not None and lon is not None:
        try:
            unit = site.place(lat, lon, _one(fields, "address_string"))
        except UnitOutsideSite as exc:
            raise RequestError(422, f"`lat`/`long`: {exc}", "lat") from None
    else:
        raise RequestError(400, f"where is it? give `lat` and `long`, or `{UNIT_ATTRIBUTE}` (a commune code)", "lat")
    return Submission(fields=fields, unit=unit, category=code)


def fingerprint(fields: Mapping[str, str | list[str]]) -> str:
    """A hash of what a request asks for (its key left out), to tell a retry from a different request."""
    pairs = sorted((k, v if isinstance(v, list) else [v]) for k, v in fields.items() if k != "api_key")
    return hashlib.sha256(codecs.encode_json(pairs)).hexdigest()


def _normalised(value: str | None) -> str:
    return " ".join((value or "").casefold().split())


def duplicate_key(submission: Submission, client: str, reporter_address: str) -> str:
    """A hash of what makes two submissions the same report: the text, the place and who sent it.

    The place is the commune plus the position to about 10 m (or the address); the reporter is their
    contact or device id, else the address the request came from. Case and spacing of the text do not count.
    """
    f = submission.fields
    lat, lon = _coordinates(f)
    where = f"{lat:.4f},{lon:.4f}" if lat is not None and lon is not None else _normalised(_one(f, "address_string"))
    reporter = (
        next((v for v in (_one(f, "email"), _one(f, "phone"), _one(f, "device_id")) if v), None)
        or f"addr:{reporter_address}"
    )
    parts = [
        client,
        submission.category,
        submission.unit,
        where,
        _normalised(reporter),
        _normalised(_one(f, "description")),
    ]
    return hashlib.sha256(codecs.encode_json(parts)).hexdigest()


def new_report_id() -> str:
    """A fresh report id for a request: `o311-` and 24 random hex digits."""
    return f"o311-{uuid.uuid4().hex[:24]}"


def history(rows: Sequence[Mapping[str, object]], site: Site) -> list[models.HistoryEntry]:
    """The incident's recorded versions as the request's public history."""
    entries = []
    for row in rows:
        state = str(row["state"])
        action = str(row["action"])
        vi, en = ACTION_LABELS.get(action, STATE_LABELS.get(state, (action, action)))
        responsible = str(row["responsible_unit"])
        updated = row["updated_at"]
        assert isinstance(updated, dt.datetime)
        level = row["escalation_level"]
        entries.append(
            models.HistoryEntry(
                at=updated,
                action=action,
                ioc_state=state,
                status="closed" if state in _CLOSED else "open",
                label_vi=vi,
                label_en=en,
                responsible_unit=responsible,
                responsible_name=site.responsible_full_name(responsible) if responsible else "",
                escalation_level=int(level) if isinstance(level, int | float) else 0,
            )
        )
    return entries
