"""NGSI-LD routes: the open data as Smart Data Models entities (AirQualityObserved, Alert, Device)."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request, Response

from dashboards.api import models, ngsi, public
from dashboards.api.routes_open_data import unit_or_problem
from dashboards.api.state import JSON, LD_JSON, ApiState, problem
from dashboards.data import SiteData
from ioc.fields import UNIT_CODE_PATTERN
from ioc.problems import Problem

# A read-only subset of the NGSI-LD API (ETSI GS CIM 009): `GET /ngsi-ld/v1/entities` by `type` and/or
# `id`, with `limit`/`offset` paging, `count=true` (NGSILD-Results-Count) and `options=keyValues`;
# `GET /entities/{id}`; `GET /types`. With `Accept: application/ld+json` every entity carries its
# `@context`; otherwise the context comes as a Link header, as the specification asks. Same scope, cache
# and public-tier switch as the JSON open data.

__all__ = ["router"]

PREFIX: Final = "/ngsi-ld/v1"
MAX_LIMIT: Final = 1000

_ENTITY_LIST: Final[dict[str, Any]] = {"type": "array", "items": models.ngsi_schema()}
_NGSI_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"model": Problem, "description": "BadRequestData: a parameter is wrong."},
    404: {"model": Problem, "description": "ResourceNotFound, or the site publishes no open data."},
}


def _wants_ld(request: Request) -> bool:
    return LD_JSON in request.headers.get("accept", "")


def _entities(
    data: SiteData, state: ApiState, unit: str, types: tuple[str, ...], now: dt.datetime
) -> list[dict[str, Any]]:
    site = state.site
    found: list[dict[str, Any]] = []
    if "AirQualityObserved" in types:
        for s in public.air_stations(data, site, unit, hours=state.settings.aqi_hours):
            found.append(
                ngsi.air_quality_observed(
                    station=s.station,
                    unit_name=s.unit_name,
                    lat=s.lat,
                    lon=s.lon,
                    aqi=s.aqi,
                    band=s.band.level,
                    band_label_vi=s.band.label_vi,
                    dominant=s.dominant_pollutant,
                    hour=s.observed_hour,
                )
            )
    if "Alert" in types:
        for row in public.public_alerts(data, site, unit):
            found.append(
                ngsi.alert(
                    incident_id=str(row["incident_id"]),
                    rule=str(row["rule"]),
                    severity=str(row["severity"]),
                    title=str(row["title"]),
                    unit_name=site.row_unit_full_name(str(row["unit"])),
                    lat=row["lat"],
                    lon=row["lon"],
                    opened_at=row["opened_at"],
                )
            )
    if "Device" in types:
        for c in public.cameras(data, site, unit, now=now):
            found.append(
                ngsi.camera_device(
                    device=c.device, unit_name=c.unit_name, lat=c.lat, lon=c.lon, last_seen=c.last_seen, online=c.online
                )
            )
    return found


def _render(entities: list[dict[str, Any]], *, ld: bool, key_values: bool) -> list[dict[str, Any]]:
    shaped = [ngsi.simplified(e) if key_values else e for e in entities]
    return [{**e, "@context": list(ngsi.CONTEXT)} for e in shaped] if ld else shaped


def _now(state: ApiState) -> dt.datetime:
    return dt.datetime.fromtimestamp(state.clock(), dt.UTC)


def _context_link(request: Request) -> str:
    url = str(request.base_url).rstrip("/") + f"{PREFIX}/context.jsonld"
    return f'<{url}>; rel="{ngsi.LINK_REL}"; type="{LD_JSON}"'


def _bad(detail: str, field: str | None = None) -> Response:
    return problem(400, "Bad request data", detail, field=field, kind=ngsi.ERROR_BAD_REQUEST)


def router(state: ApiState) -> APIRouter:
    """The NGSI-LD routes, bound to one site's state."""
    api = APIRouter(prefix=PREFIX, tags=["NGSI-LD (FIWARE Smart Data Models)"])
    _query_routes(api, state)
    _meta_routes(api, state)
    return api


