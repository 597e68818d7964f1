"""The retention job: the leader drops raw-observation months older than every site keeps (streams/retention.py)."""

from __future__ import annotations

import asyncio
import datetime as dt

from streams import retention
from streams import rules as device_rules
from streams.runtime import Runtime

__all__ = ["register"]


def register(rt: Runtime) -> None:
    """Every `retention_every_s` on the leader, in a thread (it reads a topic and waits for ClickHouse)."""
    rules = device_rules.sensor_rules(rt.model)

    @rt.app.timer(interval=rt.settings.retention_every_s, on_leader=True)  # type: ignore[untyped-decorator]
    async def enforce_retention() -> None:
        now = dt.datetime.fromtimestamp(rt.now(), dt.UTC)
        await asyncio.get_running_loop().run_in_executor(None, retention.run_once, rt.settings, rules, now)
