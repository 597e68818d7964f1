"""The local Mosquitto broker: loopback only, no anonymous access, clients from the dynamic-security plugin.

`start` writes a CA and a server certificate, its configuration (a TLS listener for devices and the
bridge, a plaintext one for the admin tools), launches it, and creates the bridge's role and client;
`is_ready` logs in. When it saves its state to disk is a setting (`PERSISTENCE`, IOC_STACK_MQTT_PERSISTENCE):
every 2 s by default, or at the end of every loop turn with a change (docs/durability.md: what each loses on a
SIGKILL and what it costs).
"""

from __future__ import annotations

import getpass
import threading
import uuid
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ioc.clients import dynsec, mqttstop
from ioc.settings import LocalStackSettings, MqttEndpoint, MqttPersistence
from iocctl.localstack import certs
from iocctl.localstack.common import HOST, ServiceInfo, launch, new_secret, run_setup
from iocctl.localstack.install import Installer
from iocctl.localstack.node import HOST_SERVICES, NODE_IP, node_ip_here
from iocctl.localstack.process import free_port, wait_until

__all__ = [
    "BRIDGE_USER",
    "PERSISTENCE",
    "is_ready",
    "mqtt_login_ok",
    "start",
    "write_tls_files",
]

BRIDGE_USER: Final = "ioc-bridge"


def write_tls_files(
    directory: Path, host: str = HOST, *, extra_ips: tuple[str, ...] = (), extra_dns: tuple[str, ...] = ()
) -> tuple[Path, Path, Path]:
    """A fresh CA and a server certificate for `host` (and localhost, `extra_*`) under `directory`: (ca, cert, key).

    The CA's key is not kept: nothing else is ever signed with it, so a leaked stack directory cannot mint
    certificates. Keys are 0600.
    """
    ca = certs.authority("ioc local stack MQTT CA", kind="ec")
    key, server = certs.issue(ca, host, dns=("localhost", *extra_dns), ips=(host, *extra_ips), kind="ec")
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    ca_file.write_bytes(certs.cert_pem(ca.cert))
    cert_file.write_bytes(certs.cert_pem(server))
    certs.write_private(key_file, certs.key_pem(key))
    return ca_file, cert_file, key_file


def mqtt_login_ok(
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    timeout: float = 3.0,
    *,
    ca_file: str | None = None,
) -> bool:
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
    if ca_file is not None:
        client.tls_set(ca_certs=ca_file)
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except OSError:  # ssl.SSLError included: a plaintext listener, a certificate we do not trust
        return False
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        mqttstop.stop(client)
    return bool(result and result[0])


# Mosquitto 2.0 saves its whole state (retained messages, sessions, every message queued or in flight) with an fsync,
# at the end of a loop turn (src/loop.c, persist_write.c), either every `autosave_interval` seconds or, with
# `autosave_on_changes`, once that many changes have accumulated. A change is a message queued for a session, a
# session, a subscription, and also every PUBACK a subscriber sends (db__message_delete_outgoing): with the bridge
# online, each of its acknowledgements ends a turn with a save, and a turn reads one packet per socket, so
# every-change is about one fsync per message, whatever the in-flight limits. The interval is compared in whole
# seconds (last save + interval < now), so 1 saves every 2 s. docs/durability.md has the measured trade-off.
PERSISTENCE: Final[dict[MqttPersistence, tuple[str, ...]]] = {
    "interval": ("autosave_on_changes false", "autosave_interval 1"),
    "every-change": ("autosave_on_changes true", "autosave_interval 1"),
    "every-minute": ("autosave_on_changes false", "autosave_interval 60"),
}


def start(root: Path, installer: Installer, *, persistence: MqttPersistence | None = None) -> ServiceInfo:
    """Start the broker under `root`, saving its state as `persistence` says (default: the stack's setting)."""
    saves = PERSISTENCE[persistence or LocalStackSettings().stack_mqtt_persistence]
    broker, ctrl, plugin = installer.mosquitto()
    home = root / "mosquitto"
    (home / "data").mkdir(parents=True, exist_ok=True)
    port, tls_port = free_port(), free_port()
    # With the local node up, a second TLS listener on the node IP for pods, its certificate valid for the node IP
    # and the Service name the node publishes it under (the chart's default mqtt.host).
    node_tls_port = free_port() if node_ip_here() else None
    namespace, service = HOST_SERVICES["mosquitto"]
    node_dns = (f"{service}.{namespace}.svc.cluster.local", f"{service}.{namespace}.svc", f"{service}.{namespace}")
    ca_file, cert_file, key_file = (
        write_tls_files(home / "tls", extra_ips=(NODE_IP,), extra_dns=node_dns)
        if node_tls_port is not None
        else write_tls_files(home / "tls")
    )
    tls_settings = [f"cafile {ca_file}", f"certfile {cert_file}", f"keyfile {key_file}", "tls_version tlsv1.2"]
    node_listener = [f"listener {node_tls_port} {NODE_IP}", *tls_settings] if node_tls_port is not None else []
    admin_password = new_secret()
    dynsec_file = home / "dynsec.json"
    dynsec_file.unlink(missing_ok=True)
    run_setup("mosquitto_ctrl dynsec init", [str(ctrl), "dynsec", "init", str(dynsec_file), "admin", admin_password])
    conf = home / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                "# Written by iocctl.localstack: loopback only, no anonymous access, clients from dynamic security.",
                # Plaintext for the admin tools (dynamic-security commands, probes) only, on loopback; devices
                # and the bridge use the TLS listener, as they must in the chart.
                f"listener {port} {HOST}",
                f"listener {tls_port} {HOST}",
                *tls_settings,
                *node_listener,
                # Run as whoever started it: as root, mosquitto would switch to a `mosquitto` user that cannot
                # read a private stack directory.
                f"user {getpass.getuser()}",
                "allow_anonymous false",
                f"plugin {plugin}",
                f"plugin_opt_config_file {dynsec_file}",
                "persistence true",
                f"persistence_location {home / 'data'}/",
                # Also saved on shutdown; see PERSISTENCE.
                *saves,
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
    # The bridge's own least-privilege account (shared subscription to the device topics, no publish),
    # never the admin; platform accounts stay outside the tenants' `vendor.` namespace.
    with dynsec.DynsecAdmin(admin) as control:
        control.ensure_role(dynsec.BRIDGE_ROLE, dynsec.bridge_acls())
        control.ensure_client(BRIDGE_USER, bridge_password, [dynsec.BRIDGE_ROLE], mark=dynsec.PLATFORM_MARK)
    return {
        "pid": process.pid,
        **launched,
        "log": str(log),
        "host": HOST,
        "port": port,
        "tls_port": tls_port,
        "ca_file": str(ca_file),
        "admin_user": "admin",
        "admin_password": admin_password,
        "bridge_user": BRIDGE_USER,
        "bridge_password": bridge_password,
        "config": str(conf),
        **({"node_host": NODE_IP, "node_tls_port": node_tls_port} if node_tls_port is not None else {}),
    }


def is_ready(info: ServiceInfo) -> bool:
    """Whether the broker still accepts its admin's login."""
    return mqtt_login_ok(info["host"], info["port"], info["admin_user"], info["admin_password"])
