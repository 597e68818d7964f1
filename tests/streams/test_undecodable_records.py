"""A record no agent can read is dead-lettered (`undecodable`) by every agent, and the next one still flows.

On the real Kafka and ClickHouse, with a real worker process: forged bytes are written straight onto the input
topic of the dossiers, citizen reports, dead-letter and incident agents (JSON of the wrong shape for the last:
that one used to be skipped; the readings agent's case is in tests/security/test_input.py), then a valid
record with the same key (so on the same partition, after the forged one). The forged record comes back as a
dead letter with reason `undecodable`, its topic, partition and offset as its source and its bytes as payload
(stored by the worker's own dead-letter agent); the valid record after it is stored; the worker still runs.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ioc import topics
from ioc.events import (
    CitizenReport,
    DeadLetter,
    DeadLetterReason,
    Detection,
    DossierChannel,
    DossierStatus,
    Module,
    ServiceRecord,
    Severity,
)
from streams import lifecycle
from tests.streams.worker import Worker

UNIT = "25957"  # phường Đông Hòa, Dĩ An


@pytest.fixture(scope="module")
def worker(
    kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    w = Worker(kafka, clickhouse, tmp_path_factory.mktemp("undecodable"))
    w.start()
    try:
        w.wait_live()
        yield w
    finally:
        w.close()


def _report(report_id: str) -> bytes:
    report = CitizenReport(
        report_id=report_id,
        source="app",
        category="flooding",
        unit=UNIT,
        submitted_at=dt.datetime.now(dt.UTC),
        text="Nước ngập trước chợ",
    )
    return topics.CITIZEN_REPORTS.encode(report)


def _dossier(dossier_id: str) -> bytes:
    received = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    record = ServiceRecord(
        dossier_id=dossier_id,
        status_version=1,
        unit=UNIT,
        procedure_code="1.001612",
        status=DossierStatus.RECEIVED,
        channel=DossierChannel.ONLINE,
        received_at=received,
        due_at=received + dt.timedelta(days=5),
        occurred_at=received,
        requires_payment=False,
        paid_online=False,
        digitised=True,
    )
    return topics.SERVICE_RECORDS.encode(record)


def _letter(detail: str) -> bytes:
    letter = DeadLetter(
        source=f"mqtt:ioc/v1/{UNIT}/water/acme-hydro/wl-1",
        reason=DeadLetterReason.SCHEMA,
        detail=detail,
        received_at=dt.datetime.now(dt.UTC),
        payload=b"{}",
        size=2,
        vendor="acme-hydro",
        device="wl-1",
    )
    return topics.DEADLETTER.encode(letter)


def _garbage() -> bytes:
    return b"\x00\xffnot JSON {" + uuid.uuid4().hex.encode()


def _forged_then_valid(
    worker: Worker,
    topic: topics.KafkaTopic,
    key: str,
    valid: Any,
    stored: str,
    garbage: bytes | None = None,
    **params: Any,
) -> dict[str, Any]:
    """A valid probe, the forged record, then a valid record, all on one partition; the forged one's dead letter."""
    db = worker.database
    probe, after = valid("probe"), valid("after")
    worker.send(topic, key, probe[0])
    worker.wait_for(stored.format(db=db), lambda rows: len(rows) >= 1, **params, marker=probe[1])  # partition read
    garbage = garbage or _garbage()
    worker.send(topic, key, garbage)
    worker.send(topic, key, after[0])

    worker.wait_for(stored.format(db=db), lambda rows: len(rows) >= 1, **params, marker=after[1])
    letters = worker.wait_for(
        f"SELECT source, reason, detail, size FROM {db}.deadletters FINAL WHERE payload = %(payload)s",
        lambda rows: len(rows) >= 1,
        payload=base64.b64encode(garbage).decode("ascii"),
    )
    assert worker.process is not None and worker.process.poll() is None, worker.log()
    (letter,) = letters
    partition = topics.partition_for(key, topic.partitions)
    assert letter["reason"] == DeadLetterReason.UNDECODABLE.value
    assert letter["source"].startswith(f"kafka:{topic.name}[{partition}]@"), letter
    assert letter["size"] == len(garbage)
    assert "Traceback" not in letter["detail"]
    return dict(letter)


