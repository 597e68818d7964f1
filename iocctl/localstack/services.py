"""The registry of local services: their names in start order, how to start each afresh, relaunch it, probe it.

Each service lives in its own module (mosquitto, kafka, zookeeper, clickhouse, kube), whose start writes configuration
under the stack's directory, launches the process detached (so the stack outlives `ioc stack up`), waits
until it answers a real request and returns a `ServiceInfo`. A new service is one more `_Service` entry.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ioc.settings import MqttPersistence
from iocctl.localstack import clickhouse, kafka, kube, mosquitto, zookeeper
from iocctl.localstack.common import ServiceInfo
from iocctl.localstack.install import Installer
from iocctl.localstack.process import start_process, wait_until

__all__ = [
    "DEFAULT_SERVICES",
    "SERVICES",
    "ServiceInfo",
    "StackOptions",
    "is_ready",
    "member_pids",
    "needs",
    "relaunch",
    "start_service",
]


@dataclasses.dataclass(frozen=True)
class StackOptions:
    """How services are started, as `ioc stack up` chooses."""

    kafka_brokers: int = 1
    """KRaft nodes of the local Kafka: 1, or 3 for replicated topics (3 copies, min.insync.replicas 2)."""
    mqtt_persistence: MqttPersistence | None = None
    """When Mosquitto saves its state (`mosquitto.PERSISTENCE`); None: IOC_STACK_MQTT_PERSISTENCE."""
    clickhouse_shards: int = 1
    """Shards of the local ClickHouse; with `clickhouse_replicas`, more than one server makes the cluster `ioc`."""
    clickhouse_replicas: int = 1
    """Replicas per shard; a cluster (more than one server) runs ZooKeeper too (docs/warehouse.md, "Cluster")."""

    @property
    def clickhouse_cluster(self) -> bool:
        """Whether ClickHouse runs as a cluster (several servers over ZooKeeper) rather than one server."""
        return self.clickhouse_shards * self.clickhouse_replicas > 1


@dataclasses.dataclass(frozen=True)
class _Service:
    # Starts the service afresh under the stack's root, given the infos of those already running.
    start: Callable[[Path, Installer, dict[str, ServiceInfo], StackOptions], ServiceInfo]
    # The readiness probe `ioc stack status` repeats; it may raise, which means "not ready".
    ready: Callable[[ServiceInfo], bool]
    # The services that must be running first (each listed before it in the registry).
    needs: tuple[str, ...] = ()
    # Restarts what of a service of several processes is not running (default: its one recorded command line).
    relaunch: Callable[[ServiceInfo], ServiceInfo] | None = None
    # Started only because another service needs it (ZooKeeper for a ClickHouse cluster), never by default.
    on_demand: bool = False


def _start_apiserver(
    root: Path, installer: Installer, running: dict[str, ServiceInfo], _options: StackOptions
) -> ServiceInfo:
    if "etcd" not in running:
        raise ValueError("kube-apiserver needs etcd running first")
    return kube.start_apiserver(root, installer, running["etcd"])


# In start order (what a service needs comes before it); the stack stops them in the reverse order.
_REGISTRY: Final[dict[str, _Service]] = {
    "mosquitto": _Service(
        lambda root, installer, _r, options: mosquitto.start(root, installer, persistence=options.mqtt_persistence),
        mosquitto.is_ready,
    ),
    "kafka": _Service(
        lambda root, installer, _r, options: kafka.start(root, installer, brokers=options.kafka_brokers),
        kafka.is_ready,
        relaunch=kafka.relaunch,
    ),
    "zookeeper": _Service(
        lambda root, installer, _r, _o: zookeeper.start(root, installer), zookeeper.is_ready, on_demand=True
    ),
    "clickhouse": _Service(
        lambda root, installer, running, options: clickhouse.start(
            root,
            installer,
            shards=options.clickhouse_shards,
            replicas=options.clickhouse_replicas,
            zookeeper=running.get("zookeeper") if options.clickhouse_cluster else None,
        ),
        clickhouse.is_ready,
        relaunch=clickhouse.relaunch,
    ),
    "etcd": _Service(lambda root, installer, _r, _o: kube.start_etcd(root, installer), kube.etcd_ready),
    "kube-apiserver": _Service(_start_apiserver, kube.apiserver_ready, needs=("etcd",)),
}
SERVICES: Final = tuple(_REGISTRY)
DEFAULT_SERVICES: Final = tuple(name for name, service in _REGISTRY.items() if not service.on_demand)
"""What `ioc stack up` starts when no service is named (ZooKeeper only comes with a ClickHouse cluster)."""


def needs(name: str, options: StackOptions | None = None) -> tuple[str, ...]:
    """The services `name` needs running before it starts (ZooKeeper for a ClickHouse cluster)."""
    if name == "clickhouse" and options is not None and options.clickhouse_cluster:
        return ("zookeeper",)
    return _REGISTRY[name].needs


def start_service(
    name: str,
    root: Path,
    installer: Installer,
    running: dict[str, ServiceInfo],
    options: StackOptions | None = None,
) -> ServiceInfo:
    """Start one service afresh under `root`; `running` holds the infos of those already up (dependencies).

    A fresh start means fresh data: new ports and credentials would not match what an old data directory
    holds (Kafka's cluster id, for one). `Stack.resume_service` is the way to restart with data kept.
    """
    shutil.rmtree(root / name, ignore_errors=True)
    if name not in _REGISTRY:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    return _REGISTRY[name].start(root, installer, running, options or StackOptions())


def member_pids(info: ServiceInfo) -> list[int]:
    """Every process of a service: its members' (the Kafka nodes, the ClickHouse cluster's servers) or its one pid."""
    members = info.get("brokers") or info.get("servers") or ()
    return [int(m["pid"]) for m in members] or [int(info["pid"])]


def relaunch(name: str, info: ServiceInfo, *, timeout: float = 120) -> ServiceInfo:
    """Start a stopped service again with its recorded command line, data and ports; wait until ready."""
    own = _REGISTRY[name].relaunch
    if own is not None:  # several processes (the Kafka nodes): the service restarts those not running
        return own(info)
    log = Path(info["stdout_log"])
    process = start_process(name, info["argv"], log, cwd=Path(info["cwd"]) if info["cwd"] else None)
    wait_until(name, lambda: is_ready(name, info), timeout=timeout, process=process, log_path=log, interval=0.3)
    return {**info, "pid": process.pid}


def is_ready(name: str, info: ServiceInfo) -> bool:
    """Probe a running service the same way its start did."""
    try:
        return bool(_REGISTRY[name].ready(info))
    except Exception:  # noqa: BLE001 - any failure of the probe means "not ready"
        return False
