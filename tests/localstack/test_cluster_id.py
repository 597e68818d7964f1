"""Kafka cluster ids for `kafka-storage format`: never read as an option by its argument parser."""

from __future__ import annotations

import base64
import uuid
from unittest import mock

from iocctl.localstack.kafka import kafka_cluster_id


def test_a_cluster_id_is_a_base64url_uuid() -> None:
    cluster_id = kafka_cluster_id()
    assert len(cluster_id) == 22
    assert uuid.UUID(bytes=base64.urlsafe_b64decode(cluster_id + "=="))


def test_an_id_that_would_start_with_a_dash_is_drawn_again() -> None:
    dash = uuid.UUID(bytes=base64.urlsafe_b64decode("-" + "A" * 21 + "=="))  # encodes as "-AAAA..."
    plain = uuid.UUID(int=1)
    with mock.patch("iocctl.localstack.kafka.uuid.uuid4", side_effect=[dash, plain]):
        assert kafka_cluster_id() == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
