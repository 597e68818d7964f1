"""Scenario 1 (shortened) on both units trees, on real Kafka and ClickHouse: the flood escalates by the edition.

The gauge rises in Đông Hòa, the flood incident opens for the ward, nobody acknowledges, and it escalates: on the
2024 tree to Dĩ An district (724), on the 2025 tree (SCENARIOS.md scenario 6) straight to the city (79). The
readings go through the bridge's judge of that edition (the device names its 2025 ward on a 2025 deployment)
and a stream worker of that edition; the sites' scopes then find the incident where each tree puts it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from ioc import codecs, topics, units
from ioc.events import IngestBatch, Ingested
from ioc.scope import Scope, site_scope
from sensors.bridge import Accepted, Validator
from tests.streams.worker import Worker

DONG_HOA = units.load_tree("2024").get("25957")


class EditionWorker(Worker):
    """A stream worker of one deployment edition."""

    def __init__(self, *args: Any, edition: units.Edition, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.edition = edition

    def env(self) -> dict[str, str]:
        return {**super().env(), "IOC_STREAMS_EDITION": self.edition}


@pytest.fixture(params=["2024", "2025"])
def worker(request: pytest.FixtureRequest, kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path) -> Any:
    w = EditionWorker(kafka, clickhouse, tmp_path, edition=request.param)
    w.start()
    try:
        w.wait_live()
        yield w
    finally:
        w.close()


def publish_flood(worker: EditionWorker, unit: str, device: str, base: dt.datetime) -> list[Accepted]:
    """Đông Hòa's gauge as its vendor publishes it under `unit`, judged by the bridge of the worker's edition."""
    judge = Validator(units.load_tree("2024"), edition=worker.edition)
    accepted: list[Accepted] = []
    for step in range(40):  # every 30 s for 20 minutes: calm 5 minutes, then 0.3 m a minute up to 1.8 m
        minute = step / 2
        level = 0.6 if minute < 5 else min(1.8, 0.6 + (minute - 5) * 0.3)
        at = base + dt.timedelta(seconds=30 * step)
        payload = {
            "vendor": "acme-hydro",
            "device": device,
            "unit": unit,
            "kind": "water",
            "seq": step,
            "observed_at": at.isoformat(),
            "values": {"waterLevel": round(level, 3)},
            "lat": DONG_HOA.lat,
            "lon": DONG_HOA.lon,
        }
        verdict = judge.check(topics.mqtt_topic(unit, "water", "acme-hydro", device), json.dumps(payload).encode())
        assert isinstance(verdict, Accepted), verdict
        accepted.append(verdict)
    items = [Ingested(event=a.event, path=a.path, received_at=a.event.observed_at) for a in accepted]
    key = topics.device_key("acme-hydro", device)
    worker.send(topics.READINGS, key, codecs.encode(IngestBatch(items=items)))
    return accepted


def scoped_ids(worker: Worker, scope: Scope, column: str, incident_id: str) -> bool:
    """Whether the site of `scope` finds the incident by its place ("path") or its responsible unit."""
    unit_column = "unit" if column == "path" else "responsible_unit"
    condition, params = scope.predicate(column, unit_column)
    rows = worker.query(
        f"SELECT incident_id FROM {worker.database}.incidents FINAL WHERE incident_id = %(i)s AND {condition}",
        i=incident_id,
        **params,
    )
    return bool(rows)


# Per edition: the code the gauge publishes under, the row's place, the ward answering, and where it escalates.
STORY = {
    "2024": ("25957", "25957", "25957", "724", "74/724"),
    "2025": ("25951", "25951", "25951", units.HCMC_CODE, units.HCMC_CODE),
}


def test_the_same_flood_escalates_to_the_district_in_2024_and_straight_to_the_city_in_2025(
    worker: EditionWorker,
) -> None:
    published, place, ward, above, above_path = STORY[worker.edition]
    device = f"wl-dh-{uuid.uuid4().hex[:6]}"
    base = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    accepted = publish_flood(worker, published, device, base)
    assert {a.event.unit for a in accepted} == {place}
    worker.tick(base + dt.timedelta(minutes=21))
    db = worker.database
    [incident] = worker.wait_for(
        f"SELECT * FROM {db}.incidents FINAL WHERE rule = 'flood-level' AND has(devices, %(d)s)",
        lambda rows: len(rows) == 1,
        d=f"acme-hydro/{device}",
    )
    assert (incident["unit"], incident["responsible_unit"], incident["escalation_level"]) == (place, ward, 0)
    assert incident["state"] == "open"

    # Nobody acknowledges within the high-severity SLA (30 minutes).
    worker.tick(incident["opened_at"] + dt.timedelta(minutes=31))
    [escalated] = worker.wait_for(
        f"SELECT * FROM {db}.incidents FINAL WHERE incident_id = %(i)s",
        lambda rows: bool(rows) and rows[0]["escalation_level"] == 1,
        i=incident["incident_id"],
    )
    assert (escalated["responsible_unit"], escalated["responsible_path"]) == (above, above_path)
    history = worker.query(
        f"SELECT action, responsible_unit FROM {db}.incident_history FINAL WHERE incident_id = %(i)s ORDER BY version",
        i=incident["incident_id"],
    )
    assert [(h["action"], h["responsible_unit"]) for h in history] == [("opened", ward), ("escalate", above)]

    # Roll-ups: the ward's site and the top of the tree find it where the edition places it; the escalation
    # target finds it as the unit now responsible.
    i = incident["incident_id"]
    ward_site, top = (
        site_scope(ward, worker.edition),
        site_scope(units.load_tree(worker.edition).roots[0].code, worker.edition),
    )
    assert scoped_ids(worker, ward_site, "path", i) and scoped_ids(worker, top, "path", i)
    assert scoped_ids(worker, site_scope(above, worker.edition), "responsible_path", i)
    if worker.edition == "2025":
        # No district site of the old tree answers for it: Dĩ An (724) holds the place, not the responsibility.
        assert not scoped_ids(worker, site_scope("724"), "responsible_path", i)
        assert scoped_ids(worker, site_scope("724"), "path", i)
