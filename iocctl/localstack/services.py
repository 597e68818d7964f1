"""The five local services: how each is configured, started on free loopback ports, and checked ready.

Each `start_*` function writes its configuration under the stack's directory, launches the process
detached (so the stack outlives `ioc stack up`), waits until the service answers a real request, and
returns a `ServiceInfo`: the pid, the log, and everything a client needs (endpoints and credentials).
`is_ready` repeats the readiness probe for `ioc stack status`.
"""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import ipaddress
import json
import secrets
import shutil
import ssl
import subprocess
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from ioc.clients import dynsec, kafka_admin
from ioc.settings import MqttEndpoint
from iocctl.localstack.install import KAFKA_VERSION, KUBERNETES_VERSION, Installer
from iocctl.localstack.process import ServiceStartError, free_port, port_open, start_process, wait_until

__all__ = ["SERVICES", "ServiceInfo", "is_ready", "kafka_cluster_id", "relaunch", "start_service"]

ServiceInfo = dict[str, Any]
SERVICES: Final = ("mosquitto", "kafka", "clickhouse", "etcd", "kube-apiserver")
HOST: Final = "127.0.0.1"

BRIDGE_USER: Final = "ioc-bridge"
UNPRIVILEGED_USER: Final = "ioc-unprivileged"


def _secret() -> str:
    # Hex, not urlsafe: a password starting with "-" would be read as an option by mosquitto_ctrl.
    return secrets.token_hex(16)


def _http_get(
    url: str, *, token: str | None = None, ca_file: str | None = None, timeout: float = 2.0
) -> tuple[int, str]:
    request = urllib.request.Request(url)  # noqa: S310 - loopback URLs we built ourselves
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
        return int(response.status), response.read().decode("utf-8", "replace")


