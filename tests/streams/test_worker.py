"""Stream workers end to end on real Kafka and ClickHouse: a scripted flood, replays, SLA escalation,
operator commands, unit roll-ups, and a worker killed with SIGKILL mid-stream."""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from ioc import topics
from ioc.events import IncidentAction, IncidentCommand
from ioc.units import load_tree
from streams import lifecycle
from tests.streams.worker import Worker, flood_episode, open_flood, reading, send_command

DONG_HOA = load_tree("2024").get("25957")


@pytest.fixture
def worker(kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path) -> Any:
    w = Worker(kafka, clickhouse, tmp_path)
    w.start()
    try:
        w.wait_live()
        yield w
    finally:
        w.close()


def flood_readings(vendor: str, device: str, base: dt.datetime) -> list[Any]:
    """Đông Hòa's gauge: calm for 10 minutes, rising 1.2 m in 4 minutes, then above the alert level."""
    items = []
    for step in range(60):  # every 30 s for 30 minutes
        minute = step / 2
        level = 0.6 if minute < 10 else min(1.8, 0.6 + (minute - 10) * 0.3)
        items.append(
            reading(
                vendor, device, "25957", step, {"waterLevel": round(level, 3)}, base + dt.timedelta(seconds=30 * step)
            )
        )
    return items


def test_flood_gives_one_incident_per_rule_escalates_and_takes_commands(worker: Worker) -> None:
    vendor, device = "acme-hydro", f"wl-{uuid.uuid4().hex[:6]}"
    base = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    items = flood_readings(vendor, device, base)
    worker.readings(items)
    worker.readings(items)  # a replay (a bridge restart) changes nothing
    worker.tick(base + dt.timedelta(minutes=31))
    db = worker.database
    incidents = worker.wait_for(
        f"SELECT * FROM {db}.incidents FINAL WHERE unit = '25957' ORDER BY rule",
        lambda rows: {r["rule"] for r in rows} == {"flood-level", "flood-rise"},
    )
    assert len(incidents) == 2
    level = next(r for r in incidents if r["rule"] == "flood-level")
    assert (level["severity"], level["state"], level["path"], level["module"]) == (
        "high",
        "open",
        "74/724/25957",
        "environment",
    )
    # Above 1.5 m from minute 13 (0.6 + 3 × 0.3 = 1.5), held five minutes: the incident is named by when it began.
    assert level["opened_at"] == base + dt.timedelta(minutes=13)
    assert level["incident_id"] == f"flood-level:25957:{base + dt.timedelta(minutes=13):%Y%m%dT%H%M%S}"
    assert worker.count(f"SELECT count() AS n FROM {db}.readings FINAL WHERE device = %(d)s", d=device) == 60
    rollup = worker.wait_for(
        f"SELECT DISTINCT unit FROM {db}.unit_aggregates FINAL WHERE measure = 'waterLevel' AND window = '1m'"
        " AND window_start >= %(b)s",
        lambda rows: {"25957", "724", "74"} <= {r["unit"] for r in rows},
        b=base,
    )
    assert rollup

    # Nobody acknowledges within the high-severity SLA (30 minutes): the district takes it over.
    worker.tick(level["opened_at"] + dt.timedelta(minutes=31))
    escalated = worker.wait_for(
        f"SELECT * FROM {db}.incidents FINAL WHERE incident_id = %(i)s",
        lambda rows: rows and rows[0]["escalation_level"] == 1,
        i=level["incident_id"],
    )[0]
    assert escalated["responsible_unit"] == "724"
    assert escalated["responsible_path"] == "74/724"

    # The district operator acknowledges, dispatches to the ward, resolves with a note.
    episode = topics.episode_of(level["incident_id"])
    partition = topics.incident_partition(episode, topics.INCIDENT_COMMANDS.partitions, is_episode=True)
    issued = level["opened_at"] + dt.timedelta(minutes=40)
    for n, (action, extra) in enumerate(
        [
            (IncidentAction.ACKNOWLEDGE, {}),
            (IncidentAction.DISPATCH, {"target_unit": "25957"}),
            (IncidentAction.RESOLVE, {"note": "Đã khơi thông cống, nước rút."}),
        ]
    ):
        command = IncidentCommand(
            command_id=f"c-{uuid.uuid4().hex[:8]}",
            incident_id=level["incident_id"],
            action=action,
            actor="op.dian",
            site_unit="724",
            issued_at=issued + dt.timedelta(minutes=n),
            grants=("operator@724",),  # what Dĩ An's dashboard puts in for its district operator
            **extra,
        )
        value = topics.INCIDENT_COMMANDS.encode(command)
        worker.send(topics.INCIDENT_COMMANDS, episode, value, partition)
        worker.send(topics.INCIDENT_COMMANDS, episode, value, partition)  # retried: applied once
    final = worker.wait_for(
        f"SELECT * FROM {db}.incidents FINAL WHERE incident_id = %(i)s",
        lambda rows: rows and rows[0]["state"] == "resolved",
        i=level["incident_id"],
    )[0]
    assert final["responsible_unit"] == "25957"
    assert final["note"] == "Đã khơi thông cống, nước rút."
    history = worker.query(
        f"SELECT action FROM {db}.incident_history FINAL WHERE incident_id = %(i)s ORDER BY version",
        i=level["incident_id"],
    )
    assert [h["action"] for h in history] == ["opened", "escalate", "acknowledge", "dispatch", "resolve"]


