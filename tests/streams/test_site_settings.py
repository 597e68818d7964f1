"""Per-site settings take effect in the stream workers: threshold overrides, isolation and retention.

Pure tests of the index the workers ask (streams/siteconfig.py, streams/retention.py), then real ones: the
operator's own documents published on the real `ioc.site-config.v1`, a real worker process, real ClickHouse.
The units are Bàu Bàng's (district 719), which no other test configures.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ioc import kafka_access
from ioc.clients import clickhouse
from ioc.events import CameraEvent, CameraEventType, Ingested, SensorReading
from ioc.reference import default_reference_model
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint
from operators import config, siteconfig
from operators.models import IOCSiteSpec
from operators.names import site_names
from operators.siteconfig import ConfigPublisher
from streams import retention
from streams.rules import sensor_rules
from streams.siteconfig import SiteIndex, SiteSettings, parse_site
from streams.warehouse import rows
from streams.warehouse.sink import RowSink
from tests.streams.worker import Worker, reading

MODEL = default_reference_model()
DEFAULT = sensor_rules(MODEL)
PROVINCE, DISTRICT = "74", "719"
LOWERED, PLAIN, ISOLATED, NEIGHBOUR = "25816", "25819", "25822", "25825"  # communes of Bàu Bàng
ELSEWHERE = "25780"  # a commune of Dầu Tiếng (district 720), under no site of these tests


def document(unit: str, tier: str, **spec: Any) -> dict[str, Any]:
    """The effective configuration the operator publishes for a site of `unit`."""
    site = IOCSiteSpec.model_validate({"unit": unit, "tier": tier, **spec})
    return config.effective_config(site_names(f"s-{unit}", "test", site), site, MODEL)


def settings_of(unit: str, tier: str, **spec: Any) -> SiteSettings:
    return parse_site(unit, document(unit, tier, **spec))


def flood_level(index: SiteIndex, unit: str) -> float:
    rule = next(r for r in index.rules_for(unit) if r.id == "flood-level")
    return float(rule.above)  # type: ignore[union-attr]


# --- pure -------------------------------------------------------------------------------------------------------


def test_the_deepest_site_holding_a_unit_decides_each_rule() -> None:
    index = SiteIndex(
        [
            settings_of(PROVINCE, "province", thresholds={"flood-level": {"above": 2.0}}),
            settings_of(
                DISTRICT,
                "district",
                thresholds={"flood-level": {"above": 1.8}, "device-silence": {"silent_minutes": 30}},
            ),
            settings_of(LOWERED, "commune", thresholds={"flood-level": {"above": 1.0, "clear_below": 0.8}}),
        ],
        MODEL.rules,
    )
    assert flood_level(index, LOWERED) == 1.0  # the commune's own
    assert flood_level(index, PLAIN) == 1.8  # its district's
    assert flood_level(index, "724") == 2.0  # another district: the province's
    assert flood_level(index, "99999") == 1.5  # under no site: the worker's model
    # A commune runs no data_quality module, so its document has no silence rule: the district's decides.
    silence = next(r for r in index.rules_for(LOWERED) if r.id == "device-silence")
    assert silence.silent_minutes == 30  # type: ignore[union-attr]
    assert [r.id for r in index.rules_for(LOWERED)] == [r.id for r in DEFAULT]  # same rules, same order


def test_camera_rules_follow_the_same_rule_a_district_decides_for_its_communes() -> None:
    index = SiteIndex(
        [
            settings_of(DISTRICT, "district", thresholds={"camera-event": {"min_confidence": 0.9}}),
            settings_of(LOWERED, "commune"),  # a commune runs no traffic module: its district's camera rules
        ],
        MODEL.rules,
    )
    assert index.camera_rules_for(LOWERED).event.min_confidence == 0.9
    assert index.camera_rules_for(ELSEWHERE).event.min_confidence == 0.6  # the model's


def test_an_isolated_site_takes_its_subtree_from_the_shared_pool() -> None:
    sites = [
        settings_of(DISTRICT, "district", workers={"isolated": True}),
        settings_of(ISOLATED, "commune", workers={"isolated": True}),
        settings_of(NEIGHBOUR, "commune"),
    ]
    shared = SiteIndex(sites, MODEL.rules)
    district = SiteIndex(sites, MODEL.rules, dedicated_to=DISTRICT)
    commune = SiteIndex(sites, MODEL.rules, dedicated_to=ISOLATED)
    assert [shared.handles(u) for u in (ISOLATED, NEIGHBOUR, DISTRICT, "25747")] == [False, False, False, True]
    assert [district.handles(u) for u in (ISOLATED, NEIGHBOUR, DISTRICT, "25747")] == [False, True, True, False]
    assert [commune.handles(u) for u in (ISOLATED, NEIGHBOUR, DISTRICT, "25747")] == [True, False, False, False]


def test_retention_keeps_the_longest_any_site_asks_in_the_warehouse_and_each_sites_own_in_its_copies() -> None:
    index = SiteIndex(
        [
            settings_of(PROVINCE, "province", retention={"readingsDays": 90}),
            settings_of(LOWERED, "commune", retention={"readingsDays": 30}),
        ],
        MODEL.rules,
    )
    assert index.readings_days() == 90
    assert retention.plan(index, "ioc") == {"ioc": 90, "ioc_site_74": 90, f"ioc_site_{LOWERED}": 30}
    assert retention.plan(SiteIndex([], MODEL.rules), "ioc") == {}  # no site asks: nothing is dropped


def test_a_document_the_workers_cannot_use_is_refused() -> None:
    with pytest.raises(ValueError, match="not usable"):
        parse_site("x", {"rules": []})
    broken = document(LOWERED, "commune")
    broken["rules"][0]["above"] = "high"
    with pytest.raises(ValueError, match="not usable"):
        parse_site(LOWERED, broken)


# --- real Kafka, worker and ClickHouse ----------------------------------------------------------------------------


class SiteWorker(Worker):
    """A worker with extra settings (a dedicated site, a fast retention timer)."""

    def __init__(self, *args: Any, extra: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.extra = extra or {}

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}

    def logged(self, text: str) -> bool:
        path = self.tmp / f"worker-{self.starts}.log"
        return path.exists() and text in path.read_text(errors="replace")


@pytest.fixture
def publish(kafka: dict[str, Any]) -> Iterator[Any]:
    """Publish a site's document with the operator's publisher; tombstones for every key at the end."""
    publisher = ConfigPublisher(KafkaEndpoint.from_service(kafka, kafka_access.OPERATOR))
    keys: set[str] = set()

    def send(doc: dict[str, Any]) -> int:
        key = doc["site"]["key"]
        keys.add(key)
        return publisher.publish(key, config.config_json(doc))

    try:
        yield send
    finally:
        for key in keys:
            publisher.publish(key, None)
        publisher.close()


def _start(worker: SiteWorker) -> SiteWorker:
    worker.start()
    return worker


def _steady(vendor: str, device: str, unit: str, level: float, base: dt.datetime, first: int = 0) -> list[Any]:
    """A gauge reading `level` every 30 s for ten minutes (no rise: only the level rule can open)."""
    return [
        reading(vendor, device, unit, first + step, {"waterLevel": level}, base + dt.timedelta(seconds=30 * step))
        for step in range(20)
    ]


def _wait_logged(worker: SiteWorker, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not worker.logged(text):
        assert time.monotonic() < deadline, f"worker never logged {text!r}:\n{worker.log()}"
        time.sleep(0.3)


def test_a_threshold_override_changes_that_sites_incidents_and_no_others_and_updates_live(
    kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path, publish: Any
) -> None:
    publish(document(LOWERED, "commune", thresholds={"flood-level": {"above": 1.0, "clear_below": 0.8}}))
    publish(document(PLAIN, "commune"))
    worker = _start(SiteWorker(kafka, clickhouse, tmp_path))
    try:
        worker.wait_live()
        db, vendor = worker.database, f"site-{uuid.uuid4().hex[:6]}"
        base = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
        # The same water level, 1.2 m for ten minutes, in both communes: above only the lowered alert level.
        worker.readings(_steady(vendor, "wl-a", LOWERED, 1.2, base) + _steady(vendor, "wl-b", PLAIN, 1.2, base))
        worker.tick(base + dt.timedelta(minutes=11))
        # Other rules (a gauge silent since, by the ticks' clock) are not what this test is about.
        floods = f"SELECT unit, opened_at FROM {db}.incidents FINAL WHERE rule = 'flood-level' AND unit IN %(u)s"
        opened = worker.wait_for(floods, bool, u=(LOWERED, PLAIN))
        worker.wait_for(
            f"SELECT count() AS n FROM {db}.readings FINAL WHERE vendor = %(v)s", lambda r: r[0]["n"] == 40, v=vendor
        )
        time.sleep(3)  # what the plain commune's readings would have opened has had time to arrive
        worker.tick(base + dt.timedelta(minutes=11))
        found = worker.query(floods, u=(LOWERED, PLAIN))
        assert opened == found and [r["unit"] for r in found] == [LOWERED]

        # The plain commune lowers its alert level too: the running worker applies it to its next readings.
        offset = publish(document(PLAIN, "commune", thresholds={"flood-level": {"above": 1.1, "clear_below": 0.9}}))
        _wait_logged(worker, f"site-config: site {PLAIN} updated")
        # The worker reports what it holds; the operator's SettingsApplied condition counts it.
        assert _applied(kafka, worker, offset) == (True, "Applied", "applied by all 1 live stream worker(s)")
        later = base + dt.timedelta(minutes=20)
        worker.readings(_steady(vendor, "wl-b", PLAIN, 1.2, later, first=20))
        worker.tick(later + dt.timedelta(minutes=11))
        both = sorted(worker.wait_for(floods, lambda r: len(r) == 2, u=(LOWERED, PLAIN)), key=lambda r: r["unit"])
        assert [r["unit"] for r in both] == [LOWERED, PLAIN]
        assert both[1]["opened_at"] == later  # from its first reading above the new level, not before
    finally:
        worker.close()


def test_a_districts_camera_override_changes_its_communes_incidents_and_no_others(
    kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path, publish: Any
) -> None:
    publish(document(DISTRICT, "district", thresholds={"camera-event": {"min_confidence": 0.9}}))
    worker = _start(SiteWorker(kafka, clickhouse, tmp_path))
    try:
        worker.wait_live()
        db, vendor = worker.database, f"cam-{uuid.uuid4().hex[:6]}"
        at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).replace(microsecond=0)
        # The same crowd, seen with the same confidence, under the stricter district and elsewhere.
        worker.cameras([_crowd(vendor, "cam-a", LOWERED, at), _crowd(vendor, "cam-b", ELSEWHERE, at)])
        worker.tick(at + dt.timedelta(minutes=1))
        crowds = f"SELECT unit FROM {db}.incidents FINAL WHERE rule = 'camera-event' AND unit IN %(u)s"
        assert worker.wait_for(crowds, bool, u=(LOWERED, ELSEWHERE)) == [{"unit": ELSEWHERE}]
        stored = worker.wait_for(
            f"SELECT unit, duplicate FROM {db}.camera_events FINAL WHERE vendor = %(v)s ORDER BY unit",
            lambda r: len(r) == 2,
            v=vendor,
        )
        # Below the district's confidence the event is kept, flagged, and raises nothing.
        assert [(r["unit"], bool(r["duplicate"])) for r in stored] == [(ELSEWHERE, False), (LOWERED, True)]
        time.sleep(2)
        assert worker.query(crowds, u=(LOWERED, ELSEWHERE)) == [{"unit": ELSEWHERE}]
    finally:
        worker.close()


def _crowd(vendor: str, device: str, unit: str, at: dt.datetime) -> CameraEvent:
    return CameraEvent(
        vendor=vendor,
        device=device,
        unit=unit,
        seq=1,
        observed_at=at,
        event_type=CameraEventType.CROWD,
        confidence=0.8,
        object_count=40,
    )


def _applied(kafka: dict[str, Any], worker: SiteWorker, offset: int) -> tuple[bool | None, str, str]:
    """The SettingsApplied verdict over this worker's reports, once it has reported (it does right after reading)."""
    deadline = time.monotonic() + 15
    while True:
        mine = [
            r
            for r in siteconfig.worker_reports(KafkaEndpoint.from_service(kafka, kafka_access.OPERATOR))
            if r.group.startswith(worker.app_id)
        ]
        verdict = siteconfig.settings_applied(mine, offset, time.time())
        if verdict[0] or time.monotonic() > deadline:
            return verdict
        time.sleep(0.5)


