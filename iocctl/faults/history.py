"""The fault run's history checker: what producers had acknowledged against what storage holds afterwards. Pure.

Producers record what the platform acknowledged to them (`Recorded`); after the run, the warehouse is read the way the
dashboards read it (FINAL) and the topics and the parent's store as they are (`Stored`). `check` names every anomaly:
a reading lost or counted twice (by device and sequence, with its Kafka partition), a citizen report or dossier
missing or stored twice, an incident whose history skips a version or makes a step `streams.lifecycle` does not
allow, two active incidents for one condition, a command acknowledged and never carried out, an upward report lost or
kept twice; each with the faults in effect when the producer was told "yes".
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from ioc import topics
from ioc.events import ACTIVE_STATES, IncidentState
from streams.lifecycle import step_allowed

__all__ = [
    "AckedCommand",
    "AckedReading",
    "Anomaly",
    "FaultSpan",
    "HistoryRow",
    "Recorded",
    "Stored",
    "check",
    "faults_at",
]


@dataclasses.dataclass(frozen=True)
class FaultSpan:
    """One fault as it happened: from the kill (or cut) to the moment its target served again (Unix seconds)."""

    name: str
    kind: str
    started: float
    ended: float


@dataclasses.dataclass(frozen=True)
class AckedReading:
    """A reading the SDK accepted (on its disk queue) at `at`: the platform owes a row for it."""

    device_key: str
    seq: int
    at: float


@dataclasses.dataclass(frozen=True)
class AckedCommand:
    """An operator command the broker acknowledged to the dashboards' sender."""

    command_id: str
    incident_id: str
    action: str
    at: float


@dataclasses.dataclass(frozen=True)
class HistoryRow:
    """One version of an incident as `incident_history FINAL` returns it."""

    incident_id: str
    version: int
    state: str
    action: str


@dataclasses.dataclass
class Recorded:
    """What each producer was told was accepted, and when (Unix seconds)."""

    readings: list[AckedReading] = dataclasses.field(default_factory=list)
    reports: dict[str, float] = dataclasses.field(default_factory=dict)
    """Citizen report id (the API's service_request_id) → when the API answered 201."""
    dossiers: dict[tuple[str, int], float] = dataclasses.field(default_factory=dict)
    """(dossier id, status version) → when the portal gateway answered `accepted` (or `duplicate` for a retry)."""
    commands: list[AckedCommand] = dataclasses.field(default_factory=list)
    upward: dict[str, float] = dataclasses.field(default_factory=dict)
    """Idempotency key of every upward report revision the reporting service published to its outbox → when."""


@dataclasses.dataclass
class Stored:
    """What the warehouse, topics and the parent site hold once the platform has drained."""

    readings: Mapping[tuple[str, int], int] = dataclasses.field(default_factory=dict)
    """(device key, seq) → rows `readings FINAL` returns for it (one measure per reading in the run)."""
    reports: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Report id → rows of `citizen_reports FINAL`."""
    dossiers: Mapping[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    """Dossier id → (rows of `dossiers FINAL`, the status version they hold)."""
    history: Sequence[HistoryRow] = ()
    current: Mapping[str, tuple[int, str]] = dataclasses.field(default_factory=dict)
    """Incident id → (version, state) of `incidents FINAL`."""
    upward: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Idempotency key → how many times the parent kept it."""
    refusals: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Command id → the workers' refusal (`command_refusals`: reason and detail) of a command they did not apply."""


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """One broken promise, named: what kind, about what, where it lived and which faults were in effect."""

    kind: str
    subject: str
    detail: str
    partition: int | None = None
    faults: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f" (partition {self.partition})" if self.partition is not None else ""
        during = f" during {', '.join(self.faults)}" if self.faults else " with no fault in effect"
        return f"{self.kind}: {self.subject}{where}: {self.detail}{during}"


def faults_at(spans: Iterable[FaultSpan], at: float) -> tuple[str, ...]:
    """Names of the faults in effect at `at`."""
    return tuple(span.name for span in spans if span.started <= at <= span.ended)


def _readings(recorded: Recorded, stored: Stored, spans: Sequence[FaultSpan]) -> list[Anomaly]:
    found: list[Anomaly] = []
    for reading in sorted(recorded.readings, key=lambda r: (r.device_key, r.seq)):
        copies = stored.readings.get((reading.device_key, reading.seq), 0)
        if copies == 1:
            continue
        kind = "reading-lost" if copies == 0 else "reading-duplicated"
        found.append(
            Anomaly(
                kind,
                f"device {reading.device_key} seq {reading.seq}",
                "acknowledged, no row" if copies == 0 else f"{copies} rows as the dashboards read them",
                topics.partition_for(reading.device_key, topics.READINGS.partitions),
                faults_at(spans, reading.at),
            )
        )
    return found