def test_a_command_that_comes_before_its_incident_waits_for_it(worker: Worker) -> None:
    """After a rebalance, a worker can read an operator's command before the detection that opened its incident
    (two topics): the command waits for the incident and is carried out when it opens, not refused as stale."""
    episode = flood_episode(DONG_HOA)
    opened_at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).replace(microsecond=0)
    incident_id = lifecycle.incident_id(episode, opened_at)
    ack = send_command(worker, incident_id, IncidentAction.ACKNOWLEDGE, opened_at + dt.timedelta(minutes=1), None)
    assign = send_command(
        worker,
        incident_id,
        IncidentAction.ASSIGN,
        opened_at + dt.timedelta(minutes=2),
        None,
        assignee="team:thoat-nuoc",
    )
    time.sleep(3)  # the worker has read both commands by now (it took the records sent before these)
    db = worker.database
    assert (
        worker.count(
            f"SELECT count() AS n FROM {db}.command_refusals WHERE command_id IN (%(a)s, %(b)s)", a=ack, b=assign
        )
        == 0
    )
    assert open_flood(worker, DONG_HOA, opened_at, episode) == incident_id
    history = worker.wait_for(
        f"SELECT action, state, assignee FROM {db}.incident_history FINAL WHERE incident_id = %(i)s ORDER BY version",
        lambda rows: len(rows) == 3,
        i=incident_id,
    )
    assert [(h["action"], h["state"], h["assignee"]) for h in history] == [
        ("opened", "open", ""),
        ("acknowledge", "acknowledged", ""),
        ("assign", "acknowledged", "team:thoat-nuoc"),
    ]
    assert (
        worker.count(
            f"SELECT count() AS n FROM {db}.command_refusals WHERE command_id IN (%(a)s, %(b)s)", a=ack, b=assign
        )
        == 0
    )


def test_a_worker_killed_mid_stream_loses_nothing_and_duplicates_nothing(worker: Worker) -> None:
    vendor = "kill-test"
    devices = [f"d{i:02}-{uuid.uuid4().hex[:4]}" for i in range(20)]
    base = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    per_device = 150
    for step in range(per_device):
        _gauges_read(worker, vendor, devices, step, base)
        if step == 60:
            worker.stop(signal.SIGKILL)
            worker.start()
    worker.wait_live()
    worker.tick(dt.datetime.now(dt.UTC))
    _assert_each_reading_stored_once(worker, vendor, devices, per_device)


def _gauges_read(worker: Worker, vendor: str, devices: list[str], step: int, base: dt.datetime) -> None:
    """Reading number `step` of every calm gauge, one second after the previous one."""
    worker.readings(
        [reading(vendor, d, "25966", step, {"waterLevel": 0.4}, base + dt.timedelta(seconds=step)) for d in devices]
    )


def _assert_each_reading_stored_once(worker: Worker, vendor: str, devices: list[str], per_device: int) -> None:
    try:
        _wait_for_each_reading(worker, vendor, devices, per_device)
    except AssertionError as exc:
        seqs = worker.query(
            f"SELECT device, groupUniqArray(seq) AS seqs FROM {worker.database}.readings WHERE vendor = %(v)s"
            " GROUP BY device",
            v=vendor,
        )
        partitions = topics.READINGS.partitions
        missing = {
            f"{row['device']}@{topics.partition_for(topics.device_key(vendor, row['device']), partitions)}": sorted(
                set(range(per_device)) - set(row["seqs"])
            )
            for row in seqs
            if len(row["seqs"]) < per_device
        }
        raise AssertionError(f"missing sequence numbers: {missing}\n{exc}") from None


def _wait_for_each_reading(worker: Worker, vendor: str, devices: list[str], per_device: int) -> None:
    rows = worker.wait_for(
        f"SELECT device, count() AS n, uniqExact(seq) AS u, min(seq) AS lo, max(seq) AS hi"
        f" FROM {worker.database}.readings FINAL WHERE vendor = %(v)s GROUP BY device",
        lambda rows: len(rows) == len(devices) and all(r["n"] == per_device for r in rows),
        timeout=120,
        describe=lambda rows: (
            f"{per_device} readings of {len(devices)} devices expected; short: "
            + repr([r for r in rows if r["n"] != per_device])
        ),
        v=vendor,
    )
    for row in rows:
        assert (row["n"], row["u"], row["lo"], row["hi"]) == (per_device, per_device, 0, per_device - 1)


def test_workers_joining_and_leaving_mid_stream_share_the_partitions_and_lose_nothing(
    worker: Worker, tmp_path: Path
) -> None:
    # Each rebalance revokes partitions while flushes are in flight and buffers hold unacknowledged events:
    # those must come again to whoever owns the partition next, and no commit may pass them.
    vendor = "rebalance-test"
    devices = [f"r{i:02}-{uuid.uuid4().hex[:4]}" for i in range(16)]
    base = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    second = worker.sibling(tmp_path / "second")
    leaving: threading.Thread | None = None
    joined_at: int | None = None
    step = 0
    try:
        while step < 400 or leaving is None or leaving.is_alive():
            _gauges_read(worker, vendor, devices, step, base)
            if step == 20:
                second.start()
            if joined_at is None and second.ready_times() > 0:
                joined_at = step
            if joined_at is not None and leaving is None and step >= joined_at + 40:
                # The first worker leaves cleanly (SIGTERM) while readings keep coming: the second takes over.
                leaving = threading.Thread(target=worker.stop)
                leaving.start()
            step += 1
            time.sleep(0.05)
        assert joined_at is not None, second.log()
        assert worker.process is not None and worker.process.poll() is not None
        second.wait_live()
        second.tick(dt.datetime.now(dt.UTC))
        try:
            _assert_each_reading_stored_once(second, vendor, devices, step)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\n{step} readings sent per device; the worker that left:\n{worker.log()}"
            ) from None
        assert "a flush failed" not in second.log()
    finally:
        second.close()