def _query_routes(api: APIRouter, state: ApiState) -> None:
    ttl = state.settings.cache_ttl_s

    @api.get(
        "/entities",
        response_model=list[dict[str, Any]],
        responses={
            200: {"content": {LD_JSON: {"schema": _ENTITY_LIST}}, "description": "The matching entities."},
            **_NGSI_PROBLEMS,
        },
        summary="Query entities by type and/or id",
    )
    async def entities(
        request: Request,
        *,
        type: Annotated[
            str | None, Query(max_length=200, description="Comma-separated: AirQualityObserved, Alert, Device.")
        ] = None,
        id: Annotated[str | None, Query(max_length=4000, description="Comma-separated entity ids.")] = None,
        limit: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = 20,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        count: Annotated[bool, Query(description="Send the total in NGSILD-Results-Count.")] = False,
        options: Annotated[str | None, Query(max_length=100, description="keyValues for the simplified form.")] = None,
        unit: Annotated[
            str | None, Query(pattern=UNIT_CODE_PATTERN, description="IOC extension: a unit within the site.")
        ] = None,
    ) -> Response:
        if type is None and id is None:
            return _bad("give `type` or `id` (NGSI-LD needs one to query entities)", "type")
        ids = tuple(sorted({i.strip() for i in (id or "").split(",") if i.strip()}))
        asked = tuple(t.strip() for t in (type or "").split(",") if t.strip())
        if not asked:
            asked = tuple(sorted({_type_of(i) for i in ids} & set(ngsi.ENTITY_TYPES)))
        at = unit_or_problem(state, unit)
        if isinstance(at, Response):
            return at
        option_set = {o.strip() for o in (options or "").split(",")}
        key_values = bool(option_set & {"keyValues", "simplified"})
        ld = _wants_ld(request)
        link = _context_link(request)

        def build(data: SiteData) -> tuple[bytes, dict[str, str]]:
            found = _entities(data, state, at, tuple(t for t in asked if t in ngsi.ENTITY_TYPES), _now(state))
            if ids:
                found = [e for e in found if e["id"] in ids]
            window = found[offset : offset + limit]
            headers: dict[str, str] = {}
            links = [] if ld else [link]
            if offset + limit < len(found) and limit > 0:
                query = dict(request.query_params)
                query["offset"] = str(offset + limit)
                links.append(f'<{request.url.path}?{urllib.parse.urlencode(query)}>; rel="next"')
            if links:
                headers["Link"] = ", ".join(links)
            if count:
                headers["NGSILD-Results-Count"] = str(len(found))
            return json.dumps(_render(window, ld=ld, key_values=key_values), ensure_ascii=False).encode(), headers

        key = ("ngsi", asked, ids, unit, limit, offset, count, key_values, ld, str(request.url.path))
        return await state.cached(request, key, ttl, build, media_type=LD_JSON if ld else JSON)

    @api.get(
        "/entities/{entity_id}",
        response_model=dict[str, Any],
        responses={
            200: {"content": {LD_JSON: {"schema": models.ngsi_schema()}}, "description": "The entity."},
            **_NGSI_PROBLEMS,
        },
        summary="One entity by its id (a URN)",
    )
    async def entity(
        request: Request,
        entity_id: Annotated[str, Path(max_length=300)],
        options: Annotated[str | None, Query(max_length=100)] = None,
    ) -> Response:
        entity_type = _type_of(entity_id)
        if entity_type not in ngsi.ENTITY_TYPES:
            return problem(
                404, "Resource not found", f"no entity {entity_id!r} here", kind=ngsi.ERROR_NOT_FOUND, field="entity_id"
            )
        at = unit_or_problem(state, None)
        if isinstance(at, Response):
            return at
        key_values = bool({o.strip() for o in (options or "").split(",")} & {"keyValues", "simplified"})
        ld = _wants_ld(request)

        def build(data: SiteData) -> tuple[bytes, dict[str, str]]:
            found = [e for e in _entities(data, state, at, (entity_type,), _now(state)) if e["id"] == entity_id]
            if not found:
                return b"", {}
            body = json.dumps(_render(found, ld=ld, key_values=key_values)[0], ensure_ascii=False).encode()
            return body, ({} if ld else {"Link": _context_link(request)})

        response = await state.cached(
            request, ("ngsi-one", entity_id, key_values, ld), ttl, build, media_type=LD_JSON if ld else JSON
        )
        if response.status_code == 200 and not response.body:
            return problem(
                404, "Resource not found", f"no entity {entity_id!r} here", kind=ngsi.ERROR_NOT_FOUND, field="entity_id"
            )
        return response


def _meta_routes(api: APIRouter, state: ApiState) -> None:
    @api.get("/types", response_model=dict[str, Any], responses=_NGSI_PROBLEMS, summary="The entity types served")
    async def types() -> Response:
        if not state.site.public:
            return problem(404, "Not published", f"site {state.site.unit} does not publish open data (public tier off)")
        body = {"id": "urn:ngsi-ld:EntityTypeList:ioc", "type": "EntityTypeList", "typeList": list(ngsi.ENTITY_TYPES)}
        return Response(json.dumps(body).encode(), media_type=JSON)

    @api.get("/context.jsonld", response_model=dict[str, Any], summary="The JSON-LD @context of every entity")
    async def context() -> Response:
        return Response(json.dumps({"@context": list(ngsi.CONTEXT)}).encode(), media_type=LD_JSON)


def _type_of(entity_id: str) -> str:
    """The entity type inside `urn:ngsi-ld:<Type>:<id>` ('' if it is not such a URN)."""
    parts = entity_id.split(":", 3)
    return parts[2] if len(parts) == 4 and parts[:2] == ["urn", "ngsi-ld"] else ""
