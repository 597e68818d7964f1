"""Attacks on Kafka's identity boundary, on a real broker with SCRAM-SHA-512 over TLS and ACLs.

Each test tries to cross a boundary with an ordinary client (confluent-kafka) and the platform's own
credentials, asserts the broker's refusal with its reason, and that the legitimate traffic of the same
principal kept flowing. The broker is the local stack's with IOC_STACK_KAFKA_AUTH on (the session's own
when it already runs with authentication, else one started here).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from ioc import kafka_access, topics
from ioc.clients import kafka_admin
from ioc.events import DeadLetterReason, IncidentAction, IncidentCommand
from ioc.settings import KafkaEndpoint, StreamsSettings
from iocctl.localstack import kafka as localstack_kafka
from iocctl.localstack.install import Installer
from iocctl.localstack.stack import Stack, default_cache_dir
from streams.siterelay import SiteCommandRelay

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

SITE_A, SITE_B = "25747", "25750"  # two communes of the Bình Dương tree


@pytest.fixture(scope="module")
def secure_kafka(local_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A broker that authenticates: the session's when it does, else one of our own, stopped afterwards."""
    running = local_stack.running().get("kafka")
    if running is not None and "principals" in running:
        yield running
        return
    stack = Stack(tmp_path_factory.mktemp("secure-stack"), Installer(default_cache_dir()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IOC_STACK_KAFKA_AUTH", "1")
        info = stack.up(["kafka"])["kafka"]
    try:
        yield info
    finally:
        stack.down()


@pytest.fixture(scope="module")
def sites(secure_kafka: dict[str, Any]) -> dict[str, KafkaEndpoint]:
    """Two sites provisioned as `ioc dashboard` does: a principal each, their command topics, their ACLs."""
    return {unit: localstack_kafka.site_endpoint(secure_kafka, unit) for unit in (SITE_A, SITE_B)}


def as_(info: dict[str, Any], principal: str) -> KafkaEndpoint:
    return KafkaEndpoint.from_service(info, principal)


def produce(endpoint: KafkaEndpoint, topic: str, value: bytes, *, partition: int = 0) -> KafkaError | None:
    """Produce one message and wait for its delivery report: None when stored, else the broker's error."""
    producer = Producer({**endpoint.client_config(), "enable.idempotence": True, "message.timeout.ms": 15000})
    outcome: list[KafkaError | None] = []
    producer.produce(topic, value, key=b"k", partition=partition, on_delivery=lambda e, _m: outcome.append(e))
    producer.flush(20)
    assert outcome, f"no delivery report for {topic} within 20 s"
    return outcome[0]


def read_back(endpoint: KafkaEndpoint, topic: str, value: bytes, partition: int = 0) -> bool:
    """Whether `value` is on `topic[partition]`, read by `endpoint`'s principal from the log's start."""
    consumer = Consumer({**endpoint.client_config(), "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
        while dt.datetime.now(dt.UTC) < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error() and message.value() == value:
                return True
        return False
    finally:
        consumer.close()


def fetch_errors(endpoint: KafkaEndpoint, topic: str, group: str, seconds: float = 8.0) -> set[int]:
    """Read `topic[0]` from its start as `endpoint`: the error codes the broker answered with (none: it read).

    Like any consumer it asks for the topic's metadata first (TOPIC_AUTHORIZATION_FAILED without the
    topic's DESCRIBE), then fetches in its group (GROUP_AUTHORIZATION_FAILED without the group's READ).
    """
    consumer = Consumer({**endpoint.client_config(), "group.id": group, "enable.auto.commit": False})
    codes: set[int] = set()
    try:
        described = consumer.list_topics(topic, timeout=10).topics[topic]  # the topic's metadata (DESCRIBE)
        if described.error is not None:
            codes.add(described.error.code())
        consumer.assign([TopicPartition(topic, 0, 0)])  # then the records (READ, and the group's READ)
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        while dt.datetime.now(dt.UTC) < deadline and KafkaError.TOPIC_AUTHORIZATION_FAILED not in codes:
            message = consumer.poll(0.5)
            error = message.error() if message is not None else None
            if error is not None:
                codes.add(error.code())
        return codes
    finally:
        consumer.close()


def assert_sasl_refused(endpoint: KafkaEndpoint) -> None:
    """The broker refuses `endpoint`'s login with SASL's reason, as librdkafka reports it."""
    errors: list[KafkaError] = []
    config: dict[str, Any] = {**endpoint.client_config(), "socket.timeout.ms": 5000, "error_cb": errors.append}
    client = AdminClient(config)
    with pytest.raises(KafkaException):
        client.list_topics(timeout=6)
    client.poll(1)  # serves the error callback
    assert any(
        e.code() == KafkaError._AUTHENTICATION and "invalid credentials with SASL mechanism SCRAM-SHA-512" in e.str()
        for e in errors
    ), errors


def assert_connection_dropped(config: dict[str, Any]) -> None:
    """The broker drops the connection before serving anything: no metadata, and librdkafka says why."""
    errors: list[KafkaError] = []
    full: dict[str, Any] = {**config, "socket.timeout.ms": 5000, "error_cb": errors.append}
    client = AdminClient(full)
    with pytest.raises(KafkaException) as refused:
        client.list_topics(timeout=8)
    client.poll(1)  # serves the error callback
    # Which of the two comes first depends on timing; either way, nothing was served.
    assert refused.value.args[0].code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT), refused.value
    assert any(e.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN) for e in errors), errors


def command(site_unit: str, incident: str = "flood-level:25747:1") -> bytes:
    return topics.INCIDENT_COMMANDS.encode(
        IncidentCommand(
            command_id=uuid.uuid4().hex,
            incident_id=incident,
            action=IncidentAction.ACKNOWLEDGE,
            actor="attacker@example.org",
            site_unit=site_unit,
            issued_at=dt.datetime.now(dt.UTC),
        )
    )


# --- who may connect -----------------------------------------------------------------------------------------


def test_an_unauthenticated_client_is_refused(secure_kafka: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    bridge = as_(secure_kafka, kafka_access.BRIDGE)
    # TLS but no SASL: the broker closes the connection before any request is served.
    assert_connection_dropped(
        {"bootstrap.servers": bridge.bootstrap, "security.protocol": "ssl", "ssl.ca.location": str(bridge.ca_file)}
    )
    # A wrong password for a real principal: refused with SASL's own reason.
    wrong = bridge.model_copy(update={"password": pydantic.SecretStr("not-the-password")})
    assert_sasl_refused(wrong)
    # The real principal still connects and produces.
    assert produce(bridge, topics.READINGS.name, b"still-flowing") is None


def test_plaintext_is_refused(secure_kafka: dict[str, Any]) -> None:
    bridge = as_(secure_kafka, kafka_access.BRIDGE)
    # Right credentials, no TLS: the listener speaks only TLS, so nothing (not even SASL) gets through.
    plain = {**bridge.client_config(), "security.protocol": "sasl_plaintext"}
    plain.pop("ssl.ca.location")
    assert_connection_dropped(plain)
    assert_connection_dropped({"bootstrap.servers": bridge.bootstrap})
    assert produce(bridge, topics.READINGS.name, b"tls-still-works") is None


# --- what each component may do --------------------------------------------------------------------------------


def test_the_bridge_cannot_command_configure_or_read_reports(secure_kafka: dict[str, Any]) -> None:
    bridge = as_(secure_kafka, kafka_access.BRIDGE)
    for topic in (topics.INCIDENT_COMMANDS.name, topics.SITE_CONFIG.name, topics.INCIDENTS.name):
        error = produce(bridge, topic, b"forged")
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (topic, error)
    # Citizens' reports (names, phone numbers) are not the bridge's to read.
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in fetch_errors(bridge, topics.CITIZEN_REPORTS.name, "snoop")
    # Its own traffic flows, and the stream workers read it.
    marker = f"reading-{uuid.uuid4().hex}".encode()
    assert produce(bridge, topics.READINGS.name, marker) is None
    assert read_back(as_(secure_kafka, kafka_access.STREAMS), topics.READINGS.name, marker)


def test_the_api_cannot_read_readings(secure_kafka: dict[str, Any]) -> None:
    api = as_(secure_kafka, kafka_access.API)
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in fetch_errors(api, topics.READINGS.name, "snoop")
    # Nor the reports it writes: what citizens sent is read by the stream workers only.
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in fetch_errors(api, topics.CITIZEN_REPORTS.name, "snoop")
    marker = f"report-{uuid.uuid4().hex}".encode()
    assert produce(api, topics.CITIZEN_REPORTS.name, marker) is None
    assert read_back(as_(secure_kafka, kafka_access.STREAMS), topics.CITIZEN_REPORTS.name, marker)


def test_the_streams_worker_cannot_forge_commands_or_configuration(
    secure_kafka: dict[str, Any], sites: dict[str, KafkaEndpoint]
) -> None:
    streams = as_(secure_kafka, kafka_access.STREAMS)
    for topic in (kafka_access.site_command_topic(SITE_A).name, topics.SITE_CONFIG.name, topics.CITIZEN_REPORTS.name):
        error = produce(streams, topic, b"forged")
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (topic, error)
    assert produce(streams, topics.INCIDENTS.name, b"an-incident-version") is None


# --- a site commands only its own incidents ---------------------------------------------------------------


def test_a_site_cannot_write_another_sites_commands(
    secure_kafka: dict[str, Any], sites: dict[str, KafkaEndpoint]
) -> None:
    site_a = sites[SITE_A]
    for topic in (kafka_access.site_command_topic(SITE_B).name, topics.INCIDENT_COMMANDS.name, topics.READINGS.name):
        error = produce(site_a, topic, command(SITE_B))
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (topic, error)
    # Its own command topic takes its commands, and the stream workers read them.
    own = command(SITE_A)
    assert produce(site_a, kafka_access.site_command_topic(SITE_A).name, own) is None
    assert read_back(as_(secure_kafka, kafka_access.STREAMS), kafka_access.site_command_topic(SITE_A).name, own)
    # Nor can it read what other sites command.
    other = kafka_access.site_command_topic(SITE_B).name
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in fetch_errors(site_a, other, "snoop")


def test_principals_hold_exactly_the_grants_of_the_access_model(secure_kafka: dict[str, Any]) -> None:
    """ensure_principal converges: an ACL granted by hand beyond the model is removed on the next run."""
    admin = KafkaEndpoint.from_service(secure_kafka)
    principal, password = f"ioc-site-{SITE_A}9", uuid.uuid4().hex  # a throwaway principal shaped like a site's
    wider = (*kafka_access.site_grants(SITE_A), kafka_access.Grant("topic", topics.READINGS.name, ("WRITE",)))
    kafka_admin.ensure_principal(admin, principal, password, wider)
    endpoint = admin.model_copy(update={"username": principal, "password": pydantic.SecretStr(password)})
    assert produce(endpoint, topics.READINGS.name, b"x") is None  # the grant by hand works ...
    kafka_admin.ensure_principal(admin, principal, password, kafka_access.site_grants(SITE_A))
    error = produce(endpoint, topics.READINGS.name, b"x")  # ... until the model is applied again
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce(endpoint, kafka_access.site_command_topic(SITE_A).name, command(SITE_A)) is None
    kafka_admin.remove_principal(admin, principal)
    assert_sasl_refused(endpoint)


def test_the_stack_hands_every_component_its_own_principal(secure_kafka: dict[str, Any], tmp_path: Path) -> None:
    principals = secure_kafka["principals"]
    assert set(principals) == {kafka_access.ADMIN, *kafka_access.COMPONENT_GRANTS}
    assert len(set(principals.values())) == len(principals)  # no shared password
    assert secure_kafka["security_protocol"] == "SASL_SSL" and Path(secure_kafka["ca_file"]).is_file()
    # stack.json holds passwords: only its owner reads it.
    assert (Path(secure_kafka["log"]).parents[1] / "stack.json").stat().st_mode & 0o077 == 0


def test_a_forged_site_in_a_command_body_is_not_carried_out(
    secure_kafka: dict[str, Any], sites: dict[str, KafkaEndpoint]
) -> None:
    """Site A writes, on its own topic, a command naming site B: the workers' relay refuses it (topic-mismatch)."""
    streams = as_(secure_kafka, kafka_access.STREAMS)
    admin = KafkaEndpoint.from_service(secure_kafka)
    settings = StreamsSettings(kafka=streams, app_id=f"{kafka_access.STREAMS}-relay-{uuid.uuid4().hex[:6]}")
    commands_end = end_offsets(admin, topics.INCIDENT_COMMANDS.name)
    letters_end = end_offsets(admin, topics.DEADLETTER.name)
    relay, stop = SiteCommandRelay(settings), threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        own_topic = kafka_access.site_command_topic(SITE_A).name
        forged = command(SITE_B, incident="flood-level:25750:1")
        legit = command(SITE_A)
        assert produce(sites[SITE_A], own_topic, forged) is None  # the broker lets A write its own topic ...
        assert produce(sites[SITE_A], own_topic, legit) is None
        legit_id = topics.INCIDENT_COMMANDS.decode(legit).command_id.encode()
        relayed = read_new(admin, topics.INCIDENT_COMMANDS.name, commands_end, lambda v: any(legit_id in x for x in v))
        forged_id = topics.INCIDENT_COMMANDS.decode(forged).command_id
        letters = read_new(
            admin, topics.DEADLETTER.name, letters_end, lambda v: any(forged_id.encode() in x for x in v)
        )
    finally:
        stop.set()
        thread.join(15)
    # ... but what reaches the incidents agent is only A's own command, with A's site.
    decoded = [topics.INCIDENT_COMMANDS.decode(v) for v in relayed]
    # (earlier tests' commands on A's topic are relayed too: this relay's group starts at the beginning)
    assert topics.INCIDENT_COMMANDS.decode(legit).command_id in {c.command_id for c in decoded if c.site_unit == SITE_A}
    assert forged_id not in {c.command_id for c in decoded}
    [letter] = [
        topics.DEADLETTER.decode(v) for v in letters if forged_id.encode() in topics.DEADLETTER.decode(v).payload
    ]
    assert letter.reason is DeadLetterReason.TOPIC_MISMATCH and letter.source.startswith(own_topic)
    assert f"names site {SITE_B}" in letter.detail


def end_offsets(endpoint: KafkaEndpoint, topic: str) -> dict[int, int]:
    consumer = Consumer({**endpoint.client_config(), "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def read_new(
    endpoint: KafkaEndpoint, topic: str, starts: dict[int, int], done: Callable[[list[bytes]], bool]
) -> list[bytes]:
    """Values written to `topic` after `starts`, read until `done` says so (or 30 s)."""
    consumer = Consumer({**endpoint.client_config(), "group.id": f"probe-{uuid.uuid4().hex}"})
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
        while dt.datetime.now(dt.UTC) < deadline and not done(values):
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                values.append(message.value() or b"")
        return values
    finally:
        consumer.close()
