"""Running every named query the citizen API asks of the data layer on a seeded warehouse (server or chDB)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from dashboards.data import CITIZEN_API, SiteData
from dashboards.sites import Site
from ioc.clients.clickhouse import Warehouse, in_process
from ioc.events import ACTIVE_STATES
from ioc.settings import CitizenApiSettings
from streams.warehouse import migrate
from tests.api import seed

EXPECTED = {
    "aqi_by_station": 2,
    "device_positions": 3,
    "water_gauges": 2,
    "public_alerts": 2,
    "score_latest_period": 1,
    "scores": 10,
    "report": 1,
    "reports": 1,
    "reports_by_id": 1,
    "incident_states": 1,
    "incident_trail": 2,
    "vendor_rejections": 0,  # the seed has no dead letters: tests/api/test_vendor_rejections.py reads some
}


def run_all(warehouse: Warehouse, seeded: seed.Seeded) -> dict[str, int]:
    """Rows each named query returns for the province, with parameters that match the seeded rows."""
    data = SiteData(warehouse, Site.from_settings(CitizenApiSettings(site_unit="74")), live_ttl_s=0, slow_ttl_s=0)
    now = seeded.now
    params: dict[str, dict[str, Any]] = {
        "aqi_by_station": {"hours": 3},
        "device_positions": {"kind": "camera"},
        "water_gauges": {"since": now - dt.timedelta(hours=2)},
        "public_alerts": {"active": ACTIVE_STATES, "rules": ("aqi-bad", "flood-level", "flood-rise")},
        "score_latest_period": {"period_kind": "month"},
        "scores": {"period_kind": "month", "period": seeded.month},
        "report": {"report_id": seed.REPORT_ID},
        "reports": {
            "start": now - dt.timedelta(days=1),
            "end": now + dt.timedelta(minutes=1),
            "any_category": 0,
            "categories": ("flooding",),
            "limit": 100,
        },
        "reports_by_id": {"report_ids": (seed.REPORT_ID, "o311-none")},
        "incident_states": {"incident_ids": (seeded.report_incident,)},
        "incident_trail": {"incident_id": seeded.report_incident},
        "vendor_rejections": {
            "vendor": "gauge-vendor",
            "start": now - dt.timedelta(days=1),
            "end": now,
            "limit": 100,
            "include_unplaced": 1,
        },
    }
    assert set(params) == CITIZEN_API, "every query the API runs needs its parameters here"
    return {name: len(data.run(name, "74", **values)) for name, values in params.items()}


def main() -> None:
    """In a fresh process: chDB in memory, the schema, the seed, every query; prints the counts as JSON."""
    warehouse = in_process(sys.argv[1])
    migrate(warehouse, "ioc")
    seeded = seed.seed(warehouse, "ioc")
    warehouse.command("USE ioc")
    print(json.dumps(run_all(warehouse, seeded)))


if __name__ == "__main__":
    main()
