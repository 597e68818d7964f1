"""Seeding dossiers beside the API's seed and building the province's report (the real server, or chDB)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from ioc.clients.clickhouse import Warehouse, in_process
from ioc.events import DossierStatus
from ioc.scope import site_scope
from streams.reporting import build_for, current
from streams.warehouse import migrate, rows
from tests.api import seed
from tests.reporting.samples import snapshot


def seed_dossiers(warehouse: Warehouse, database: str, now: dt.datetime) -> None:
    """Three dossiers of this month in Dĩ An (one finished, one replayed with an older version) and one outside."""
    received = now - dt.timedelta(hours=6)
    found = [
        snapshot("HS-1", 1, received=received, occurred_at=received),
        snapshot(
            "HS-1", 3, status=DossierStatus.PROCESSED, received=received, occurred_at=received + dt.timedelta(hours=1)
        ),
        snapshot("HS-1", 2, status=DossierStatus.IN_PROGRESS, received=received, occurred_at=received),
        snapshot("HS-2", 1, unit="25951", received=received, occurred_at=received),
        snapshot("HS-3", 1, unit="25747", received=received, occurred_at=received),
    ]
    tree = seed.TREE
    warehouse.insert(f"{database}.dossiers", [rows.dossier_row(r, tree.path(r.unit)) for r in found])


def figures(warehouse: Warehouse, database: str, unit: str, now: dt.datetime) -> dict[str, Any]:
    """The headline figures of `unit`'s report for the current month."""
    report = build_for(warehouse, database, site_scope(unit), current("month", now), generated_at=now)
    return {
        "dossiers": report.score.dossiers,
        "incidents": report.incidents.opened,
        "by_module": report.incidents.by_module,
        "reports": report.citizen_reports.received,
        "report_states": report.citizen_reports.by_state,
        "children": len(report.children),
    }


def main() -> None:
    warehouse = in_process(sys.argv[1])
    migrate(warehouse, "ioc")
    seeded = seed.seed(warehouse, "ioc")
    seed_dossiers(warehouse, "ioc", seeded.now)
    print(json.dumps({unit: figures(warehouse, "ioc", unit, seeded.now) for unit in ("74", "724")}))


if __name__ == "__main__":
    main()
