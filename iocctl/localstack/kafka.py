"""The local Kafka: a single-node KRaft broker and controller on loopback, with the registry's topics created.

`start` formats its storage, launches it and creates every topic of `ioc.topics`; `is_ready` lists topics.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from ioc.clients import kafka_admin
from iocctl.localstack.common import HOST, ServiceInfo, launch, run_setup
from iocctl.localstack.install import KAFKA_VERSION, Installer
from iocctl.localstack.process import free_port, port_open, wait_until

__all__ = ["is_ready", "kafka_cluster_id", "start"]


def _kafka_ready(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    # librdkafka logs every refused connection: ask it only once the port listens.
    if not port_open(int(port), host):
        return False
    kafka_admin.list_topics(bootstrap, timeout=3)
    return True


def start(root: Path, installer: Installer) -> ServiceInfo:
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
    run_setup("formatting Kafka's storage", [*storage_tool, "format", f"--cluster-id={cluster_id}", "-c", str(props)])
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
    wait_until("kafka", lambda: _kafka_ready(bootstrap), timeout=90, process=process, log_path=log, interval=0.5)
    created = kafka_admin.ensure_topics(bootstrap)
    kafka_admin.wait_for_leaders(bootstrap)
    return {
        "pid": process.pid,
        **launched,
        "log": str(log),
        "host": HOST,
        "port": port,
        "bootstrap": bootstrap,
        "version": KAFKA_VERSION,
        "topics_created": created,
    }


def is_ready(info: ServiceInfo) -> bool:
    """Whether the broker answers a metadata request (raises when it refuses)."""
    return _kafka_ready(info["bootstrap"])


def kafka_cluster_id() -> str:
    """A random Kafka cluster id (a UUID, base64url without padding) that does not start with "-".

    As Kafka's own `Uuid.randomUuid` does: one id in 64 would otherwise start with a dash, which the
    storage tool's argument parser takes for an option ("--cluster-id: expected one argument").
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
