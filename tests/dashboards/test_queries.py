"""Every named query runs on both engines (ClickHouse 18.16 server and chDB 26.x) and reads what was seeded.

The same `SiteData` calls run against the local stack's server and against chDB; each engine must give
the same answers, collapse re-delivered rows, and keep to the unit's subtree.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from dashboards import auth
from dashboards.audit import AuditLog
from dashboards.data import CITIZEN_API, QUERIES, NotAllowed, SiteData, warehouse_for
from dashboards.sites import Site
from ioc.settings import ClickHouseEndpoint
from tests.dashboards import schema, seed
from tests.dashboards.conftest import chdb_settings, clickhouse_admin


@pytest.fixture(scope="module")
def server_database(clickhouse: dict[str, Any]) -> Iterator[tuple[ClickHouseEndpoint, seed.Seeded]]:
    database = f"dashq_{uuid.uuid4().hex[:10]}"
    endpoint = ClickHouseEndpoint(
        host=clickhouse["host"],
        port=clickhouse["port"],
        http_port=clickhouse["http_port"],
        user=clickhouse["user"],
        password=SecretStr(clickhouse["password"]),
        database=database,
    )
    with clickhouse_admin(endpoint) as admin:
        schema.create_schema(admin, database)
        seeded = seed.seed(admin, database)
    yield endpoint, seeded
    with clickhouse_admin(endpoint) as admin:
        schema.drop_database(admin, database)


Factory = Callable[[str], SiteData]


@pytest.fixture(params=["chdb", "server"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Factory, seed.Seeded]:
    audit = AuditLog(tmp_path / "audit.jsonl")
    if request.param == "chdb":
        path, seeded = request.getfixturevalue("chdb_seeded")

        def make(unit: str) -> SiteData:
            settings = chdb_settings(path, unit)
            return SiteData(warehouse_for(settings), Site.from_settings(settings), audit=audit)

        return make, seeded
    endpoint, seeded = request.getfixturevalue("server_database")

    def make_server(unit: str) -> SiteData:
        settings = chdb_settings(Path("unused"), unit).model_copy(update={"chdb_path": None, "clickhouse": endpoint})
        return SiteData(warehouse_for(settings), Site.from_settings(settings), audit=audit)

    return make_server, seeded


def every_read(data: SiteData, unit: str, seeded: seed.Seeded, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """One call of every SiteData read for `unit` (what the pages call), except those in `skip`."""
    reads: dict[str, Callable[[], Any]] = {
        "children_figures": lambda: data.children_figures(unit),
        "headline": lambda: data.headline(unit),
        "aqi_stations": lambda: data.aqi_stations(unit),
        "aqi_trend": lambda: data.aqi_trend(unit),
        "pollutant_trend": lambda: data.pollutant_trend(unit),
        "water_levels": lambda: data.water_levels(unit),
        "water_trend": lambda: data.water_trend(unit),
        "cameras": lambda: data.device_locations(unit, "camera"),
        "violations": lambda: data.violations(unit),
        "hotspots": lambda: data.hotspots(unit),
        "camera_events": lambda: data.camera_events(unit),
        "incident_queue": lambda: data.incident_queue(unit),
        "incident": lambda: data.incident(seed.FLOOD_INCIDENT, unit=unit),
        "incident_history": lambda: data.incident_history(seed.FLOOD_INCIDENT, unit=unit),
        "incident_reports": lambda: data.incident_reports(seed.FLOOD_INCIDENT, unit=unit),
        "incident_deliveries": lambda: data.incident_deliveries(seed.FLOOD_INCIDENT, unit=unit),
        "command_refusal": lambda: data.command_refusal("cmd-none"),
        "incident_snapshot": lambda: data.incident_snapshot(
            {"incident_id": seed.FLOOD_INCIDENT, "opened_at": seeded.now},
            unit=unit,
            reveal_for=auth.local_access(data.site, auth.Role.OPERATOR),
        ),
        "reports_by_state": lambda: data.reports_by_state(unit),
        "reports": lambda: data.reports(unit),
        "escalations": lambda: data.escalations(unit),
        "score_periods": lambda: data.score_periods(unit),
        "scorecard": lambda: data.scorecard(unit, seeded.period),
        "score_ranking": lambda: data.score_ranking(unit, seeded.period),
        "lost_dossiers": lambda: data.lost_dossiers(unit, seeded.period),
        "devices_by_vendor": lambda: data.devices_by_vendor(unit),
        "silent_devices": lambda: data.silent_devices(unit),
        "rejections": lambda: data.rejections(unit),
        "rejections_recent": lambda: data.rejections_recent(unit),
    }
    return {name: read() for name, read in reads.items() if name not in skip}


def test_every_named_query_runs_for_every_tier(
    engine: tuple[Factory, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    make, seeded = engine
    ran: set[str] = set()
    for unit in (seed.PROVINCE, seed.DISTRICT, seed.FLOOD_WARD):
        data = make(unit)
        original = data.run

        def tracking(name: str, at: str, /, *, fresh: bool = False, _run: Any = original, **params: Any) -> Any:
            ran.add(name)
            return _run(name, at, fresh=fresh, **params)

        monkeypatch.setattr(data, "run", tracking)
        every_read(data, unit, seeded)
    assert ran | CITIZEN_API == set(QUERIES)  # the API's own are run by tests/api/queries_check.py


def test_answers_match_the_seeded_stories(engine: tuple[Factory, seed.Seeded]) -> None:
    make, seeded = engine
    district = make(seed.DISTRICT)
    headline = district.headline(seed.DISTRICT)
    # Đông Hòa's flood, Bình An's local flooding, Dĩ An ward's escalated rise: three open incidents.
    assert headline.open_incidents == 3 and headline.overdue_incidents == 2
    assert headline.worst_aqi == 120
    gauges = {g["unit"]: g for g in district.water_levels(seed.DISTRICT)}
    assert gauges[seed.FLOOD_WARD]["status"] == "alert" and gauges[seed.FLOOD_WARD]["level"] == pytest.approx(1.8)
    assert gauges[seed.OTHER_WARD]["status"] == "watch" and gauges[seed.SIBLING_WARD]["status"] == "normal"
    figures = {f["code"]: f for f in district.children_figures(seed.DISTRICT)}
    assert figures[seed.FLOOD_WARD]["incidents"] == 1 and figures[seed.FLOOD_WARD]["severity"] == "high"
    province = make(seed.PROVINCE)
    ranking = province.score_ranking(seed.PROVINCE, seeded.period)
    ranked = [r for r in ranking if r["rank"] is not None]
    assert [r["rank"] for r in ranking[: len(ranked)]] == list(range(1, len(ranked) + 1))
    assert ranked[0]["score"] >= ranked[-1]["score"]
    # Districts without a scorecard are listed after the ranked ones, with no score (they used to be left out).
    assert all(r["standing"] == "no_data" and r["score"] is None for r in ranking[len(ranked) :])
    lost = province.lost_dossiers(seed.PROVINCE, seeded.period)
    assert [d["dossier_id"] for d in lost] == [f"hs-{seed.PROVINCE}-late"] and lost[0]["indicators"] == "2.1"


def test_duplicates_collapse(engine: tuple[Factory, seed.Seeded]) -> None:
    make, _ = engine
    ward = make(seed.CAMERA_WARDS[0])
    # Eight detections, one re-delivered and one de-duplicated repeat: eight violations.
    assert sum(r["events"] for r in ward.violations(seed.CAMERA_WARDS[0])) == 8
    assert len(ward.camera_events(seed.CAMERA_WARDS[0])) == 8
    flood = make(seed.FLOOD_WARD).incident(seed.FLOOD_INCIDENT)
    assert flood is not None and flood["version"] == 2 and flood["reports"] == ["rep-25957-1", "rep-25957-2"]


def test_plates_and_contacts_are_masked_unless_an_operator_reveals(
    engine: tuple[Factory, seed.Seeded], tmp_path: Path
) -> None:
    make, _ = engine
    data = make(seed.DISTRICT)
    masked = data.camera_events(seed.FLOOD_WARD)
    assert masked and all("•" in e["plate"] for e in masked)
    contacts = data.reports(seed.FLOOD_WARD)
    assert contacts and all("Nguyễn" not in r["contact_name"] and "@example.vn" in r["contact_email"] for r in contacts)
    viewer = auth.local_access(data.site, auth.Role.VIEWER)
    with pytest.raises(NotAllowed):
        data.camera_events(seed.FLOOD_WARD, reveal_for=viewer)
    operator = auth.local_access(data.site, auth.Role.OPERATOR)
    revealed = data.camera_events(seed.FLOOD_WARD, reveal_for=operator)
    assert any(e["plate"] == "61A-957.00" for e in revealed)
    shown = data.reports(seed.FLOOD_WARD, reveal_for=operator)
    assert any(r["contact_phone"] == "091225957" for r in shown)
    audit = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(audit) == 2 and all('"action": "reveal-personal-data"' in line for line in audit)
    assert "cam-vendor/cam-25957#0" in audit[0] and "rep-25957-1" in audit[1]


def test_reports_carry_their_working_day_deadline(engine: tuple[Factory, seed.Seeded]) -> None:
    make, seeded = engine
    reports = make(seed.PROVINCE).reports(seed.PROVINCE)
    flooding = next(r for r in reports if r["category"] == "flooding")
    # Flooding: 2 working days (reference model), so the deadline is at least two days after submission.
    assert flooding["due_at"] > flooding["submitted_at"] and not flooding["overdue"]
    assert seeded.counts["citizen_reports"] == 4


def test_every_read_works_through_a_sites_views(request: pytest.FixtureRequest) -> None:
    """In production a site reads its own database (operators.sitedb), not the warehouse tables.

    Its tables are copies of its subtree's rows, fed as rows arrive and back-filled when made, with
    personal data masked. `deadletters` has its copy too (placed by path, or by the unit of its source for
    letters stored before migration 0011), without the refused bytes: the quality page shows the district's
    vendors' rejections and none of the letters that name no unit (the province's).
    """
    from ioc.clients import clickhouse as ch  # noqa: PLC0415
    from operators import sitedb  # noqa: PLC0415

    path, seeded = request.getfixturevalue("chdb_seeded")
    endpoint, _ = request.getfixturevalue("server_database")
    site = Site.from_settings(chdb_settings(path, seed.DISTRICT))
    targets = [
        (ch.in_process(str(path)), "ioc", "ioc_site_724"),
        (clickhouse_admin(endpoint), endpoint.database, f"{endpoint.database}_site_724"),
    ]
    for admin, source_db, site_db in targets:
        try:
            sitedb.ensure_tables(admin, site_db, site.scope, source_db=source_db)
            admin.command(f"USE {site_db}")
            data = SiteData(admin, site, live_ttl_s=0, slow_ttl_s=0)
            reads = every_read(data, seed.DISTRICT, seeded)
            assert reads["headline"].open_incidents == 3
            assert {g["unit"] for g in reads["water_levels"]} == {seed.FLOOD_WARD, seed.SIBLING_WARD, seed.OTHER_WARD}
            assert sum(r["events"] for r in reads["violations"]) == 9
            assert len(reads["incident_queue"]) == 3 and reads["lost_dossiers"]
            assert {r["vendor"] for r in reads["rejections"]} == {"air-vendor", "gauge-vendor"}
            assert {r["device"] for r in reads["rejections_recent"]} == {
                f"aq-{seed.FLOOD_WARD}",
                f"wl-{seed.SIBLING_WARD}",
            }
            assert admin.query(f"SELECT DISTINCT payload FROM {site_db}.deadletters") == [{"payload": ""}]
        finally:
            admin.command(f"DROP DATABASE IF EXISTS {site_db}")
            admin.close()