def _launch(
    name: str, argv: list[Any], log: Path, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start a service and remember how, so `relaunch` can start it again the same way (outage tests)."""
    process = start_process(name, argv, log, cwd=cwd)
    return process, {"argv": [str(a) for a in argv], "cwd": str(cwd) if cwd else None, "stdout_log": str(log)}


def _run_setup(what: str, argv: list[str]) -> None:
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise ServiceStartError(f"{what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")


def relaunch(name: str, info: ServiceInfo, *, timeout: float = 120) -> ServiceInfo:
    """Start a stopped service again with its recorded command line, data and ports; wait until ready."""
    log = Path(info["stdout_log"])
    process = start_process(name, info["argv"], log, cwd=Path(info["cwd"]) if info["cwd"] else None)
    wait_until(name, lambda: is_ready(name, info), timeout=timeout, process=process, log_path=log, interval=0.3)
    return {**info, "pid": process.pid}


# --- Mosquitto -----------------------------------------------------------------------------------------


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


def _start_mosquitto(root: Path, installer: Installer) -> ServiceInfo:
    broker, ctrl, plugin = installer.mosquitto()
    home = root / "mosquitto"
    (home / "data").mkdir(parents=True, exist_ok=True)
    port = free_port()
    admin_password = _secret()
    dynsec_file = home / "dynsec.json"
    dynsec_file.unlink(missing_ok=True)
    _run_setup("mosquitto_ctrl dynsec init", [str(ctrl), "dynsec", "init", str(dynsec_file), "admin", admin_password])
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
    process, launch = _launch("mosquitto", [broker, "-c", conf], log)
    wait_until(
        "mosquitto",
        lambda: mqtt_login_ok(HOST, port, "admin", admin_password),
        timeout=30,
        process=process,
        log_path=log,
    )
    bridge_password = _secret()
    admin = MqttEndpoint(host=HOST, port=port, username="admin", password=admin_password)
    with dynsec.DynsecAdmin(admin) as control:
        control.ensure_role("ioc-bridge", dynsec.bridge_acls())
        control.ensure_client(BRIDGE_USER, bridge_password, ["ioc-bridge"])
    return {
        "pid": process.pid,
        **launch,
        "log": str(log),
        "host": HOST,
        "port": port,
        "admin_user": "admin",
        "admin_password": admin_password,
        "bridge_user": BRIDGE_USER,
        "bridge_password": bridge_password,
        "config": str(conf),
    }


# --- Kafka ---------------------------------------------------------------------------------------------


def _kafka_ready(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    # librdkafka logs every refused connection: ask it only once the port listens.
    if not port_open(int(port), host):
        return False
    kafka_admin.list_topics(bootstrap, timeout=3)
    return True


def _start_kafka(root: Path, installer: Installer) -> ServiceInfo:
    libs = installer.kafka()
    java = installer.java()
    home = root / "kafka"
    (home / "data").mkdir(parents=True, exist_ok=True)
    port, controller_port = free_port(), free_port()
    props = home / "server.properties"
    props.write_text(
        "\n".join(
            [
                "# Written by iocctl.localstack: single-node KRaft broker and controller on loopback.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{HOST}:{controller_port}",
                f"listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
                f"advertised.listeners=PLAINTEXT://{HOST}:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={home / 'data'}",
                "num.partitions=4",
                # Topics come from the registry (ioc.topics); a misspelt name must fail, not appear.
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "log.segment.bytes=104857600",
                "",
            ]
        ),
        encoding="utf-8",
    )
    log4j = home / "log4j.properties"
    log4j.write_text(
        "log4j.rootLogger=WARN, stdout\n"
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        "log4j.logger.kafka.server.KafkaServer=INFO\n"
        "log4j.logger.kafka.server.BrokerServer=INFO\n",
        encoding="utf-8",
    )
    classpath = f"{libs}/*"
    cluster_id = kafka_cluster_id()
    log = home / "kafka.log"
    storage_tool = [str(java), "-cp", classpath, f"-Dlog4j.configuration=file:{log4j}", "kafka.tools.StorageTool"]
    _run_setup("formatting Kafka's storage", [*storage_tool, "format", f"--cluster-id={cluster_id}", "-c", str(props)])
    process, launch = _launch(
        "kafka",
        [
            java,
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}",
            "-cp",
            classpath,
            "kafka.Kafka",
            props,
        ],
        log,
    )
    bootstrap = f"{HOST}:{port}"
    wait_until("kafka", lambda: _kafka_ready(bootstrap), timeout=90, process=process, log_path=log, interval=0.5)
    created = kafka_admin.ensure_topics(bootstrap)
    kafka_admin.wait_for_leaders(bootstrap)
    return {
        "pid": process.pid,
        **launch,
        "log": str(log),
        "host": HOST,
        "port": port,
        "bootstrap": bootstrap,
        "version": KAFKA_VERSION,
        "topics_created": created,
    }


# --- ClickHouse ----------------------------------------------------------------------------------------


def _start_clickhouse(root: Path, installer: Installer) -> ServiceInfo:
    command = installer.clickhouse()
    home = root / "clickhouse"
    for sub in ("data", "tmp", "user_files", "format_schemas", "log", "users.d"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    port, http_port = free_port(), free_port()
    password = _secret()
    config = home / "config.xml"
    # 18.16 reads <yandex>; newer servers accept it too. Settings kept to what 18.16 understands.
    config.write_text(
        f"""<?xml version="1.0"?>
<!-- Written by iocctl.localstack: one ClickHouse server on loopback. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{home / "log" / "clickhouse-server.log"}</log>
        <errorlog>{home / "log" / "clickhouse-server.err.log"}</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>{HOST}</listen_host>
    <tcp_port>{port}</tcp_port>
    <http_port>{http_port}</http_port>
    <path>{home / "data"}/</path>
    <tmp_path>{home / "tmp"}/</tmp_path>
    <user_files_path>{home / "user_files"}/</user_files_path>
    <format_schema_path>{home / "format_schemas"}/</format_schema_path>
    <users_config>{home / "users.xml"}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
</yandex>
""",
        encoding="utf-8",
    )
    (home / "users.xml").write_text(
        f"""<?xml version="1.0"?>
<!-- Written by iocctl.localstack. Per-site read-only users are added as files in users.d/ (reloaded live). -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <default>
            <password>{password}</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
""",
        encoding="utf-8",
    )
    log = home / "log" / "stdout.log"
    process, launch = _launch("clickhouse", [*command, f"--config-file={config}"], log, cwd=home)

    def ready() -> bool:
        return _http_get(f"http://{HOST}:{http_port}/ping")[1].strip() == "Ok."

    wait_until("clickhouse", ready, timeout=60, process=process, log_path=home / "log" / "clickhouse-server.err.log")
    version = _http_get(f"http://{HOST}:{http_port}/?user=default&password={password}&query=SELECT%20version()")[
        1
    ].strip()
    return {
        "pid": process.pid,
        **launch,
        "log": str(home / "log" / "clickhouse-server.log"),
        "host": HOST,
        "port": port,
        "http_port": http_port,
        "user": "default",
        "password": password,
        "version": version,
        "users_d": str(home / "users.d"),
    }


# --- etcd and kube-apiserver ---------------------------------------------------------------------------


def _start_etcd(root: Path, installer: Installer) -> ServiceInfo:
    etcd = installer.etcd()
    home = root / "etcd"
    home.mkdir(parents=True, exist_ok=True)
    port, peer_port = free_port(), free_port()
    log = home / "etcd.log"
    process, launch = _launch(
        "etcd",
        [
            etcd,
            "--name=ioc",
            f"--data-dir={home / 'data'}",
            f"--listen-client-urls=http://{HOST}:{port}",
            f"--advertise-client-urls=http://{HOST}:{port}",
            f"--listen-peer-urls=http://{HOST}:{peer_port}",
            f"--initial-advertise-peer-urls=http://{HOST}:{peer_port}",
            f"--initial-cluster=ioc=http://{HOST}:{peer_port}",
            "--unsafe-no-fsync",
            "--log-level=warn",
            "--quota-backend-bytes=4294967296",
        ],
        log,
    )

    def ready() -> bool:
        return '"health":"true"' in _http_get(f"http://{HOST}:{port}/health")[1].replace(" ", "")

    wait_until("etcd", ready, timeout=30, process=process, log_path=log)
    return {
        "pid": process.pid,
        **launch,
        "log": str(log),
        "host": HOST,
        "port": port,
        "endpoint": f"http://{HOST}:{port}",
    }


def _write_pem(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _make_certs(cert_dir: Path) -> dict[str, Path]:
    """A CA, a serving certificate for 127.0.0.1/localhost, and the service-account signing key."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ioc-localstack-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address(HOST)),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    paths = {name: cert_dir / name for name in ("ca.crt", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub")}
    nopass = serialization.NoEncryption()
    _write_pem(paths["ca.crt"], ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_pem(paths["apiserver.crt"], cert.public_bytes(serialization.Encoding.PEM))
    _write_pem(
        paths["apiserver.key"],
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, nopass),
    )
    _write_pem(
        paths["sa.key"],
        sa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, nopass),
    )
    _write_pem(
        paths["sa.pub"],
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    return paths


def write_kubeconfig(path: Path, server: str, ca_file: Path, user: str, token: str) -> None:
    """A kubeconfig for one token identity (YAML is a superset of JSON, so JSON is written)."""
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ioc-local", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": f"{user}@ioc-local",
                "context": {"cluster": "ioc-local", "user": user, "namespace": "default"},
            }
        ],
        "current-context": f"{user}@ioc-local",
        "preferences": {},
    }
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    path.chmod(0o600)


