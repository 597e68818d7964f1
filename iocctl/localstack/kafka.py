"""The local Kafka: KRaft nodes (each a broker and a controller) on loopback, with the registry's topics created.

`start` formats each node's storage, launches them and creates every topic of `ioc.topics`; `is_ready` lists
topics. One node by default; `brokers=3` (`ioc stack up --kafka-brokers 3`) runs a three-node quorum whose
topics have three copies and min.insync.replicas 2 (`ioc.topics.CLUSTER_REPLICATION`, the chart's), so one
node may be killed, the controller included, with nothing acknowledged lost and writes going on. Each node's
pid, ports and command line are in the info's `brokers` (`active_controller` says which leads the quorum).
With `LocalStackSettings.stack_kafka_auth` (IOC_STACK_KAFKA_AUTH=1) clients must speak SCRAM-SHA-512 over
TLS (a CA and broker certificate generated under the stack's directory), the StandardAuthorizer refuses
whatever no ACL allows, and each component of `ioc.kafka_access` gets its own principal, password and ACLs;
the stack's info then carries `principals` (name → password), `ca_file` and `security_protocol`, from
which `KafkaEndpoint.from_service(info, principal)` builds a client's endpoint.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr

from ioc import kafka_access, topics
from ioc.clients import kafka_admin
from ioc.settings import KafkaEndpoint, LocalStackSettings
from iocctl.localstack import certs
from iocctl.localstack.common import HOST, ServiceInfo, launch, new_secret, run_setup
from iocctl.localstack.install import KAFKA_VERSION, Installer
from iocctl.localstack.node import HOST_SERVICES, NODE_IP, node_ip_here
from iocctl.localstack.process import free_port, is_alive, port_open, start_process, stop_process, wait_until

__all__ = [
    "MECHANISM",
    "active_controller",
    "is_ready",
    "kafka_cluster_id",
    "replication_for",
    "site_endpoint",
    "start",
    "wait_ready",
]

MECHANISM: Final = "SCRAM-SHA-512"
# The KRaft controller's own listener authenticates with PLAIN (SCRAM credentials live in the metadata the
# controller serves, so they cannot secure it); only the broker half of this node connects there.
_CONTROLLER_PRINCIPAL: Final = "ioc-controller"


_MAX_BROKERS: Final = 5


@dataclasses.dataclass(frozen=True)
class _Node:
    """One KRaft node of the local cluster: broker and controller in one process."""

    node_id: int
    home: Path
    port: int
    controller_port: int
    node_port: int | None  # the listener for pods on the local node's IP, when the node is up


def replication_for(brokers: int) -> topics.Replication:
    """The topics' replication on `brokers` nodes: up to three copies, all but one needed in sync (as Strimzi's)."""
    factor = min(brokers, 3)
    return topics.Replication(factor, max(1, factor - 1))


def _kafka_ready(endpoint: KafkaEndpoint, brokers: int | None = None) -> bool:
    """Whether the cluster answers the admin's metadata request; with `brokers`, whether that many are registered.

    Without `brokers`, a cluster missing a node still answers: it is up (a fault test killed one), not to be replaced.
    """
    addresses = [a.strip().rsplit(":", 1) for a in endpoint.bootstrap.split(",")]
    # librdkafka logs every refused connection: ask it only once the ports listen (one, or every one asked for).
    listening = sum(port_open(int(port), host) for host, port in addresses)
    if listening < (len(addresses) if brokers is not None else 1):
        return False
    if brokers is None:
        kafka_admin.list_topics(endpoint, timeout=3)
        return True
    return kafka_admin.broker_count(endpoint, timeout=3) == brokers


def _make_tls(tls_dir: Path, *, on_node: bool = False) -> tuple[Path, Path]:
    """A CA and the broker's certificate for 127.0.0.1/localhost (`on_node`: and the node IP and the name the node
    publishes it under); returns (CA file, broker key+chain PEM)."""
    dns, ips = ["localhost"], [HOST]
    if on_node:
        namespace, service = HOST_SERVICES["kafka"]
        dns += [f"{service}.{namespace}.svc.cluster.local", f"{service}.{namespace}.svc"]
        ips += [NODE_IP]
    ca = certs.authority("ioc-localstack-kafka-ca")
    key, cert = certs.issue(ca, "ioc-kafka", dns=dns, ips=ips, server=True, client=True)
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_file, keystore = tls_dir / "ca.crt", tls_dir / "broker.pem"
    ca_file.write_bytes(certs.cert_pem(ca.cert))
    # Kafka's PEM key store: the PKCS#8 key, then the chain (KIP-651).
    certs.write_private(keystore, certs.key_pem(key) + certs.cert_pem(cert) + certs.cert_pem(ca.cert))
    return ca_file, keystore


def _jaas(module: str, username: str, password: str, **users: str) -> str:
    extra = "".join(f' user_{name}="{secret}"' for name, secret in users.items())
    return f'org.apache.kafka.common.security.{module} required username="{username}" password="{password}"{extra};'


def _auth_properties(
    node: _Node, keystore: Path, ca_file: Path, admin_password: str, controller_secret: str
) -> list[str]:
    admin = kafka_access.ADMIN
    # With the local node up: the same SCRAM-over-TLS listener on the node IP too, for pods.
    node_listener = f",NODE://{NODE_IP}:{node.node_port}" if node.node_port is not None else ""
    scram_jaas = _jaas("scram.ScramLoginModule", admin, admin_password)
    return [
        # Clients: SCRAM over TLS only. The controllers' listener: PLAIN on loopback, their own principal.
        f"listeners=CLIENT://{HOST}:{node.port}{node_listener},CONTROLLER://{HOST}:{node.controller_port}",
        f"advertised.listeners=CLIENT://{HOST}:{node.port}{node_listener}",
        "listener.security.protocol.map=CLIENT:SASL_SSL"
        f"{',NODE:SASL_SSL' if node_listener else ''},CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name=CLIENT",
        f"sasl.enabled.mechanisms={MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
        "listener.name.client.scram-sha-512.sasl.jaas.config=" + scram_jaas,
        *(["listener.name.node.scram-sha-512.sasl.jaas.config=" + scram_jaas] if node_listener else []),
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.plain.sasl.jaas.config="
        + _jaas(
            "plain.PlainLoginModule",
            _CONTROLLER_PRINCIPAL,
            controller_secret,
            **{_CONTROLLER_PRINCIPAL: controller_secret},
        ),
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={ca_file}",
        "ssl.endpoint.identification.algorithm=https",
        # What no ACL allows is refused; the admin and the controllers are the only super users.
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{admin};User:{_CONTROLLER_PRINCIPAL}",
    ]


def _plaintext_properties(node: _Node) -> list[str]:
    node_listener = f",NODE://{NODE_IP}:{node.node_port}" if node.node_port is not None else ""
    return [
        f"listeners=PLAINTEXT://{HOST}:{node.port}{node_listener},CONTROLLER://{HOST}:{node.controller_port}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{node.port}{node_listener}",
        f"listener.security.protocol.map=PLAINTEXT:PLAINTEXT{',NODE:PLAINTEXT' if node_listener else ''}"
        ",CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
    ]


def _server_properties(node: _Node, voters: str, listeners: list[str], replication: topics.Replication) -> bytes:
    return "\n".join(
        [
            "# Written by iocctl.localstack: a KRaft node (broker and controller) on loopback.",
            "process.roles=broker,controller",
            f"node.id={node.node_id}",
            f"controller.quorum.voters={voters}",
            *listeners,
            "controller.listener.names=CONTROLLER",
            f"log.dirs={node.home / 'data'}",
            "num.partitions=4",
            # Topics come from the registry (ioc.topics); a misspelt name must fail, not appear.
            "auto.create.topics.enable=false",
            # Kafka's own topics, and topics a client creates without saying (Faust's leader topic), are
            # replicated as the registry's are.
            f"offsets.topic.replication.factor={replication.factor}",
            "offsets.topic.num.partitions=4",
            f"transaction.state.log.replication.factor={replication.factor}",
            f"transaction.state.log.min.isr={replication.min_insync}",
            f"default.replication.factor={replication.factor}",
            f"min.insync.replicas={replication.min_insync}",
            "group.initial.rebalance.delay.ms=0",
            "log.segment.bytes=104857600",
            "",
        ]
    ).encode("utf-8")


def _log4j(home: Path) -> Path:
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
    return log4j


def start(root: Path, installer: Installer, *, brokers: int = 1) -> ServiceInfo:
    """Format and launch `brokers` KRaft nodes, wait until all serve, create the principals and registry topics."""
    if not 1 <= brokers <= _MAX_BROKERS:
        raise ValueError(f"the local Kafka runs 1 to {_MAX_BROKERS} brokers, not {brokers}")
    libs = installer.kafka()
    java = installer.java()
    home = root / "kafka"
    home.mkdir(parents=True, exist_ok=True)
    auth = LocalStackSettings().stack_kafka_auth
    principals = {name: new_secret() for name in (kafka_access.ADMIN, *kafka_access.COMPONENT_GRANTS)} if auth else {}
    # With the local node up, a second listener per node on the node IP, advertised as such, for pods (the node
    # publishes the first as a Service): SCRAM over TLS as the loopback one with authentication on, else plaintext.
    on_node = node_ip_here()
    nodes = [
        _Node(i, home / f"node-{i}", free_port(), free_port(), free_port() if on_node else None)
        for i in range(1, brokers + 1)
    ]
    voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in nodes)
    replication = replication_for(brokers)
    ca_file, keystore = _make_tls(home / "tls", on_node=on_node) if auth else (Path(), Path())
    controller_secret = new_secret()  # every controller's, so they can reach each other
    log4j = _log4j(home)
    classpath = f"{libs}/*"
    cluster_id = kafka_cluster_id()
    storage_tool = [str(java), "-cp", classpath, f"-Dlog4j.configuration=file:{log4j}", "kafka.tools.StorageTool"]
    # Every component's SCRAM credential is in the metadata from the start (KIP-900): no window without them.
    scram = [f"--add-scram={MECHANISM}=[name={name},password={secret}]" for name, secret in principals.items()]
    for node in nodes:
        (node.home / "data").mkdir(parents=True, exist_ok=True)
        listeners = (
            _auth_properties(node, keystore, ca_file, principals[kafka_access.ADMIN], controller_secret)
            if auth
            else _plaintext_properties(node)
        )
        # Mode 0600: with authentication on it holds the admin's and the controllers' passwords.
        certs.write_private(node.home / "server.properties", _server_properties(node, voters, listeners, replication))
    with concurrent.futures.ThreadPoolExecutor(len(nodes)) as pool:  # a JVM each: format them side by side
        list(
            pool.map(
                lambda node: run_setup(
                    f"formatting Kafka node {node.node_id}'s storage",
                    [
                        *storage_tool,
                        "format",
                        f"--cluster-id={cluster_id}",
                        "-c",
                        str(node.home / "server.properties"),
                        *scram,
                    ],
                ),
                nodes,
            )
        )
    # A node's heap: the single broker takes 768 MiB, three share the machine. Fixed and touched at start, as
    # production brokers run, so the heap's size is not a figure that drifts while the broker works.
    heap = "768m" if brokers == 1 else "512m"
    launched_nodes: list[dict[str, Any]] = []
    processes = []
    for node in nodes:
        log = home / ("kafka.log" if brokers == 1 else f"kafka-{node.node_id}.log")
        argv = [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+AlwaysPreTouch",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
        ]
        argv += [
            f"-Dlog4j.configuration=file:{log4j}",
            "-cp",
            classpath,
            "kafka.Kafka",
            node.home / "server.properties",
        ]
        process, launched = launch(f"kafka-{node.node_id}", argv, log)
        processes.append(process)
        launched_nodes.append(
            {
                "node_id": node.node_id,
                "pid": process.pid,
                **launched,
                "log": str(log),
                "port": node.port,
                "controller_port": node.controller_port,
                "data": str(node.home / "data"),
                **({"node_port": node.node_port} if node.node_port is not None else {}),
            }
        )
    first = launched_nodes[0]
    info: ServiceInfo = {
        # The first node's process and command line: what `ioc stack` and `relaunch` use for one broker.
        **{k: first[k] for k in ("pid", "argv", "cwd", "stdout_log", "log", "port")},
        "host": HOST,
        "bootstrap": ",".join(f"{HOST}:{n.port}" for n in nodes),
        "version": KAFKA_VERSION,
        "brokers": launched_nodes,
        "replication_factor": replication.factor,
        "min_insync_replicas": replication.min_insync,
    }
    if nodes[0].node_port is not None:
        info |= {"node_host": NODE_IP, "node_port": nodes[0].node_port}
    if auth:
        info |= {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": MECHANISM,
            "ca_file": str(home / "tls" / "ca.crt"),
            "admin_principal": kafka_access.ADMIN,
            "principals": principals,
        }
    admin = KafkaEndpoint.from_service(info)
    try:
        wait_until(
            "kafka",
            lambda: _kafka_ready(admin, brokers),
            timeout=90 + 30 * (brokers - 1),
            process=processes[0],
            log_path=Path(first["log"]),
            interval=0.5,
        )
    except Exception:
        for member in launched_nodes:  # never leave half a cluster behind
            stop_process(int(member["pid"]), timeout=5)
        raise
    for name, grants in kafka_access.COMPONENT_GRANTS.items() if auth else ():
        kafka_admin.ensure_principal(admin, name, principals[name], grants, mechanism=MECHANISM)
    info["topics_created"] = kafka_admin.ensure_topics(admin)
    kafka_admin.wait_for_leaders(admin)
    return info


def active_controller(info: ServiceInfo) -> int:
    """The node id leading the KRaft quorum now, from the nodes' quorum-state files (the highest epoch's leader)."""
    best: tuple[int, int] | None = None
    for member in info["brokers"]:
        state_file = Path(member["data"]) / "__cluster_metadata-0" / "quorum-state"
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        leader, epoch = int(state.get("leaderId", -1)), int(state.get("leaderEpoch", -1))
        if leader > 0 and (best is None or epoch > best[1]):
            best = (leader, epoch)
    if best is None:
        raise RuntimeError("no KRaft node of the local Kafka has recorded a quorum leader yet")
    return best[0]


def is_ready(info: ServiceInfo) -> bool:
    """Whether the cluster answers the admin's metadata request (raises when it refuses); a node may be down."""
    return _kafka_ready(KafkaEndpoint.from_service(info))