def test_an_isolated_sites_worker_handles_only_its_readings_and_the_pool_skips_them(
    kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path, publish: Any
) -> None:
    publish(document(ISOLATED, "commune", workers={"isolated": True}))
    shared = _start(SiteWorker(kafka, clickhouse, tmp_path / "shared"))
    dedicated = SiteWorker(kafka, clickhouse, tmp_path / "dedicated", extra={"IOC_STREAMS_SITE": ISOLATED})
    try:
        shared.wait_live()
        dedicated.start()
        _wait_dedicated_live(dedicated)
        vendor = f"iso-{uuid.uuid4().hex[:6]}"
        base = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
        mine = _steady(vendor, "wl-iso", ISOLATED, 1.8, base)  # above the alert level: an incident
        theirs = _steady(vendor, "wl-next", NEIGHBOUR, 0.4, base)
        shared.readings(mine + theirs)
        shared.tick(base + dt.timedelta(minutes=11))
        per_unit = "SELECT unit, count() AS n FROM {db}.readings FINAL WHERE vendor = %(v)s GROUP BY unit"
        assert dedicated.wait_for(
            per_unit.format(db=dedicated.database), lambda r: r == [{"unit": ISOLATED, "n": 20}], v=vendor
        )
        assert shared.wait_for(
            per_unit.format(db=shared.database), lambda r: r == [{"unit": NEIGHBOUR, "n": 20}], v=vendor
        )
        # The dedicated worker's detections go to the shared pool's incident workers: one incident, opened once.
        incidents = shared.wait_for(
            f"SELECT incident_id FROM {shared.database}.incidents FINAL WHERE unit = %(u)s AND rule = 'flood-level'",
            bool,
            u=ISOLATED,
        )
        assert len(incidents) == 1
        history = shared.query(
            f"SELECT action FROM {shared.database}.incident_history FINAL WHERE incident_id = %(i)s",
            i=incidents[0]["incident_id"],
        )
        assert [h["action"] for h in history].count("opened") == 1  # (escalated too: its SLA ran out an hour ago)
        # Nothing of the isolated commune, probes included, ever reached the shared pool's tables.
        isolated_rows = f"SELECT count() AS n FROM {shared.database}.readings WHERE unit = %(u)s"
        assert shared.count(isolated_rows, u=ISOLATED) == 0
        assert (
            dedicated.count(f"SELECT count() AS n FROM {dedicated.database}.readings WHERE unit != %(u)s", u=ISOLATED)
            == 0
        )
    finally:
        dedicated.close()
        shared.close()


