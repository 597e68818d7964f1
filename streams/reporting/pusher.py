"""Delivering the outbox to the parent IOC: push each sealed report until it is acknowledged, then commit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any, Final, Literal

import httpx
from confluent_kafka import Consumer, KafkaError, Message, Producer

from ioc import codecs, topics
from ioc.events import DEAD_LETTER_PAYLOAD_BYTES, DeadLetter, DeadLetterReason
from ioc.settings import ReportingSettings
from ioc.upward import SignedReport

__all__ = ["PushStats", "Pusher", "classify"]

log = logging.getLogger(__name__)

_RETRYABLE: Final = frozenset({408, 425, 429})

Verdict = Literal["delivered", "duplicate", "retry", "refused"]


def classify(status: int) -> Verdict:
    """What a parent's HTTP status means for the pusher."""
    if status == 201:
        return "delivered"
    if 200 <= status < 300:
        return "duplicate"
    if status in _RETRYABLE or status >= 500:
        return "retry"
    return "refused"


@dataclasses.dataclass
class PushStats:
    """Counters since start, for progress lines and tests."""

    delivered: int = 0
    duplicates: int = 0
    refused: int = 0
    attempts: int = 0
    failures: int = 0


class Pusher:
    """One pusher: `run(stop)` blocks until `stop` is set; the current report stays uncommitted if unfinished.

    A Kafka consumer (group `ReportingSettings.group_id`) reads `ioc.reports-outbox.v1` and POSTs each envelope to the
    parent's endpoint with its `Idempotency-Key`. The offset is committed only after the parent answered 201 (kept) or
    200 (already kept): a pusher killed at any point pushes the report again on restart, and the parent's idempotency
    makes that harmless, so each report arrives exactly once in effect. While the parent is down or answers 5xx/408/429,
    the same report is retried with exponential backoff (honouring Retry-After); a definite refusal (another 4xx: bad
    signature, unknown unit) will not get better by retrying, so the envelope is dead-lettered with the parent's words
    and the queue moves on.
    """

    def __init__(
        self,
        settings: ReportingSettings,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if settings.parent_url is None:
            raise ValueError("the pusher needs a parent: set IOC_REPORTING_PARENT_URL")
        self.settings = settings
        self.url = settings.parent_url
        self.stats = PushStats()
        self._http = http or httpx.Client(timeout=settings.request_timeout_s)
        self._owns_http = http is None
        self._sleep = sleep
        consumer: dict[str, Any] = {
            **settings.kafka.client_config(),
            "group.id": settings.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # A parent may be down for hours while one report is retried; the consumer must not be
            # thrown out of its group meanwhile (the broker would hand its partitions to nobody).
            "max.poll.interval.ms": 86_400_000,
            "logger": logging.getLogger("streams.reporting.kafka"),
        }
        self._consumer = Consumer(consumer)
        self._dead = Producer(
            {
                **settings.kafka.client_config(),
                "enable.idempotence": True,
                "acks": "all",
                "logger": logging.getLogger("streams.reporting.kafka"),
            }
        )

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            stop.wait(seconds)

    def push_once(self, body: bytes, envelope: SignedReport) -> tuple[Verdict, float | None, str]:
        """One POST: the verdict, the Retry-After the parent asked for (if any), and what it said."""
        self.stats.attempts += 1
        try:
            response = self._http.post(
                self.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": envelope.idempotency_key,
                    "X-IOC-Report-Id": envelope.report_id,
                },
            )
        except httpx.HTTPError as exc:
            return "retry", None, f"{type(exc).__name__}: {exc}"
        retry_after = response.headers.get("retry-after")
        wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
        return classify(response.status_code), wait, f"{response.status_code} {response.text[:300]}"

    def deliver(self, body: bytes, stop: threading.Event) -> Verdict | None:
        """Push one outbox message until the parent settles it; None if `stop` came first."""
        try:
            envelope = topics.REPORTS_OUTBOX.decode(body)
        except codecs.ContractError as exc:
            self._dead_letter(body, DeadLetterReason.SCHEMA, f"not a signed report envelope: {exc.message}")
            self.stats.refused += 1
            return "refused"
        delay = self.settings.retry_min_s
        while not stop.is_set():
            verdict, asked, said = self.push_once(body, envelope)
            if verdict == "delivered":
                self.stats.delivered += 1
                log.info("report %s delivered to %s", envelope.idempotency_key, self.url)
                return verdict
            if verdict == "duplicate":
                self.stats.duplicates += 1
                log.info("report %s was already at %s", envelope.idempotency_key, self.url)
                return verdict
            if verdict == "refused":
                self.stats.refused += 1
                log.error("parent refused report %s: %s", envelope.idempotency_key, said)
                self._dead_letter(body, DeadLetterReason.REFUSED_UPSTREAM, f"{self.url} answered {said}")
                return verdict
            self.stats.failures += 1
            wait = min(self.settings.retry_max_s, max(delay, asked or 0.0))
            log.warning("pushing report %s failed (%s); retrying in %.1f s", envelope.idempotency_key, said, wait)
            self._wait(wait, stop)
            delay = min(self.settings.retry_max_s, delay * 2)
        return None

    def _dead_letter(self, body: bytes, reason: DeadLetterReason, detail: str) -> None:
        letter = DeadLetter(
            source=f"reporting:{self.url}"[:500],
            reason=reason,
            detail=detail[:2000],
            received_at=dt.datetime.now(dt.UTC),
            payload=body[:DEAD_LETTER_PAYLOAD_BYTES],
            size=len(body),
        )
        value = topics.DEADLETTER.encode(letter)
        self._dead.produce(topics.DEADLETTER.name, key=b"reporting", value=value, headers={"reason": reason.value})
        if self._dead.flush(30):
            log.error("dead letter for a refused report could not be written to Kafka")

    def run(self, stop: threading.Event) -> None:
        """Consume and deliver until `stop` is set."""
        self._consumer.subscribe([topics.REPORTS_OUTBOX.name])
        try:
            while not stop.is_set():
                message: Message | None = self._consumer.poll(0.5)
                if message is None:
                    continue
                error: KafkaError | None = message.error()
                if error is not None:
                    log.warning("outbox consumer: %s", error.str())
                    continue
                value = message.value()
                if value is None:
                    self._consumer.commit(message=message, asynchronous=False)
                    continue
                if self.deliver(value, stop) is None:
                    return  # stopped mid-delivery: uncommitted, so the next start pushes it again
                self._consumer.commit(message=message, asynchronous=False)
        finally:
            self._consumer.close()
            self._dead.flush(10)
            if self._owns_http:
                self._http.close()
