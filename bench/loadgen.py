"""The native MQTT load generator (bench/loadgen, Go): built into ~/.cache/ioc and run by the benchmarks.

`build()` compiles bench/loadgen/main.go from the Go module proxy (cached by a hash of its source; the binary is
never committed). `Publisher` runs it with a ramp of offered rates over a vendor's TLS login and reads its JSON
lines (per step: offered, published, acknowledged, its own CPU); `Subscriber` runs it as a counting subscriber
(the broker-alone anchor). The ramp and CPU helpers every throughput benchmark shares live here too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

from ioc.clients import dynsec
from ioc.settings import MqttEndpoint
from iocctl.localstack import default_cache_dir
from iocctl.localstack.install import Installer

SOURCE = Path(__file__).parent / "loadgen"


def build() -> Path:
    """The generator's binary, built from bench/loadgen when its source changed (about 25 s the first time)."""
    return Installer(default_cache_dir()).go_source("ioc-loadgen", SOURCE)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) `pid` has used so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def waited_s(pid: int) -> float:
    """Seconds `pid`'s threads have spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat); 0 once gone.

    On a shared machine this says whether a process was slow or starved: waiting near its own CPU time means the
    machine, not the process, set the pace."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as stat:
                total += int(stat.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def new_vendor(mosquitto: dict[str, Any], prefix: str = "bench") -> tuple[str, str]:
    """A fresh vendor with its MQTT login in the stack's broker: (vendor id, password)."""
    vendor, password = f"{prefix}{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin = MqttEndpoint(
        host=mosquitto["host"], port=mosquitto["port"], username="admin", password=mosquitto["admin_password"]
    )
    with dynsec.DynsecAdmin(admin) as control:
        control.ensure_vendor(vendor, password)
    return vendor, password


def ramp(start: float, factor: float, top: float) -> list[float]:
    """Offered rates from `start` multiplied by `factor` up to `top` (inclusive of the last step below it)."""
    if start <= 0 or factor <= 1 or top < start:
        raise ValueError("ramp needs start > 0, factor > 1 and top ≥ start")
    rates = [start]
    while rates[-1] * factor <= top * 1.0001:
        rates.append(round(rates[-1] * factor))
    return rates


@dataclasses.dataclass
class Publisher:
    """One generator process publishing `steps` ((readings/s, seconds), ...) as vendor `vendor` over TLS."""

    mosquitto: dict[str, Any]
    vendor: str
    password: str
    steps: list[tuple[float, float]]
    batch: int = 1
    devices: int = 500
    connections: int = 8
    unit: str = "25957"
    device_prefix: str = "d"
    lines: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def start(self) -> subprocess.Popen[str]:
        argv = [
            str(build()),
            f"-host={self.mosquitto['host']}",
            f"-port={self.mosquitto['tls_port']}",
            f"-ca={self.mosquitto['ca_file']}",
            f"-username=vendor.{self.vendor}",
            f"-password={self.password}",
            f"-vendor={self.vendor}",
            f"-unit={self.unit}",
            f"-connections={self.connections}",
            f"-devices={self.devices}",
            f"-batch={self.batch}",
            f"-device-prefix={self.device_prefix}",
            "-steps=" + ",".join(f"{rate:g}:{seconds:g}" for rate, seconds in self.steps),
        ]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self.process

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def wait(self, timeout: float) -> dict[str, Any]:
        """Wait for the generator to finish; its final line (published, acknowledged, CPU)."""
        code = self.process.wait(timeout)
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if code != 0:
            raise RuntimeError(f"the load generator exited {code}")
        return next(line for line in self.lines if line["event"] == "done")

    def step_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == "step"]


@dataclasses.dataclass
class Subscriber:
    """One generator process subscribed to `topic_filter`, counting what arrives (stop() for the totals)."""

    mosquitto: dict[str, Any]
    username: str
    password: str
    topic_filter: str
    lines: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def start(self) -> subprocess.Popen[str]:
        argv = [
            str(build()),
            f"-host={self.mosquitto['host']}",
            f"-port={self.mosquitto['tls_port']}",
            f"-ca={self.mosquitto['ca_file']}",
            f"-username={self.username}",
            f"-password={self.password}",
            f"-subscribe={self.topic_filter}",
        ]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        first = json.loads(self.process.stdout.readline() or "{}")
        if first.get("event") != "subscribed":
            raise RuntimeError(f"the subscriber did not subscribe: {first}")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self.process

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def count(self) -> int:
        counts = [line["readings"] for line in self.lines if "readings" in line]
        return int(counts[-1]) if counts else 0

    def stop(self) -> dict[str, Any]:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.lines[-1]
