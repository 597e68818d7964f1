"""Administering Kafka idempotently: topics from the registry in `ioc.topics`, SCRAM principals and ACLs.

Faust does not create its source topics, and the broker runs with auto-creation off, so whatever starts
first (the local stack, the chart's hook, the operator for a site's own topics) calls `ensure_topics`, which
creates them with the endpoint's replication (`KafkaEndpoint.replication_factor`, `min_insync_replicas`).
`ensure_principal` gives a principal its SCRAM password and exactly the ACLs of `ioc.kafka_access`.
Every function takes a `KafkaEndpoint` (who connects, over what) or, on a broker without
authentication, a bare bootstrap string.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported from cimpl
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from ioc.kafka_access import Grant
from ioc.settings import KafkaEndpoint
from ioc.topics import KAFKA_TOPICS, KafkaTopic, Replication

__all__ = [
    "broker_count",
    "client_config",
    "delete_topics",
    "ensure_principal",
    "ensure_topics",
    "list_topics",
    "remove_principal",
    "replication_of",
    "wait_for_leaders",
]

_log = logging.getLogger(__name__)

# SCRAM's iteration count: Kafka's minimum is 4096; Strimzi issues 4096 too.
_SCRAM_ITERATIONS: Final = 8192


def client_config(endpoint: KafkaEndpoint | str) -> dict[str, str]:
    """librdkafka settings for `endpoint` (a bare string is a PLAINTEXT bootstrap)."""
    if isinstance(endpoint, str):
        endpoint = KafkaEndpoint(bootstrap=endpoint)
    return endpoint.client_config()


def _admin(endpoint: KafkaEndpoint | str) -> AdminClient:
    config: dict[str, object] = {
        **client_config(endpoint),
        "socket.timeout.ms": 10000,
        "logger": logging.getLogger("ioc.clients.kafka_admin"),  # librdkafka's log lines go through logging
    }
    return AdminClient(config)  # type: ignore[arg-type]  # the stubs do not know the `logger` key


def broker_count(bootstrap: KafkaEndpoint | str, timeout: float = 10.0) -> int:
    """How many brokers the cluster's metadata lists (those registered and not fenced)."""
    return len(_admin(bootstrap).list_topics(timeout=timeout).brokers)


def list_topics(bootstrap: KafkaEndpoint | str, timeout: float = 10.0) -> set[str]:
    metadata = _admin(bootstrap).list_topics(timeout=timeout)
    return {name for name in metadata.topics if not name.startswith("__")}


def replication_of(endpoint: KafkaEndpoint | str) -> Replication:
    """The replication topics are created with on `endpoint`'s cluster (a bare bootstrap string: one broker)."""
    if isinstance(endpoint, str):
        return Replication()
    return Replication(endpoint.replication_factor, endpoint.min_insync_replicas)


