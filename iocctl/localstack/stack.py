"""A local stack: the real services of the registry under one directory, with a state file other processes read.

`Stack.up` starts whatever is not already running (what a service needs first) and records each
service's pid, endpoints and credentials in `stack.json` (mode 0600); `status` re-probes them; `down`
stops them all and leaves no process behind. The pytest fixtures and `ioc stack` both drive this class.
A service may be several processes (the Kafka nodes of `kafka_brokers=3`); `kill_broker` and
`restart_broker` take one node down and up again for fault tests, keeping the record true.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ioc.settings import Endpoints, LocalStackSettings, MqttPersistence
from iocctl.localstack import kafka
from iocctl.localstack.install import Installer
from iocctl.localstack.process import is_alive, stop_process
from iocctl.localstack.services import (
    DEFAULT_SERVICES,
    SERVICES,
    ServiceInfo,
    StackOptions,
    is_ready,
    member_pids,
    needs,
    relaunch,
    start_service,
)

__all__ = ["Stack", "default_cache_dir", "default_stack_dir"]


def default_cache_dir() -> Path:
    """~/.cache/ioc, or $IOC_CACHE_DIR."""
    return LocalStackSettings().cache_dir


def default_stack_dir() -> Path:
    return default_cache_dir() / "stacks" / "default"


class Stack:
    """The services of one local stack rooted at `root`."""

    def __init__(
        self,
        root: Path,
        installer: Installer | None = None,
        *,
        kafka_brokers: int | None = None,
        mqtt_persistence: MqttPersistence | None = None,
        clickhouse_shards: int | None = None,
        clickhouse_replicas: int | None = None,
    ) -> None:
        """`kafka_brokers`: the Kafka nodes `up` starts (1 when unset); a running Kafka of another size is replaced.

        `mqtt_persistence`: when a Mosquitto `up` starts saves its state (IOC_STACK_MQTT_PERSISTENCE when unset).
        `clickhouse_shards`, `clickhouse_replicas`: the ClickHouse layout `up` starts (1 x 1, one server, when unset;
        more servers form the cluster `ioc` over a ZooKeeper `up` starts first); a ClickHouse of another layout is
        replaced.
        """
        self.root = root
        self.installer = installer or Installer(default_cache_dir())
        self.state_file = root / "stack.json"
        self.kafka_brokers = kafka_brokers
        self.mqtt_persistence = mqtt_persistence
        self.clickhouse_shards = clickhouse_shards
        self.clickhouse_replicas = clickhouse_replicas

    # --- state file -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> dict[str, ServiceInfo]:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        services: dict[str, ServiceInfo] = data.get("services", {})
        return services

    def _write(self, services: dict[str, ServiceInfo]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"root": str(self.root), "services": services}, handle, indent=2, sort_keys=True)
        tmp.replace(self.state_file)

    # --- lifecycle --------------------------------------------------------------------------------------

    def running(self) -> dict[str, ServiceInfo]:
        """Services recorded in the state file whose process is alive."""
        return {name: info for name, info in self._read().items() if _alive(info)}

    def up(self, services: Iterable[str] = DEFAULT_SERVICES, *, progress: bool = False) -> dict[str, ServiceInfo]:
        """Start the named services (and what they depend on) unless already running; returns all running."""
        options = StackOptions(
            kafka_brokers=self.kafka_brokers or 1,
            mqtt_persistence=self.mqtt_persistence,
            clickhouse_shards=self.clickhouse_shards or 1,
            clickhouse_replicas=self.clickhouse_replicas or 1,
        )
        wanted: list[str] = []
        for name in services:
            if name not in SERVICES:
                raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
            for dependency in (*needs(name, options), name):
                if dependency not in wanted:
                    wanted.append(dependency)
        with self._locked():
            current = self.running()
            for name in [s for s in SERVICES if s in wanted]:
                resized = name in current and self._resized(name, current[name], options)
                if name in current and is_ready(name, current[name]) and not resized:
                    continue
                if name in current:  # alive but not answering, or another size asked for: replace it
                    _stop(current[name])
                started = time.monotonic()
                if progress:
                    print(f"starting {name} ...", flush=True)
                info = start_service(name, self.root, self.installer, current, options)
                info["started_in_s"] = round(time.monotonic() - started, 1)
                current[name] = info
                self._write(current)
                if progress:
                    print(f"  {name} ready in {info['started_in_s']} s (pid {info['pid']})", flush=True)
            return current

    def _resized(self, name: str, info: ServiceInfo, options: StackOptions) -> bool:
        """Whether a running service has another size than this stack asks for (it is then replaced)."""
        if name == "kafka" and self.kafka_brokers is not None:
            return len(info.get("brokers", [None])) != self.kafka_brokers
        if name == "clickhouse" and (self.clickhouse_shards, self.clickhouse_replicas) != (None, None):
            layout = (int(info.get("shards", 1)), int(info.get("replicas", 1)))
            return layout != (options.clickhouse_shards, options.clickhouse_replicas)
        return False

    def status(self) -> dict[str, Any]:
        """Every recorded service with `running` and `ready` flags, in the shape `ioc stack status --json` prints."""
        services = self._read()
        report: dict[str, Any] = {"root": str(self.root), "services": {}}
        for name, info in services.items():
            alive = _alive(info)
            report["services"][name] = {**info, "running": alive, "ready": alive and is_ready(name, info)}
        return report

    def endpoints(self) -> Endpoints:
        """Admin endpoints of the running services, as settings objects."""
        return Endpoints.from_stack_status({"services": self.running()})

    def stop_service(self, name: str) -> None:
        """Stop one service but keep its record, data and ports, for `resume_service` (outage tests)."""
        with self._locked():
            recorded = self._read()
            if name not in recorded:
                raise ValueError(f"{name} is not part of the stack at {self.root}")
            _stop(recorded[name])

    def resume_service(self, name: str) -> ServiceInfo:
        """Start a service stopped by `stop_service` again, same data and ports; waits until ready."""
        with self._locked():
            recorded = self._read()
            info = recorded[name]
            if all(is_alive(pid) for pid in member_pids(info)):
                return info
            recorded[name] = relaunch(name, info)
            self._write(recorded)
            return recorded[name]

    def down(self, services: Iterable[str] | None = None) -> list[str]:
        """Stop the named services (default: all); returns the ones that were running."""
        with self._locked():
            recorded = self._read()
            names = set(recorded if services is None else services)
            stopped = []
            for name in reversed(SERVICES):  # dependants first
                if name in names and name in recorded:
                    if _stop(recorded[name]):
                        stopped.append(name)
                    del recorded[name]
            if recorded:
                self._write(recorded)
            else:
                self.state_file.unlink(missing_ok=True)
            return stopped

    # --- one Kafka node at a time (fault tests) ---------------------------------------------------------

    def kafka_controller(self) -> int:
        """The node id of the Kafka node that leads the KRaft quorum (the active controller) now."""
        return kafka.active_controller(self._read()["kafka"])

    def kill_broker(self, node_id: int, sig: int = signal.SIGKILL) -> int:
        """Send `sig` (SIGKILL: no shutdown at all) to Kafka node `node_id`; returns its pid. Its record stays."""
        pid = int(self._broker(self._read()["kafka"], node_id)["pid"])
        os.kill(pid, sig)
        return pid

    def restart_broker(self, node_id: int) -> ServiceInfo:
        """Start Kafka node `node_id` again (same data and ports) once it is gone; waits until every node serves."""
        with self._locked():
            recorded = self._read()
            pid = int(self._broker(recorded["kafka"], node_id)["pid"])
            deadline = time.monotonic() + 30
            while is_alive(pid):  # after a SIGTERM the node takes a moment to leave
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kafka node {node_id} (pid {pid}) is still running: stop it first")
                time.sleep(0.1)
            recorded["kafka"] = kafka.relaunch(recorded["kafka"], [node_id], wait=False)
            self._write(recorded)
        # Waited for outside the lock: a fault test restarts other services meanwhile (a node takes ~45 s here).
        kafka.wait_ready(recorded["kafka"])
        return recorded["kafka"]

    @staticmethod
    def _broker(info: ServiceInfo, node_id: int) -> dict[str, Any]:
        for member in info.get("brokers", ()):
            if int(member["node_id"]) == node_id:
                return dict(member)
        raise ValueError(f"the local Kafka has no node {node_id}; it has {len(info.get('brokers', ()))}")


def _alive(info: ServiceInfo) -> bool:
    """A service runs while any of its processes does (a cluster with a node killed is still up)."""
    return any(is_alive(pid) for pid in member_pids(info))


def _stop(info: ServiceInfo) -> bool:
    """Stop every process of a service; True when any was running."""
    return any([stop_process(pid) for pid in member_pids(info)])
