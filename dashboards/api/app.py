"""The citizen API's FastAPI application: routers, error handling, health checks and the OpenAPI spec."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboards.api import models, routes_citizen, routes_ngsi, routes_open311, routes_open_data, routes_vendors
from dashboards.api.clients import ApiClients
from dashboards.api.front_cache import FrontCache
from dashboards.api.ledger import Ledger
from dashboards.api.limits import AddressLimiter, AddressRateLimit
from dashboards.api.state import JSON, ApiState, open311_error, problem
from dashboards.data import TtlCache
from dashboards.sites import Site
from ioc import topics
from ioc.clients import clickhouse
from ioc.clients.delivery import AsyncProducer, DeliveryError, EventSink
from ioc.problems import PROBLEM_JSON, Problem
from ioc.settings import CitizenApiSettings

# `create_app(settings)` builds one site's API: Open311 GeoReport v2 (dashboards.api.routes_open311),
# open data as JSON (routes_open_data) and as NGSI-LD (routes_ngsi), `/healthz` and `/readyz`. Every error
# has one shape per family (Open311 error lists under /open311, RFC 9457 problems elsewhere), a warehouse
# outage is a 503 with Retry-After, never a 500, and the published spec says exactly that (`openapi()`
# is adjusted so schemathesis can hold every answer to it). Run it with `python -m dashboards.api`.

__all__ = ["create_app"]

log = logging.getLogger(__name__)

TITLE: Final = "IOC citizen API (Open311 GeoReport v2, open data, NGSI-LD)"
VERSION: Final = "1.0.0"
_VALIDATION_SCHEMAS: Final = ("#/components/schemas/HTTPValidationError",)
_TOO_MANY: Final = "Too many requests from this address (or this client's key); see Retry-After."


def _is_open311(path: str) -> bool:
    return path.startswith(routes_open311.PREFIX)


def _field_of(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "header", "body")]
    return ".".join(parts) or "request"


def create_app(
    settings: CitizenApiSettings,
    *,
    warehouse: clickhouse.Warehouse | None = None,
    sink: EventSink | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """One site's citizen API. `warehouse` and `sink` replace ClickHouse and Kafka (tests); else from settings."""
    site = Site.from_settings(settings)

    def connect() -> clickhouse.Warehouse:
        if warehouse is not None:
            return warehouse
        return clickhouse.connect(settings.clickhouse, database=settings.clickhouse.database)

    state = ApiState(
        settings=settings,
        site=site,
        clients=ApiClients(settings.clients),
        ledger=Ledger(settings.idempotency_db, settings.idempotency_ttl_h * 3600),
        sink=sink
        or AsyncProducer(settings.kafka, client_id=f"ioc-api-{settings.site_unit}", timeout_s=settings.kafka_timeout_s),
        cache=TtlCache(max_entries=4096),
        clock=clock,
        connect=connect,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description=(
            f"Citizen API of IOC site {site.unit} ({site.name}). Open311 GeoReport v2 for field reports "
            "(phản ánh hiện trường): submitting needs a client API key; reading needs none. Open data "
            f"(air quality, flood warnings, cameras, Decision 766 scores) as JSON and as NGSI-LD entities"
            f"{'' if site.public else ' (off for this site: its public tier is off)'}."
        ),
        lifespan=lifespan,
    )
    app.state.api = state
    app.include_router(routes_open311.router(state))
    app.include_router(routes_open_data.router(state))
    app.include_router(routes_ngsi.router(state))
    app.include_router(routes_vendors.router(state))
    app.include_router(routes_citizen.router(state))
    _ops_routes(app, state)
    _error_handlers(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(FrontCache)
    # Added last, so outermost: every request is metered by its address before any other work, cached ones too.
    app.add_middleware(
        AddressRateLimit,
        limiter=AddressLimiter(settings.address_rate_per_s, settings.address_burst, settings.address_table_size),
    )
    return app


def _ops_routes(app: FastAPI, state: ApiState) -> None:
    @app.get("/healthz", tags=["Operations"], response_model=dict[str, str], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["Operations"],
        response_model=dict[str, str],
        responses={503: {"model": Problem, "description": "ClickHouse or Kafka cannot be reached."}},
        summary="ClickHouse answers and Kafka knows the citizen-reports topic",
    )
    async def readyz() -> Response:
        try:
            data = await state.data()
            warehouse_ok = await state.query(lambda d: d.ping())
        except clickhouse.WarehouseError:
            data, warehouse_ok = None, False
        try:
            await asyncio.to_thread(state.sink.partitions, topics.CITIZEN_REPORTS.name)
            kafka_ok = True
        except DeliveryError:
            kafka_ok = False
        if data is None or not warehouse_ok or not kafka_ok:
            down = [name for name, ok in (("clickhouse", warehouse_ok), ("kafka", kafka_ok)) if not ok]
            return problem(503, "Not ready", f"cannot reach {', '.join(down)}", headers={"Retry-After": "5"})
        return Response(b'{"status":"ready"}', media_type=JSON)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = _field_of(first.get("loc", ()))
        message = f"`{field}`: {first.get('msg', 'invalid')}"
        if _is_open311(request.url.path):
            return open311_error(400, message)
        return problem(400, "Bad request", message, field=field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = str(exc.detail)
        headers = dict(exc.headers or {})
        if _is_open311(request.url.path):
            return open311_error(exc.status_code, detail, headers)
        return problem(exc.status_code, detail, f"{request.method} {request.url.path}: {detail}", headers=headers)

    @app.exception_handler(clickhouse.WarehouseError)
    async def warehouse_down(request: Request, exc: clickhouse.WarehouseError) -> Response:
        log.warning("warehouse unavailable for %s: %s", request.url.path, exc)
        detail = "the warehouse cannot be reached right now; retry shortly"
        if _is_open311(request.url.path):
            return open311_error(503, detail, {"Retry-After": "5"})
        return problem(503, "Service unavailable", detail, headers={"Retry-After": "5"})


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's spec, corrected to what the API sends: 400 (not 422) for bad parameters, problem+json."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
    schemas.setdefault(
        "Open311Error", models.Open311Error.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            _fix_operation(path, operation)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    app.openapi_schema = spec
    return spec


def _fix_operation(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    automatic = responses.get("422", {}).get("content", {}).get(JSON, {}).get("schema", {}).get("$ref")
    if automatic in _VALIDATION_SCHEMAS:
        del responses["422"]
    open311_errors = {"type": "array", "items": {"$ref": "#/components/schemas/Open311Error"}}
    if _is_open311(path):
        responses.setdefault(
            "400", {"description": "A parameter is wrong.", "content": {JSON: {"schema": open311_errors}}}
        )
        responses.setdefault(
            "503", {"description": "The warehouse cannot be reached.", "content": {JSON: {"schema": open311_errors}}}
        )
        responses.setdefault("429", {"description": _TOO_MANY, "content": {JSON: {"schema": open311_errors}}})
        return
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    if path not in ("/healthz", "/ngsi-ld/v1/context.jsonld"):
        responses.setdefault(
            "400", {"description": "A parameter is wrong.", "content": {JSON: {"schema": problem_ref}}}
        )
        responses.setdefault(
            "503", {"description": "The warehouse cannot be reached.", "content": {JSON: {"schema": problem_ref}}}
        )
        responses.setdefault("429", {"description": _TOO_MANY, "content": {JSON: {"schema": problem_ref}}})
    for status, response in responses.items():
        content = response.get("content")
        if status.isdigit() and int(status) >= 400 and content and JSON in content:
            content[PROBLEM_JSON] = content.pop(JSON)
    if path == "/ngsi-ld/v1/context.jsonld":
        ok = responses.get("200", {}).get("content", {})
        if JSON in ok:
            ok["application/ld+json"] = ok.pop(JSON)
