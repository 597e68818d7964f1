"""Taking judged dossier snapshots into Kafka: new versions produced, replays skipped, refusals dead-lettered.

Shared by the webhook and the poller. Each accepted snapshot is compared with the highest version Kafka
already has for its dossier (sensors.gateways.state): the same version is a `duplicate`, a lower one is
`stale` (it arrived after a newer status), and neither is sent again. A newer one is produced to
`ioc.service-records.v1` keyed by dossier id, and only then recorded. Refused input goes to
`ioc.deadletter.v1` with its reason and original bytes, exactly as the MQTT bridge does. Nothing is
acknowledged to the sender until Kafka has everything the message carried: a `DeliveryError` escapes
and the sender retries, which the versions make harmless.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Literal

from ioc import topics
from ioc.clients.delivery import EventSink
from ioc.events import DEAD_LETTER_PAYLOAD_BYTES, DeadLetter
from sensors.gateways.judge import Accepted, Rejected
from sensors.gateways.state import GatewayState

__all__ = ["DossierIntake", "ItemResult", "Outcome"]

Outcome = Literal["accepted", "duplicate", "stale", "refused"]


@dataclasses.dataclass(frozen=True, slots=True)
class ItemResult:
    """What became of one snapshot of a message."""

    index: int
    result: Outcome
    dossier_id: str | None = None
    status_version: int | None = None
    reason: str | None = None
    detail: str | None = None


@dataclasses.dataclass
class _Lock:
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    users: int = 0


class DossierIntake:
    """The connector's one path into Kafka for dossier snapshots (webhook and poller alike)."""

    def __init__(
        self,
        sink: EventSink,
        state: GatewayState,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._sink = sink
        self._state = state
        self._clock = clock
        self._locks: dict[str, _Lock] = {}

    async def take(self, verdicts: Sequence[Accepted | Rejected], source: str) -> list[ItemResult]:
        """Produce or skip each accepted snapshot and dead-letter each refusal; results in input order."""
        by_dossier: dict[str, list[int]] = {}
        for index, verdict in enumerate(verdicts):
            if isinstance(verdict, Accepted):
                by_dossier.setdefault(verdict.record.dossier_id, []).append(index)
        results: dict[int, ItemResult] = {}

        async def dossier(indices: list[int]) -> None:
            # One dossier's snapshots in message order; different dossiers concurrently.
            for index in indices:
                verdict = verdicts[index]
                assert isinstance(verdict, Accepted)
                results[index] = await self._one(index, verdict)

        async def refusal(index: int, verdict: Rejected) -> None:
            await self._dead_letter(verdict, source)
            results[index] = ItemResult(
                index, "refused", verdict.dossier_id, None, verdict.reason.value, verdict.detail[:500]
            )

        await asyncio.gather(
            *(dossier(indices) for indices in by_dossier.values()),
            *(refusal(i, v) for i, v in enumerate(verdicts) if isinstance(v, Rejected)),
        )
        return [results[i] for i in range(len(verdicts))]

    async def _one(self, index: int, verdict: Accepted) -> ItemResult:
        record = verdict.record
        entry = self._locks.setdefault(record.dossier_id, _Lock())
        entry.users += 1
        try:
            async with entry.lock:
                known = self._state.version(record.dossier_id)
                if known is not None and record.status_version <= known:
                    outcome: Outcome = "duplicate" if record.status_version == known else "stale"
                    return ItemResult(index, outcome, record.dossier_id, record.status_version)
                await self._sink.send(
                    topics.SERVICE_RECORDS.name, record.dossier_id, topics.SERVICE_RECORDS.encode(record)
                )
                self._state.record_version(record.dossier_id, record.status_version)
                return ItemResult(index, "accepted", record.dossier_id, record.status_version)
        finally:
            entry.users -= 1
            if entry.users == 0:
                # Dossiers are unbounded: keep a lock only while someone holds or waits for it.
                self._locks.pop(record.dossier_id, None)

    async def _dead_letter(self, verdict: Rejected, source: str) -> None:
        letter = DeadLetter(
            source=source[:500],
            reason=verdict.reason,
            detail=verdict.detail[:2000],
            received_at=self._clock(),
            payload=verdict.raw[:DEAD_LETTER_PAYLOAD_BYTES],
            size=len(verdict.raw),
            vendor="portal",
            device=verdict.dossier_id,
        )
        value = topics.DEADLETTER.encode(letter)
        await self._sink.send(topics.DEADLETTER.name, source[:200], value, headers={"reason": verdict.reason.value})