def ensure_topics(
    bootstrap: KafkaEndpoint | str,
    wanted: Iterable[KafkaTopic] | None = None,
    *,
    replication: Replication | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Create every topic in `wanted` (default: the whole registry) that does not exist; returns those created.

    Each gets `replication` (default: the endpoint's). A topic that exists with fewer copies is left as it is
    (raising its replication factor is a partition reassignment, an operator's decision) and logged.
    """
    replication = replication or replication_of(bootstrap)
    admin = _admin(bootstrap)
    topics = list(KAFKA_TOPICS.values() if wanted is None else wanted)
    metadata = admin.list_topics(timeout=timeout).topics
    for topic in topics:
        found = metadata.get(topic.name)
        copies = min((len(p.replicas) for p in found.partitions.values()), default=0) if found else 0
        if found is not None and 0 < copies < replication.factor:
            _log.warning(
                "Kafka topic %s has %d replica(s) per partition, fewer than the %d wanted: a broker lost can lose "
                "its acknowledged records (kafka-reassign-partitions raises it)",
                topic.name,
                copies,
                replication.factor,
            )
    missing = [t for t in topics if t.name not in metadata]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(
                t.name,
                num_partitions=t.partitions,
                replication_factor=replication.factor,
                config={**t.config, **replication.config},
            )
            for t in missing
        ],
        request_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return sorted(created)


def wait_for_leaders(
    bootstrap: KafkaEndpoint | str, names: Iterable[str] | None = None, *, timeout: float = 60.0
) -> None:
    """Block until every partition of the named topics (default: the registry) has a leader.

    Freshly created topics answer metadata before their leaders are elected; producing or reading offsets
    in that window fails with NOT_LEADER_FOR_PARTITION.
    """
    wanted = set(KAFKA_TOPICS if names is None else names)
    admin = _admin(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        waiting = sorted(
            name
            for name in wanted
            if name not in topics
            or topics[name].error is not None
            or any(p.leader < 0 or p.error is not None for p in topics[name].partitions.values())
        )
        if not waiting and _offsets_answer(bootstrap, {n: len(topics[n].partitions) for n in wanted}):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"Kafka topics without partition leaders after {timeout} s: {', '.join(waiting)}")
        time.sleep(0.2)


def _offsets_answer(bootstrap: KafkaEndpoint | str, partitions: dict[str, int]) -> bool:
    # Leaders in metadata are not yet leaders that serve: ask each for its offsets, as consumers will.
    consumer = Consumer({**client_config(bootstrap), "group.id": "ioc-kafka-admin-probe"})
    try:
        for name, count in partitions.items():
            for number in range(count):
                consumer.get_watermark_offsets(TopicPartition(name, number), timeout=5)
    except KafkaException:
        return False
    finally:
        consumer.close()
    return True


def delete_topics(bootstrap: KafkaEndpoint | str, names: Iterable[str], *, timeout: float = 30.0) -> None:
    names = list(names)
    if not names:
        return
    for future in _admin(bootstrap).delete_topics(names, request_timeout=timeout).values():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise


# The cluster is the BROKER resource type in librdkafka's names.
_RESOURCE_TYPES: Final = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "cluster": ResourceType.BROKER}


def _binding(principal: str, grant: Grant, operation: str) -> AclBinding:
    return AclBinding(
        _RESOURCE_TYPES[grant.resource],
        grant.name,
        ResourcePatternType.PREFIXED if grant.prefixed else ResourcePatternType.LITERAL,
        f"User:{principal}",
        "*",
        AclOperation[operation],
        AclPermissionType.ALLOW,
    )


def _wait_all(futures: Mapping[Any, concurrent.futures.Future[Any]], timeout: float) -> None:
    for future in futures.values():
        future.result(timeout=timeout)


def _acls_of(principal: str) -> AclBindingFilter:
    # None matches any name and host; the stubs say str.
    return AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        f"User:{principal}",
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )


def ensure_principal(
    endpoint: KafkaEndpoint,
    principal: str,
    password: str,
    grants: Iterable[Grant],
    *,
    mechanism: str = "SCRAM-SHA-512",
    timeout: float = 30.0,
) -> None:
    """Give `principal` a SCRAM password and exactly `grants` (ACLs beyond them are removed).

    Needs a principal allowed to alter the cluster (the admin, or the operator for sites' principals).
    """
    admin = _admin(endpoint)
    upsert = UserScramCredentialUpsertion(
        principal,
        ScramCredentialInfo(ScramMechanism[mechanism.replace("-", "_")], _SCRAM_ITERATIONS),
        password.encode(),
    )
    _wait_all(admin.alter_user_scram_credentials([upsert], request_timeout=timeout), timeout)
    wanted = {_binding(principal, grant, op) for grant in grants for op in grant.operations}
    mine = _acls_of(principal)
    existing = set(admin.describe_acls(mine, request_timeout=timeout).result(timeout=timeout))
    stale = [
        AclBindingFilter(
            b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
        )
        for b in existing - wanted
    ]
    if stale:
        _wait_all(admin.delete_acls(stale, request_timeout=timeout), timeout)
    missing = list(wanted - existing)
    if missing:
        _wait_all(admin.create_acls(missing, request_timeout=timeout), timeout)


def remove_principal(
    endpoint: KafkaEndpoint, principal: str, *, mechanism: str = "SCRAM-SHA-512", timeout: float = 30.0
) -> None:
    """Delete `principal`'s ACLs and SCRAM credential (a site deleted); absent ones are fine."""
    admin = _admin(endpoint)
    mine = _acls_of(principal)
    _wait_all(admin.delete_acls([mine], request_timeout=timeout), timeout)
    deletion = UserScramCredentialDeletion(principal, ScramMechanism[mechanism.replace("-", "_")])
    for future in admin.alter_user_scram_credentials([deletion], request_timeout=timeout).values():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.RESOURCE_NOT_FOUND:
                raise