def relaunch(
    info: ServiceInfo, node_ids: Iterable[int] | None = None, *, timeout: float = 120, wait: bool = True
) -> ServiceInfo:
    """Start the nodes that are not running (or `node_ids`, which must be stopped) again, same data and ports.

    Waits (unless `wait` is off: `wait_ready`) until every node's broker is registered again; returns the info with
    their new pids.
    """
    wanted = (
        set(node_ids)
        if node_ids is not None
        else {int(m["node_id"]) for m in info["brokers"] if not is_alive(int(m["pid"]))}
    )
    members = [{**m} for m in info["brokers"]]
    for member in members:
        if int(member["node_id"]) in wanted:
            member["pid"] = start_process(f"kafka-{member['node_id']}", member["argv"], Path(member["stdout_log"])).pid
    updated = {**info, "brokers": members, "pid": members[0]["pid"]}
    if wait:
        wait_ready(updated, timeout=timeout)
    return updated


def wait_ready(info: ServiceInfo, *, timeout: float = 120) -> None:
    """Until every node of the recorded cluster serves as a broker again."""
    endpoint = KafkaEndpoint.from_service(info)
    wait_until(
        "kafka",
        lambda: _kafka_ready(endpoint, len(info["brokers"])),
        timeout=timeout,
        log_path=Path(info["brokers"][0]["log"]),
        interval=0.3,
    )


