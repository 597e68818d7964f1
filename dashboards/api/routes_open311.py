"""Open311 GeoReport v2 routes: services, submitting a request, and following its status and history."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

import msgspec
import pydantic
from fastapi import APIRouter, Header, Path, Query, Request, Response

from dashboards.api import models, open311
from dashboards.api.state import JSON, ApiState, open311_error
from dashboards.data import Rows, SiteData
from ioc import pakn, topics
from ioc.clients.delivery import DeliveryError
from ioc.events import CitizenReport

# `POST /open311/v2/requests.json` takes a form-encoded (Open311) or JSON request with the client's API
# key, checks it (dashboards.api.open311), places it in a commune of the site, and produces a
# `CitizenReport` to `ioc.citizen-reports.v1`; it answers 201 only once Kafka has it. The stream workers
# turn it into an incident; `GET requests/{id}.json` shows the incident's state and history from the
# warehouse (or `received` while the workers have not stored it yet). Errors are Open311 error lists.

__all__ = ["read_body", "router"]

PREFIX: Final = "/open311/v2"
VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_LIST: Final = 1000
"""Most requests one GET requests.json returns (Open311's customary cap)."""
DEFAULT_DAYS: Final = 90
# ClickHouse's DateTime spans 1970..2106; dates outside cannot name a stored report anyway.
EARLIEST: Final = dt.datetime(1970, 1, 2, tzinfo=dt.UTC)
LATEST: Final = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
_IDEMPOTENCY_KEY: Final = re.compile(r"^[\x21-\x7e]{1,128}$")
_requests: Final = pydantic.TypeAdapter(list[models.ServiceRequest])
_created: Final = pydantic.TypeAdapter(list[models.RequestCreated])
_services: Final = pydantic.TypeAdapter(list[models.Service])

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"model": list[models.Open311Error], "description": "A field is missing or wrong; the description names it."},
}
_NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": list[models.Open311Error], "description": "No such service or request in this site."},
}


