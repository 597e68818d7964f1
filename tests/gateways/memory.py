"""An in-memory Kafka stand-in for unit tests of the HTTP edges (the real-service tests use Kafka itself)."""

from __future__ import annotations

from collections.abc import Mapping

from ioc.clients.delivery import DeliveryError


class MemorySink:
    """Keeps what was sent; `down = True` makes every send fail as an unreachable Kafka would."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes, dict[str, str]]] = []
        self.down = False

    async def send(self, topic: str, key: str, value: bytes, *, headers: Mapping[str, str] | None = None) -> None:
        if self.down:
            raise DeliveryError("Kafka refused the message: Local: Message timed out")
        self.sent.append((topic, key, value, dict(headers or {})))

    def partitions(self, topic: str) -> int:
        if self.down:
            raise DeliveryError(f"cannot read Kafka metadata for {topic}")
        return 4

    def close(self, timeout_s: float = 10.0) -> None:
        pass

    def on(self, topic: str) -> list[bytes]:
        return [value for t, _key, value, _headers in self.sent if t == topic]