def _once(
    kind: str, acked: Mapping[str, float], copies: Mapping[str, int], spans: Sequence[FaultSpan], partitions: int | None
) -> list[Anomaly]:
    """Each acknowledged key stored exactly once; `partitions`: of the topic the key travelled on, keyed by it."""
    found = []
    for key, at in sorted(acked.items()):
        n = copies.get(key, 0)
        if n != 1:
            detail = "acknowledged, not stored" if n == 0 else f"stored {n} times"
            partition = topics.partition_for(key, partitions) if partitions else None
            kind_of = f"{kind}-{'lost' if n == 0 else 'duplicated'}"
            found.append(Anomaly(kind_of, f"{kind} {key}", detail, partition, faults_at(spans, at)))
    return found


def _dossiers(recorded: Recorded, stored: Stored, spans: Sequence[FaultSpan]) -> list[Anomaly]:
    newest: dict[str, tuple[int, float]] = {}
    for (dossier, version), at in recorded.dossiers.items():
        if dossier not in newest or version > newest[dossier][0]:
            newest[dossier] = (version, at)
    found = []
    for dossier, (version, at) in sorted(newest.items()):
        rows, kept = stored.dossiers.get(dossier, (0, 0))
        if rows == 1 and kept == version:
            continue
        if rows == 0:
            kind, detail = "dossier-lost", f"status version {version} acknowledged, no row"
        elif rows > 1:
            kind, detail = "dossier-duplicated", f"{rows} rows as the dashboards read them"
        else:
            kind, detail = "dossier-stale", f"holds status version {kept}, version {version} was acknowledged"
        partition = topics.partition_for(dossier, topics.SERVICE_RECORDS.partitions)
        found.append(Anomaly(kind, f"dossier {dossier}", detail, partition, faults_at(spans, at)))
    return found


def _incident_histories(stored: Stored) -> list[Anomaly]:
    by_incident: dict[str, list[HistoryRow]] = collections.defaultdict(list)
    for row in stored.history:
        by_incident[row.incident_id].append(row)
    found = []
    for incident, rows in sorted(by_incident.items()):
        rows.sort(key=lambda r: r.version)
        versions = [r.version for r in rows]
        if versions != list(range(1, len(rows) + 1)):
            found.append(
                Anomaly("incident-history-gap", f"incident {incident}", f"versions {versions}, not 1..{len(rows)}")
            )
            continue
        before: IncidentState | None = None
        for row in rows:
            after = IncidentState(row.state)
            if not step_allowed(before, row.action, after):
                was = before.value if before else "nothing"
                detail = f"version {row.version}: {was} → {after.value} by {row.action!r}, not a lifecycle step"
                found.append(Anomaly("incident-bad-step", f"incident {incident}", detail))
                break
            before = after
        current = stored.current.get(incident)
        last = rows[-1]
        if current is not None and current != (last.version, last.state):
            detail = f"incidents FINAL: version {current[0]} {current[1]}; its history ends {last.version} {last.state}"
            found.append(Anomaly("incident-current-mismatch", f"incident {incident}", detail))
    for incident in sorted(set(stored.current) - set(by_incident)):
        found.append(Anomaly("incident-history-gap", f"incident {incident}", "a current version with no history"))
    return found


def _two_open(stored: Stored) -> list[Anomaly]:
    active = {state.value for state in ACTIVE_STATES}
    by_episode: dict[str, list[str]] = collections.defaultdict(list)
    for incident, (_version, state) in stored.current.items():
        if state in active:
            by_episode[topics.episode_of(incident)].append(incident)
    return [
        Anomaly("incident-two-open", f"condition {episode}", f"{len(ids)} active incidents: {', '.join(sorted(ids))}")
        for episode, ids in sorted(by_episode.items())
        if len(ids) > 1
    ]


def _commands(recorded: Recorded, stored: Stored, spans: Sequence[FaultSpan]) -> list[Anomaly]:
    applied = {(row.incident_id, row.action) for row in stored.history}
    return [
        Anomaly(
            "command-not-applied",
            f"command {command.command_id}",
            f"{command.action} of incident {command.incident_id} acknowledged, not in its history"
            + (
                f"; the workers refused it: {stored.refusals[command.command_id]}"
                if command.command_id in stored.refusals
                else ""
            ),
            topics.incident_partition(command.incident_id, topics.INCIDENT_COMMANDS.partitions),
            faults_at(spans, command.at),
        )
        for command in recorded.commands
        if (command.incident_id, command.action) not in applied
    ]


def check(recorded: Recorded, stored: Stored, spans: Sequence[FaultSpan] = ()) -> list[Anomaly]:
    """Every anomaly between what was acknowledged and what is stored; empty when every promise held."""
    return [
        *_readings(recorded, stored, spans),
        *_once("report", recorded.reports, stored.reports, spans, topics.CITIZEN_REPORTS.partitions),
        *_dossiers(recorded, stored, spans),
        *_incident_histories(stored),
        *_two_open(stored),
        *_commands(recorded, stored, spans),
        *_once("upward", recorded.upward, stored.upward, spans, None),
    ]
