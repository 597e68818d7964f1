"""Who may do what on Kafka: one principal per component and per commanding site, and the ACLs each needs.

The one source the local stack (`iocctl.localstack.kafka`), the operator (a site's principal) and the
chart's Strimzi KafkaUsers follow; docs/security.md explains the boundaries. Anything not granted here
is refused by the brokers (`allow.everyone.if.no.acl.found=false`).
"""

from __future__ import annotations

import dataclasses
from typing import Final, Literal

from ioc import topics
from ioc.codecs import ContractError
from ioc.events import DeadLetterReason, IncidentCommand
from ioc.fields import UNIT_CODE

__all__ = [
    "ADMIN",
    "API",
    "BRIDGE",
    "COMPONENT_GRANTS",
    "GATEWAY",
    "OPERATOR",
    "REPORTING",
    "SITE_COMMAND_TOPICS",
    "STREAMS",
    "Grant",
    "SiteCommandVerdict",
    "judge_site_command",
    "site_command_topic",
    "site_grants",
    "site_of_command_topic",
    "site_principal",
    "strimzi_acls",
]

Resource = Literal["topic", "group", "cluster"]
Operation = Literal["READ", "WRITE", "DESCRIBE", "CREATE", "DELETE", "ALTER", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"]


@dataclasses.dataclass(frozen=True)
class Grant:
    """Operations a principal is allowed on one resource (a topic, a consumer group or the cluster).

    `prefixed` grants match every name starting with `name` (Faust's internal topics, per-site topics).
    """

    resource: Resource
    name: str
    operations: tuple[Operation, ...]
    prefixed: bool = False


# The stack's and the chart's super user: topic creation at install, ACLs, SCRAM users (never a component).
ADMIN: Final = "ioc-admin"
BRIDGE: Final = "ioc-bridge"
STREAMS: Final = "ioc-streams"
OPERATOR: Final = "ioc-operator"
API: Final = "ioc-api"
GATEWAY: Final = "ioc-gateway"
REPORTING: Final = "ioc-reporting"

_SITE_PRINCIPAL_PREFIX: Final = "ioc-site-"
_COMMANDS_SHORT: Final = topics.INCIDENT_COMMANDS.short
_PRODUCE: Final[tuple[Operation, ...]] = ("WRITE", "DESCRIBE")
_CONSUME: Final[tuple[Operation, ...]] = ("READ", "DESCRIBE")
_BOTH: Final[tuple[Operation, ...]] = ("READ", "WRITE", "DESCRIBE")


def _topic(topic: topics.KafkaTopic, operations: tuple[Operation, ...]) -> Grant:
    return Grant("topic", topic.name, operations)


COMPONENT_GRANTS: Final[dict[str, tuple[Grant, ...]]] = {
    # Brings vendors' data in: writes readings, camera events and what it refuses; reads nothing.
    BRIDGE: (
        _topic(topics.READINGS, _PRODUCE),
        _topic(topics.CAMERA_EVENTS, _PRODUCE),
        _topic(topics.DEADLETTER, _PRODUCE),
    ),
    # The Faust workers: every stream they read and write, and their own group and internal topics
    # (`<app id>-...-changelog`, `-repartition`, the assignor's), all under the `ioc-streams` prefix.
    STREAMS: (
        _topic(topics.READINGS, _BOTH),  # ticks go back into the ticked topics
        _topic(topics.CAMERA_EVENTS, _BOTH),
        _topic(topics.AGGREGATES, _BOTH),
        _topic(topics.INCIDENT_SIGNALS, _BOTH),
        _topic(topics.INCIDENTS, _BOTH),
        _topic(topics.DEADLETTER, _BOTH),  # the dead letters are stored in ClickHouse for the dashboards
        _topic(topics.CITIZEN_REPORTS, _CONSUME),
        _topic(topics.SERVICE_RECORDS, _CONSUME),
        _topic(topics.SITE_CONFIG, _CONSUME),
        # The relay (streams.siterelay) moves each site's commands here with the site its topic names.
        _topic(topics.INCIDENT_COMMANDS, _BOTH),
        # Sites' command topics and isolated sites' copies: read, never written.
        Grant("topic", "ioc.site-", _CONSUME, prefixed=True),
        Grant("topic", STREAMS, ("READ", "WRITE", "DESCRIBE", "CREATE", "DESCRIBE_CONFIGS"), prefixed=True),
        Grant("group", STREAMS, ("READ", "DESCRIBE"), prefixed=True),
    ),
    # Provisions sites: their configuration, their topics (isolated copies, command topic) and, without
    # Strimzi, their principals and ACLs (cluster ALTER); it reads no event data.
    OPERATOR: (
        _topic(topics.SITE_CONFIG, _PRODUCE),
        Grant("topic", "ioc.", ("DESCRIBE", "CREATE", "DESCRIBE_CONFIGS"), prefixed=True),
        Grant("topic", "ioc.site-", ("DELETE",), prefixed=True),
        # The workers' committed positions on the site-config topic: a site's SettingsApplied condition.
        Grant("group", STREAMS, ("DESCRIBE",), prefixed=True),
        # Sites' principals: their SCRAM credentials and ACLs (operators.sitekafka), without Strimzi.
        Grant("cluster", "kafka-cluster", ("DESCRIBE", "ALTER")),
    ),
    # The citizen API: takes citizens' reports in; reads nothing (its answers come from ClickHouse).
    API: (_topic(topics.CITIZEN_REPORTS, _PRODUCE),),
    # The one-stop portal connector: dossier events, children's reports relayed upward, its refusals.
    GATEWAY: (
        _topic(topics.SERVICE_RECORDS, _PRODUCE),
        _topic(topics.REPORTS_OUTBOX, _PRODUCE),
        _topic(topics.DEADLETTER, _PRODUCE),
    ),
    # Upward reporting: fills and drains its outbox, dead-letters a parent's refusal.
    REPORTING: (
        _topic(topics.REPORTS_OUTBOX, _BOTH),
        _topic(topics.DEADLETTER, _PRODUCE),
        Grant("group", REPORTING, ("READ", "DESCRIBE"), prefixed=True),
    ),
}


def site_principal(unit: str) -> str:
    """The principal a site's dashboard commands with: `ioc-site-<unit>`."""
    if not UNIT_CODE.match(unit):
        raise ValueError(f"unit {unit!r} is not a GSO unit code")
    return f"{_SITE_PRINCIPAL_PREFIX}{unit}"


def site_command_topic(unit: str) -> topics.KafkaTopic[IncidentCommand]:
    """The topic only `site_principal(unit)` may write: `ioc.site-<unit>.incident-commands.v1`.

    Laid out as `ioc.incident-commands.v1` (episode partitions, so a command meets its incident's state);
    the stream workers take the commanding site from this name, never from the command's body.
    """
    return dataclasses.replace(topics.INCIDENT_COMMANDS, name=topics.site_topic(unit, _COMMANDS_SHORT))


def site_of_command_topic(name: str) -> str | None:
    """The unit whose command topic `name` is, or None when it is not a site's command topic."""
    prefix, suffix = "ioc.site-", f".{_COMMANDS_SHORT}.v1"
    if not (name.startswith(prefix) and name.endswith(suffix)):
        return None
    unit = name[len(prefix) : -len(suffix)]
    return unit if UNIT_CODE.match(unit) else None


SITE_COMMAND_TOPICS: Final = rf"^ioc\.site-[0-9]+\.{_COMMANDS_SHORT}\.v1$"
"""Every site's command topic, as a subscription pattern (librdkafka's: a leading ^ makes it a regex; its
own regex engine, so no {m,n}: `judge_site_command` checks the unit code)."""


@dataclasses.dataclass(frozen=True)
class SiteCommandVerdict:
    """A command read from a site's command topic: accepted (with the site the topic names) or refused."""

    command: IncidentCommand | None
    reason: DeadLetterReason | None = None
    detail: str = ""


def judge_site_command(topic: str, value: bytes) -> SiteCommandVerdict:
    """Judge a record of a site's command topic; never raises.

    Only `site_principal(unit)` can write that topic, so the topic names who commands; a body naming
    another site is forged (or a bug) and refused, never believed.
    """
    unit = site_of_command_topic(topic)
    if unit is None:
        return SiteCommandVerdict(None, DeadLetterReason.BAD_TOPIC, f"{topic} is not a site's command topic")
    try:
        command = topics.INCIDENT_COMMANDS.decode(value)
    except ContractError as exc:
        return SiteCommandVerdict(None, exc.reason, exc.message)
    if command.site_unit != unit:
        detail = f"command {command.command_id} names site {command.site_unit} but was written to site {unit}'s topic"
        return SiteCommandVerdict(None, DeadLetterReason.TOPIC_MISMATCH, detail)
    return SiteCommandVerdict(command)


def site_grants(unit: str) -> tuple[Grant, ...]:
    """A site writes its own command topic, and nothing else."""
    return (Grant("topic", site_command_topic(unit).name, _PRODUCE),)


_STRIMZI_OPERATIONS: Final[dict[Operation, str]] = {
    "READ": "Read",
    "WRITE": "Write",
    "DESCRIBE": "Describe",
    "CREATE": "Create",
    "DELETE": "Delete",
    "ALTER": "Alter",
    "DESCRIBE_CONFIGS": "DescribeConfigs",
    "ALTER_CONFIGS": "AlterConfigs",
}


def strimzi_acls(grants: tuple[Grant, ...]) -> list[dict[str, object]]:
    """Grants as a Strimzi KafkaUser's `spec.authorization.acls` (the chart's and the operator's KafkaUsers)."""
    acls: list[dict[str, object]] = []
    for grant in grants:
        resource: dict[str, object] = {"type": grant.resource}
        if grant.resource != "cluster":
            resource |= {"name": grant.name, "patternType": "prefix" if grant.prefixed else "literal"}
        acls.append({"resource": resource, "operations": [_STRIMZI_OPERATIONS[o] for o in grant.operations]})
    return acls
