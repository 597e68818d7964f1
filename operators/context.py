"""What the operator's handlers share for the life of the process: settings and the clients of each service.

Built once at startup (from `ioc.settings.OperatorSettings`) and handed to handlers through Kopf's memo.
ClickHouse connections are one per handler thread (the driver's client is not thread-safe, and sharing
one would queue every site behind it); the Kafka producer is shared; MQTT admin sessions are opened per use.
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

from ioc.clients import clickhouse, kafka_admin
from ioc.clients.dynsec import DynsecAdmin
from ioc.settings import OperatorSettings
from operators.kube import Kube
from operators.siteconfig import ConfigPublisher

__all__ = ["Context"]

_log = logging.getLogger(__name__)


class Context:
    """The operator's shared state; every method is safe to call from handler threads."""

    def __init__(self, settings: OperatorSettings, kube: Kube | None = None) -> None:
        self.settings = settings
        self.kube = kube or Kube(settings.kube, pool_size=settings.workers + 4)
        if settings.secret_key is not None:
            self.key = settings.secret_key.get_secret_value().encode("utf-8")
        else:
            _log.warning(
                "IOC_OPERATOR_SECRET_KEY is not set: issued passwords use a key made for this process and "
                "change when the operator restarts"
            )
            self.key = secrets.token_bytes(32)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._publisher: ConfigPublisher | None = None
        self._shared_topics = False

    # --- ClickHouse ---------------------------------------------------------------------------------------

    def warehouse(self) -> clickhouse.Warehouse:
        """This thread's ClickHouse connection (made on first use, and again after `drop_warehouse`)."""
        connection: clickhouse.Warehouse | None = getattr(self._local, "warehouse", None)
        if connection is None:
            connection = clickhouse.connect(self.settings.clickhouse)
            self._local.warehouse = connection
        return connection

    def drop_warehouse(self) -> None:
        """Forget this thread's connection after an error: the next call reconnects."""
        connection: clickhouse.Warehouse | None = getattr(self._local, "warehouse", None)
        self._local.warehouse = None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - it is being thrown away because it already failed
                _log.debug("closing a failed ClickHouse connection failed too", exc_info=True)

    # --- Kafka --------------------------------------------------------------------------------------------

    def publisher(self) -> ConfigPublisher:
        with self._lock:
            if self._publisher is None:
                self._publisher = ConfigPublisher(self.settings.kafka)
            return self._publisher

    def ensure_shared_topics(self) -> list[str]:
        """The registry's topics (the shared worker pool's and site-config), created once per process."""
        if self._shared_topics:
            return []
        created = kafka_admin.ensure_topics(self.settings.kafka)
        self._shared_topics = True
        return created

    # --- MQTT ---------------------------------------------------------------------------------------------

    def dynsec(self) -> DynsecAdmin:
        """A fresh admin session on the broker; use it as a context manager."""
        return DynsecAdmin(self.settings.mqtt)

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
        self.kube.close()

    def __repr__(self) -> str:
        extra: dict[str, Any] = {"kube": self.settings.kube.kubeconfig or "in-cluster"}
        return f"Context({extra})"
