"""A fault run: the platform's processes on three Kafka brokers, producers recording their acks, faults.

`FaultRun.run(schedule)` starts the local stack (three Kafka nodes, Mosquitto saving every change, ClickHouse), the
bridge, two stream workers, the citizen API, the portal gateway (also the parent that receives upward reports) and
the reporting service, each a real process as in `ioc up`. Producers: gauges publishing through the SDK with its disk
queue, citizens reporting through the API, the portal posting dossier events, an operator commanding the incidents
the reports open (as the dashboards send commands), and the reporting service's upward reports. The schedule's faults
run while they produce; a sampler records throughput, consumer lag and end-to-end latency every second. Then the run
drains, reads what is stored and asks `iocctl.faults.history.check` for anomalies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import httpx
from confluent_kafka import Consumer, TopicPartition

from dashboards.data.commands import CommandError, KafkaCommandSender
from ioc import codecs, kafka_access, signing, topics
from ioc.clients import clickhouse, dynsec
from ioc.events import (
    DossierChannel,
    DossierStatus,
    IncidentAction,
    IncidentCommand,
    SensorKind,
    ServiceRecord,
)
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint, MqttEndpoint
from ioc.units import load_tree
from iocctl.faults import history
from iocctl.faults.partition import Partition, reaches
from iocctl.faults.schedule import Fault
from iocctl.faults.sites import SiteChurn
from iocctl.localstack import clickhouse as local_clickhouse
from iocctl.localstack import kafka as local_kafka
from iocctl.localstack.platform import operator_env
from iocctl.localstack.process import free_port, is_alive, port_open, start_process, stop_process
from iocctl.localstack.stack import Stack
from sensors.gateways.state import GatewayState
from sensors.sdk import SdkError, VendorClient
from streams.warehouse import migrate

__all__ = ["FaultRun", "RunResult"]

DATABASE = "ioc"
"""The platform's database, as `ioc up` has it (the queries below spell it)."""
SITE = "74"
CHILD_SITE = "724"
API_KEY = "faults-run"
WEBHOOK_SECRET = "faults-run-webhook"  # noqa: S105 - a throwaway stack's
READ_TOKEN = "faults-run-read"  # noqa: S105
APP_ID = "ioc-streams"


@dataclasses.dataclass
class _Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    pid: int = 0
    held: bool = False
    """Down on purpose (a `kill` fault under way): the supervisor leaves it to the fault."""

    def start(self) -> None:
        self.pid = start_process(self.name, self.argv, self.log, env=self.env).pid

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        while is_alive(self.pid):
            time.sleep(0.05)


