"""The one-stop portal connector's HTTP face: the signed dossier webhook and the children's report inbox.

`create_app(settings)` serves:

- `POST /portal/v1/dossier-events`: one `ServiceRecord` or a batch, signed with `X-IOC-Signature`
  (ioc.signing). Bad or missing signatures: 401, nothing kept (unauthenticated bytes are not ours to
  store). Oversized bodies: 413. Each snapshot is then judged; refused ones are dead-lettered with their
  reason and the answer is 422 listing them, otherwise 202. A 2xx/422 means Kafka has every part.
- `POST /reports/v1/upward`: a child site's `SignedReport` (sensors.gateways.reports); 201 new, 200 replay.
- `GET /reports/v1/upward[/{report_id}]`: the children's latest reports, with `read_token`.
- `/healthz`, `/readyz`.

With `poll_url` set, the lifespan also runs the poller (sensors.gateways.poller). Errors are RFC 9457
problems. Run it with `python -m sensors.gateways` or `ioc portal`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Final, Literal

import httpx
import pydantic
from fastapi import FastAPI, Header, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ioc import codecs, signing, topics
from ioc.clients.delivery import AsyncProducer, DeliveryError, EventSink
from ioc.events import DeadLetterReason
from ioc.problems import PROBLEM_JSON, Problem, problem_body
from ioc.scope import Scope, site_scope
from ioc.settings import PortalGatewaySettings
from sensors.gateways.intake import DossierIntake, ItemResult
from sensors.gateways.judge import Rejected, judge
from sensors.gateways.poller import Poller
from sensors.gateways.reports import ReportInbox, ReportRefused, decode_report
from sensors.gateways.state import GatewayState

__all__ = ["WEBHOOK_PATH", "create_app"]

log = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/portal/v1/dossier-events"
REPORTS_PATH: Final = "/reports/v1/upward"


class ItemOutcome(pydantic.BaseModel):
    index: int
    result: Literal["accepted", "duplicate", "stale", "refused"]
    dossier_id: str | None = None
    status_version: int | None = None
    reason: str | None = None
    detail: str | None = None


class WebhookAnswer(pydantic.BaseModel):
    """What became of each snapshot of a webhook call."""

    accepted: int
    duplicates: int
    stale: int
    refused: int
    results: list[ItemOutcome]


class ReportAnswer(pydantic.BaseModel):
    result: Literal["accepted", "duplicate"]
    report_id: str
    idempotency_key: str


class ReportSummary(pydantic.BaseModel):
    report_id: str
    unit: str
    period_kind: str
    period_label: str
    revision: str
    idempotency_key: str
    generated_at: dt.datetime
    received_at: dt.datetime


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = problem_body(status, title, detail)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"model": Problem, "description": title, "content": {PROBLEM_JSON: {}}}
        for s, title in ((s, _TITLES[s]) for s in statuses)
    }


_TITLES: Final[dict[int, str]] = {
    400: "The body is not JSON of the expected shape.",
    401: "Missing, malformed, stale or wrong signature.",
    403: "Not allowed (a report of a unit not under this site; a wrong read token).",
    404: "Not found, or reading reports is off.",
    413: "The body is over the limit.",
    422: "Some snapshots were refused (dead-lettered), or the report does not hold together.",
    503: "Kafka did not take it; retry.",
}


class _TooLarge(Exception):
    pass


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(results: list[ItemResult]) -> WebhookAnswer:
    count = {k: sum(r.result == k for r in results) for k in ("accepted", "duplicate", "stale", "refused")}
    return WebhookAnswer(
        accepted=count["accepted"],
        duplicates=count["duplicate"],
        stale=count["stale"],
        refused=count["refused"],
        results=[ItemOutcome(**dataclasses.asdict(r)) for r in results],
    )


@dataclasses.dataclass(frozen=True)
class _Parts:
    """What the routes share: settings, scope, secrets, the intake, the inbox, the state and Kafka."""

    settings: PortalGatewaySettings
    scope: Scope
    secrets: list[str]
    intake: DossierIntake
    inbox: ReportInbox
    memory: GatewayState
    events: EventSink
    clock: Callable[[], float]


def create_app(
    settings: PortalGatewaySettings,
    *,
    sink: EventSink | None = None,
    state: GatewayState | None = None,
    clock: Callable[[], float] = time.time,
    poll_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """The connector for one site. `sink` and `state` replace Kafka and the SQLite file (tests)."""
    scope = site_scope(settings.site_unit, "2024")
    events: EventSink = sink or AsyncProducer(
        settings.kafka, client_id=f"ioc-portal-{settings.site_unit}", timeout_s=settings.kafka_timeout_s
    )
    memory = state or GatewayState(settings.state_db)
    now = lambda: dt.datetime.fromtimestamp(clock(), dt.UTC)  # noqa: E731 - one-line clock adapter
    intake = DossierIntake(events, memory, clock=now)
    inbox = ReportInbox(
        memory,
        events,
        site_unit=settings.site_unit,
        public_keys=settings.report_keys,
        relay=settings.relay_reports,
        clock=now,
    )
    secrets = [s.get_secret_value() for s in settings.webhook_secrets]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = None
        client = None
        if settings.poll_url is not None:
            client = poll_client or httpx.AsyncClient(timeout=30.0)
            poller = Poller(settings, intake, memory, scope, client, clock=clock)
            app.state.poller = poller
            task = asyncio.create_task(poller.run(stop), name="portal-poller")
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            if client is not None and poll_client is None:
                await client.aclose()
            events.close()
            memory.close()

    app = FastAPI(
        title="IOC one-stop portal connector",
        version="1.0.0",
        description=(
            f"Dossier status events from the one-stop public-service portal, and upward reports from the sites "
            f"under {settings.site_unit}, into the IOC's Kafka."
        ),
        lifespan=lifespan,
    )
    app.state.intake = intake
    app.state.inbox = inbox
    app.state.memory = memory
    parts = _Parts(settings, scope, secrets, intake, inbox, memory, events, clock)
    _webhook_route(app, parts)
    _report_routes(app, parts)
    _ops_routes(app, parts)
    _error_handlers(app)
    return app


def _webhook_route(app: FastAPI, parts: _Parts) -> None:
    settings, scope, secrets, intake, clock = parts.settings, parts.scope, parts.secrets, parts.intake, parts.clock

    @app.post(
        WEBHOOK_PATH,
        status_code=202,
        response_model=WebhookAnswer,
        responses={
            **_problems(400, 401, 413, 503),
            422: {"model": WebhookAnswer, "description": _TITLES[422]},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}}},
            }
        },
        summary="Dossier status snapshots from the portal (signed webhook)",
    )
    async def dossier_events(request: Request) -> Response:
        try:
            body = await _read(request, settings.max_body_bytes)
        except _TooLarge as exc:
            return problem(413, "Payload too large", str(exc))
        try:
            signing.verify_webhook(
                request.headers.get(signing.SIGNATURE_HEADER),
                body,
                secrets,
                now=clock(),
                tolerance_s=settings.signature_tolerance_s,
            )
        except signing.SignatureError as exc:
            log.warning("webhook refused from %s: %s", request.client.host if request.client else "?", exc)
            return problem(401, "Bad signature", f"{exc.reason}: {exc.message}")
        verdicts = judge(body, scope, max_batch=settings.max_batch)
        try:
            results = await intake.take(verdicts, f"http:{WEBHOOK_PATH}")
        except DeliveryError as exc:
            return problem(503, "Kafka unavailable", f"{exc}; retry", headers={"Retry-After": "5"})
        answer = _answer(results)
        whole = (
            len(verdicts) == 1 and isinstance(verdicts[0], Rejected) and verdicts[0].reason is DeadLetterReason.NOT_JSON
        )
        status = 400 if whole else 422 if answer.refused else 202
        if whole:
            refused = verdicts[0]
            assert isinstance(refused, Rejected)
            return problem(400, "Not JSON", f"the body is not JSON ({refused.detail}); it was dead-lettered")
        return Response(answer.model_dump_json().encode(), status_code=status, media_type="application/json")


def _report_routes(app: FastAPI, parts: _Parts) -> None:
    settings, inbox, memory = parts.settings, parts.inbox, parts.memory

    @app.post(
        REPORTS_PATH,
        status_code=201,
        response_model=ReportAnswer,
        responses={
            200: {"model": ReportAnswer, "description": "Already kept: nothing changed."},
            **_problems(400, 401, 403, 413, 422, 503),
        },
        summary="A child site's signed upward report",
    )
    async def upward_report(
        request: Request,
        idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
    ) -> Response:
        try:
            body = await _read(request, settings.max_body_bytes)
        except _TooLarge as exc:
            return problem(413, "Payload too large", str(exc))
        try:
            outcome = await inbox.receive(body, idempotency_key)
        except ReportRefused as exc:
            log.warning("upward report refused (%d): %s", exc.status, exc.message)
            return problem(exc.status, "Report refused", exc.message)
        except DeliveryError as exc:
            return problem(503, "Kafka unavailable", f"{exc}; retry", headers={"Retry-After": "5"})
        answer = ReportAnswer(
            result=outcome.result, report_id=outcome.report_id, idempotency_key=outcome.idempotency_key
        )
        return Response(
            answer.model_dump_json().encode(),
            status_code=201 if outcome.result == "accepted" else 200,
            media_type="application/json",
        )

    def _authorised(authorization: str | None) -> Response | None:
        if settings.read_token is None:
            return problem(404, "Reading is off", "set IOC_PORTAL_READ_TOKEN to read received reports")
        expected = f"Bearer {settings.read_token.get_secret_value()}"
        if authorization is None or not hmac.compare_digest(authorization, expected):
            return problem(403, "Forbidden", "a valid `Authorization: Bearer <read token>` is needed")
        return None

    @app.get(
        REPORTS_PATH,
        response_model=list[ReportSummary],
        responses=_problems(403, 404),
        summary="Children's latest reports",
    )
    async def list_reports(authorization: Annotated[str | None, Header()] = None) -> Response:
        refused = _authorised(authorization)
        if refused is not None:
            return refused
        found = [
            ReportSummary(
                report_id=r.report_id,
                unit=r.unit,
                period_kind=r.period_kind,
                period_label=r.period_label,
                revision=r.revision,
                idempotency_key=r.idempotency_key,
                generated_at=r.generated_at,
                received_at=r.received_at,
            )
            for r in memory.reports()
        ]
        body = pydantic.TypeAdapter(list[ReportSummary]).dump_json(found)
        return Response(body, media_type="application/json")

    @app.get(
        REPORTS_PATH + "/{report_id}",
        response_model=dict[str, Any],
        responses=_problems(403, 404),
        summary="A child's latest report for one period, as it signed it",
    )
    async def one_report(
        report_id: Annotated[str, Path(max_length=64)], authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        refused = _authorised(authorization)
        if refused is not None:
            return refused
        found = memory.reports(report_id)
        if not found:
            return problem(404, "Not found", f"no report {report_id!r} received")
        return Response(codecs.encode(decode_report(found[0])), media_type="application/json")


def _ops_routes(app: FastAPI, parts: _Parts) -> None:
    events = parts.events

    @app.get("/healthz", response_model=dict[str, str])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=dict[str, str], responses=_problems(503))
    async def readyz() -> Response:
        try:
            await asyncio.to_thread(events.partitions, topics.SERVICE_RECORDS.name)
        except DeliveryError as exc:
            return problem(503, "Not ready", str(exc), headers={"Retry-After": "5"})
        return Response(b'{"status":"ready"}', media_type="application/json")


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("header", "path", "query", "body"))
        return problem(400, "Bad request", f"`{where or 'request'}`: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return problem(exc.status_code, str(exc.detail), f"{request.method} {request.url.path}: {exc.detail}")
