"""The clock: one worker (the leader) sends a tick to every partition of the stateful streams each second."""

from __future__ import annotations

import datetime as dt

from ioc import codecs
from ioc.events import Tick
from streams.runtime import TICKED, Runtime

__all__ = ["register", "send_ticks"]


async def send_ticks(rt: Runtime, at: dt.datetime) -> None:
    value = codecs.encode(Tick(at=at))
    for topic in TICKED:
        for partition in range(topic.partitions):
            await rt.topic(topic.name).send(key=b"tick", value=value, partition=partition)


def register(rt: Runtime) -> None:
    """Send ticks from the leader every `tick_s`.

    Ticks carry "now" (the runtime's clock), so silence, SLA escalation, window closing and time-based flushes run
    inside each partition's own stream, where Faust lets them change its state. Tests send ticks themselves to move
    time.
    """

    @rt.app.timer(interval=rt.settings.tick_s, on_leader=True)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        await send_ticks(rt, dt.datetime.fromtimestamp(rt.now(), dt.UTC))
