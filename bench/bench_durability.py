"""What edge durability costs: QoS 1 publish rates through the SDK with Mosquitto saving every 60 s (every-minute,
the former setting), every 2 s (interval, the local stack's default) or at the end of every loop turn with a change
(every-change), with the subscriber's session online or away (its messages queued); how many acknowledged messages
a SIGKILL loses under each, right after the last PUBACK and 2.5 s after it; and the SDK's queue in memory or on
disk (sync full or normal), against the every-change broker.

One vendor client over TLS publishes single readings as fast as the SDK takes them, then waits for every PUBACK.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ioc import codecs, topics
from ioc.clients import dynsec
from ioc.events import SensorKind, SensorReading
from ioc.settings import MqttEndpoint, MqttPersistence
from iocctl.localstack import mosquitto
from iocctl.localstack.install import Installer
from iocctl.localstack.process import is_alive, stop_process
from iocctl.localstack.services import relaunch
from iocctl.localstack.stack import default_cache_dir
from sensors.sdk import VendorClient

ONLINE_MESSAGES = 3000
QUEUED_MESSAGES = 1500
KILL_MESSAGES = 500


class _Session:
    """A persistent session with the bridge's login (a share group of its own), counting what reaches it."""

    def __init__(self, info: dict[str, Any], client_id: str, group: str) -> None:
        self.seqs: set[int] = set()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(info["bridge_user"], info["bridge_password"])
        self.client.on_message = lambda _c, _u, m: self.seqs.add(codecs.decode(m.payload, SensorReading).seq)
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(topics.mqtt_shared_subscription(group), qos=1)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        self.client.connect(info["host"], info["port"], clean_start=False, properties=properties)
        self.client.loop_start()
        if not subscribed.wait(15):
            raise RuntimeError("the benchmark's session did not subscribe")

    def wait_for(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while len(self.seqs) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.seqs)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _vendor(info: dict[str, Any]) -> MqttEndpoint:
    name, password = f"b{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = MqttEndpoint(host=info["host"], port=info["port"], username="admin", password=info["admin_password"])
    with dynsec.DynsecAdmin(admin) as control:
        control.ensure_vendor(name, password)
    return MqttEndpoint(
        host=info["host"],
        port=info["tls_port"],
        username=dynsec.vendor_username(name),
        password=password,
        tls_ca_file=info["ca_file"],
    )


def _publish(
    login: MqttEndpoint, count: int, disk_queue: Path | None = None, sync: Literal["full", "normal"] = "full"
) -> float:
    """Messages per second from the first publish to the last PUBACK."""
    vendor = (login.username or "").removeprefix("vendor.")
    with VendorClient(login, vendor, max_queued=count + 1, disk_queue=disk_queue, disk_sync=sync) as client:
        device = client.device(f"dev-{uuid.uuid4().hex[:6]}", "25957", SensorKind.WATER)
        started = time.perf_counter()
        for _ in range(count):
            device.reading({"waterLevel": 0.5})
        client.flush(300)
        return count / (time.perf_counter() - started)


MODES: tuple[MqttPersistence, ...] = ("every-minute", "interval", "every-change")
KILL_AFTER_S = (0.0, 2.5)
"""Seconds between the last PUBACK and the SIGKILL: at once, and once a 2 s interval's save must have run."""


def _broker(mode: MqttPersistence, root: Path) -> dict[str, Any]:
    return mosquitto.start(root, Installer(default_cache_dir()), persistence=mode)


def _rates(mode: MqttPersistence, root: Path) -> dict[str, float]:
    info = _broker(mode, root)
    try:
        login = _vendor(info)
        online = _Session(info, f"online-{uuid.uuid4().hex[:6]}", f"g{uuid.uuid4().hex[:6]}")
        online_rate = _publish(login, ONLINE_MESSAGES)
        online.close()
        away_id, away_group = f"away-{uuid.uuid4().hex[:6]}", f"g{uuid.uuid4().hex[:6]}"
        _Session(info, away_id, away_group).close()  # subscribed, then away: every message is queued
        queued_rate = _publish(login, QUEUED_MESSAGES)
        return {"online_msgs_per_s": round(online_rate), "queued_msgs_per_s": round(queued_rate)}
    finally:
        stop_process(int(info["pid"]))


def _lost_on_kill(mode: MqttPersistence, root: Path, after_s: float) -> int:
    """Acknowledged messages (queued for an offline session) lost when the broker is SIGKILLed `after_s` seconds
    after the publisher saw its last PUBACK."""
    info = _broker(mode, root)
    try:
        login = _vendor(info)
        client_id, group = f"kill-{uuid.uuid4().hex[:6]}", f"g{uuid.uuid4().hex[:6]}"
        _Session(info, client_id, group).close()
        _publish(login, KILL_MESSAGES)
        time.sleep(after_s)
        os.kill(int(info["pid"]), signal.SIGKILL)
        while is_alive(int(info["pid"])):
            time.sleep(0.01)
        info = relaunch("mosquitto", info)
        session = _Session(info, client_id, group)
        got = session.wait_for(KILL_MESSAGES, timeout=15)
        session.close()
        return KILL_MESSAGES - got
    finally:
        stop_process(int(info["pid"]))


def run() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ioc-bench-durability-") as tmp:
        base = Path(tmp)
        for mode in MODES:
            name = mode.replace("-", "_")
            for key, value in _rates(mode, base / f"rates-{mode}").items():
                figures[f"{name}_{key}"] = value
            for after in KILL_AFTER_S:
                lost = _lost_on_kill(mode, base / f"kill-{mode}-{after}", after)
                figures[f"{name}_lost_of_{KILL_MESSAGES}_on_sigkill_{after:g}s_after"] = lost
        info = _broker("every-change", base / "sdk")
        try:
            login = _vendor(info)
            consumer = _Session(info, f"sdk-{uuid.uuid4().hex[:6]}", f"g{uuid.uuid4().hex[:6]}")
            figures["sdk_memory_queue_msgs_per_s"] = round(_publish(login, ONLINE_MESSAGES))
            for sync in ("full", "normal"):
                queue = base / f"outbox-{sync}.sqlite3"
                figures[f"sdk_disk_queue_{sync}_msgs_per_s"] = round(_publish(login, ONLINE_MESSAGES, queue, sync))
            consumer.close()
        finally:
            stop_process(int(info["pid"]))
    return figures
