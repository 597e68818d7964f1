"""Calling an ASGI app in-process, lifespan included, for unit tests of the HTTP edges.

Starlette's TestClient now warns (an error here) unless `httpx2` is installed; httpx's own ASGI transport
does the same job, and entering the app's lifespan context runs its startup and shutdown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI


@contextlib.asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
