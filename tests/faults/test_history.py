"""The fault run's history checker on hand-made histories: each anomaly it must name, and a clean history it passes."""

from __future__ import annotations

from ioc import topics
from iocctl.faults.history import (
    AckedCommand,
    AckedReading,
    Anomaly,
    FaultSpan,
    HistoryRow,
    Recorded,
    Stored,
    check,
)

DEVICE = "acme/gauge-1"
KILL = FaultSpan("kill bridge", "kill", 100.0, 110.0)
INCIDENT = "citizen-report:25957:r1:20260101T000000"


def _clean() -> tuple[Recorded, Stored]:
    recorded = Recorded(
        readings=[AckedReading(DEVICE, seq, 90.0 + seq) for seq in range(5)],
        reports={"r1": 95.0},
        dossiers={("D-1", 1): 96.0, ("D-1", 2): 97.0},
        commands=[AckedCommand("c1", INCIDENT, "acknowledge", 98.0)],
        upward={"k1": 99.0},
    )
    stored = Stored(
        readings={(DEVICE, seq): 1 for seq in range(5)},
        reports={"r1": 1},
        dossiers={"D-1": (1, 2)},
        history=[
            HistoryRow(INCIDENT, 1, "open", "opened"),
            HistoryRow(INCIDENT, 2, "acknowledged", "acknowledge"),
        ],
        current={INCIDENT: (2, "acknowledged")},
        upward={"k1": 1},
    )
    return recorded, stored


def _kinds(anomalies: list[Anomaly]) -> list[str]:
    return [a.kind for a in anomalies]


def test_a_clean_history_has_no_anomaly() -> None:
    recorded, stored = _clean()
    assert check(recorded, stored, [KILL]) == []


def test_a_lost_reading_is_named_with_its_partition_and_the_fault_in_effect() -> None:
    recorded, stored = _clean()
    recorded.readings.append(AckedReading(DEVICE, 12, 105.0))
    [anomaly] = check(recorded, stored, [KILL])
    assert anomaly.kind == "reading-lost"
    assert anomaly.subject == f"device {DEVICE} seq 12"
    assert anomaly.partition == topics.partition_for(DEVICE, topics.READINGS.partitions)
    assert anomaly.faults == ("kill bridge",)
    assert "partition" in anomaly.describe() and "during kill bridge" in anomaly.describe()


def test_a_reading_counted_twice_is_a_duplicate() -> None:
    recorded, stored = _clean()
    stored.readings = {**stored.readings, (DEVICE, 3): 2}
    [anomaly] = check(recorded, stored)
    assert (anomaly.kind, anomaly.subject, anomaly.faults) == ("reading-duplicated", f"device {DEVICE} seq 3", ())


def test_citizen_reports_and_upward_reports_lost_or_twice() -> None:
    recorded, stored = _clean()
    recorded.reports["r2"] = 105.0
    stored.upward = {"k1": 2}
    found = check(recorded, stored, [KILL])
    assert _kinds(found) == ["report-lost", "upward-duplicated"]
    assert found[0].partition == topics.partition_for("r2", topics.CITIZEN_REPORTS.partitions)
    assert found[0].faults == ("kill bridge",)
    stored.reports = {"r1": 2, "r2": 1}
    stored.upward = {}
    assert _kinds(check(recorded, stored)) == ["report-duplicated", "upward-lost"]


def test_dossiers_lost_twice_or_behind() -> None:
    recorded, stored = _clean()
    recorded.dossiers[("D-2", 1)] = 100.0
    recorded.dossiers[("D-3", 1)] = 100.0
    stored.dossiers = {"D-1": (1, 1), "D-3": (2, 1)}
    found = check(recorded, stored)
    assert [(a.kind, a.subject) for a in found] == [
        ("dossier-stale", "dossier D-1"),
        ("dossier-lost", "dossier D-2"),
        ("dossier-duplicated", "dossier D-3"),
    ]
    assert found[1].partition == topics.partition_for("D-2", topics.SERVICE_RECORDS.partitions)


def test_a_state_reached_without_its_predecessor() -> None:
    recorded, stored = _clean()
    # Resolved straight after open is allowed (resolve from open); closed without resolved is not.
    stored.history = [
        HistoryRow(INCIDENT, 1, "open", "opened"),
        HistoryRow(INCIDENT, 2, "acknowledged", "acknowledge"),
        HistoryRow(INCIDENT, 3, "closed", "close"),
    ]
    stored.current = {INCIDENT: (3, "closed")}
    [anomaly] = check(recorded, stored)
    assert anomaly.kind == "incident-bad-step" and "acknowledged → closed" in anomaly.detail


def test_a_missing_version_and_a_first_version_that_is_not_an_opening() -> None:
    recorded, stored = _clean()
    stored.history = [HistoryRow(INCIDENT, 1, "open", "opened"), HistoryRow(INCIDENT, 3, "acknowledged", "acknowledge")]
    stored.current = {INCIDENT: (3, "acknowledged")}
    assert "incident-history-gap" in _kinds(check(recorded, stored))
    stored.history = [HistoryRow(INCIDENT, 1, "acknowledged", "acknowledge")]
    stored.current = {INCIDENT: (1, "acknowledged")}
    assert _kinds(check(Recorded(), stored)) == ["incident-bad-step"]


def test_the_current_row_disagreeing_with_the_history() -> None:
    recorded, stored = _clean()
    stored.current = {INCIDENT: (1, "open")}
    assert _kinds(check(recorded, stored)) == ["incident-current-mismatch"]


def test_two_active_incidents_for_one_condition() -> None:
    recorded, stored = _clean()
    second = "citizen-report:25957:r1:20260101T001000"
    stored.history = [*stored.history, HistoryRow(second, 1, "open", "opened")]
    stored.current = {**stored.current, second: (1, "open")}
    [anomaly] = check(recorded, stored)
    assert anomaly.kind == "incident-two-open" and anomaly.subject == "condition citizen-report:25957:r1"


def test_a_command_acknowledged_and_never_carried_out() -> None:
    recorded, stored = _clean()
    recorded.commands.append(AckedCommand("c2", INCIDENT, "dispatch", 105.0))
    stored.refusals = {"c2": "stale: not the current incident of its episode"}
    [anomaly] = check(recorded, stored, [KILL])
    assert (anomaly.kind, anomaly.subject, anomaly.faults) == ("command-not-applied", "command c2", ("kill bridge",))
    assert anomaly.detail.endswith("the workers refused it: stale: not the current incident of its episode")