def site_endpoint(info: ServiceInfo, unit: str) -> KafkaEndpoint:
    """The endpoint a site's dashboard commands with: its own principal, its command topic created.

    Without authentication: the stack's PLAINTEXT endpoint. With it, the principal `ioc-site-<unit>` gets
    the grants of `ioc.kafka_access.site_grants` and a password derived from the admin's, so every local
    dashboard of one site shares it and a second one does not change the first one's.
    """
    admin = KafkaEndpoint.from_service(info)
    if not admin.uses_sasl:
        return admin
    principal = kafka_access.site_principal(unit)
    secret = info["principals"][info["admin_principal"]]
    password = hmac.new(secret.encode(), principal.encode(), hashlib.sha256).hexdigest()[:32]
    kafka_admin.ensure_topics(admin, [kafka_access.site_command_topic(unit)])
    kafka_admin.ensure_principal(admin, principal, password, kafka_access.site_grants(unit), mechanism=MECHANISM)
    return admin.model_copy(update={"username": principal, "password": SecretStr(password)})


def kafka_cluster_id() -> str:
    """A random Kafka cluster id (a UUID, base64url without padding) that does not start with "-".

    As Kafka's own `Uuid.randomUuid` does: one id in 64 would otherwise start with a dash, which the
    storage tool's argument parser takes for an option ("--cluster-id: expected one argument").
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
