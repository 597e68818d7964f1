"""Topic replication as a setting: the registry's `Replication`, the endpoint fields that carry it, and the
environment a child process inherits it through."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ioc import topics
from ioc.clients import kafka_admin
from ioc.settings import KafkaEndpoint, StreamsSettings


def test_replication_refuses_more_in_sync_than_copies() -> None:
    with pytest.raises(ValueError, match=r"need 1 <= min.insync.replicas <= replication factor"):
        topics.Replication(2, 3)
    with pytest.raises(ValueError, match="replication factor 0"):
        topics.Replication(0, 1)
    assert topics.CLUSTER_REPLICATION.config == {"min.insync.replicas": "2"}


def test_the_endpoint_defaults_to_one_local_broker_and_refuses_an_impossible_pair() -> None:
    assert kafka_admin.replication_of(KafkaEndpoint()) == topics.SINGLE_BROKER
    assert kafka_admin.replication_of("127.0.0.1:9092") == topics.SINGLE_BROKER
    with pytest.raises(ValidationError, match="no acks=all write could ever succeed"):
        KafkaEndpoint(replication_factor=1, min_insync_replicas=2)


def test_the_stack_record_and_the_environment_carry_it(monkeypatch: pytest.MonkeyPatch) -> None:
    stack_record = {
        "bootstrap": "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
        "replication_factor": 3,
        "min_insync_replicas": 2,
    }
    endpoint = KafkaEndpoint.from_service(stack_record)
    assert kafka_admin.replication_of(endpoint) == topics.CLUSTER_REPLICATION
    for name, value in endpoint.environment("IOC_STREAMS_KAFKA__").items():
        monkeypatch.setenv(name, value)
    assert StreamsSettings().kafka == endpoint
