"""Reading a report's inputs from the warehouse: named, parameterised statements scoped to the site's subtree."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final

from ioc.clients.clickhouse import Warehouse
from ioc.scope import Scope
from streams.indicators import record_from_row
from streams.reporting.build import ReportInputs
from streams.reporting.periods import ReportPeriod

__all__ = ["QUERIES", "read_inputs"]

_DATABASE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHUNK: Final = 1000

QUERIES: Final[Mapping[str, str]] = {
    "dossiers": """
        SELECT * FROM {db}.dossiers FINAL
        WHERE {scope} AND received_at < %(end)s AND (received_at >= %(start)s OR finished_at >= %(start)s)
    """,
    "incidents": """
        SELECT incident_id, rule, module, unit, severity, state, opened_at, sla_due_at, escalation_level
        FROM {db}.incidents FINAL
        WHERE {scope} AND opened_at >= %(start)s AND opened_at < %(end)s
    """,
    "resolutions": """
        SELECT incident_id, min(updated_at) AS first_resolved
        FROM {db}.incident_history FINAL
        WHERE {scope} AND state IN ('resolved', 'closed') AND opened_at >= %(start)s AND opened_at < %(end)s
        GROUP BY incident_id
    """,
    "reports": """
        SELECT report_id, category, source, unit, incident_id
        FROM {db}.citizen_reports FINAL
        WHERE {scope} AND submitted_at >= %(start)s AND submitted_at < %(end)s
    """,
    "incident_states": """
        SELECT incident_id, state
        FROM {db}.incidents FINAL
        WHERE {scope} AND incident_id IN %(ids)s
    """,
}
"""Every statement the report builder runs, by name."""


def _run(warehouse: Warehouse, database: str, name: str, scope: Scope, **params: Any) -> list[dict[str, Any]]:
    if not _DATABASE.match(database):
        raise ValueError(f"database {database!r} is not a ClickHouse identifier")
    condition, bound = scope.predicate()
    sql = QUERIES[name].replace("{db}", database).replace("{scope}", condition)
    return warehouse.query(sql, {**bound, **params})


def read_inputs(warehouse: Warehouse, database: str, scope: Scope, period: ReportPeriod) -> ReportInputs:
    """Everything `build_report` needs for the site and period.

    Each statement reads a replacing table with FINAL (docs/warehouse.md), filters `{scope}` (ioc.scope's parameterised
    predicate) and the period; values are driver-escaped `%(name)s` parameters and the only spliced text is the
    validated database name and the scope condition. They run on ClickHouse 18.16 and on chDB
    (tests/reporting/test_source.py runs them on both).
    """
    window = {"start": period.start, "end": period.end}
    dossiers = [record_from_row(r) for r in _run(warehouse, database, "dossiers", scope, **window)]
    incidents = _run(warehouse, database, "incidents", scope, **window)
    resolved: dict[str, dt.datetime] = {
        str(r["incident_id"]): r["first_resolved"] for r in _run(warehouse, database, "resolutions", scope, **window)
    }
    reports = _run(warehouse, database, "reports", scope, **window)
    ids = sorted({str(r["incident_id"]) for r in reports if r["incident_id"]})
    states: dict[str, str] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = tuple(ids[start : start + _CHUNK])
        for row in _run(warehouse, database, "incident_states", scope, ids=chunk):
            states[str(row["incident_id"])] = str(row["state"])
    return ReportInputs(
        dossiers=dossiers, incidents=incidents, resolved_at=resolved, reports=reports, report_states=states
    )
