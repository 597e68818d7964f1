"""Row builders and the warehouse sink: pure rows first, then retries (in memory) and a real ClickHouse outage."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ioc import decision766, units
from ioc.aqi import AqiResult
from ioc.clients.clickhouse import Warehouse, WarehouseError, connect
from ioc.events import (
    CameraEvent,
    CameraEventType,
    CitizenReport,
    Contact,
    DeadLetter,
    DossierChannel,
    DossierStatus,
    Incident,
    IncidentAction,
    IncidentCommand,
    IncidentState,
    Ingested,
    Module,
    SensorKind,
    SensorReading,
    ServiceRecord,
    Severity,
)
from ioc.settings import ClickHouseEndpoint
from iocctl.localstack.stack import Stack
from streams import scoring766
from streams.agents import deadletters
from streams.warehouse import migrations, rows, sink
from streams.warehouse.sink import RowSink

ICT = dt.timezone(dt.timedelta(hours=7))
# Recent enough that a current server's 400-day TTL never expires the test rows mid-test.
BASE = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=3)
PATH = "74/724/25957"
DISTRICT_PATH = "74/724"


# --- sample contract objects, shared with test_warehouse.py ----------------------------------------------------


def reading(seq: int = 1, *, at: dt.datetime = BASE, values: dict[str, float] | None = None) -> Ingested:
    event = SensorReading(
        vendor="sawaco",
        device="aq-01",
        unit="25957",
        kind=SensorKind.AIR,
        seq=seq,
        observed_at=at.astimezone(ICT),
        values=values or {"pm25": 35.5, "pm10": 61.0},
        lat=10.905,
        lon=106.769,
    )
    return Ingested(event=event, path=PATH, received_at=at + dt.timedelta(seconds=2, microseconds=250_000))


def camera(seq: int = 7, *, plate: str | None = "61A-12345") -> Ingested:
    event = CameraEvent(
        vendor="vnpt",
        device="cam-01",
        unit="25957",
        seq=seq,
        observed_at=BASE + dt.timedelta(minutes=5),
        event_type=CameraEventType.SPEEDING if plate else CameraEventType.CROWD,
        confidence=0.91,
        plate=plate,
        speed_kmh=72.0 if plate else None,
        speed_limit_kmh=50.0 if plate else None,
        object_count=None if plate else 40,
    )
    return Ingested(event=event, path=PATH, received_at=BASE + dt.timedelta(minutes=5, seconds=1))


def incident(version: int = 1, state: IncidentState = IncidentState.OPEN) -> Incident:
    return Incident(
        incident_id="flood.water_level:25957:" + BASE.strftime("%Y%m%dT%H%M"),
        version=version,
        rule="flood.water_level",
        module=Module.ENVIRONMENT,
        unit="25957",
        severity=Severity.HIGH,
        state=state,
        title="Ngập sâu tại phường Đông Hòa",
        opened_at=BASE,
        updated_at=BASE + dt.timedelta(minutes=10 * version),
        sla_due_at=BASE + dt.timedelta(hours=4),
        responsible_unit="724",
        vendor="sawaco",
        devices=["sawaco/wl-01"],
        reports=["r-1"],
        detail={"water_level_m": "0.62", "threshold_m": "0.5"},
        lat=10.9,
        lon=106.77,
    )


def report() -> CitizenReport:
    return CitizenReport(
        report_id="r-1",
        source="app",
        category="flooding",
        unit="25957",
        submitted_at=BASE + dt.timedelta(minutes=3),
        text="Nước ngập quá đầu gối trước chợ",
        media_urls=["https://media.example/r-1.jpg"],
        contact=Contact(name="Nguyễn Văn A", phone="0909 123 456"),
    )


def dossier(version: int = 1) -> ServiceRecord:
    received = BASE - dt.timedelta(days=1)
    finished = version >= 2
    return ServiceRecord(
        dossier_id="D-0001",
        status_version=version,
        unit="25957",
        procedure_code="1.001612",
        status=DossierStatus.PROCESSED if finished else DossierStatus.RECEIVED,
        channel=DossierChannel.ONLINE,
        received_at=received,
        due_at=received + dt.timedelta(days=5),
        occurred_at=received + dt.timedelta(hours=version),
        finished_at=received + dt.timedelta(hours=version) if finished else None,
        requires_payment=True,
        paid_online=finished,
        digitised=True,
        satisfaction="satisfied" if finished else None,
    )


def dead_letter() -> tuple[DeadLetter, bytes]:
    letter = DeadLetter(
        source="ioc/25957/air/sawaco/aq-01",
        reason="schema",
        detail="Expected `int` >= 0 - at `$.seq`",
        received_at=BASE,
        payload=b'{"seq": -1}',
        size=11,
        vendor="sawaco",
        device="aq-01",
    )
    return letter, msgspec.json.encode(letter)


def scorecard_rows() -> list[scoring766.ScoreRow]:
    start = dt.datetime(BASE.year, BASE.month, 1, tzinfo=ICT)
    card = scoring766.score(
        [dossier(1), dossier(2)],
        decision766.default_scheme(),
        unit_codes={"25957"},
        period_start=start,
        period_end=start + dt.timedelta(days=32),
        as_of=BASE + dt.timedelta(hours=1),
    )
    return card.to_rows()


def sample_rows() -> dict[str, list[dict[str, Any]]]:
    """Rows for every table the stream workers write, from the builders (the same on every call)."""
    letter, raw = dead_letter()
    start = dt.datetime(BASE.year, BASE.month, 1, tzinfo=ICT)
    return {
        "readings": rows.reading_rows(reading(1)) + rows.reading_rows(reading(2, at=BASE + dt.timedelta(minutes=1))),
        "camera_events": [
            rows.camera_row(camera(7), duplicate=False, incident_id=""),
            rows.camera_row(camera(8, plate=None), duplicate=True, incident_id="crowd:25957:x"),
        ],
        "device_status": [rows.device_status_row(reading(2), readings=4)],
        "unit_aggregates": [
            rows.aggregate_row(
                unit="724",
                path=DISTRICT_PATH,
                level="district",
                window="1m",
                window_start=BASE,
                measure="pm25",
                count=2,
                total=70.0,
                minimum=30.0,
                maximum=40.0,
                devices=2,
                version=1,
            )
        ],
        "aqi_hourly": [
            rows.aqi_row(
                device_key="sawaco/aq-01",
                unit="25957",
                path=PATH,
                hour=BASE,
                result=AqiResult(aqi=87, dominant="pm25", sub_indices={"pm25": 86.6, "pm10": 55.5}),
                version=1,
            )
        ],
        "incidents": [rows.incident_row(incident(1), PATH, DISTRICT_PATH)],
        "incident_history": [rows.history_row(incident(1), PATH, DISTRICT_PATH, "opened", "")],
        "citizen_reports": [rows.report_row(report(), PATH, incident(1).incident_id, IncidentState.OPEN, 1)],
        "dossiers": [rows.dossier_row(dossier(1), PATH)],
        "indicators_766": rows.indicator_rows(
            scorecard_rows(),
            unit="25957",
            path=PATH,
            period_kind="month",
            period_start=start.date(),
            scheme=decision766.default_scheme().id,
            computed_at=BASE + dt.timedelta(hours=1),
        ),
        "deadletters": [rows.deadletter_row(letter, raw, place=("25957", PATH))],
        "command_refusals": [
            rows.refusal_row(
                IncidentCommand(
                    command_id="cmd-1",
                    incident_id=incident(1).incident_id,
                    action=IncidentAction.DISPATCH,
                    actor="op25957@binhduong.gov.vn",
                    site_unit="724",
                    issued_at=BASE + dt.timedelta(minutes=5),
                    target_unit="25951",
                    grants=("operator@25957",),
                ),
                reason="target-outside-scope",
                detail="dispatch target 25951 is outside the actor's operator scope (25957)",
                refused_at=BASE + dt.timedelta(minutes=6),
                place=("25957", PATH),
                responsible=("25957", PATH),
            )
        ],
        "notification_deliveries": [
            rows.delivery_row(
                incident(1),
                delivery_id="0f" * 16,
                event="opened",
                rule="flood",
                recipient="truc.ban@donghoa.example",
                channel="email",
                status="sent",
                attempts=1,
                detail="accepted by 127.0.0.1:2525",
                path=PATH,
                responsible_path=DISTRICT_PATH,
                created_at=BASE,
                updated_at=BASE,
            )
        ],
    }


# --- row builders -----------------------------------------------------------------------------------------


def test_sample_rows_cover_every_table() -> None:
    assert set(sample_rows()) == rows.TABLES


def test_reading_rows_one_per_measure_in_utc_seconds() -> None:
    got = rows.reading_rows(reading(5, values={"pm10": 61.0, "pm25": 35.5, "o3": 12.0}))
    assert [r["measure"] for r in got] == ["o3", "pm10", "pm25"]
    first = got[0]
    assert first["device_key"] == "sawaco/aq-01"
    assert (first["unit"], first["path"], first["kind"], first["seq"]) == ("25957", PATH, "air", 5)
    # Given in +07:00 with microseconds; stored as aware UTC cut to the second, as DateTime('UTC') keeps it.
    assert first["observed_at"] == BASE and first["observed_at"].tzinfo is dt.UTC
    assert first["received_at"] == BASE + dt.timedelta(seconds=2)
    assert list(first) == [
        "device_key",
        "vendor",
        "device",
        "unit",
        "path",
        "kind",
        "seq",
        "measure",
        "value",
        "observed_at",
        "received_at",
        "lat",
        "lon",
    ]


def test_builders_refuse_the_wrong_event_and_a_mismatched_path() -> None:
    with pytest.raises(TypeError, match="sensor reading"):
        rows.reading_rows(camera())
    with pytest.raises(TypeError, match="camera event"):
        rows.camera_row(reading(), duplicate=False, incident_id="")
    wrong = Ingested(event=reading().event, path="74/724/25960", received_at=BASE)
    with pytest.raises(ValueError, match=r"path '74/724/25960' does not end with unit '25957'"):
        rows.reading_rows(wrong)


def test_camera_row_fills_absent_text_with_empty_strings() -> None:
    crowd = rows.camera_row(camera(8, plate=None), duplicate=True, incident_id="")
    assert crowd["plate"] == "" and crowd["image_url"] == ""
    assert crowd["speed_kmh"] is None and crowd["object_count"] == 40
    assert crowd["duplicate"] == 1 and crowd["event_type"] == "crowd"


def test_device_status_row_for_sensors_and_cameras() -> None:
    sensor = rows.device_status_row(reading(9), readings=3)
    assert (sensor["kind"], sensor["last_seq"], sensor["readings"]) == ("air", 9, 3)
    assert sensor["last_seen"] == BASE + dt.timedelta(seconds=2)  # when the platform received it
    assert rows.device_status_row(camera(), readings=1)["kind"] == "camera"
    with pytest.raises(ValueError, match="readings must be 0 or more"):
        rows.device_status_row(camera(), readings=-1)


def test_incident_and_history_rows() -> None:
    row = rows.incident_row(incident(2, IncidentState.ACKNOWLEDGED), PATH, DISTRICT_PATH)
    assert (row["version"], row["state"], row["severity"], row["module"]) == (2, "acknowledged", "high", "environment")
    assert (row["responsible_unit"], row["responsible_path"]) == ("724", DISTRICT_PATH)
    assert json.loads(row["detail"]) == {"threshold_m": "0.5", "water_level_m": "0.62"}
    assert row["detail"].index("threshold_m") < row["detail"].index("water_level_m")  # stable: sorted keys
    assert row["note"] == "" and row["sla_due_at"] == BASE + dt.timedelta(hours=4)
    own = msgspec.structs.replace(incident(), responsible_unit=None)
    assert rows.incident_row(own, PATH, PATH)["responsible_unit"] == "25957"
    history = rows.history_row(incident(), PATH, DISTRICT_PATH, "escalate", "")
    assert list(history)[-2:] == ["action", "actor"] and history["action"] == "escalate"
    with pytest.raises(ValueError, match="action 'delete' is not one of"):
        rows.history_row(incident(), PATH, DISTRICT_PATH, "delete", "ops@724")


def test_report_row_contact_and_state() -> None:
    row = rows.report_row(report(), PATH, "", "", 1)
    assert (row["contact_name"], row["contact_phone"], row["contact_email"]) == ("Nguyễn Văn A", "0909 123 456", "")
    assert row["address"] == "" and row["media_urls"] == ["https://media.example/r-1.jpg"]
    assert rows.report_row(report(), PATH, "i-1", IncidentState.DISPATCHED, 3)["state"] == "dispatched"
    with pytest.raises(ValueError, match="state 'lost' is not an incident state"):
        rows.report_row(report(), PATH, "i-1", "lost", 1)


def test_dossier_row_carries_every_service_record_field_plus_path() -> None:
    row = rows.dossier_row(dossier(2), PATH)
    assert list(row) == [*ServiceRecord.__struct_fields__, "path"]
    assert (row["requires_payment"], row["paid_online"], row["fully_online"]) == (1, 1, 0)
    assert row["satisfaction"] == "satisfied" and rows.dossier_row(dossier(1), PATH)["satisfaction"] == ""
    assert row["finished_at"] is not None and rows.dossier_row(dossier(1), PATH)["finished_at"] is None


def test_deadletter_row_is_keyed_by_the_records_sha1() -> None:
    letter, raw = dead_letter()
    row = rows.deadletter_row(letter, raw, place=("25957", PATH))
    assert row["letter_id"] == hashlib.sha1(raw).hexdigest()
    assert base64.b64decode(row["payload"]) == b'{"seq": -1}'
    assert (row["size"], row["vendor"], row["device"]) == (11, "sawaco", "aq-01")
    assert (row["unit"], row["path"]) == ("25957", PATH)
    anonymous = msgspec.structs.replace(letter, vendor=None, device=None, size=0)
    unplaced = rows.deadletter_row(anonymous, raw, place=("", ""))
    assert (unplaced["vendor"], unplaced["size"], unplaced["unit"], unplaced["path"]) == ("", 11, "", "")
    with pytest.raises(ValueError, match="does not end with unit '25957'"):
        rows.deadletter_row(letter, raw, place=("25957", "74/724"))


@pytest.mark.parametrize(
    ("source", "place"),
    [
        ("mqtt:ioc/v1/25957/water/gauge-vendor/wl-1", ("25957", PATH)),  # as the bridge writes it
        ("ioc/v1/25957/air/sawaco/aq-01", ("25957", PATH)),  # before the bridge prefixed its sources
        ("mqtt:ioc/v1/25957/water/gauge-vendor/bad device id!", ("25957", PATH)),  # refused for its device
        ("mqtt:ioc/v1/724/air/sawaco/aq-01", ("724", "74/724")),  # a district's own device
        ("mqtt:ioc/v1/99999/air/sawaco/aq-01", ("", "")),  # no such unit in the tree
        ("mqtt:ioc/v2/25957/air/sawaco/aq-01", ("", "")),
        ("kafka:ioc.readings.v1", ("", "")),
        ("http:/portal/dossiers", ("", "")),
        ("", ("", "")),
    ],
)
def test_a_dead_letter_is_placed_by_its_device_topics_unit(source: str, place: tuple[str, str]) -> None:
    assert deadletters.letter_place(source, units.load_tree("2024")) == place


def test_aggregate_row_mean_and_checks() -> None:
    row = sample_rows()["unit_aggregates"][0]
    assert (row["mean"], row["sum"], row["level"], row["window"]) == (35.0, 70.0, "district", "1m")
    common: dict[str, Any] = {
        "unit": "724",
        "path": DISTRICT_PATH,
        "level": "district",
        "window": "1m",
        "window_start": BASE,
        "measure": "pm25",
        "count": 1,
        "total": 1.0,
        "minimum": 1.0,
        "maximum": 1.0,
        "devices": 1,
        "version": 1,
    }
    assert rows.aggregate_row(**{**common, "measure": "aqi"})["measure"] == "aqi"
    changes: list[tuple[dict[str, Any], str]] = [
        ({"window": "5m"}, "window '5m'"),
        ({"measure": "pm1"}, "measure 'pm1'"),
        ({"count": 0}, "at least one reading"),
        ({"level": "ward"}, "ward"),
        ({"minimum": 2.0}, "above maximum"),
    ]
    for change, message in changes:
        with pytest.raises(ValueError, match=message):
            rows.aggregate_row(**{**common, **change})


def test_aqi_row_band_and_missing_sub_indices() -> None:
    row = sample_rows()["aqi_hourly"][0]
    assert (row["aqi"], row["band"], row["dominant"]) == (87, 2, "pm25")
    assert row["pm25"] == 86.6 and row["no2"] is None and row["so2"] is None
    with pytest.raises(ValueError, match="start of an hour"):
        rows.aqi_row(
            device_key="a/b",
            unit="25957",
            path=PATH,
            hour=BASE + dt.timedelta(minutes=5),
            result=AqiResult(10, "pm25", {}),
            version=1,
        )


def test_indicator_rows_from_a_scorecard() -> None:
    source = scorecard_rows()
    got = sample_rows()["indicators_766"]
    assert [r["code"] for r in got] == [r["indicator"] for r in source]
    assert all(r["period_start"] == dt.date(BASE.year, BASE.month, 1) for r in got)
    assert {r["group_code"] for r in got} == {r["group"] for r in source}
    assert all(isinstance(r["lost_dossiers"], list) and r["no_data"] in (0, 1) for r in got)
    scheme = decision766.default_scheme().id
    kwargs: dict[str, Any] = {
        "unit": "25957",
        "path": PATH,
        "period_kind": "month",
        "period_start": dt.date(2025, 6, 1),
        "scheme": scheme,
        "computed_at": BASE,
    }
    with pytest.raises(ValueError, match="unit '25957', scheme"):
        rows.indicator_rows(source, **{**kwargs, "unit": "25960", "path": "74/724/25960"})
    with pytest.raises(TypeError, match="must be a date"):
        rows.indicator_rows(source, **{**kwargs, "period_start": BASE})
    with pytest.raises(ValueError, match="starts on day 1"):
        rows.indicator_rows(source, **{**kwargs, "period_start": dt.date(2025, 6, 2)})
    with pytest.raises(ValueError, match="period_kind 'week'"):
        rows.indicator_rows(source, **{**kwargs, "period_kind": "week"})


def test_builders_are_deterministic_so_duplicates_are_identical() -> None:
    assert sample_rows() == sample_rows()


def test_sink_module_reexports_the_builders() -> None:
    for name in ("reading_rows", "camera_row", "incident_row", "indicator_rows", "deadletter_row"):
        assert getattr(sink, name) is getattr(rows, name)


# --- the sink, in memory ------------------------------------------------------------------------------------


class FlakyWarehouse(Warehouse):
    """Fails the first `failures` inserts like an unreachable server, then stores rows in memory."""

    def __init__(self, failures: int = 0, delay_s: float = 0.0) -> None:
        self.remaining = failures
        self.delay_s = delay_s
        self.attempts = 0
        self.stored: list[tuple[str, list[dict[str, Any]], list[str]]] = []
        self.threads: set[str] = set()

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
        self.attempts += 1
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.remaining > 0:
            self.remaining -= 1
            raise WarehouseError("NetworkError: Code: 210. Connection refused (127.0.0.1:9000)")
        self.stored.append((table, [dict(r) for r in rows], list(columns or [])))


def test_backoff_doubles_then_stays_capped() -> None:
    delays = sink.backoff_delays(0.5, 4.0)
    assert [next(delays) for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    with pytest.raises(ValueError, match="0 < initial_s <= max_s"):
        next(sink.backoff_delays(5.0, 1.0))


async def test_write_retries_until_the_warehouse_takes_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    warehouse = FlakyWarehouse(failures=3)
    writer = RowSink(warehouse, "ioc", initial_backoff_s=0.01, max_backoff_s=0.02)
    batch = rows.reading_rows(reading(1))
    with caplog.at_level(logging.INFO, logger="streams.warehouse.sink"):
        await writer.write("readings", batch)
    assert warehouse.attempts == 4 and writer.failures == 3
    assert warehouse.stored == [("ioc.readings", batch, list(batch[0]))]  # one batched insert, all columns
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and "Connection refused" in warnings[0].getMessage()
    assert "succeeded after 4 attempts" in caplog.records[-1].getMessage()


async def test_write_runs_the_driver_off_the_event_loop() -> None:
    warehouse = FlakyWarehouse(delay_s=0.3)
    writer = RowSink(warehouse, "ioc")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    await writer.write("readings", rows.reading_rows(reading()))
    ticker.cancel()
    assert ticks >= 10  # the loop kept running while the insert blocked its thread
    assert threading.main_thread().name not in warehouse.threads


async def test_write_refuses_mistakes_at_once_without_io() -> None:
    warehouse = FlakyWarehouse()
    writer = RowSink(warehouse, "ioc")
    with pytest.raises(ValueError, match="'reading' is not a warehouse table"):
        await writer.write("reading", rows.reading_rows(reading()))
    mixed = [*rows.reading_rows(reading()), rows.device_status_row(reading(), readings=1)]
    with pytest.raises(ValueError, match=r"row 2 for readings has other columns than row 0 \(missing \['measure'"):
        await writer.write("readings", mixed)
    await writer.write("readings", [])
    assert warehouse.attempts == 0
    with pytest.raises(ValueError, match="not a plain identifier"):
        RowSink(warehouse, "ioc; DROP")


# --- the sink through a real ClickHouse outage ------------------------------------------------------------------


@pytest.fixture
def own_clickhouse(clickhouse: dict[str, Any], tmp_path: Path) -> Iterator[tuple[Stack, dict[str, Any]]]:
    # A separate server: stopping the session's shared one would break every other test using it.
    stack = Stack(tmp_path / "ch")
    try:
        info = stack.up(["clickhouse"])["clickhouse"]
        assert info["version"] == clickhouse["version"]
        yield stack, info
    finally:
        stack.down()


async def test_a_write_during_an_outage_lands_after_resume_exactly_once(
    own_clickhouse: tuple[Stack, dict[str, Any]],
) -> None:
    stack, info = own_clickhouse
    endpoint = ClickHouseEndpoint.from_service(info)
    warehouse = connect(endpoint)
    try:
        assert migrations.migrate(warehouse, "outage")
        writer = RowSink(warehouse, "outage", initial_backoff_s=0.1, max_backoff_s=0.5)
        before = rows.reading_rows(reading(1))
        await writer.write("readings", before)

        await asyncio.to_thread(stack.stop_service, "clickhouse")
        during = [row for seq in range(2, 52) for row in rows.reading_rows(reading(seq))]
        pending = asyncio.create_task(writer.write("readings", during))
        deadline = time.monotonic() + 30
        while writer.failures < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not pending.done() and writer.failures >= 3  # paused, retrying, not lost and not raised

        await asyncio.to_thread(stack.resume_service, "clickhouse")
        await asyncio.wait_for(pending, timeout=60)
        counted = warehouse.query(
            "SELECT count() AS n, uniqExact(seq) AS seqs FROM outage.readings FINAL WHERE device_key = %(key)s",
            {"key": "sawaco/aq-01"},
        )
        assert counted == [{"n": len(before) + len(during), "seqs": 51}]
    finally:
        warehouse.close()