def _wait_dedicated_live(worker: SiteWorker, timeout: float = 90) -> None:
    """A dedicated worker ignores the usual probes (another unit): probe with the site's own unit."""
    probe, seq = f"probe-{uuid.uuid4().hex[:6]}", 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.process is not None and worker.process.poll() is None, worker.log()
        worker.readings([reading("probe", probe, ISOLATED, seq, {"waterLevel": 0.1})])
        worker.tick(dt.datetime.now(dt.UTC))
        seq += 1
        time.sleep(2)
        if worker.count(f"SELECT count() AS n FROM {worker.database}.readings WHERE device = %(d)s", d=probe):
            return
    raise AssertionError(f"dedicated worker not live after {timeout} s:\n{worker.log()}")


def _month_start(at: dt.datetime) -> dt.datetime:
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def test_the_leader_drops_months_older_than_the_sites_keep_and_keeps_newer_ones(
    kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path, publish: Any
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    warehouse = clickhouse_connect(clickhouse)
    worker = SiteWorker(kafka, clickhouse, tmp_path, extra={"IOC_STREAMS_RETENTION_EVERY_S": "2"})
    copies = f"t{uuid.uuid4().hex[:10]}"  # stands for the site's own database of copies
    try:
        db = worker.database
        warehouse.command(f"CREATE DATABASE {copies}")
        warehouse.command(f"CREATE TABLE {copies}.readings AS {db}.readings")
        # Older than 30 days by a whole month; and three years old (older than any site keeps).
        month_gone = _month_start(_month_start(now - dt.timedelta(days=30)) - dt.timedelta(days=1)) + dt.timedelta(
            days=3
        )
        years_gone, recent = now - dt.timedelta(days=3 * 366), now - dt.timedelta(days=1)
        sink_rows = [
            row
            for n, at in enumerate((years_gone, month_gone, recent))
            for row in rows.reading_rows(
                _ingested(reading("ret", "wl-1", LOWERED, n, {"waterLevel": 0.4}, at), f"74/{DISTRICT}/{LOWERED}")
            )
        ]
        for database in (db, copies):
            asyncio.run(RowSink(warehouse, database).write("readings", sink_rows))
        site = document(LOWERED, "commune", retention={"readingsDays": 30})
        site["workers"]["database"] = copies
        publish(site)
        worker.start()
        when = "SELECT toString(observed_at) AS at FROM {db}.readings WHERE vendor = 'ret' ORDER BY observed_at"
        kept = worker.wait_for(when.format(db=copies), lambda r: len(r) == 1, timeout=90)
        assert kept == [{"at": f"{recent:%Y-%m-%d %H:%M:%S}"}]
        # The warehouse keeps what the longest-keeping site asks for: the three-year-old month went, the recent stays.
        remaining = worker.wait_for(when.format(db=db), lambda r: len(r) <= 2, timeout=30)
        assert {"at": f"{recent:%Y-%m-%d %H:%M:%S}"} in remaining
        assert {"at": f"{years_gone:%Y-%m-%d %H:%M:%S}"} not in remaining
    finally:
        worker.close()
        warehouse.command(f"DROP DATABASE IF EXISTS {copies}")
        warehouse.close()


def clickhouse_connect(ch: dict[str, Any]) -> clickhouse.Warehouse:
    return clickhouse.connect(ClickHouseEndpoint.from_service(ch))


def _ingested(event: SensorReading, path: str) -> Ingested:
    return Ingested(event=event, path=path, received_at=event.observed_at)