def _field_schema(site_codes: Sequence[str]) -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "required": ["service_code", "description"],
        "properties": {
            "api_key": {**text, "description": "The client's API key (or send X-API-Key)."},
            "jurisdiction_id": {**text, "description": "A unit code of this site, e.g. 74."},
            "service_code": {"type": "string", "enum": list(site_codes)},
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "long": {"type": "number", "minimum": -180, "maximum": 180},
            "address_string": {**text, "maxLength": 500},
            "address_id": text,
            "description": {"type": "string", "minLength": 1, "maxLength": 4000},
            "media_url": {**text, "maxLength": 2048, "description": "A photo's URL (repeat for several, up to 10)."},
            "email": text,
            "device_id": text,
            "account_id": text,
            "first_name": text,
            "last_name": text,
            "phone": text,
            open311.UNIT_ATTRIBUTE: {**text, "description": "GSO commune code; from lat/long when absent."},
        },
        "additionalProperties": False,
    }


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes before or while reading it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise open311.RequestError(413, f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise open311.RequestError(413, f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_MAX_JSON_DEPTH: Final = 8
"""An Open311 body is an object of scalars and lists of them (depth 2); anything much deeper is an attack."""


def _nesting(body: bytes) -> int:
    """How deep brackets nest in a JSON text (outside strings), counted without decoding it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > _MAX_JSON_DEPTH:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise open311.RequestError(400, f"`{name}` must be a string or a number", name)
    return str(value)


def parse_fields(body: bytes, content_type: str) -> dict[str, str | list[str]]:
    """A form-encoded or JSON body as field → value (a list when a field repeats)."""
    media = content_type.split(";", 1)[0].strip().lower()
    fields: dict[str, str | list[str]] = {}
    if media in {"", "application/x-www-form-urlencoded"}:
        try:
            text = body.decode("utf-8")
            pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=len(open311.FIELDS) + 20)
        except (UnicodeDecodeError, ValueError) as exc:
            raise open311.RequestError(400, f"the form cannot be read: {exc}") from None
        for name, value in pairs:
            kept = fields.get(name)
            fields[name] = value if kept is None else [*(kept if isinstance(kept, list) else [kept]), value]
        return fields
    if media == "application/json":
        if _nesting(body) > _MAX_JSON_DEPTH:
            raise open311.RequestError(400, f"the JSON body is nested deeper than {_MAX_JSON_DEPTH} levels")
        try:
            data = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise open311.RequestError(400, f"the body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise open311.RequestError(400, "the JSON body must be an object of Open311 fields")
        for name, value in data.items():
            if isinstance(value, list):
                fields[name] = [_scalar(name, v) for v in value]
            elif value is not None:
                fields[name] = _scalar(name, value)
        return fields
    raise open311.RequestError(415, f"send application/x-www-form-urlencoded or application/json, not {media!r}")


def _local(value: dt.datetime) -> dt.datetime:
    # Open311 datetimes carry an offset; one without is read as the jurisdiction's local time.
    return value.replace(tzinfo=VN) if value.tzinfo is None else value


def _state_of(row: Mapping[str, Any] | None) -> str:
    return str(row["state"]) if row else "open"


def _service_request(
    state: ApiState,
    report: Mapping[str, Any],
    *,
    incident: Mapping[str, Any] | None,
    lang: str,
    ioc_state: str,
    trail: Rows | None = None,
) -> models.ServiceRequest:
    site = state.site
    category = site.model.report_categories.get(str(report["category"]))
    vi, en = open311.STATE_LABELS.get(ioc_state, (ioc_state, ioc_state))
    responsible = str(incident["responsible_unit"]) if incident and incident["responsible_unit"] else ""
    media = list(report.get("media_urls") or [])
    detail = pakn.parse_detail(incident.get("detail") if incident else None)
    phase = None if ioc_state == open311.RECEIVED else pakn.state_of(detail, ioc_state)
    answer_by = pakn.instant(detail, "answer_by") if phase is not None and phase not in pakn.FINISHED else None
    return models.ServiceRequest(
        service_request_id=str(report["report_id"]),
        status="open" if phase is None else pakn.citizen_status(phase),
        status_notes=(en if lang == "en" else vi)
        if phase is None
        else pakn.status_note(phase, detail.get(pakn.DETAIL_NOTE, ""), lang),
        pakn_state=phase.value if phase is not None else None,
        answer_by=answer_by,
        service_name=(category.label_en if lang == "en" else category.label_vi) if category else None,
        service_code=str(report["category"]),
        description=str(report["text"]),
        agency_responsible=(
            site.responsible_full_name(responsible) if responsible else site.row_unit_full_name(str(report["unit"]))
        ),
        service_notice=None,
        requested_datetime=report["submitted_at"],
        updated_datetime=incident["updated_at"] if incident else None,
        expected_datetime=incident["sla_due_at"] if incident else None,
        address=str(report.get("address") or "") or None,
        lat=report.get("lat"),
        long=report.get("lon"),
        media_url=media[0] if media else None,
        ioc_state=ioc_state,
        ioc_state_vi=vi,
        ioc_state_en=en,
        unit=str(report["unit"]),
        unit_name=site.row_unit_full_name(str(report["unit"])),
        history=None if trail is None else open311.history(trail, site),
    )


def _received_row(report: CitizenReport) -> dict[str, Any]:
    return {
        "report_id": report.report_id,
        "category": report.category,
        "unit": report.unit,
        "submitted_at": report.submitted_at,
        "text": report.text,
        "address": report.address or "",
        "lat": report.lat,
        "lon": report.lon,
        "media_urls": list(report.media_urls),
        "incident_id": "",
    }


def _incidents(data: SiteData, state: ApiState, reports: Rows) -> dict[str, dict[str, Any]]:
    ids = tuple(sorted({str(r["incident_id"]) for r in reports if r["incident_id"]}))
    if not ids:
        return {}
    rows = data.run("incident_states", state.site.unit, incident_ids=ids)
    return {str(r["incident_id"]): r for r in rows}


def router(state: ApiState) -> APIRouter:
    """The Open311 routes, bound to one site's state."""
    api = APIRouter(prefix=PREFIX, tags=["Open311 GeoReport v2"])
    _service_routes(api, state)
    _submit_route(api, state)
    _read_routes(api, state)
    return api


def _service_routes(api: APIRouter, state: ApiState) -> None:
    settings = state.settings

    @api.get("/discovery.json", response_model=models.Discovery, summary="Open311 discovery")
    async def discovery(request: Request) -> Response:
        base = str(request.base_url).rstrip("/") + PREFIX
        body = models.Discovery(
            changeset=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
            contact="Trung tâm Giám sát, điều hành thông minh (IOC) / Intelligent Operations Center",
            key_service="API keys are issued by the IOC to each client app; reading needs none.",
            endpoints=[
                models.DiscoveryEndpoint(
                    specification="http://wiki.open311.org/GeoReport_v2",
                    url=base,
                    changeset=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
                    type="production",
                    formats=[JSON],
                )
            ],
        )
        return Response(body.model_dump_json().encode(), media_type=JSON)

    @api.get(
        "/services.json",
        response_model=list[models.Service],
        responses={**_ERRORS, **_NOT_FOUND},
        summary="Report categories (Open311 services), in Vietnamese or English",
    )
    async def list_services(
        request: Request,
        lang: Annotated[Literal["vi", "en"], Query(description="Language of service names.")] = "vi",
        jurisdiction_id: Annotated[str | None, Query(max_length=16)] = None,
    ) -> Response:
        if jurisdiction_id is not None and not state.site.contains(jurisdiction_id):
            return open311_error(404, f"jurisdiction_id {jurisdiction_id!r} is not served here")
        body = _services.dump_json(open311.services(state.site.model, lang))
        ttl = settings.slow_cache_ttl_s
        return Response(body, media_type=JSON, headers={"Cache-Control": f"public, max-age={int(ttl)}"})

    @api.get(
        "/services/{service_code}.json",
        response_model=models.ServiceDefinition,
        responses={**_ERRORS, **_NOT_FOUND},
        summary="The attributes a request for one service may carry",
    )
    async def service_definition(service_code: Annotated[str, Path(max_length=64)]) -> Response:
        try:
            definition = open311.service_definition(state.site.model, service_code)
        except KeyError:
            return open311_error(404, f"no service {service_code!r}: GET services.json lists them")
        return Response(definition.model_dump_json().encode(), media_type=JSON)


def _submit_route(api: APIRouter, state: ApiState) -> None:
    settings = state.settings
    codes = list(state.site.model.report_categories)

    @api.post(
        "/requests.json",
        status_code=201,
        response_model=list[models.RequestCreated],
        responses={
            200: {"model": list[models.RequestCreated], "description": "A retry with the same Idempotency-Key."},
            **_ERRORS,
            401: {"model": list[models.Open311Error], "description": "No API key."},
            403: {"model": list[models.Open311Error], "description": "Unknown API key."},
            **_NOT_FOUND,
            413: {"model": list[models.Open311Error], "description": "The body is too large."},
            415: {"model": list[models.Open311Error], "description": "Neither form-encoded nor JSON."},
            422: {
                "model": list[models.Open311Error],
                "description": "The place is not in this site, or the Idempotency-Key was used for another request.",
            },
            429: {"model": list[models.Open311Error], "description": "The client's rate limit; see Retry-After."},
            503: {"model": list[models.Open311Error], "description": "Kafka did not take it; retry (same key)."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": _field_schema(codes)},
                    "application/json": {"schema": _field_schema(codes)},
                },
            }
        },
        summary="Submit a citizen's field report (phản ánh hiện trường)",
    )
    async def submit(
        request: Request,
        x_api_key: Annotated[str | None, Header(max_length=256, description="The client's API key.")] = None,
        idempotency_key: Annotated[
            str | None, Header(max_length=128, description="Retries with the same key return the first answer.")
        ] = None,
    ) -> Response:
        try:
            return await _submit(request, x_api_key, idempotency_key)
        except open311.RequestError as exc:
            return open311_error(exc.status, exc.message)

    async def _submit(request: Request, header_key: str | None, idempotency_key: str | None) -> Response:
        body = await read_body(request, settings.max_body_bytes)
        fields = parse_fields(body, request.headers.get("content-type", ""))
        form_key = fields.pop("api_key", None)
        if isinstance(form_key, list):
            raise open311.RequestError(400, "`api_key` is given more than once", "api_key")
        presented = form_key or header_key
        if not presented:
            raise open311.RequestError(401, "an API key is required to submit: `api_key` or the X-API-Key header")
        client = state.clients.authenticate(presented)
        if client is None:
            raise open311.RequestError(403, "the API key is not known here", "api_key")
        verdict = state.clients.take(client)
        if not verdict.allowed:
            wait = max(1, round(verdict.retry_after_s))
            return open311_error(
                429, f"client {client} is over its rate limit; retry in {wait} s", {"Retry-After": str(wait)}
            )
        if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise open311.RequestError(400, "Idempotency-Key must be 1-128 printable ASCII characters")
        submission = open311.parse_submission(fields, state.site)
        submitted_at = dt.datetime.fromtimestamp(int(state.clock()), dt.UTC)
        report_id = open311.new_report_id()
        duplicate: str | None = None
        if settings.duplicate_window_s > 0 and idempotency_key is None:
            address = request.client.host if request.client else "unknown"
            duplicate = open311.duplicate_key(submission, client, address)
            first = state.ledger.claim_report(duplicate, report_id, settings.duplicate_window_s)
            if first != report_id:
                return _created_response(first, 200, replayed=True, duplicate=True)
        if idempotency_key is not None:
            claim = state.ledger.claim(client, idempotency_key, open311.fingerprint(fields), report_id, submitted_at)
            if not claim.same:
                raise open311.RequestError(422, "this Idempotency-Key was used for a different request")
            report_id, submitted_at = claim.report_id, claim.submitted_at
            if claim.done:
                return _created_response(report_id, 200, replayed=True)
        report = submission.report(report_id, submitted_at)
        try:
            await state.sink.send(topics.CITIZEN_REPORTS.name, report.report_id, topics.CITIZEN_REPORTS.encode(report))
        except DeliveryError as exc:
            if duplicate is not None:
                state.ledger.release_report(duplicate, report_id)
            return open311_error(
                503,
                f"the report could not be stored yet ({exc}); retry with the same Idempotency-Key",
                {"Retry-After": "5"},
            )
        state.ledger.accepted(report, client, idempotency_key)
        return _created_response(report_id, 201, replayed=False)


def _created_response(report_id: str, status: int, *, replayed: bool, duplicate: bool = False) -> Response:
    notice = (
        f"Đã nhận phản ánh {report_id}; theo dõi tại requests/{report_id}.json / "
        f"Report {report_id} received; follow it at requests/{report_id}.json"
    )
    if duplicate:
        notice = (
            f"Phản ánh này trùng với phản ánh {report_id} đã gửi; theo dõi tại requests/{report_id}.json / "
            f"This repeats report {report_id}; follow it at requests/{report_id}.json"
        )
    body = _created.dump_json([models.RequestCreated(service_request_id=report_id, service_notice=notice)])
    headers = {"Location": f"{PREFIX}/requests/{report_id}.json"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    if duplicate:
        headers["Duplicate-Of"] = report_id
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def _read_routes(api: APIRouter, state: ApiState) -> None:
    settings = state.settings

    @api.get(
        "/requests/{service_request_id}.json",
        response_model=list[models.ServiceRequest],
        responses={**_ERRORS, **_NOT_FOUND},
        summary="One request's status and history, as its incident moves through the lifecycle",
    )
    async def one_request(
        request: Request,
        service_request_id: Annotated[str, Path(max_length=128)],
        lang: Annotated[Literal["vi", "en"], Query()] = "vi",
    ) -> Response:
        def build(data: SiteData) -> bytes:
            found = data.run("report", state.site.unit, report_id=service_request_id)
            if not found:
                received = state.ledger.submitted(service_request_id)
                if received is None or not state.site.accepts_reports_for(received.unit):
                    return b""
                item = _service_request(
                    state, _received_row(received), incident=None, lang=lang, ioc_state=open311.RECEIVED, trail=[]
                )
                return _requests.dump_json([item])
            report = found[0]
            incident = _incidents(data, state, found).get(str(report["incident_id"]))
            trail = (
                data.run("incident_trail", state.site.unit, incident_id=str(report["incident_id"]))
                if report["incident_id"]
                else []
            )
            item = _service_request(
                state, report, incident=incident, lang=lang, ioc_state=_state_of(incident), trail=trail
            )
            return _requests.dump_json([item])

        response = await state.cached(request, ("request", service_request_id, lang), settings.cache_ttl_s, build)
        if response.status_code == 200 and not response.body:
            return open311_error(404, f"no request {service_request_id!r} in this site")
        return response

    @api.get(
        "/requests.json",
        response_model=list[models.ServiceRequest],
        responses=_ERRORS,
        summary="Requests by id, service, date range and status (no personal data)",
    )
    async def list_requests(
        request: Request,
        *,
        service_request_id: Annotated[
            str | None, Query(max_length=4000, description="Comma-separated ids; the other filters are then ignored.")
        ] = None,
        service_code: Annotated[str | None, Query(max_length=1000, description="Comma-separated services.")] = None,
        start_date: Annotated[dt.datetime | None, Query(description="Default: 90 days before end_date.")] = None,
        end_date: Annotated[dt.datetime | None, Query(description="Default: now.")] = None,
        status: Annotated[str | None, Query(max_length=20, description="open, closed, or open,closed.")] = None,
        lang: Annotated[Literal["vi", "en"], Query()] = "vi",
    ) -> Response:
        ids = tuple(sorted({i.strip() for i in (service_request_id or "").split(",") if i.strip()}))[:MAX_LIST]
        wanted_codes = tuple(sorted({c.strip() for c in (service_code or "").split(",") if c.strip()}))
        statuses = {s.strip() for s in (status or "open,closed").split(",") if s.strip()}
        if not statuses <= {"open", "closed"}:
            return open311_error(400, f"status {status!r}: use open, closed, or open,closed")
        for name, value in (("start_date", start_date), ("end_date", end_date)):
            if value is not None and not EARLIEST <= _local(value) <= LATEST:
                return open311_error(400, f"{name} must fall between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
        if start_date is not None and end_date is not None and _local(start_date) > _local(end_date):
            return open311_error(400, "start_date is after end_date")

        def build(data: SiteData) -> bytes:
            # Defaults are taken when the answer is built, so the cache key holds what was asked, not "now".
            end = _local(end_date) if end_date else dt.datetime.fromtimestamp(state.clock(), dt.UTC)
            start = _local(start_date) if start_date else end - dt.timedelta(days=DEFAULT_DAYS)
            if ids:
                reports = data.run("reports_by_id", state.site.unit, report_ids=ids)
                known = {str(r["report_id"]) for r in reports}
                for missing in ids:
                    received = state.ledger.submitted(missing) if missing not in known else None
                    if received is not None and state.site.accepts_reports_for(received.unit):
                        reports.append(_received_row(received))
            else:
                reports = data.run(
                    "reports",
                    state.site.unit,
                    start=start,
                    end=end,
                    any_category=0 if wanted_codes else 1,
                    categories=wanted_codes or ("",),
                    limit=MAX_LIST,
                )
            incidents = _incidents(data, state, reports)
            items = []
            for report in reports:
                incident = incidents.get(str(report["incident_id"]))
                ioc_state = _state_of(incident) if report["incident_id"] else open311.RECEIVED
                item = _service_request(state, report, incident=incident, lang=lang, ioc_state=ioc_state)
                if item.status in statuses:
                    items.append(item)
            return _requests.dump_json(items)

        key = ("requests", ids, wanted_codes, start_date, end_date, tuple(sorted(statuses)), lang)
        return await state.cached(request, key, settings.cache_ttl_s, build)
