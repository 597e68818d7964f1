"""The local Mosquitto broker: loopback only, no anonymous access, clients from the dynamic-security plugin.

`start` writes its configuration, launches it, and creates the bridge's role and client; `is_ready` logs in.
"""

from __future__ import annotations

import getpass
import threading
import uuid
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ioc.clients import dynsec
from ioc.settings import MqttEndpoint
from iocctl.localstack.common import HOST, ServiceInfo, launch, new_secret, run_setup
from iocctl.localstack.install import Installer
from iocctl.localstack.process import free_port, wait_until

__all__ = ["BRIDGE_USER", "is_ready", "mqtt_login_ok", "start"]

BRIDGE_USER: Final = "ioc-bridge"


def mqtt_login_ok(host: str, port: int, username: str | None, password: str | None, timeout: float = 3.0) -> bool:
    """Whether the broker accepts a connection with these credentials (False when refused or down)."""
    result: list[bool] = []
    done = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        result.append(not reason.is_failure)
        done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"ioc-probe-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    if username is not None:
        client.username_pw_set(username, password)
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except OSError:
        return False
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return bool(result and result[0])


def start(root: Path, installer: Installer) -> ServiceInfo:
    broker, ctrl, plugin = installer.mosquitto()
    home = root / "mosquitto"
    (home / "data").mkdir(parents=True, exist_ok=True)
    port = free_port()
    admin_password = new_secret()
    dynsec_file = home / "dynsec.json"
    dynsec_file.unlink(missing_ok=True)
    run_setup("mosquitto_ctrl dynsec init", [str(ctrl), "dynsec", "init", str(dynsec_file), "admin", admin_password])
    conf = home / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                "# Written by iocctl.localstack: loopback only, no anonymous access, clients from dynamic security.",
                f"listener {port} {HOST}",
                # Run as whoever started it: as root, mosquitto would switch to a `mosquitto` user that cannot
                # read a private stack directory.
                f"user {getpass.getuser()}",
                "allow_anonymous false",
                f"plugin {plugin}",
                f"plugin_opt_config_file {dynsec_file}",
                "persistence true",
                f"persistence_location {home / 'data'}/",
                # Saved every minute and on shutdown; the default half hour loses too much on a crash.
                "autosave_interval 60",
                # QoS 1 queues for a slow subscriber (the bridge): the default 1000 silently drops beyond it.
                "max_queued_messages 1000000",
                "max_inflight_messages 0",
                "max_packet_size 1048576",
                "log_dest stdout",
                "log_type error",
                "log_type warning",
                "log_type notice",
                "log_timestamp_format %Y-%m-%dT%H:%M:%S",
                "",
            ]
        ),
        encoding="utf-8",
    )
    log = home / "mosquitto.log"
    process, launched = launch("mosquitto", [broker, "-c", conf], log)
    wait_until(
        "mosquitto",
        lambda: mqtt_login_ok(HOST, port, "admin", admin_password),
        timeout=30,
        process=process,
        log_path=log,
    )
    bridge_password = new_secret()
    admin = MqttEndpoint(host=HOST, port=port, username="admin", password=admin_password)
    with dynsec.DynsecAdmin(admin) as control:
        control.ensure_role("ioc-bridge", dynsec.bridge_acls())
        control.ensure_client(BRIDGE_USER, bridge_password, ["ioc-bridge"])
    return {
        "pid": process.pid,
        **launched,
        "log": str(log),
        "host": HOST,
        "port": port,
        "admin_user": "admin",
        "admin_password": admin_password,
        "bridge_user": BRIDGE_USER,
        "bridge_password": bridge_password,
        "config": str(conf),
    }


def is_ready(info: ServiceInfo) -> bool:
    """Whether the broker still accepts its admin's login."""
    return mqtt_login_ok(info["host"], info["port"], info["admin_user"], info["admin_password"])
