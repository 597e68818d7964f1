"""A site's status figures (open incidents, data freshness, 766 score), how many workers hold its settings, and
whether the working-day calendar still covers today (the Calendar condition, a warning before it runs out).

The IOCSite figures timer (operators.handlers.iocsite) calls `refresh_figures`; the figures are read from the
site's own database, or from the database of the ancestor whose dashboard serves it (status `database`),
scoped to the site's unit either way (operators.sitedb.read_figures).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from confluent_kafka import KafkaException

from ioc.clients.clickhouse import WarehouseError
from ioc.scope import site_scope
from ioc.workdays import default_calendar
from operators import conditions, sitedb
from operators.context import Context
from operators.models import IOCSiteSpec, ResourceError, parse
from operators.names import site_names
from operators.siteconfig import cached_reports, settings_applied
from operators.sites import SiteObject

__all__ = ["refresh_figures"]


def refresh_figures(ctx: Context, obj: SiteObject) -> dict[str, Any] | None:
    """The status figures (open incidents, data freshness, 766 score) read from the site's copies."""
    try:
        spec = parse(IOCSiteSpec, obj.spec)
    except ResourceError:
        return None
    names = site_names(obj.name, obj.namespace, spec)
    gen = obj.generation
    # A site served by an ancestor's dashboard reads from that ancestor's database (written by the reconcile).
    served = obj.status.get("servedBy") is not None
    database = obj.status.get("database") if served else None
    if served and not isinstance(database, str):
        return None
    applied = _settings_applied(ctx, obj)
    calendar = conditions.calendar(default_calendar().coverage(dt.datetime.now(dt.UTC)), generation=gen)
    try:
        figures = sitedb.read_figures(ctx.warehouse(), names, site_scope(spec.unit, spec.edition), database=database)
    except WarehouseError as exc:
        ctx.drop_warehouse()
        cond = conditions.condition("FiguresAvailable", False, "ClickHouseError", str(exc)[:500], generation=gen)
        return {"conditions": conditions.merge(obj.status.get("conditions", []), [cond, applied, calendar])}
    status: dict[str, Any] = {
        "openIncidents": figures.open_incidents,
        "score766": figures.score766,
        "score766Period": figures.score766_period,
        "score766Coverage": figures.score766_coverage,
    }
    if figures.last_data_at is not None:
        age = (dt.datetime.now(dt.UTC) - figures.last_data_at).total_seconds()
        status["dataFreshness"] = sitedb.format_age(age)
        status["dataFreshnessSeconds"] = int(max(age, 0))
    else:
        status["dataFreshness"] = "no data" if "device_status" not in figures.missing else None
        status["dataFreshnessSeconds"] = None
    if figures.missing:
        message = f"no {', '.join(figures.missing)} copy yet (the warehouse tables do not exist): figures unknown"
        cond = conditions.condition("FiguresAvailable", False, "TablesMissing", message, generation=gen)
    else:
        cond = conditions.condition("FiguresAvailable", True, "Read", "read from ClickHouse", generation=gen)
    status["conditions"] = conditions.merge(obj.status.get("conditions", []), [cond, applied, calendar])
    return status


def _settings_applied(ctx: Context, obj: SiteObject) -> dict[str, Any]:
    """SettingsApplied: how many live stream workers hold the configuration last published (not part of Ready)."""
    offset = obj.status.get("configOffset")
    try:
        reports = cached_reports(ctx.settings.kafka)
    except KafkaException as exc:
        return conditions.condition("SettingsApplied", None, "KafkaError", str(exc)[:500], generation=obj.generation)
    ok, reason, message = settings_applied(reports, offset if isinstance(offset, int) else None, time.time())
    return conditions.condition("SettingsApplied", ok, reason, message, generation=obj.generation)
