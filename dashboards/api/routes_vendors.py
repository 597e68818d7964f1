"""A vendor's own rejections, read with its token: `GET /vendors/v1/rejections.json` (docs/vendors.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

import pydantic
from fastapi import APIRouter, Header, Query, Response

from dashboards.api import models
from dashboards.api.state import JSON, ApiState, problem
from dashboards.data import SiteData
from ioc import vendortoken

# The vendor is the one its bearer token names (ioc.vendortoken, issued into the vendor's Secret by the
# operator), never a parameter: a token reads its own vendor's letters and nothing else. Answers are private
# (`Cache-Control: private, no-store`) and outside the front cache's prefixes. Without `vendor_token_key` the
# route is not served at all.

__all__ = ["PREFIX", "router"]

PREFIX: Final = "/vendors/v1"
MAX_DAYS: Final = 30
_rejections: Final = pydantic.TypeAdapter(models.VendorRejections)
_PRIVATE: Final = {"Cache-Control": "private, no-store", "Vary": "Authorization"}
_CHALLENGE: Final = {**_PRIVATE, "WWW-Authenticate": 'Bearer realm="ioc-vendors"'}


def router(state: ApiState) -> APIRouter:
    """The vendor routes, bound to one site's state (empty when no token key is configured)."""
    api = APIRouter(prefix=PREFIX, tags=["Vendors"])
    key = state.settings.vendor_token_key
    if key is None:
        return api
    secret = key.get_secret_value()

    @api.get(
        "/rejections.json",
        response_model=models.VendorRejections,
        responses={
            401: {"description": "No token, or not one the platform issued: send `Authorization: Bearer <token>`."},
        },
        summary="Your refused messages, newest first (your token names you; you see only your own)",
    )
    async def rejections(
        authorization: Annotated[str | None, Header(description="`Bearer <api-token from your Secret>`")] = None,
        days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="How many days back.")] = 1,
        limit: Annotated[int, Query(ge=1, le=1000, description="Most letters returned.")] = 200,
    ) -> Response:
        scheme, _, token = (authorization or "").partition(" ")
        vendor = vendortoken.verify(secret, token) if scheme.lower() == "bearer" else None
        if vendor is None:
            return problem(401, "Unauthorized", "send `Authorization: Bearer <your api-token>`", headers=_CHALLENGE)
        end = dt.datetime.fromtimestamp(state.clock(), dt.UTC)
        since = end - dt.timedelta(days=days)

        def read(data: SiteData) -> list[dict[str, Any]]:
            return data.run(
                "vendor_rejections",
                state.site.unit,
                vendor=vendor,
                start=since,
                end=end,
                limit=limit,
                include_unplaced=int(state.site.is_tree_root),
            )

        rows = await state.query(read)
        body = models.VendorRejections(
            vendor=vendor, since=since, items=[models.VendorRejection.model_validate(r) for r in rows]
        )
        return Response(_rejections.dump_json(body), media_type=JSON, headers=_PRIVATE)

    return api
