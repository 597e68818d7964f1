"""The Kafka access model: principals, their grants, sites' command topics and the verdict on a site's command."""

from __future__ import annotations

import datetime as dt

import pytest

from ioc import kafka_access, topics
from ioc.events import DeadLetterReason, IncidentAction, IncidentCommand
from ioc.settings import KafkaEndpoint


def _command(site: str) -> bytes:
    return topics.INCIDENT_COMMANDS.encode(
        IncidentCommand(
            command_id="c1",
            incident_id="flood-level:25747:1",
            action=IncidentAction.ACKNOWLEDGE,
            actor="op@example.org",
            site_unit=site,
            issued_at=dt.datetime(2026, 12, 6, tzinfo=dt.UTC),
        )
    )


def test_a_sites_command_is_judged_by_the_topic_it_was_written_to() -> None:
    topic = kafka_access.site_command_topic("25747").name
    assert topic == "ioc.site-25747.incident-commands.v1"
    accepted = kafka_access.judge_site_command(topic, _command("25747"))
    assert accepted.command is not None and accepted.command.site_unit == "25747"
    forged = kafka_access.judge_site_command(topic, _command("25750"))
    assert (forged.command, forged.reason) == (None, DeadLetterReason.TOPIC_MISMATCH)
    assert "names site 25750" in forged.detail
    assert kafka_access.judge_site_command(topic, b"{").reason is DeadLetterReason.NOT_JSON
    assert kafka_access.judge_site_command(topics.INCIDENT_COMMANDS.name, _command("25747")).reason is (
        DeadLetterReason.BAD_TOPIC
    )


def test_a_site_may_write_its_own_command_topic_only() -> None:
    [grant] = kafka_access.site_grants("74")
    assert (grant.resource, grant.name, grant.operations, grant.prefixed) == (
        "topic",
        "ioc.site-74.incident-commands.v1",
        ("WRITE", "DESCRIBE"),
        False,
    )
    assert kafka_access.site_principal("74") == "ioc-site-74"
    with pytest.raises(ValueError, match="not a GSO unit code"):
        kafka_access.site_principal("74/x")


def test_no_component_writes_what_only_others_may() -> None:
    def writers(topic: str) -> set[str]:
        return {
            name
            for name, grants in kafka_access.COMPONENT_GRANTS.items()
            for g in grants
            if "WRITE" in g.operations and (g.name == topic or (g.prefixed and topic.startswith(g.name)))
        }

    assert writers(topics.SITE_CONFIG.name) == {kafka_access.OPERATOR}
    assert writers(topics.INCIDENT_COMMANDS.name) == {kafka_access.STREAMS}  # the relay, site from the topic
    assert writers(kafka_access.site_command_topic("25747").name) == set()  # the site's principal alone
    assert writers(topics.CITIZEN_REPORTS.name) == {kafka_access.API}


def test_strimzi_acls_name_resources_and_operations_as_strimzi_does() -> None:
    acls = kafka_access.strimzi_acls(kafka_access.COMPONENT_GRANTS[kafka_access.OPERATOR])
    assert {"resource": {"type": "cluster"}, "operations": ["Describe", "Alter"]} in acls
    assert {
        "resource": {"type": "topic", "name": "ioc.site-", "patternType": "prefix"},
        "operations": ["Delete"],
    } in acls


def test_the_endpoint_configures_librdkafka_and_refuses_sasl_without_a_principal() -> None:
    endpoint = KafkaEndpoint(
        bootstrap="k:9093", security_protocol="SASL_SSL", username="ioc-bridge", password="p", ca_file="/ca.crt"
    )
    assert endpoint.client_config() == {
        "bootstrap.servers": "k:9093",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "ioc-bridge",
        "sasl.password": "p",
        "ssl.ca.location": "/ca.crt",
    }
    assert KafkaEndpoint(bootstrap="k:9092").client_config() == {
        "bootstrap.servers": "k:9092",
        "security.protocol": "plaintext",
    }
    with pytest.raises(ValueError, match="needs a username and a password"):
        KafkaEndpoint(security_protocol="SASL_SSL")
    env = endpoint.environment("IOC_BRIDGE_KAFKA__")
    assert env["IOC_BRIDGE_KAFKA__USERNAME"] == "ioc-bridge" and env["IOC_BRIDGE_KAFKA__CA_FILE"] == "/ca.crt"
