"""Dead letters: store what the edge refused, with its reason and place in the tree, for the Data quality page.

A letter is placed by the unit of the device topic it came from (`letter_place`), so each site's database
gets its subtree's letters. A record on the dead-letter topic that is not a dead letter is itself
dead-lettered (`undecodable`).
"""

from __future__ import annotations

from typing import Any, Final

from ioc import topics
from ioc.units import UnitTree
from streams.agents.common import fail_fast
from streams.pipeline import PartitionBuffer
from streams.runtime import Runtime
from streams.warehouse import rows

__all__ = ["letter_place", "register"]

_TOPIC_PREFIXES: Final = ("mqtt:" + topics.MQTT_PREFIX + "/", topics.MQTT_PREFIX + "/")
"""Sources naming a device topic: the bridge writes `mqtt:<topic>` (sensors/bridge/service.py); letters from
before it prefixed its sources start at the topic itself."""


def letter_place(source: str, tree: UnitTree) -> tuple[str, str]:
    """(unit, path) of the device topic a letter came from, or ("", "") when it names no unit of the tree.

    Only the unit segment is read: a topic refused for another segment (a bad device id) still has its place."""
    for prefix in _TOPIC_PREFIXES:
        if source.startswith(prefix):
            unit = source[len(prefix) :].split("/", maxsplit=1)[0]
            return (unit, tree.path(unit)) if unit in tree else ("", "")
    return ("", "")


def register(rt: Runtime) -> None:
    """Read `ioc.deadletter.v1` into `deadletters` through a pipeline (offsets committed only over stored rows)."""
    pipeline = rt.pipeline("deadletters", topics.DEADLETTER.name, flush_when_idle=True)

    def decode(event: Any) -> dict[str, Any]:
        # A record that is not a letter gets its own letter, which comes back readable: stored, never looped.
        letter = topics.DEADLETTER.decode(event.value)
        return rows.deadletter_row(letter, event.value, place=letter_place(letter.source, rt.tree))

    async def handle(_partition: int, buffer: PartitionBuffer, row: dict[str, Any]) -> None:
        buffer.add_rows("deadletters", [row])

    @rt.app.agent(rt.topic(topics.DEADLETTER.name), name="streams.deadletters")
    @fail_fast
    async def deadletters(stream: Any) -> None:
        await pipeline.consume(stream, decode, handle, lambda _partition, _buffer: None)