def _start_kube_apiserver(root: Path, installer: Installer, etcd: ServiceInfo) -> ServiceInfo:
    apiserver, kubectl = installer.kubernetes()
    home = root / "kube-apiserver"
    home.mkdir(parents=True, exist_ok=True)
    certs = _make_certs(home / "certs")
    port = free_port()
    admin_token, user_token = secrets.token_hex(24), secrets.token_hex(24)
    tokens = home / "tokens.csv"
    tokens.write_text(
        f'{admin_token},ioc-admin,ioc-admin,"system:masters"\n{user_token},{UNPRIVILEGED_USER},{UNPRIVILEGED_USER}\n',
        encoding="utf-8",
    )
    tokens.chmod(0o600)
    log = home / "kube-apiserver.log"
    process, launch = _launch(
        "kube-apiserver",
        [
            apiserver,
            f"--etcd-servers={etcd['endpoint']}",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            f"--secure-port={port}",
            f"--cert-dir={home / 'certs'}",
            f"--tls-cert-file={certs['apiserver.crt']}",
            f"--tls-private-key-file={certs['apiserver.key']}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={certs['sa.pub']}",
            f"--service-account-signing-key-file={certs['sa.key']}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={tokens}",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--v=1",
        ],
        log,
    )
    server = f"https://{HOST}:{port}"

    def ready() -> bool:
        return _http_get(f"{server}/readyz", token=admin_token, ca_file=str(certs["ca.crt"]))[1].strip() == "ok"

    wait_until("kube-apiserver", ready, timeout=120, process=process, log_path=log, interval=0.5)
    kubeconfig, unprivileged = home / "kubeconfig", home / "kubeconfig-unprivileged"
    write_kubeconfig(kubeconfig, server, certs["ca.crt"], "ioc-admin", admin_token)
    write_kubeconfig(unprivileged, server, certs["ca.crt"], UNPRIVILEGED_USER, user_token)
    return {
        "pid": process.pid,
        **launch,
        "log": str(log),
        "host": HOST,
        "port": port,
        "server": server,
        "version": KUBERNETES_VERSION,
        "ca_file": str(certs["ca.crt"]),
        "admin_token": admin_token,
        "kubeconfig": str(kubeconfig),
        "unprivileged_user": UNPRIVILEGED_USER,
        "unprivileged_token": user_token,
        "unprivileged_kubeconfig": str(unprivileged),
        "kubectl": str(kubectl),
    }


