"""The citizen page (public tier): `/citizen/` to send a report, `/citizen/follow` to follow it, photo uploads.

Served when the site's public tier is on and `citizen_page_client` names a configured client (the page sends
its reports through Open311 with that client's key: dashboards.api.citizen_page). Photos (when `photo_dir` is
set) are checked to be images, re-encoded as JPEG without their metadata (a phone's photo carries where it was
taken and by what device), at most 2048 px on a side, kept by content hash and served back by that name; the
report carries the photo's URL as its Open311 `media_url`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from pathlib import Path
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from PIL import Image, UnidentifiedImageError

from dashboards.api import citizen_page, open311
from dashboards.api.routes_open311 import read_body
from dashboards.api.state import JSON, ApiState, problem
from ioc import units

__all__ = ["PREFIX", "router"]

PREFIX: Final = "/citizen"
MAX_SIDE: Final = 2048
_NAME: Final = re.compile(r"^[0-9a-f]{64}\.jpg$")
_PAGE_HEADERS: Final = {
    "Cache-Control": "public, max-age=300",
    "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


LangQuery = Annotated[Literal["vi", "en"], Query(description="Language of the page: vi (default) or en.")]


class PhotoRefused(ValueError):
    """Not an image the page takes; the message says why."""


def reencoded(data: bytes) -> bytes:
    """The photo as a JPEG without metadata, at most MAX_SIDE px on a side; PhotoRefused when it is no image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            picture = image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise PhotoRefused(f"not an image the page takes ({type(exc).__name__})") from None
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)  # a fresh file: no EXIF, no GPS position
    return out.getvalue()


def router(state: ApiState) -> APIRouter:
    """The page's routes, bound to one site's state (none when the page is off)."""
    api = APIRouter(prefix=PREFIX, tags=["Citizen page"], include_in_schema=False)
    settings = state.settings
    client = settings.clients.get(settings.citizen_page_client or "")
    if not state.site.public or client is None:
        return api
    key = client.key.get_secret_value()
    tree = units.load_tree("2024")
    communes = [u for u in tree.at_level(units.Level.COMMUNE) if state.site.accepts_reports_for(u.code)]
    photos: Path | None = settings.photo_dir

    @api.get("/", response_class=HTMLResponse)
    async def report_form(lang: LangQuery = "vi") -> HTMLResponse:
        services = [(s.service_code, s.service_name) for s in open311.services(state.site.model, lang)]
        page = citizen_page.report_page(lang, services=services, communes=communes, api_key=key, photos=bool(photos))
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    @api.get("/follow", response_class=HTMLResponse)
    async def follow(lang: LangQuery = "vi") -> HTMLResponse:
        return HTMLResponse(citizen_page.follow_page(lang), headers=_PAGE_HEADERS)

    if photos is None:
        return api

    @api.post("/v1/photos", status_code=201)
    async def upload(request: Request) -> Response:
        try:
            data = await read_body(request, settings.photo_max_bytes)
        except open311.RequestError as exc:
            return problem(exc.status, "Photo too large", exc.message)
        try:
            jpeg = await asyncio.to_thread(reencoded, data)
        except PhotoRefused as exc:
            return problem(415, "Not a photo", str(exc))
        name = f"{hashlib.sha256(jpeg).hexdigest()}.jpg"
        photos.mkdir(parents=True, exist_ok=True)
        target = photos / name
        if not target.exists():
            await asyncio.to_thread(target.write_bytes, jpeg)
        url = f"{str(request.base_url).rstrip('/')}{PREFIX}/v1/photos/{name}"
        return Response(f'{{"url": "{url}"}}'.encode(), status_code=201, media_type=JSON)

    @api.get("/v1/photos/{name}")
    async def photo(name: Annotated[str, PathParam(max_length=80)]) -> Response:
        target = photos / name
        if not _NAME.match(name) or not target.is_file():
            return problem(404, "Not found", f"no photo {name[:80]!r}")
        body = await asyncio.to_thread(target.read_bytes)
        return Response(body, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})

    return api
