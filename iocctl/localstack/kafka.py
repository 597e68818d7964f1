"""The local Kafka: a single-node KRaft broker and controller on loopback, with the registry's topics created.

`start` formats its storage, launches it and creates every topic of `ioc.topics`; `is_ready` lists topics.
With `LocalStackSettings.stack_kafka_auth` (IOC_STACK_KAFKA_AUTH=1) clients must speak SCRAM-SHA-512 over
TLS (a CA and broker certificate generated under the stack's directory), the StandardAuthorizer refuses
whatever no ACL allows, and each component of `ioc.kafka_access` gets its own principal, password and ACLs;
the stack's info then carries `principals` (name → password), `ca_file` and `security_protocol`, from
which `KafkaEndpoint.from_service(info, principal)` builds a client's endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from pathlib import Path
from typing import Final

from pydantic import SecretStr

from ioc import kafka_access
from ioc.clients import kafka_admin
from ioc.settings import KafkaEndpoint, LocalStackSettings
from iocctl.localstack import certs
from iocctl.localstack.common import HOST, ServiceInfo, launch, new_secret, run_setup
from iocctl.localstack.install import KAFKA_VERSION, Installer
from iocctl.localstack.node import HOST_SERVICES, NODE_IP, node_ip_here
from iocctl.localstack.process import free_port, port_open, wait_until

__all__ = ["MECHANISM", "is_ready", "kafka_cluster_id", "site_endpoint", "start"]

MECHANISM: Final = "SCRAM-SHA-512"
# The KRaft controller's own listener authenticates with PLAIN (SCRAM credentials live in the metadata the
# controller serves, so they cannot secure it); only the broker half of this node connects there.
_CONTROLLER_PRINCIPAL: Final = "ioc-controller"


def _kafka_ready(endpoint: KafkaEndpoint) -> bool:
    host, port = endpoint.bootstrap.rsplit(":", 1)
    # librdkafka logs every refused connection: ask it only once the port listens.
    if not port_open(int(port), host):
        return False
    kafka_admin.list_topics(endpoint, timeout=3)
    return True


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
    home: Path, port: int, controller_port: int, principals: dict[str, str], node_port: int | None = None
) -> list[str]:
    ca_file, keystore = _make_tls(home / "tls", on_node=node_port is not None)
    controller_secret = new_secret()
    admin = kafka_access.ADMIN
    # With the local node up: the same SCRAM-over-TLS listener on the node IP too, for pods.
    node = f",NODE://{NODE_IP}:{node_port}" if node_port is not None else ""
    scram_jaas = _jaas("scram.ScramLoginModule", admin, principals[admin])
    return [
        # Clients: SCRAM over TLS only. The controller's listener: PLAIN on loopback, its own principal.
        f"listeners=CLIENT://{HOST}:{port}{node},CONTROLLER://{HOST}:{controller_port}",
        f"advertised.listeners=CLIENT://{HOST}:{port}{node}",
        f"listener.security.protocol.map=CLIENT:SASL_SSL{',NODE:SASL_SSL' if node else ''},CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name=CLIENT",
        f"sasl.enabled.mechanisms={MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
        "listener.name.client.scram-sha-512.sasl.jaas.config=" + scram_jaas,
        *(["listener.name.node.scram-sha-512.sasl.jaas.config=" + scram_jaas] if node else []),
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
        # What no ACL allows is refused; the admin and the controller are the only super users.
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{admin};User:{_CONTROLLER_PRINCIPAL}",
    ]


def start(root: Path, installer: Installer) -> ServiceInfo:
    libs = installer.kafka()
    java = installer.java()
    home = root / "kafka"
    (home / "data").mkdir(parents=True, exist_ok=True)
    port, controller_port = free_port(), free_port()
    auth = LocalStackSettings().stack_kafka_auth
    principals = {name: new_secret() for name in (kafka_access.ADMIN, *kafka_access.COMPONENT_GRANTS)} if auth else {}
    # With the local node up, a second listener on the node IP, advertised as such, for pods (the node publishes
    # it as a Service): SCRAM over TLS as the loopback one with authentication on, else plaintext.
    node_port = free_port() if node_ip_here() else None
    listeners = (
        _auth_properties(home, port, controller_port, principals, node_port)
        if auth
        else [
            f"listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
            f"advertised.listeners=PLAINTEXT://{HOST}:{port}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
        ]
    )
    if node_port is not None and not auth:
        listeners = [
            f"listeners=PLAINTEXT://{HOST}:{port},NODE://{NODE_IP}:{node_port},CONTROLLER://{HOST}:{controller_port}",
            f"advertised.listeners=PLAINTEXT://{HOST}:{port},NODE://{NODE_IP}:{node_port}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,NODE:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
        ]
    props = home / "server.properties"
    # Mode 0600: with authentication on it holds the admin's and the controller's passwords.
    certs.write_private(
        props,
        "\n".join(
            [
                "# Written by iocctl.localstack: single-node KRaft broker and controller on loopback.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{HOST}:{controller_port}",
                *listeners,
                "controller.listener.names=CONTROLLER",
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
        ).encode("utf-8"),
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
    # Every component's SCRAM credential is in the metadata from the start (KIP-900): no window without them.
    scram = [f"--add-scram={MECHANISM}=[name={name},password={secret}]" for name, secret in principals.items()]
    run_setup(
        "formatting Kafka's storage",
        [*storage_tool, "format", f"--cluster-id={cluster_id}", "-c", str(props), *scram],
    )
    process, launched = launch(
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
    info: ServiceInfo = {
        "pid": process.pid,
        **launched,
        "log": str(log),
        "host": HOST,
        "port": port,
        "bootstrap": bootstrap,
        "version": KAFKA_VERSION,
    }
    if node_port is not None:
        info |= {"node_host": NODE_IP, "node_port": node_port}
    if auth:
        info |= {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": MECHANISM,
            "ca_file": str(home / "tls" / "ca.crt"),
            "admin_principal": kafka_access.ADMIN,
            "principals": principals,
        }
    admin = KafkaEndpoint.from_service(info)
    wait_until("kafka", lambda: _kafka_ready(admin), timeout=90, process=process, log_path=log, interval=0.5)
    for name, grants in kafka_access.COMPONENT_GRANTS.items() if auth else ():
        kafka_admin.ensure_principal(admin, name, principals[name], grants, mechanism=MECHANISM)
    info["topics_created"] = kafka_admin.ensure_topics(admin)
    kafka_admin.wait_for_leaders(admin)
    return info


def is_ready(info: ServiceInfo) -> bool:
    """Whether the broker answers the admin's metadata request (raises when it refuses)."""
    return _kafka_ready(KafkaEndpoint.from_service(info))


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
