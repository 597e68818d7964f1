"""Fixtures for the operator's tests: CRDs on the real API server, warehouse tables, the operator as a process.

The operator runs as `python -m operators` in a subprocess with IOC_OPERATOR_* settings, exactly as in a
pod, so a test can kill it with SIGKILL or give it another identity. Each test module works in its own
namespace and its own units (a site's external parts, such as its ClickHouse database, are named by unit
and shared by the whole server), and its operator watches only that namespace unless a test says otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import paho.mqtt.client as mqtt
import pytest
from confluent_kafka import Consumer
from paho.mqtt.enums import CallbackAPIVersion

from ioc import kafka_access, topics
from ioc.clients.clickhouse import Warehouse, connect
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint, MqttEndpoint
from operators import crds

ROOT = Path(__file__).parents[2]
SOURCE_DB = "ioc_optest"
"""The warehouse database the tests' operators read: not `ioc`, which the streams tests migrate for real."""

GROUP, VERSION = "ioc.platform", "v1alpha1"

# Only what the site views and the figures read, with the types of docs/warehouse.md (18.16 baseline).
WAREHOUSE_TABLES = {
    "readings": "device_key String, vendor String, device String, unit String, path String, kind String, "
    "seq UInt64, measure String, value Float64, observed_at DateTime('UTC'), received_at DateTime('UTC'), "
    "lat Nullable(Float64), lon Nullable(Float64)",
    "device_status": "device_key String, vendor String, device String, unit String, path String, kind String, "
    "last_seen DateTime('UTC'), last_seq UInt64, readings UInt64, lat Nullable(Float64), lon Nullable(Float64)",
    "incidents": "incident_id String, version UInt64, rule String, module String, unit String, path String, "
    "responsible_unit String, responsible_path String, severity String, state String, title String, "
    "opened_at DateTime('UTC'), updated_at DateTime('UTC')",
    "indicators_766": "unit String, path String, period_kind String, period_start Date, scheme String, "
    "code String, group_code String, points Float64, max_points Float64, no_data UInt8, measured UInt8, "
    "policy String, computed_at DateTime('UTC')",
}
WAREHOUSE_ORDER = {
    "readings": ("ReplacingMergeTree()", "(unit, device_key, measure, seq)"),
    "device_status": ("ReplacingMergeTree(last_seen)", "(device_key)"),
    "incidents": ("ReplacingMergeTree(version)", "(incident_id)"),
    "indicators_766": ("ReplacingMergeTree(computed_at)", "(unit, period_kind, period_start, code)"),
}


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition", interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; its last exception or value explains a timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - kept to explain a timeout
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def kubectl(
    kube: dict[str, Any], *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [kube["kubectl"], f"--kubeconfig={kube['kubeconfig']}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def api_client(kubeconfig: str) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture(scope="session")
def crds_installed(kube: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The generated CRDs applied with kubectl and Established."""
    directory = tmp_path_factory.mktemp("crds")
    crds.write(directory)
    kubectl(kube, "apply", "--server-side", "--force-conflicts", "-f", str(directory))
    kubectl(kube, "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in _crd_names()))
    return kube


def _crd_names() -> list[str]:
    return [c["metadata"]["name"] for c in crds.crd_files().values()]


def clickhouse_admin(clickhouse: dict[str, Any], database: str | None = None) -> Warehouse:
    return connect(
        ClickHouseEndpoint(
            host=clickhouse["host"], port=clickhouse["port"], user=clickhouse["user"], password=clickhouse["password"]
        ),
        database=database,
    )


@pytest.fixture(scope="session")
def warehouse_tables(clickhouse: dict[str, Any]) -> str:
    """The warehouse tables the site views need, in the tests' own source database."""
    with clickhouse_admin(clickhouse) as admin:
        admin.command(f"CREATE DATABASE IF NOT EXISTS {SOURCE_DB}")
        for table, columns in WAREHOUSE_TABLES.items():
            engine, order = WAREHOUSE_ORDER[table]
            admin.command(
                f"CREATE TABLE IF NOT EXISTS {SOURCE_DB}.{table} ({columns}) ENGINE = {engine} ORDER BY {order}"
            )
    return SOURCE_DB


def mqtt_admin(mosquitto: dict[str, Any]) -> MqttEndpoint:
    return MqttEndpoint(
        host=mosquitto["host"],
        port=mosquitto["port"],
        username=mosquitto["admin_user"],
        password=mosquitto["admin_password"],
    )


def operator_env(
    kube: dict[str, Any],
    clickhouse: dict[str, Any],
    kafka: dict[str, Any],
    mosquitto: dict[str, Any],
    *,
    namespace: str | None,
    kubeconfig: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment a `python -m operators` of the local stack runs with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(
        {
            "IOC_OPERATOR_KUBE__KUBECONFIG": kubeconfig or kube["kubeconfig"],
            **KafkaEndpoint.from_service(kafka, kafka_access.OPERATOR).environment("IOC_OPERATOR_KAFKA__"),
            "IOC_OPERATOR_CLICKHOUSE__HOST": clickhouse["host"],
            "IOC_OPERATOR_CLICKHOUSE__PORT": str(clickhouse["port"]),
            "IOC_OPERATOR_CLICKHOUSE__HTTP_PORT": str(clickhouse["http_port"]),
            "IOC_OPERATOR_CLICKHOUSE__USER": clickhouse["user"],
            "IOC_OPERATOR_CLICKHOUSE__PASSWORD": clickhouse["password"],
            "IOC_OPERATOR_CLICKHOUSE__DATABASE": SOURCE_DB,
            "IOC_OPERATOR_CLICKHOUSE_USERS_D": clickhouse["users_d"],
            "IOC_OPERATOR_MQTT__HOST": mosquitto["host"],
            "IOC_OPERATOR_MQTT__PORT": str(mosquitto["port"]),
            "IOC_OPERATOR_MQTT__USERNAME": mosquitto["admin_user"],
            "IOC_OPERATOR_MQTT__PASSWORD": mosquitto["admin_password"],
            "IOC_OPERATOR_SECRET_KEY": "tests-" + uuid.uuid4().hex,
            "IOC_OPERATOR_REPAIR_INTERVAL_S": "2",
            "IOC_OPERATOR_STATUS_REFRESH_S": "2",
            "IOC_OPERATOR_CRD_WAIT_S": "30",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if namespace is not None:
        env["IOC_OPERATOR_NAMESPACE"] = namespace
    env.update(extra)
    return env


class OperatorProcess:
    """`python -m operators` in its own process group, its output in a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> OperatorProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "operators"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = self.log.stat().st_size if self.log.exists() else 0

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the operator exited with {self.process.returncode}:\n{self.text()[-3000:]}")
            return "Activity 'startup' succeeded" in self.text()[max(0, started - 1) :]

        wait_for(ready, timeout, "the operator to start")
        return self

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no finishing the handler it is in."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture(scope="module")
def module_namespace(crds_installed: dict[str, Any], request: pytest.FixtureRequest) -> str:
    name = (
        f"t-{request.module.__name__.rsplit('.', 1)[-1].removeprefix('test_').replace('_', '-')}-{uuid.uuid4().hex[:5]}"
    )
    kubectl(crds_installed, "create", "namespace", name)
    return name


def custom_api(kube: dict[str, Any]) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client(kube["kubeconfig"]))


def site(name: str, unit: str, tier: str, parent: tuple[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """An IOCSite manifest."""
    body: dict[str, Any] = {"unit": unit, "tier": tier, **spec}
    if parent is not None:
        body["parentRef"] = {"name": parent[0], "tier": parent[1]}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "IOCSite", "metadata": {"name": name}, "spec": body}


def get_site(kube: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    return dict(custom_api(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, "iocsites", name))


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), {})


def ready(kube: dict[str, Any], namespace: str, name: str, plural: str = "iocsites") -> dict[str, Any] | None:
    """The object when it is Ready for its current generation, else None."""
    obj = dict(custom_api(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name))
    status = obj.get("status", {})
    if status.get("phase") == "Ready" and status.get("observedGeneration") == obj["metadata"]["generation"]:
        return obj
    return None


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)[:4000]


def site_config_messages(kafka: dict[str, Any], key: str, timeout: float = 10.0) -> list[bytes | None]:
    """Every value published for `key` on the site-config topic, oldest first (None is a tombstone)."""
    consumer = Consumer(
        {
            **KafkaEndpoint.from_service(kafka).client_config(),  # the admin: reads what the operator wrote
            "group.id": f"optest-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topics.SITE_CONFIG.name])
    found: list[bytes | None] = []
    deadline, quiet = time.monotonic() + timeout, time.monotonic() + 3
    try:
        while time.monotonic() < min(deadline, quiet):
            message = consumer.poll(0.3)
            if message is None or message.error():
                continue
            quiet = time.monotonic() + 1.5
            if message.key() == key.encode():
                found.append(message.value())
    finally:
        consumer.close()
    return found


class MqttProbe:
    """An MQTT v5 client that records PUBACK reason codes (135: not authorized)."""

    def __init__(self, mosquitto: dict[str, Any], username: str, password: str) -> None:
        self.acks: dict[int, int] = {}
        self.connect_code: int | None = None
        connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"p-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            self.connect_code = reason.value
            connected.set()

        self.client.on_connect = on_connect
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc.value)
        self.client.connect(mosquitto["host"], mosquitto["port"])
        self.client.loop_start()
        connected.wait(5)

    def publish(self, topic: str) -> int:
        info = self.client.publish(topic, b'{"probe": 1}', qos=1)
        wait_for(lambda: info.mid in self.acks, 5, f"PUBACK for {topic}")
        return self.acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
