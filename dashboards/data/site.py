"""A site's data: each named query run for one unit of the site's subtree, scoped, cached and masked.

`SiteData` is what pages and the citizen API call; it refuses a unit outside the site before any SQL runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from dashboards.audit import AuditLog
from dashboards.auth import Access
from dashboards.data import history, privacy, score766
from dashboards.data.cache import TtlCache
from dashboards.data.history import Window
from dashboards.data.queries import QUERIES
from dashboards.data.source import run_scoped, token
from dashboards.sites import Site, display_name
from ioc import hotspots, pakn, reference, topics, units, workdays
from ioc.clients import clickhouse
from ioc.events import ACTIVE_STATES, VIOLATION_TYPES, IncidentState, Module, Severity
from ioc.snapshots import DirectoryStore

__all__ = [
    "AIR_MEASURES",
    "Headline",
    "NotAllowed",
    "Rows",
    "SiteData",
]

Rows = list[dict[str, Any]]

_MODULES: Final = tuple(m.value for m in Module)
_SEVERITIES: Final = tuple(s.value for s in Severity)
AIR_MEASURES: Final = ("pm25", "pm10", "no2", "o3", "co", "so2")
_DONE: Final = frozenset({IncidentState.RESOLVED, IncidentState.CLOSED})
_SEVERITY_RANK: Final = {s.value: i for i, s in enumerate(Severity)}

CURRENT_AQI_HOURS: Final = 3
"""A station's "current" AQI is its latest hourly index within this many hours of the present: the Overview, the
Environment page and the Public page all read it through `current_aqi`, so they show the same value at one moment."""

_CACHE: Final = TtlCache()
"""Shared by every session of the process; keyed by connection, site, query, unit and parameters."""


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """A camera detection's image, with the camera and the time it was taken."""

    image: bytes
    camera: str
    observed_at: dt.datetime
    key: str


class NotAllowed(PermissionError):
    """The person's role does not allow this (revealing personal data needs an operator of the unit)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Headline:
    """The overview's headline figures for one unit."""

    open_incidents: int
    overdue_incidents: int
    urgent_incidents: int
    reports_7d: int
    reports_unresolved: int
    devices: int
    silent_devices: int
    worst_aqi: int | None
    score_766: float | None
    score_period: dt.date | None
    score_766_coverage: float | None = None
    """Points measured behind `score_766` (of 100), re-based on them (docs/decision-766.md)."""


def _freeze(value: Any) -> Hashable:
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return tuple(_freeze(v) for v in items)
    return value  # type: ignore[no-any-return]


