"""Open-data routes for the citizen app: air quality, flood warnings, cameras, 766 scores, units; JSON pages."""

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request, Response

from dashboards.api import models, public
from dashboards.api.state import ApiState, problem
from dashboards.data import SiteData
from dashboards.sites import UnitOutsideSite
from ioc.decision766 import default_scheme
from ioc.fields import UNIT_CODE_PATTERN
from ioc.problems import Problem

# Served only when the site publishes open data (its public tier; `CitizenApiSettings.public_enabled`),
# always scoped to the site's subtree, narrowed by `unit` to a unit within it. Answers are paginated
# (`page`, `page_size`) and cached for the setting's lifetime with an ETag, so the many phones asking the
# same question cost one query. Errors are RFC 9457 problems.
#
# No `from __future__ import annotations` here: the routes' parameter types are built per app from its
# settings (the page-size limit), and FastAPI must see them as objects, not as names to look up.

__all__ = ["PROBLEMS", "router", "unit_or_problem"]

PREFIX: Final = "/open-data/v1"
PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"model": Problem, "description": "A parameter is wrong; `field` names it."},
    404: {"model": Problem, "description": "The unit is not in this site, or the site publishes no open data."},
}


def unit_or_problem(state: ApiState, unit: str | None) -> str | Response:
    """The unit to read (the site's when None), or the problem answer when open data is off or it is outside."""
    if not state.site.public:
        return problem(404, "Not published", f"site {state.site.unit} does not publish open data (public tier off)")
    try:
        state.site.get(unit or state.site.unit)
    except UnitOutsideSite as exc:
        return problem(404, "Unit outside the site", str(exc), field="unit")
    return unit or state.site.unit


def router(state: ApiState) -> APIRouter:
    """The open-data routes, bound to one site's state."""
    api = APIRouter(prefix=PREFIX, tags=["Open data"])
    settings = state.settings
    live, slow = settings.cache_ttl_s, settings.slow_cache_ttl_s
    unit_q = Annotated[str | None, Query(pattern=UNIT_CODE_PATTERN, description="A unit within the site (GSO code).")]
    page_q = Annotated[int, Query(ge=1, le=100_000, description="Page number, from 1.")]
    size_q = Annotated[int | None, Query(ge=1, le=settings.max_page_size, description="Items per page.")]

    def now() -> dt.datetime:
        return dt.datetime.fromtimestamp(state.clock(), dt.UTC)

    async def paged(
        request: Request,
        *,
        key: tuple[Any, ...],
        ttl: float,
        unit: str | None,
        page: int,
        page_size: int | None,
        items_of: Callable[[SiteData, str], list[Any]],
    ) -> Response:
        at = unit_or_problem(state, unit)
        if isinstance(at, Response):
            return at
        size = page_size or settings.page_size

        def build(data: SiteData) -> bytes:
            items = items_of(data, at)
            body = models.Page[Any](
                items=public.page_of(items, page, size), page=page, page_size=size, total=len(items), generated_at=now()
            )
            return body.model_dump_json().encode()

        return await state.cached(request, (*key, unit, page, size), ttl, build)

    @api.get(
        "/air-quality",
        response_model=models.Page[models.AirStation],
        responses=PROBLEMS,
        summary="Chất lượng không khí / Current VN_AQI per air station",
    )
    async def air_quality(
        request: Request, unit: unit_q = None, page: page_q = 1, page_size: size_q = None
    ) -> Response:
        return await paged(
            request,
            key=("air",),
            ttl=live,
            unit=unit,
            page=page,
            page_size=page_size,
            items_of=lambda data, at: public.air_stations(data, state.site, at, hours=settings.aqi_hours),
        )

    @api.get(
        "/flood-warnings",
        response_model=models.Page[models.FloodWarning],
        responses=PROBLEMS,
        summary="Cảnh báo ngập / Active flood incidents and gauges above their watch level",
    )
    async def flood_warnings(
        request: Request, unit: unit_q = None, page: page_q = 1, page_size: size_q = None
    ) -> Response:
        return await paged(
            request,
            key=("flood",),
            ttl=live,
            unit=unit,
            page=page,
            page_size=page_size,
            items_of=lambda data, at: public.flood_warnings(data, state.site, at, now=now()),
        )

    @api.get(
        "/cameras",
        response_model=models.Page[models.Camera],
        responses=PROBLEMS,
        summary="Vị trí camera / Camera locations and whether each is reporting",
    )
    async def cameras(request: Request, unit: unit_q = None, page: page_q = 1, page_size: size_q = None) -> Response:
        return await paged(
            request,
            key=("cameras",),
            ttl=slow,
            unit=unit,
            page=page,
            page_size=page_size,
            items_of=lambda data, at: public.cameras(data, state.site, at, now=now()),
        )

    @api.get(
        "/public-services/scores",
        response_model=models.ScorePage,
        responses=PROBLEMS,
        summary="Chỉ số phục vụ (QĐ 766) / Decision 766 public-service scores per unit, best first",
    )
    async def scores(
        request: Request,
        unit: unit_q = None,
        period: Annotated[
            str | None, Query(max_length=7, description="A month, e.g. 2025-06; default: the latest scored.")
        ] = None,
        page: page_q = 1,
        page_size: size_q = None,
    ) -> Response:
        at = unit_or_problem(state, unit)
        if isinstance(at, Response):
            return at
        try:
            month = public.parse_period(period)
        except ValueError as exc:
            return problem(400, "Bad period", str(exc), field="period")
        size = page_size or settings.page_size

        def build(data: SiteData) -> bytes:
            found, cards = public.scores(data, state.site, at, month)
            body = models.ScorePage(
                period_kind="month",
                period=found,
                scheme=default_scheme().id,
                items=public.page_of(cards, page, size),
                page=page,
                page_size=size,
                total=len(cards),
                generated_at=now(),
            )
            return body.model_dump_json().encode()

        return await state.cached(request, ("scores", unit, month, page, size), slow, build)

    @api.get(
        "/units",
        response_model=models.Page[models.UnitInfo],
        responses=PROBLEMS,
        summary="Đơn vị hành chính / The administrative units this site covers",
    )
    async def unit_list(request: Request, unit: unit_q = None, page: page_q = 1, page_size: size_q = None) -> Response:
        root = unit_or_problem(state, unit)
        if isinstance(root, Response):
            return root
        tree = state.site.tree
        codes = sorted(tree.subtree(root), key=lambda c: (len(c), c))
        infos = [
            models.UnitInfo(code=u.code, name=u.full_name, level=str(u.level), parent=u.parent, lat=u.lat, lon=u.lon)
            for u in (tree.get(c) for c in codes)
        ]
        size = page_size or settings.page_size
        body = models.Page[models.UnitInfo](
            items=public.page_of(infos, page, size), page=page, page_size=size, total=len(infos), generated_at=now()
        )
        return Response(body.model_dump_json().encode(), media_type="application/json")

    return api