def test_a_forged_citizen_report_is_dead_lettered_and_the_next_report_is_stored(worker: Worker) -> None:
    run = uuid.uuid4().hex[:8]

    def valid(tag: str) -> tuple[bytes, str]:
        return _report(f"r-{run}-{tag}"), f"r-{run}-{tag}"

    letter = _forged_then_valid(
        worker,
        topics.CITIZEN_REPORTS,
        f"r-{run}",
        valid,
        "SELECT report_id FROM {db}.citizen_reports FINAL WHERE report_id = %(marker)s",
    )
    assert letter["detail"].startswith("ContractError: ")  # what was wrong with the bytes, from the contract


def test_a_forged_dossier_event_is_dead_lettered_and_the_next_dossier_is_stored(worker: Worker) -> None:
    run = uuid.uuid4().hex[:8]

    def valid(tag: str) -> tuple[bytes, str]:
        return _dossier(f"D-{run}-{tag}"), f"D-{run}-{tag}"

    _forged_then_valid(
        worker,
        topics.SERVICE_RECORDS,
        f"D-{run}",
        valid,
        "SELECT dossier_id FROM {db}.dossiers FINAL WHERE dossier_id = %(marker)s",
    )


def test_a_forged_record_on_the_dead_letter_topic_is_dead_lettered_once_and_the_next_letter_is_stored(
    worker: Worker,
) -> None:
    run = uuid.uuid4().hex[:8]
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)

    def valid(tag: str) -> tuple[bytes, str]:
        return _letter(f"refused {run} {tag}"), f"refused {run} {tag}"

    stored = "SELECT detail FROM {db}.deadletters FINAL WHERE detail = %(marker)s"
    _forged_then_valid(worker, topics.DEADLETTER, f"acme-hydro/{run}", valid, stored)
    # Its letter, readable, went round the same topic once and was stored: one more round trip, and still one.
    worker.send(topics.DEADLETTER, f"acme-hydro/{run}", valid("last")[0])
    worker.wait_for(stored.format(db=worker.database), lambda rows: len(rows) >= 1, marker=valid("last")[1])
    letters_about_letters = worker.count(
        f"SELECT count() AS n FROM {worker.database}.deadletters FINAL "
        "WHERE reason = 'undecodable' AND startsWith(source, %(source)s)"
        " AND toUnixTimestamp(received_at) >= %(started)s",
        source=f"kafka:{topics.DEADLETTER.name}[",
        started=int(started.timestamp()),
    )
    assert letters_about_letters == 1
    # The worker placed the device topic's letter by its unit (migration 0011); its letter about a Kafka record
    # names no unit of the tree, so it is the root site's only.
    placed = worker.wait_for(
        f"SELECT unit, path FROM {worker.database}.deadletters FINAL WHERE detail = %(marker)s",
        lambda rows: len(rows) >= 1,
        marker=valid("last")[1],
    )
    assert placed == [{"unit": UNIT, "path": f"74/724/{UNIT}"}]
    unplaced = worker.query(
        f"SELECT DISTINCT unit, path FROM {worker.database}.deadletters FINAL "
        "WHERE reason = 'undecodable' AND startsWith(source, %(source)s)",
        source=f"kafka:{topics.DEADLETTER.name}[",
    )
    assert unplaced == [{"unit": "", "path": ""}]


def test_a_signal_of_the_wrong_shape_is_dead_lettered_and_the_next_detection_opens_its_incident(
    worker: Worker,
) -> None:
    run = uuid.uuid4().hex[:8]
    key = f"citizen-report:{UNIT}:{run}"
    partition = topics.partition_for(key, topics.INCIDENT_SIGNALS.partitions)
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def valid(tag: str) -> tuple[bytes, str]:
        # An episode of the partition the test writes to, as the producers place them (topics.incident_partition).
        episode = next(
            e
            for e in (f"{key}-{tag}-{i}" for i in range(10_000))
            if topics.incident_partition(e, topics.INCIDENT_SIGNALS.partitions, is_episode=True) == partition
        )
        detection = Detection(
            episode=episode,
            rule="citizen-report",
            module=Module.CITIZEN_REPORTS,
            unit=UNIT,
            signal="open",
            at=at,
            severity=Severity.MEDIUM,
            title=f"Phản ánh {run} {tag}",
        )
        return topics.INCIDENT_SIGNALS.encode(detection), lifecycle.incident_id(episode, at)

    wrong_shape = b'{"episode": "' + run.encode() + b'", "signal": "open"}'
    letter = _forged_then_valid(
        worker,
        topics.INCIDENT_SIGNALS,
        key,
        valid,
        "SELECT incident_id FROM {db}.incidents FINAL WHERE incident_id = %(marker)s",
        garbage=wrong_shape,
    )
    assert letter["detail"].startswith("ContractError: ")
