"""The retention job: the leader drops raw-observation months older than every site keeps (streams/retention.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Final

from streams import retention
from streams.runtime import Runtime

__all__ = ["FIRST_RUN_S", "register"]

log = logging.getLogger(__name__)

FIRST_RUN_S: Final = 60.0
"""Seconds after start before the first run (the leader is elected by then): a worker restarted more often than
`retention_every_s` still runs the job."""


def register(rt: Runtime) -> None:
    """Soon after start, then every `retention_every_s`, on the leader only, in a thread (it reads a topic and
    waits for ClickHouse). A failed run is logged and tried again next time; it never stops the worker."""
    every = rt.settings.retention_every_s

    @rt.app.task  # type: ignore[untyped-decorator]
    async def enforce_retention() -> None:
        await asyncio.sleep(min(FIRST_RUN_S, every))
        while True:
            if rt.app.is_leader():
                now = dt.datetime.fromtimestamp(rt.now(), dt.UTC)
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        None, retention.run_once, rt.settings, rt.model.rules, now
                    )
                except Exception:
                    log.exception("retention job failed; trying again in %.0f s", every)
            await asyncio.sleep(every)