class SiteData:
    """The named queries of one site, each for a unit of its subtree."""

    def __init__(
        self,
        warehouse: clickhouse.Warehouse,
        site: Site,
        *,
        live_ttl_s: float = 15.0,
        slow_ttl_s: float = 300.0,
        audit: AuditLog | None = None,
        cache: TtlCache | None = None,
        snapshots_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.warehouse = warehouse
        self.site = site
        self.live_ttl_s = live_ttl_s
        self.slow_ttl_s = slow_ttl_s
        self.audit = audit or AuditLog(None)
        self._cache = _CACHE if cache is None else cache
        self.snapshots = None if snapshots_dir is None else DirectoryStore(snapshots_dir)
        """The snapshot store camera images are read from (ioc.snapshots); None: no images are shown."""
        self._clock = clock
        """The site's "now" (ioc.clock: real time, or a demo's simulated clock): every query's present."""

    # --- running a named query ----------------------------------------------------------------------------

    def run(self, name: str, unit: str, /, *, fresh: bool = False, **params: Any) -> Rows:
        """Rows of query `name` for `unit` (within the site), from the cache unless `fresh`."""
        query = QUERIES[name]
        scope = self.site.scope_of(unit)
        key = (token(self.warehouse), self.site.unit, self.site.edition, name, unit, _freeze(sorted(params.items())))
        ttl = 0.0 if fresh else (self.slow_ttl_s if query.slow else self.live_ttl_s)
        # Queries read "now" as a parameter, never the server's clock: under a demo's simulated clock the data's
        # present is not the wall clock's. It stays out of the key: a cached answer is one TTL old anyway.
        bound = {**params, "now": int(self._clock())}
        rows = self._cache.get_or_load(key, ttl, lambda: run_scoped(self.warehouse, query, scope, bound))
        return [dict(row) for row in rows]

    def now(self) -> dt.datetime:
        """The present the site's data is read against (UTC)."""
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    def recent(self, *, hours: float = 0.0, days: float = 0.0) -> Window:
        """The last hours or days up to the end of the present minute (whole minutes: cached answers are reused)."""
        end = self.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        return Window.last(end, hours=hours, days=days)

    def export_file(
        self,
        unit: str,
        rows: Rows,
        columns: Sequence[tuple[str, str]],
        fmt: history.ExportFormat,
        *,
        access: Access | None,
        revealed: bool = False,
    ) -> bytes:
        """What a page shows of `unit` as a file: personal data masked unless an operator of `unit` revealed it."""
        self.site.scope_of(unit)  # a unit outside the site is refused here too
        shown = rows if revealed and access is not None and access.can_act(unit) else privacy.mask_rows(rows)
        return history.export_bytes(shown, columns, fmt)

    def record_export(
        self,
        unit: str,
        name: str,
        fmt: str,
        *,
        access: Access | None,
        rows: int,
        revealed: bool,
        window: Window | None,
    ) -> None:
        """The audit log's line for one download of a page's rows."""
        self.site.scope_of(unit)
        self.audit.record(
            access.actor if access is not None else "public",
            self.site.unit,
            "export",
            targets=[name],
            unit=unit,
            format=fmt,
            rows=rows,
            personal_data="revealed" if revealed and access is not None and access.can_act(unit) else "masked",
            start=None if window is None else window.start.isoformat(),
            end=None if window is None else window.end.isoformat(),
        )

    def forget(self, table: str | None = None) -> int:
        """Drop cached results (of queries reading `table`, or all): after an action, to see its effect."""
        names = {q.name for q in QUERIES.values() if table is None or q.table == table}
        return self._cache.invalidate(lambda key: isinstance(key, tuple) and len(key) > 3 and key[3] in names)

    def ping(self) -> bool:
        """Whether the warehouse answers."""
        try:
            self.warehouse.query("SELECT 1 AS ok")
        except clickhouse.WarehouseError:
            return False
        return True

    def _reveal(self, reveal_for: Access | None, unit: str, rows: Rows, kind: str, ids: Iterable[str]) -> Rows:
        if reveal_for is None:
            return privacy.mask_rows(rows)
        if not reveal_for.can_act(unit):
            raise NotAllowed(f"{reveal_for.actor} may not reveal personal data for unit {unit}")
        self.audit.record(
            reveal_for.actor, self.site.unit, "reveal-personal-data", targets=list(ids), kind=kind, unit=unit
        )
        return rows

    # --- overview ---------------------------------------------------------------------------------------

    def children_figures(self, unit: str) -> Rows:
        """Per child unit (the unit itself when it has none): active incidents, overdue, worst severity and
        the worst station AQI of the last hours, with the map position."""
        children = self.site.children(unit)
        places = children or [self.site.get(unit)]
        holder = self.site.children_by_row_unit(unit) if children else {}

        def owners(row_unit: str) -> tuple[str, ...]:
            return holder.get(row_unit, ()) if children else (unit,)

        figures: dict[str, dict[str, Any]] = {
            p.code: {
                "code": p.code,
                "name": display_name(p),
                "lat": p.lat,
                "lon": p.lon,
                "incidents": 0,
                "overdue": 0,
                "severity": None,
                "aqi": None,
            }
            for p in places
        }
        for row in self.run("incidents_by_unit", unit, active=ACTIVE_STATES):
            where = row["unit"] if self.site.scope_of(unit).contains(row["unit"]) else row["responsible_unit"]
            for code in owners(where):
                figure = figures[code]
                figure["incidents"] += row["incidents"]
                figure["overdue"] += row["overdue"]
                if figure["severity"] is None or _SEVERITY_RANK[row["severity"]] > _SEVERITY_RANK[figure["severity"]]:
                    figure["severity"] = row["severity"]
        for row in self.current_aqi(unit):
            for code in owners(row["unit"]):
                figure = figures[code]
                figure["aqi"] = max(figure["aqi"] or 0, row["aqi"])
        return list(figures.values())

    def headline(self, unit: str) -> Headline:
        """The figures across the top of the overview."""
        incidents = self.run("incidents_by_unit", unit, active=ACTIVE_STATES)
        reports = self.reports_by_state(unit, window=self.recent(days=7))
        devices = self.devices_by_vendor(unit)
        stations = self.current_aqi(unit)
        periods = self.score_periods(unit)
        score: float | None = None
        coverage: float | None = None
        if periods:
            card = self.scorecard(unit, periods[0])
            if card:
                measured = score766.scorecard_score(card)
                score = None if measured.score is None else round(measured.score, 2)
                coverage = round(measured.coverage, 2)
        return Headline(
            open_incidents=sum(r["incidents"] for r in incidents),
            overdue_incidents=sum(r["overdue"] for r in incidents),
            urgent_incidents=sum(r["incidents"] for r in incidents if r["severity"] in ("high", "critical")),
            reports_7d=sum(r["reports"] for r in reports),
            reports_unresolved=sum(r["reports"] for r in reports if r["state"] not in _DONE),
            devices=sum(r["devices"] for r in devices),
            silent_devices=sum(r["silent"] for r in devices),
            worst_aqi=max((r["aqi"] for r in stations), default=None),
            score_766=score,
            score_period=periods[0] if periods and coverage is not None else None,
            score_766_coverage=coverage,
        )

    # --- environment ------------------------------------------------------------------------------------

    def current_aqi(self, unit: str) -> Rows:
        """Each air station's current AQI: its latest hourly VN_AQI within `CURRENT_AQI_HOURS` of the present."""
        return self.run("aqi_by_station", unit, hours=CURRENT_AQI_HOURS)

    def aqi_stations(self, unit: str) -> Rows:
        """Each air station's current AQI with its place and position, worst first."""
        where = {r["device_key"]: r for r in self.run("device_locations", unit, kind="air")}
        rows = self.current_aqi(unit)
        for row in rows:
            located = where.get(row["device_key"], {})
            fallback = units.load_tree("2024").get(row["unit"]) if row["unit"] in units.load_tree("2024") else None
            row["place"] = self.site.row_unit_name(row["unit"])
            row["lat"] = located.get("lat") or (fallback.lat if fallback else None)
            row["lon"] = located.get("lon") or (fallback.lon if fallback else None)
        return sorted(rows, key=lambda r: -r["aqi"])

    def aqi_trend(self, unit: str, *, window: Window | None = None) -> Rows:
        """Worst AQI per hour for each child unit (or the unit itself): `hour`, `place`, `aqi` (default: 24 h)."""
        rows = self.run("aqi_trend", unit, **(window or self.recent(hours=24)).params)
        return self._rolled_up(unit, rows, "hour", "aqi", max)

    def pollutant_trend(self, unit: str, *, window: Window | None = None) -> Rows:
        """Mean and peak of each air pollutant per 15 minutes for the unit."""
        scope = self.site.scope_of(unit)
        # A 2024 unit has its own rolled-up rows; a 2025 unit is the sum of the 2024 communes it absorbed.
        roots = (unit,) if self.site.edition == "2024" else tuple(sorted(scope.units))
        span = (window or self.recent(hours=24)).params
        return self.run("pollutant_trend", unit, roots=roots, measures=AIR_MEASURES, **span)

    def water_levels(self, unit: str, *, hours: int = 2) -> Rows:
        """Each gauge's latest level against the flood rule's alert and clear levels, highest first."""
        rule = self.site.threshold("flood-level")
        rows = self.run("water_levels", unit, hours=hours)
        for row in rows:
            row["place"] = self.site.row_unit_name(row["unit"])
            row["alert_level"] = rule.above
            row["clear_level"] = rule.clear_below
            row["status"] = (
                "alert" if row["level"] >= rule.above else "watch" if row["level"] >= rule.clear_below else "normal"
            )
        return rows

    def water_trend(self, unit: str, *, window: Window | None = None) -> Rows:
        """Highest water level over time: `at`, `series`, `level`, one series per gauge in a ward and per child
        unit above it (from the 15-minute aggregates, not the raw readings)."""
        span = (window or self.recent(hours=6)).params
        children = self.site.children(unit)
        if not children:
            rows = self.run("water_trend", unit, **span)
            return [{"at": r["at"], "series": r["device_key"], "level": r["level"]} for r in rows]
        holder = self.site.children_by_row_unit(unit)
        # A 2024 child has its own rolled-up rows; a 2025 child is read through the communes it absorbed.
        wanted = [c.code for c in children] if self.site.edition == "2024" else sorted(holder)
        rows = self.run("water_trend_by_unit", unit, units=tuple(wanted), **span)
        rolled = self._rolled_up(unit, rows, "at", "level", max)
        return [{"at": r["at"], "series": r["place"], "level": r["level"]} for r in rolled]

    def device_locations(self, unit: str, kind: str) -> Rows:
        """Devices of `kind` ("air", "water", "noise", "traffic", "camera") with their last position."""
        rows = self.run("device_locations", unit, kind=kind)
        for row in rows:
            row["place"] = self.site.row_unit_name(row["unit"])
        return rows

    # --- traffic and cameras ----------------------------------------------------------------------------

    def _camera_counts(self, unit: str, window: Window | None) -> Rows:
        types = tuple(sorted(t.value for t in VIOLATION_TYPES))
        return self.run("camera_counts", unit, types=types, **(window or self.recent(hours=24)).params)

    def violations(self, unit: str, *, window: Window | None = None) -> Rows:
        """Distinct violations per type and child unit (or the unit itself): `event_type`, `place`, `events`."""
        return self._rolled_up(unit, self._camera_counts(unit, window), "event_type", "events", sum)

    def hotspots(self, unit: str, *, window: Window | None = None, limit: int = 15) -> Rows:
        """Where violations cluster: the cameras within the hotspot rule's radius of each other, grouped
        (`ioc.hotspots`), those holding at least the rule's `min_events` in the period, most violations first."""
        rule = next(r for r in self.site.model.rules if isinstance(r, reference.HotspotRule))
        cameras: dict[str, dict[str, Any]] = {}
        for row in self._camera_counts(unit, window):
            if row["lat"] is None or row["lon"] is None:
                continue
            camera = cameras.setdefault(
                row["device_key"],
                {
                    "unit": row["unit"],
                    "lat": row["lat"],
                    "lon": row["lon"],
                    "events": 0,
                    "types": set(),
                    "last_at": None,
                },
            )
            camera["events"] += row["events"]
            camera["types"].add(row["event_type"])
            camera["last_at"] = max(camera["last_at"] or row["last_at"], row["last_at"])
        points = [hotspots.WeightedPoint(key, c["lat"], c["lon"], float(c["events"])) for key, c in cameras.items()]
        found = hotspots.clusters(points, radius_m=rule.radius_m, min_weight=rule.min_events)[:limit]
        rows: Rows = []
        for cluster in found:
            members = [cameras[key] for key in cluster.members]
            rows.append(
                {
                    "place": ", ".join(sorted({self.site.row_unit_name(c["unit"]) for c in members})),
                    "unit": cameras[cluster.seed]["unit"],
                    "lat": cluster.lat,
                    "lon": cluster.lon,
                    "radius_m": cluster.radius_m,
                    "violations": int(cluster.weight),
                    "cameras": len(cluster.members),
                    "device_key": ", ".join(cluster.members),
                    "types": sorted(set().union(*(c["types"] for c in members))),
                    "last_at": max(c["last_at"] for c in members),
                }
            )
        return rows

    def camera_events(self, unit: str, *, hours: int = 6, limit: int = 100, reveal_for: Access | None = None) -> Rows:
        """The latest detections; plates masked unless an operator of `unit` reveals them (audited)."""
        rows = self.run("camera_events_recent", unit, hours=hours, limit=limit)
        for row in rows:
            row["place"] = self.site.row_unit_name(row["unit"])
        ids = [f"{r['device_key']}#{r['seq']}" for r in rows if r["plate"]]
        return self._reveal(reveal_for, unit, rows, "plate", ids)

    # --- incidents --------------------------------------------------------------------------------------

    def incident_queue(
        self,
        unit: str,
        *,
        states: Sequence[str] = ACTIVE_STATES,
        modules: Sequence[str] = _MODULES,
        severities: Sequence[str] = _SEVERITIES,
        limit: int = 300,
        fresh: bool = False,
    ) -> Rows:
        """Incidents of the unit (where they happened or who must handle them), soonest SLA first."""
        rows = self.run(
            "incident_queue",
            unit,
            fresh=fresh,
            states=tuple(states),
            modules=tuple(modules),
            severities=tuple(severities),
            limit=limit,
        )
        for row in rows:
            row["place"] = self.site.row_unit_name(row["unit"])
            row["responsible"] = self.site.responsible_name(row["responsible_unit"]) if row["responsible_unit"] else ""
        return rows

    def incident(self, incident_id: str, *, unit: str | None = None, fresh: bool = True) -> dict[str, Any] | None:
        """One incident's latest version if the site (or `unit` within it) may see it; fresh by default."""
        rows = self.run("incident", unit or self.site.unit, fresh=fresh, incident_id=incident_id)
        return rows[0] if rows else None

    def incident_history(self, incident_id: str, *, unit: str | None = None) -> Rows:
        return self.run("incident_history", unit or self.site.unit, fresh=True, incident_id=incident_id)

    def incident_deliveries(self, incident_id: str, *, unit: str | None = None, limit: int = 200) -> Rows:
        """The notifications about an incident the site (or `unit` within it) may see: who, how, with what outcome."""
        return self.run("incident_deliveries", unit or self.site.unit, fresh=True, incident_id=incident_id, limit=limit)

    def command_refusal(self, command_id: str) -> dict[str, Any] | None:
        """The workers' refusal of a command sent from this site (reason code and detail), if they refused it."""
        rows = self.run("command_refusal", self.site.unit, fresh=True, command_id=command_id)
        return rows[0] if rows else None

    def incident_snapshot(self, incident: dict[str, Any], *, unit: str, reveal_for: Access | None) -> Snapshot | None:
        """The latest camera snapshot of the incident's detections, for an operator of `unit` only (it shows
        plates and people: each view is audited); None when there is none or the store does not hold it."""
        if reveal_for is None or not reveal_for.can_act(unit):
            raise NotAllowed(f"only an operator of unit {unit} may see camera snapshots")
        # Detections come before their incident opens (the one that opened it, at the latest): an hour's margin.
        since = incident["opened_at"] - dt.timedelta(hours=1)
        rows = self.run("incident_snapshots", unit, incident_id=incident["incident_id"], since=since, limit=5)
        for row in rows:
            image = None if self.snapshots is None else self.snapshots.get(row["snapshot"])
            if image is not None:
                target = f"{row['device_key']}#{row['seq']}"
                self.audit.record(reveal_for.actor, self.site.unit, "view-snapshot", targets=[target], unit=unit)
                return Snapshot(image, row["device_key"], row["observed_at"], row["snapshot"])
        return None

    # --- citizen reports --------------------------------------------------------------------------------

    def reports_by_state(self, unit: str, *, days: int = 30, window: Window | None = None) -> Rows:
        """Reports per category and state submitted in `window` (default: the last `days`)."""
        return self.run("reports_by_state", unit, **(window or self.recent(days=days)).params)

    def reports(
        self,
        unit: str,
        *,
        days: int = 30,
        window: Window | None = None,
        categories: Sequence[str] | None = None,
        limit: int = 200,
        reveal_for: Access | None = None,
        now: dt.datetime | None = None,
    ) -> Rows:
        """The latest reports with their SLA deadline in working days; personal fields masked unless revealed."""
        chosen = tuple(categories) if categories else tuple(sorted(self.site.model.report_categories))
        span = (window or self.recent(days=days)).params
        rows = self.run("reports_recent", unit, categories=chosen, limit=limit, **span)
        ids = tuple(sorted({str(r["incident_id"]) for r in rows if r["incident_id"]}))
        found = self.run("report_incidents", unit, fresh=True, incident_ids=ids) if ids else []
        incidents = {str(i["incident_id"]): i for i in found}
        calendar = _calendar()
        moment = now or self.now()
        for row in rows:
            _with_pakn(row, incidents.get(str(row["incident_id"])))
            sla = self.site.model.report_sla(row["category"])
            row["place"] = self.site.row_unit_name(row["unit"])
            # Reports stored before PAKN deadlines were recorded get theirs computed the same way.
            due = row["answer_by"] or calendar.add_working_days(row["submitted_at"], sla.resolve_working_days)
            row["due_at"] = due
            waiting = row["pakn"] == pakn.PaknState.INFO_REQUESTED  # the clock is stopped
            row["overdue"] = pakn.PaknState(row["pakn"]) not in pakn.FINISHED and not waiting and due < moment
        # Every report has personal data now that its text and address count: the audit names them all.
        return self._reveal(reveal_for, unit, rows, "contact", [r["report_id"] for r in rows])

    def incident_reports(self, incident_id: str, *, unit: str | None = None) -> Rows:
        """The citizen reports linked to an incident (streams.linking), oldest first."""
        rows = self.run("incident_reports", unit or self.site.unit, fresh=True, incident_id=incident_id)
        for row in rows:
            row["place"] = self.site.row_unit_name(row["unit"])
        return rows

    def escalations(self, unit: str, *, limit: int = 100) -> Rows:
        """Incidents escalated upward (citizen-report and environment ones), newest first."""
        modules = (Module.CITIZEN_REPORTS.value, Module.ENVIRONMENT.value, Module.SECURITY.value)
        rows = self.run("escalations", unit, modules=modules, limit=limit)
        for row in rows:
            row["place"] = self.site.row_unit_name(row["unit"])
            row["responsible"] = self.site.responsible_name(row["responsible_unit"]) if row["responsible_unit"] else ""
        return rows

    # --- public services (Decision 766) -------------------------------------------------------------------

    def score_periods(self, unit: str, *, period_kind: str = "month") -> list[dt.date]:
        return [r["period_start"] for r in self.run("score_periods", unit, period_kind=period_kind)]

    def scorecard(self, unit: str, period: dt.date, *, period_kind: str = "month") -> Rows:
        """The unit's indicators for the period (empty when the unit has no score of its own)."""
        return self.run("scorecard", unit, unit=unit, period=period, period_kind=period_kind)

    def score_ranking(self, unit: str, period: dt.date, *, period_kind: str = "month") -> Rows:
        """The child units by Decision 766 score for the period: those measured on the same indicators ranked
        best first, then the others unranked (`dashboards.data.score766.ranking`), with per-group points.

        A 2025 unit with no children ranks the 2024 communes it absorbed; HCMC ranks its new units, each
        scored from the communes it absorbed, their points pooled (766 points are not additive).
        """
        children = self.site.children(unit)
        if self.site.edition == "2024" or not children:
            ranked = (
                [c.code for c in children] if self.site.edition == "2024" else sorted(self.site.scope_of(unit).units)
            )
            if not ranked:
                return []
            rows = self.run("score_ranking", unit, units=tuple(ranked), period=period, period_kind=period_kind)
            # A child without a single row (no scorecard at all) has no data: listed, never ranked. (A 2025 unit's
            # scope also holds codes that never carry rows, its own among them: only those with rows are listed.)
            found = score766.from_ranking_rows(rows)
            empty = score766.UnitScore(0.0, 0.0, frozenset())
            listed = ranked if self.site.edition == "2024" else sorted(found)
            return score766.ranking({code: found.get(code, empty) for code in listed}, self.site.row_unit_name)
        holder = self.site.children_by_row_unit(unit)
        rows = self.run("score_ranking", unit, units=tuple(sorted(holder)), period=period, period_kind=period_kind)
        communes = score766.from_ranking_rows(rows)
        scores: dict[str, score766.UnitScore] = {}
        for child in children:
            absorbed = [communes[c] for c, owners in holder.items() if child.code in owners and c in communes]
            pooled = score766.merged(absorbed)
            scores[child.code] = pooled or score766.UnitScore(0.0, 0.0, frozenset())
        names = {c.code: display_name(c) for c in children}
        return score766.ranking(scores, lambda code: names[code])

    def lost_dossiers(self, unit: str, period: dt.date, *, period_kind: str = "month", limit: int = 500) -> Rows:
        """The dossiers that cost the unit points in the period, with the indicator they cost."""
        lost = self.run("lost_dossier_ids", unit, unit=unit, period=period, period_kind=period_kind, limit=limit)
        if not lost:
            return []
        by_id: dict[str, list[str]] = {}
        for row in lost:
            by_id.setdefault(row["dossier_id"], []).append(row["code"])
        rows = self.run("dossiers", unit, dossier_ids=tuple(sorted(by_id)))
        for row in rows:
            row["indicators"] = ", ".join(sorted(set(by_id.get(row["dossier_id"], []))))
            row["place"] = self.site.row_unit_name(row["unit"])
        return rows

    # --- data quality -----------------------------------------------------------------------------------

    def _silence_params(self) -> dict[str, Any]:
        return {
            "camera_silent_s": int(self.site.silence_minutes(topics.CAMERA_KIND) * 60),
            "device_silent_s": int(self.site.silence_minutes("air") * 60),
        }

    def devices_by_vendor(self, unit: str) -> Rows:
        return self.run("devices_by_vendor", unit, **self._silence_params())

    def silent_devices(self, unit: str, *, limit: int = 200) -> Rows:
        rows = self.run("silent_devices", unit, limit=limit, **self._silence_params())
        for row in rows:
            row["place"] = self.site.row_unit_name(row["unit"])
        return rows

    def _placement(self, unit: str) -> dict[str, Any]:
        # Letters that name no unit belong to the whole tree, so only its root site (at its root) sees them.
        return {"include_unplaced": int(self.site.is_tree_root and unit == self.site.unit)}

    def rejections(self, unit: str, *, window: Window | None = None) -> Rows:
        span = (window or self.recent(hours=24)).params
        return self.run("rejections_by_vendor", unit, **span, **self._placement(unit))

    def rejections_recent(self, unit: str, *, window: Window | None = None, limit: int = 100) -> Rows:
        span = (window or self.recent(hours=24)).params
        return self.run("rejections_recent", unit, limit=limit, **span, **self._placement(unit))

    # --- shaping ----------------------------------------------------------------------------------------

    def _rolled_up(self, unit: str, rows: Rows, by: str, value: str, combine: Callable[[Iterable[Any]], Any]) -> Rows:
        """Rows keyed by (`by`, row unit) combined per (`by`, child of `unit`): `place` names the child."""
        children = self.site.children(unit)
        holder = self.site.children_by_row_unit(unit) if children else {}
        names = {c.code: display_name(c) for c in children} or {unit: display_name(self.site.get(unit))}
        grouped: dict[tuple[Any, str], list[Any]] = {}
        for row in rows:
            for code in holder.get(row["unit"], ()) if children else (unit,):
                grouped.setdefault((row[by], code), []).append(row[value])
        return [
            {by: key, "place": names[code], "unit": code, value: combine(values)}
            for (key, code), values in sorted(grouped.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        ]


def _with_pakn(row: dict[str, Any], incident: dict[str, Any] | None) -> None:
    """A report row with its incident's current state, PAKN state, the citizen's note and the deadlines."""
    detail = pakn.parse_detail(incident["detail"]) if incident else {}
    state = str(incident["state"]) if incident else str(row["state"] or IncidentState.OPEN)
    row["state"] = state
    row["pakn"] = pakn.state_of(detail, state).value
    row["pakn_note"] = detail.get(pakn.DETAIL_NOTE, "")
    row["version"] = int(incident["version"]) if incident else 0
    row["responsible_unit"] = str(incident["responsible_unit"]) if incident else str(row["unit"])
    for key in ("reject_by", "request_info_by", "answer_by"):
        row[key] = pakn.instant(detail, key)


@functools.cache
def _calendar() -> workdays.WorkingCalendar:
    return workdays.default_calendar()