def start_service(name: str, root: Path, installer: Installer, running: dict[str, ServiceInfo]) -> ServiceInfo:
    """Start one service afresh under `root`; `running` holds the infos of those already up (dependencies).

    A fresh start means fresh data: new ports and credentials would not match what an old data directory
    holds (Kafka's cluster id, for one). `Stack.resume_service` is the way to restart with data kept.
    """
    shutil.rmtree(root / name, ignore_errors=True)
    if name == "mosquitto":
        return _start_mosquitto(root, installer)
    if name == "kafka":
        return _start_kafka(root, installer)
    if name == "clickhouse":
        return _start_clickhouse(root, installer)
    if name == "etcd":
        return _start_etcd(root, installer)
    if name == "kube-apiserver":
        if "etcd" not in running:
            raise ValueError("kube-apiserver needs etcd running first")
        return _start_kube_apiserver(root, installer, running["etcd"])
    raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")


_PROBES: Final[dict[str, Any]] = {
    "mosquitto": lambda i: mqtt_login_ok(i["host"], i["port"], i["admin_user"], i["admin_password"]),
    "kafka": lambda i: _kafka_ready(i["bootstrap"]),
    "clickhouse": lambda i: _http_get(f"http://{i['host']}:{i['http_port']}/ping")[1].strip() == "Ok.",
    "etcd": lambda i: "true" in _http_get(f"{i['endpoint']}/health")[1],
    "kube-apiserver": lambda i: (
        _http_get(f"{i['server']}/readyz", token=i["admin_token"], ca_file=i["ca_file"])[1].strip() == "ok"
    ),
}


def is_ready(name: str, info: ServiceInfo) -> bool:
    """Probe a running service the same way its start did."""
    try:
        return bool(_PROBES[name](info))
    except Exception:  # noqa: BLE001 - any failure of the probe means "not ready"
        return False


def kafka_cluster_id() -> str:
    """A random Kafka cluster id (a UUID, base64url without padding) that does not start with "-".

    As Kafka's own `Uuid.randomUuid` does: one id in 64 would otherwise start with a dash, which the
    storage tool's argument parser takes for an option ("--cluster-id: expected one argument").
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