@dataclasses.dataclass
class RunResult:
    """What a run recorded, stored and found; `figures()` is the JSON the bench writes."""

    recorded: history.Recorded
    stored: history.Stored
    spans: list[history.FaultSpan]
    anomalies: list[history.Anomaly]
    samples: list[dict[str, Any]]
    proofs: list[dict[str, Any]]
    seconds: dict[str, float]
    errors: list[str]
    crashes: list[str] = dataclasses.field(default_factory=list)
    """Processes that ended by themselves (not a fault), each started again as Kubernetes would: what and when."""
    site_changes: int = 0
    """IOCSite creations, changes and deletions the API server acknowledged while the operator was being killed."""

    def recovery(self) -> list[dict[str, Any]]:
        """Per fault: how long after its target was back the end-to-end latency was normal again, and anomalies."""
        before = [s["latency_s"] for s in self.samples if s["latency_s"] is not None and s["t"] < self._first_fault()]
        normal = max(5.0, 3 * statistics.median(before)) if before else 10.0
        rows = []
        for span in self.spans:
            after = [s for s in self.samples if s["t"] >= span.ended and s["latency_s"] is not None]
            back = next((s["t"] for s in after if s["latency_s"] <= normal), None)
            rows.append(
                {
                    "fault": span.name,
                    "kind": span.kind,
                    "down_s": round(span.ended - span.started, 1),
                    "recovered": back is not None,
                    "recovery_s": round(back - span.ended, 1) if back is not None else None,
                    "anomalies": sum(1 for a in self.anomalies if span.name in a.faults),
                }
            )
        return rows

    def _first_fault(self) -> float:
        return min((s.started for s in self.spans), default=float("inf"))

    def figures(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for anomaly in self.anomalies:
            kinds[anomaly.kind] = kinds.get(anomaly.kind, 0) + 1
        recovery = self.recovery()
        return {
            "faults": len(self.spans),
            "faults_survived": sum(1 for r in recovery if r["recovered"] and r["anomalies"] == 0),
            "readings_acknowledged": len(self.recorded.readings),
            "readings_lost": kinds.get("reading-lost", 0),
            "readings_duplicated": kinds.get("reading-duplicated", 0),
            "citizen_reports": len(self.recorded.reports),
            "dossier_events": len(self.recorded.dossiers),
            "commands": len(self.recorded.commands),
            "incidents": len(self.stored.current),
            "upward_revisions": len(self.recorded.upward),
            "site_changes": self.site_changes,
            "anomalies": len(self.anomalies),
            "anomaly_kinds": kinds,
            "anomaly_examples": [a.describe() for a in self.anomalies[:50]],
            "recovery": recovery,
            "partition_proofs": self.proofs,
            "fault_errors": self.errors,
            "crashes": self.crashes,
            "seconds": self.seconds,
        }


class FaultRun:
    """One run under `root` (its stack, logs and state files); `run(schedule)` does everything and stops it all."""

    def __init__(self, root: Path, *, devices: int = 24, batch: int = 5, say: Callable[[str], None] = print) -> None:
        self.root = root
        self.devices = devices
        self.batch = batch
        self.say = say
        self.stack = Stack(root / "stack", kafka_brokers=3, mqtt_persistence="every-change")
        self.procs: dict[str, _Proc] = {}
        self.recorded = history.Recorded()
        self.acked_at: dict[tuple[str, int], float] = {}
        self.spans: list[history.FaultSpan] = []
        self.proofs: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self._stop_producing = threading.Event()
        self._stop_sampling = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: list[VendorClient] = []
        self._target_locks: dict[str, threading.Lock] = {}
        self.errors: list[str] = []
        self.crashes: list[str] = []
        """Faults whose injection or repair failed (the target did not come back), with the reason."""
        tree = load_tree("2024")
        self.communes = [u.code for u in tree.children(CHILD_SITE)]
        self.child_private, self.child_public = signing.generate_signing_key()
        self.api_port, self.gateway_port = free_port(), free_port()

    # --- the platform ---------------------------------------------------------------------------------------------

    def _define(self, services: dict[str, Any]) -> None:
        py = sys.executable
        m, k, ch = services["mosquitto"], services["kafka"], services["clickhouse"]
        logs = self.root / "logs"
        base = dict(os.environ)
        bridge = {
            **base,
            "IOC_BRIDGE_MQTT__HOST": m["host"],
            "IOC_BRIDGE_MQTT__PORT": str(m["tls_port"]),
            "IOC_BRIDGE_MQTT__TLS_CA_FILE": m["ca_file"],
            "IOC_BRIDGE_MQTT__USERNAME": m["bridge_user"],
            "IOC_BRIDGE_MQTT__PASSWORD": m["bridge_password"],
            **KafkaEndpoint.from_service(k, kafka_access.BRIDGE).environment("IOC_BRIDGE_KAFKA__"),
            "IOC_BRIDGE_REPLICA": "faults-0",
            # A backlog released after an outage comes faster than a device's steady rate: not a flood.
            "IOC_BRIDGE_DEVICE_RATE_PER_S": "100000",
            "IOC_BRIDGE_DEVICE_BURST": "100000",
            "IOC_BRIDGE_VENDOR_RATE_PER_S": "1000000",
            "IOC_BRIDGE_VENDOR_BURST": "1000000",
        }
        self.procs["bridge"] = _Proc("bridge", [py, "-m", "sensors.bridge"], bridge, logs / "bridge.log")
        for n in (1, 2):
            worker = {
                **base,
                **local_clickhouse.component_env("IOC_STREAMS_", ch),
                **KafkaEndpoint.from_service(k, kafka_access.STREAMS).environment("IOC_STREAMS_KAFKA__"),
                "IOC_STREAMS_APP_ID": APP_ID,
                "IOC_STREAMS_DATA_DIR": str(self.root / f"worker-{n}"),
                "IOC_STREAMS_WEB_PORT": "0",
                "IOC_STREAMS_SESSION_TIMEOUT_S": "10",
                "IOC_STREAMS_SINK_FLUSH_S": "0.5",
            }
            argv = [py, "-m", "streams", "worker", "--loglevel=warn", "--without-web"]
            self.procs[f"worker-{n}"] = _Proc(f"worker-{n}", argv, worker, logs / f"worker-{n}.log")
        api = {
            **base,
            **local_clickhouse.component_env("IOC_API_", ch),
            "IOC_API_CLICKHOUSE__DATABASE": DATABASE,
            **KafkaEndpoint.from_service(k, kafka_access.API).environment("IOC_API_KAFKA__"),
            "IOC_API_PORT": str(self.api_port),
            "IOC_API_SITE_UNIT": SITE,
            "IOC_API_CLIENTS": json.dumps({"faults": {"key": API_KEY, "rate_per_s": 1000, "burst": 1000}}),
            "IOC_API_IDEMPOTENCY_DB": str(self.root / "api-ledger.sqlite3"),
            "IOC_API_LOG_LEVEL": "WARNING",
        }
        self.procs["api"] = _Proc("api", [py, "-m", "dashboards.api"], api, logs / "api.log")
        gateway = {
            **base,
            **KafkaEndpoint.from_service(k, kafka_access.GATEWAY).environment("IOC_PORTAL_KAFKA__"),
            "IOC_PORTAL_SITE_UNIT": SITE,
            "IOC_PORTAL_PORT": str(self.gateway_port),
            "IOC_PORTAL_STATE_DB": str(self.root / "gateway.sqlite3"),
            "IOC_PORTAL_WEBHOOK_SECRETS": json.dumps([WEBHOOK_SECRET]),
            "IOC_PORTAL_REPORT_KEYS": json.dumps({CHILD_SITE: self.child_public}),
            "IOC_PORTAL_READ_TOKEN": READ_TOKEN,
            "IOC_PORTAL_LOG_LEVEL": "WARNING",
        }
        self.procs["gateway"] = _Proc("gateway", [py, "-m", "sensors.gateways"], gateway, logs / "gateway.log")
        reporting = {
            **base,
            **local_clickhouse.component_env("IOC_REPORTING_", ch),
            "IOC_REPORTING_CLICKHOUSE__DATABASE": DATABASE,
            **KafkaEndpoint.from_service(k, kafka_access.REPORTING).environment("IOC_REPORTING_KAFKA__"),
            "IOC_REPORTING_SITE_UNIT": CHILD_SITE,
            "IOC_REPORTING_PARENT_URL": f"http://127.0.0.1:{self.gateway_port}/reports/v1/upward",
            "IOC_REPORTING_SIGNING_KEY": self.child_private,
            "IOC_REPORTING_PUBLISH_EVERY_S": "5",
            "IOC_REPORTING_RETRY_MIN_S": "0.2",
            "IOC_REPORTING_RETRY_MAX_S": "2",
        }
        self.procs["reporting"] = _Proc("reporting", [py, "-m", "streams.reporting"], reporting, logs / "reporting.log")
        # The Kopf operator (not the human one of `_operator`), repairing and refreshing status every few seconds.
        operator = {
            **operator_env(services),
            "IOC_OPERATOR_REPAIR_INTERVAL_S": "5",
            "IOC_OPERATOR_STATUS_REFRESH_S": "5",
        }
        self.procs["operator"] = _Proc("operator", [py, "-m", "operators"], operator, logs / "operator.log")

    def start(self) -> None:
        started = time.monotonic()
        self.say(f"starting a three-broker stack in {self.stack.root} ...")
        services = self.stack.up(["mosquitto", "kafka", "clickhouse", "kube-apiserver"], progress=True)
        with clickhouse.connect(ClickHouseEndpoint.from_service(services["clickhouse"])) as warehouse:
            migrate(warehouse, DATABASE)
        self.command_endpoint = local_kafka.site_endpoint(services["kafka"], SITE)  # its topic exists before workers
        self._define(services)
        self.sites = SiteChurn(services["kube-apiserver"], self.communes, say=self.say)
        self.sites.prepare()
        for proc in self.procs.values():
            proc.start()
        self._wait_http(self.api_port, "api")
        self._wait_http(self.gateway_port, "gateway")
        self.services = services
        self.seconds = {"start": round(time.monotonic() - started, 1)}

    def _wait_http(self, port: int, name: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not port_open(port):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the {name} did not listen on port {port} within {timeout:.0f} s: see {self.procs[name].log}"
                )
            time.sleep(0.3)

    def _warehouse(self) -> clickhouse.Warehouse:
        """A new connection (the server keeps its port across restarts); raises WarehouseError while it is down."""
        return clickhouse.connect(ClickHouseEndpoint.from_service(self.services["clickhouse"]))

    def _admin(self) -> KafkaEndpoint:
        return KafkaEndpoint.from_service(self.services["kafka"])

    # --- producers ------------------------------------------------------------------------------------------------

    def _vendor_client(self) -> VendorClient:
        m = self.services["mosquitto"]
        vendor, password = f"faults{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        admin = MqttEndpoint(host=m["host"], port=m["port"], username="admin", password=m["admin_password"])
        with dynsec.DynsecAdmin(admin) as control:
            control.ensure_vendor(vendor, password)
        login = MqttEndpoint(
            host=m["host"],
            port=m["tls_port"],
            username=dynsec.vendor_username(vendor),
            password=password,
            tls_ca_file=m["ca_file"],
        )
        client = VendorClient(login, vendor, max_queued=1_000_000, disk_queue=self.root / "gateway-outbox.sqlite3")
        client.start()
        self._clients.append(client)
        return client

    def _readings(self) -> None:
        client = self._vendor_client()
        gauges = [
            client.device(f"gauge-{i:03d}", self.communes[i % len(self.communes)], SensorKind.WATER)
            for i in range(self.devices)
        ]
        while not self._stop_producing.wait(1.0):
            now = dt.datetime.now(dt.UTC)
            for i, gauge in enumerate(gauges):
                level = 0.3 + 0.01 * (i % 10)
                samples = [
                    ({"waterLevel": level}, now - dt.timedelta(milliseconds=200 * (self.batch - j)))
                    for j in range(self.batch)
                ]
                try:
                    built = gauge.readings(samples)
                except SdkError as exc:
                    self.say(f"gauge {gauge.device_id}: {exc}")
                    continue
                at = time.time()
                key = topics.device_key(client.vendor, gauge.device_id)
                for reading in built:
                    self.recorded.readings.append(history.AckedReading(key, reading.seq, at))
                    self.acked_at[(key, reading.seq)] = at

    def _retrying(self, send: Callable[[], httpx.Response | None]) -> httpx.Response | None:
        """Send until answered 2xx (the same request, the same idempotency), or the producers stop."""
        while True:
            try:
                answer = send()
                if answer is not None and answer.status_code < 300:
                    return answer
            except httpx.HTTPError:
                pass
            if self._stop_producing.wait(1.0):
                return None

    def _citizens(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=10) as http:
            n = 0
            while not self._stop_producing.wait(2.0):
                n += 1
                form = {
                    "api_key": API_KEY,
                    "service_code": "waste",
                    "description": f"Rác tồn đọng, lần {n}",
                    "attribute[unit]": self.communes[n % len(self.communes)],
                }
                key = {"Idempotency-Key": f"faults-{n}"}

                def post(form: dict[str, str] = form, key: dict[str, str] = key) -> httpx.Response:
                    return http.post("/open311/v2/requests.json", data=form, headers=key)

                answer = self._retrying(post)
                if answer is not None:
                    self.recorded.reports[str(answer.json()[0]["service_request_id"])] = time.time()

    def _dossier(self, n: int, version: int) -> ServiceRecord:
        received = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
        status = (DossierStatus.RECEIVED, DossierStatus.IN_PROGRESS, DossierStatus.PROCESSED)[version - 1]
        occurred = received + dt.timedelta(minutes=version)
        return ServiceRecord(
            dossier_id=f"FAULTS-{n:05d}",
            status_version=version,
            unit=self.communes[n % len(self.communes)],
            procedure_code="1.001612",
            status=status,
            channel=DossierChannel.ONLINE,
            received_at=received,
            due_at=received + dt.timedelta(days=5),
            occurred_at=occurred,
            finished_at=occurred if status is DossierStatus.PROCESSED else None,
        )

    def _portal(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.gateway_port}", timeout=10) as http:
            n = 0
            while not self._stop_producing.wait(2.0):
                n += 1
                # A new dossier and the next status of the two before it: every post changes the 724 report.
                records = [self._dossier(n - back, back + 1) for back in range(3) if n - back >= 1]
                body = b"[" + b",".join(codecs.encode(r) for r in records) + b"]"

                def post(body: bytes = body) -> httpx.Response:
                    signature = signing.sign_webhook(WEBHOOK_SECRET, body, int(time.time()))
                    headers = {signing.SIGNATURE_HEADER: signature, "Content-Type": "application/json"}
                    return http.post("/portal/v1/dossier-events", content=body, headers=headers)

                answer = self._retrying(post)
                if answer is None:
                    continue
                for record, result in zip(records, answer.json()["results"], strict=True):
                    if result["result"] in ("accepted", "duplicate"):
                        self.recorded.dossiers[(record.dossier_id, record.status_version)] = time.time()

    _NEXT_ACTION: ClassVar[dict[str, IncidentAction]] = {
        "open": IncidentAction.ACKNOWLEDGE,
        "acknowledged": IncidentAction.DISPATCH,
        "dispatched": IncidentAction.RESOLVE,
        "resolved": IncidentAction.CLOSE,
    }

    def _sites(self) -> None:
        """A platform engineer changing IOCSites with kubectl every few seconds while the operator is killed."""
        while not self._stop_producing.wait(3.0):
            try:
                self.sites.step()
            except (RuntimeError, subprocess.TimeoutExpired) as exc:  # the API server is not faulted: say, go on
                self.say(f"sites: {exc}")

    def _operator(self) -> None:
        """Acknowledge, dispatch, resolve and close each citizen report's incident, one step per state it shows."""
        sender = KafkaCommandSender(self.command_endpoint, timeout_s=30)
        sent: set[tuple[str, str]] = set()
        warehouse: clickhouse.Warehouse | None = None
        while not self._stop_producing.wait(2.0):
            try:
                warehouse = warehouse or self._warehouse()
                rows = warehouse.query(
                    "SELECT incident_id, state, unit FROM ioc.incidents FINAL WHERE rule = 'citizen-report'"
                )
            except clickhouse.WarehouseError:
                warehouse = None
                continue
            for row in rows:
                action = self._NEXT_ACTION.get(row["state"])
                if action is None or (row["incident_id"], action.value) in sent:
                    continue
                command = IncidentCommand(
                    command_id=uuid.uuid4().hex,
                    incident_id=row["incident_id"],
                    action=action,
                    actor="faults-operator",
                    site_unit=SITE,
                    issued_at=dt.datetime.now(dt.UTC),
                    target_unit=row["unit"] if action is IncidentAction.DISPATCH else None,
                    note="Đã xử lý" if action is IncidentAction.RESOLVE else None,
                    grants=(f"operator@{SITE}",),
                )
                while not self._stop_producing.is_set():  # the dashboard's operator presses again until it is sent
                    try:
                        sender.send(command)
                    except CommandError:
                        time.sleep(1)
                        continue
                    sent.add((row["incident_id"], action.value))
                    self.recorded.commands.append(
                        history.AckedCommand(command.command_id, command.incident_id, action.value, time.time())
                    )
                    break
        sender.close()
        if warehouse is not None:
            warehouse.close()

    # --- the sampler ----------------------------------------------------------------------------------------------

    def _supervise(self) -> None:
        """Start again, as a Deployment's restart policy would, a process that ended without a fault: the promise
        is that nothing is lost across a crash too. Each crash is recorded (`RunResult.crashes`) with its log's last
        line."""
        while not self._stop_sampling.wait(1.0):
            for proc in list(self.procs.values()):
                if proc.pid and not proc.held and not is_alive(proc.pid):
                    text = proc.log.read_text(encoding="utf-8", errors="replace") if proc.log.exists() else ""
                    last = text.rstrip().rpartition("\n")[2].strip()[:300]
                    self.crashes.append(f"{proc.name} at {time.strftime('%H:%M:%S')}: {last}")
                    self.say(f"{proc.name} ended by itself ({last}); starting it again")
                    proc.start()

    def _sample(self) -> None:
        probes = sorted({key for key, _ in list(self.acked_at)[: self.devices * self.batch]})
        consumer = Consumer(
            {**self._admin().client_config(), "group.id": APP_ID, "enable.auto.commit": False, "log_level": 0}
        )
        warehouse: clickhouse.Warehouse | None = None
        last_stored: tuple[float, int] | None = None
        newest: dict[str, int] = {}
        t0 = time.time()
        while not self._stop_sampling.wait(1.0):
            now = time.time()
            sample: dict[str, Any] = {"t": now, "acknowledged": len(self.recorded.readings), "stored_per_s": None}
            sample |= {"stored": None, "lag": None, "latency_s": None}
            try:
                warehouse = warehouse or self._warehouse()
                stored = int(warehouse.query("SELECT count() AS n FROM ioc.readings")[0]["n"])
                sample["stored"] = stored
                if last_stored is not None:
                    sample["stored_per_s"] = (stored - last_stored[1]) / max(now - last_stored[0], 1e-3)
                last_stored = (now, stored)
                probes = probes or sorted({key for key, _ in list(self.acked_at)[: self.devices * self.batch]})
                rows = warehouse.query(
                    "SELECT device_key, max(seq) AS s FROM ioc.readings WHERE device_key IN %(d)s GROUP BY device_key",
                    {"d": tuple(probes) or ("-",)},
                )
                ages = []
                for row in rows:
                    seq = int(row["s"])
                    if seq > newest.get(row["device_key"], -1):
                        newest[row["device_key"]] = seq
                        at = self.acked_at.get((row["device_key"], seq))
                        if at is not None:
                            ages.append(now - at)
                if ages:
                    sample["latency_s"] = round(statistics.median(ages), 2)
            except clickhouse.WarehouseError:
                warehouse = None
            with contextlib.suppress(Exception):
                parts = [TopicPartition(topics.READINGS.name, p) for p in range(topics.READINGS.partitions)]
                committed = consumer.committed(parts, timeout=2)
                lag = 0
                for tp in committed:
                    _low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=2)
                    lag += high - max(tp.offset, 0)
                sample["lag"] = lag
            sample["t_s"] = round(now - t0, 1)
            self.samples.append(sample)
        consumer.close()
        if warehouse is not None:
            warehouse.close()

    # --- faults ---------------------------------------------------------------------------------------------------

    def _inject(self, fault: Fault, t0: float) -> None:
        time.sleep(max(0.0, t0 + fault.at_s - time.time()))
        # Faults on one target wait for each other: two Kafka nodes down at once is a lost quorum (and below
        # min.insync.replicas), not a fault the platform promises to ride through.
        with self._target_locks.setdefault(fault.target, threading.Lock()):
            try:
                self._inject_now(fault, t0)
            except Exception as exc:  # noqa: BLE001 - a repair that failed is a finding of the run, not a crash
                self.errors.append(f"{fault.name}: {type(exc).__name__}: {exc}"[:2000])
                self.say(f"{fault.name} failed: {exc}")

    def _inject_now(self, fault: Fault, t0: float) -> None:
        started = time.time()
        self.say(f"[{started - t0:6.1f}s] {fault.name}")
        if fault.kind == "kill":
            proc = self.procs[fault.target]
            proc.held = True
            proc.kill()
            time.sleep(fault.down_s)
            proc.start()
            proc.held = False
        elif fault.kind == "service-kill":
            pid = int(self.stack.status()["services"][fault.target]["pid"])
            os.kill(pid, signal.SIGKILL)
            while is_alive(pid):
                time.sleep(0.05)
            time.sleep(fault.down_s)
            self.stack.resume_service(fault.target)
        elif fault.kind == "outage":
            self.stack.stop_service(fault.target)
            time.sleep(fault.down_s)
            self.stack.resume_service(fault.target)
        elif fault.kind in ("broker", "controller"):
            controller = self.stack.kafka_controller()
            node = controller if fault.kind == "controller" else next(n for n in (1, 2, 3) if n != controller)
            self.stack.kill_broker(node)
            time.sleep(fault.down_s)
            self.stack.restart_broker(node)
        elif fault.kind == "partition":
            self._partition(fault)
        ended = time.time()
        self.spans.append(history.FaultSpan(fault.name, fault.kind, started, ended))
        self.say(f"[{ended - t0:6.1f}s] {fault.name}: back after {ended - started:.1f} s")

    def _partition(self, fault: Fault) -> None:
        brokers = [int(b["port"]) for b in self.services["kafka"]["brokers"]]
        probe = next((port for port in brokers if port_open(port)), brokers[0])  # a node that is up (faults overlap)
        # Its own class id (major 0x10EE; minor from this process and the partition's number): a fault run beside
        # another (a bench and a test) never drops the other's packets.
        classid = 0x10EE0000 | (os.getpid() & 0xFFF) << 4 | (len(self.proofs) + 1) & 0xF
        with Partition(f"ioc-faults-{fault.target}-{uuid.uuid4().hex[:4]}", classid) as partition:
            partition.isolate(self.procs[fault.target].pid)
            before = reaches(partition, probe)
            partition.cut(brokers)
            during = reaches(partition, probe, timeout=1.0)
            time.sleep(fault.down_s)
            partition.heal()
            # Another fault may have stopped the probed node meanwhile (the controller's kill overlaps a partition):
            # after the heal, any node that is up from outside must be reachable from inside too.
            up = [port for port in brokers if port_open(port)]
            after = bool(up) and any(reaches(partition, port) for port in up)
        self.proofs.append(
            {"fault": fault.name, "reached_before": before, "reached_while_cut": during, "reached_after": after}
        )

    # --- draining and reading back --------------------------------------------------------------------------------

    def _drain(self, timeout: float) -> None:
        """Until everything acknowledged is stored (or `timeout`): what is still missing then is an anomaly."""
        deadline = time.monotonic() + timeout
        for client in self._clients:
            with contextlib.suppress(SdkError):
                client.flush(max(1.0, deadline - time.monotonic()))
        while time.monotonic() < deadline:
            try:
                stored = self._read_stored()
            except clickhouse.WarehouseError:
                time.sleep(2)
                continue
            missing = [a for a in history.check(self.recorded, stored) if a.kind.endswith(("-lost", "-not-applied"))]
            if not missing:
                break
            self.say(f"draining: {len(missing)} acknowledged item(s) not stored yet, e.g. {missing[0].describe()}")
            time.sleep(3)
        time.sleep(5)  # anything delivered twice arrives by now

    def _upward_published(self) -> dict[str, float]:
        admin = self._admin()
        consumer = Consumer(
            {
                **admin.client_config(),
                "group.id": f"faults-{uuid.uuid4().hex[:6]}",
                "log_level": 0,
                "enable.auto.commit": False,
            }
        )
        keys: dict[str, float] = {}
        try:
            name = topics.REPORTS_OUTBOX.name
            parts = consumer.list_topics(name, timeout=10).topics[name].partitions
            ends = {p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1] for p in parts}
            consumer.assign([TopicPartition(name, p, 0) for p in ends])
            done = {p: ends[p] == 0 for p in ends}
            deadline = time.monotonic() + 60
            while not all(done.values()) and time.monotonic() < deadline:
                for message in consumer.consume(500, timeout=1):
                    if message.error() is None:
                        envelope = topics.REPORTS_OUTBOX.decode(message.value() or b"")
                        keys[envelope.idempotency_key] = message.timestamp()[1] / 1000
                        partition, offset = message.partition() or 0, message.offset() or 0
                        done[partition] = offset + 1 >= ends[partition]
        finally:
            consumer.close()
        return keys

    def _upward_kept(self) -> dict[str, int]:
        kept: dict[str, int] = {}
        for report in GatewayState(self.root / "gateway.sqlite3").reports(latest_only=False):
            kept[report.idempotency_key] = kept.get(report.idempotency_key, 0) + 1
        return kept

    def _read_stored(self) -> history.Stored:
        keys = tuple(sorted({r.device_key for r in self.recorded.readings})) or ("-",)
        with self._warehouse() as warehouse:
            readings = {
                (r["device_key"], int(r["seq"])): int(r["n"])
                for r in warehouse.query(
                    "SELECT device_key, seq, count() AS n FROM ioc.readings FINAL WHERE device_key IN %(k)s"
                    " GROUP BY device_key, seq",
                    {"k": keys},
                )
            }
            reports = {
                r["report_id"]: int(r["n"])
                for r in warehouse.query(
                    "SELECT report_id, count() AS n FROM ioc.citizen_reports FINAL GROUP BY report_id"
                )
            }
            dossiers = {
                r["dossier_id"]: (int(r["n"]), int(r["v"]))
                for r in warehouse.query(
                    "SELECT dossier_id, count() AS n, max(status_version) AS v FROM ioc.dossiers FINAL"
                    " WHERE dossier_id LIKE 'FAULTS-%' GROUP BY dossier_id"
                )
            }
            rows = warehouse.query(
                "SELECT incident_id, version, state, action FROM ioc.incident_history FINAL"
                " ORDER BY incident_id, version"
            )
            refusals = {
                r["command_id"]: f"{r['reason']}: {r['detail']}"
                for r in warehouse.query("SELECT command_id, reason, detail FROM ioc.command_refusals")
            }
            current = {
                r["incident_id"]: (int(r["version"]), r["state"])
                for r in warehouse.query("SELECT incident_id, version, state FROM ioc.incidents FINAL")
            }
        return history.Stored(
            readings=readings,
            reports=reports,
            dossiers=dossiers,
            history=[history.HistoryRow(r["incident_id"], int(r["version"]), r["state"], r["action"]) for r in rows],
            current=current,
            upward=self._upward_kept(),
            refusals=refusals,
        )

    # --- the whole run --------------------------------------------------------------------------------------------

    def run(
        self, schedule: list[Fault], *, warmup_s: float = 20.0, settle_s: float = 20.0, drain_s: float = 240.0
    ) -> RunResult:
        try:
            self.start()
            for target in (self._readings, self._citizens, self._portal, self._operator, self._sites):
                thread = threading.Thread(target=target, name=target.__name__, daemon=True)
                thread.start()
                self._threads.append(thread)
            sampler = threading.Thread(target=self._sample, name="sampler", daemon=True)
            sampler.start()
            supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
            supervisor.start()
            self._wait_flowing(180)
            time.sleep(warmup_s)
            t0 = time.time()
            injectors = [threading.Thread(target=self._inject, args=(f, t0), daemon=True) for f in schedule]
            for injector in injectors:
                injector.start()
            for injector in injectors:
                injector.join()
            self.seconds["faults"] = round(time.time() - t0, 1)
            time.sleep(settle_s)
            self._stop_producing.set()
            for thread in self._threads:
                thread.join(60)
            drained = time.monotonic()
            self._drain(drain_s)
            self._wait_upward(60)
            self.recorded.upward = self._upward_published()
            self.seconds["drain"] = round(time.monotonic() - drained, 1)
            self._stop_sampling.set()
            sampler.join(30)
            stored = self._read_stored()
            anomalies = history.check(self.recorded, stored, self.spans) + self.sites.check(self.spans, 90)
            return RunResult(
                self.recorded,
                stored,
                self.spans,
                anomalies,
                self.samples,
                self.proofs,
                self.seconds,
                self.errors,
                self.crashes,
                self.sites.changes,
            )
        finally:
            self.stop()

    def _wait_flowing(self, timeout: float) -> None:
        """Until readings go all the way to the warehouse (every worker has joined and been given its partitions):
        faults start on a running platform, not on one still starting, whose first rebalance takes long on a busy
        machine."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            recent = self.samples[-5:]
            if sum(1 for s in recent if s["latency_s"] is not None and s["latency_s"] < 10) >= 3:
                return
            time.sleep(1)
        raise RuntimeError(
            f"readings did not reach the warehouse steadily within {timeout:.0f} s: see {self.root / 'logs'}"
        )

    def _wait_upward(self, timeout: float) -> None:
        """Until the parent holds every revision the reporting service published (its pusher retries with backoff)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(self._upward_published()) <= set(self._upward_kept()):
                return
            time.sleep(2)

    def stop(self) -> None:
        self._stop_producing.set()
        self._stop_sampling.set()
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close(flush_timeout=0)
        for proc in self.procs.values():
            proc.held = True  # stopping now: the supervisor must not start it again
        for proc in reversed(self.procs.values()):
            if proc.pid:
                stop_process(proc.pid, timeout=15)
        self.stack.down()
