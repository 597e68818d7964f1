"""Nothing shows data outside the site's subtree: a ward's site never sees its sibling ward's rows.

Every data-layer read of Đông Hòa's site (25957) is scanned for Bình An (25951, its sibling in Dĩ An)
and for anything else outside Đông Hòa; every page of that site is rendered and scanned the same way;
asking the data layer for another unit is refused before any SQL runs.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import pytest

from dashboards import auth
from dashboards.data import SiteData, warehouse_for
from dashboards.data.site import NotAllowed
from dashboards.sites import Site, UnitOutsideSite
from tests.dashboards import seed
from tests.dashboards.conftest import app, chdb_settings, page_text
from tests.dashboards.test_queries import every_read

SIBLING_MARKERS = ("[25951]", "25951", "74/724/25951", "Bình An", "cam-25951", "wl-25951")


def _strings(value: Any) -> list[str]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _strings(dataclasses.asdict(value))
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple | set):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def _site_data(path: Path, unit: str, **overrides: Any) -> SiteData:
    settings = chdb_settings(path, unit, **overrides)
    return SiteData(warehouse_for(settings), Site.from_settings(settings))


def test_commune_site_reads_nothing_of_its_sibling(chdb_seeded: tuple[Path, seed.Seeded]) -> None:
    path, seeded = chdb_seeded
    data = _site_data(path, seed.FLOOD_WARD)
    reads = every_read(data, seed.FLOOD_WARD, seeded)
    assert reads["incident_queue"] and reads["water_levels"] and reads["reports"]  # it does see its own
    for name, value in reads.items():
        text = _strings(value)
        for marker in SIBLING_MARKERS:
            assert not any(marker in s for s in text), f"{name} shows {marker}"
    for name, value in reads.items():
        rows = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        for row in rows:
            if isinstance(row, dict) and "unit" in row and row["unit"]:
                assert row["unit"] == seed.FLOOD_WARD, f"{name}: {row['unit']}"


def test_district_site_reads_nothing_of_another_district(chdb_seeded: tuple[Path, seed.Seeded]) -> None:
    path, seeded = chdb_seeded
    reads = every_read(_site_data(path, "725"), "725", seeded)
    text = _strings(reads)
    assert any("[25987]" in s for s in text)  # Thuận An's own pollution story
    for other in ("[25957]", "[25951]", "[25747]", "74/724/"):
        assert not any(other in s for s in text), other


def test_refused_before_any_sql_for_units_outside_the_site(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, seeded = chdb_seeded
    data = _site_data(path, seed.FLOOD_WARD)

    def no_sql(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("SQL ran for a unit outside the site")

    monkeypatch.setattr(data.warehouse, "query", no_sql)
    for name, method in inspect.getmembers(data, inspect.ismethod):
        if name.startswith("_") or name in (
            *("run", "forget", "ping", "incident", "incident_history", "command_refusal"),
            *("incident_deliveries", "incident_reports", "incident_snapshot"),  # by incident, like `incident`
            *("now", "recent", "export_file", "record_export"),  # the present; exports are checked below
        ):
            continue
        parameters = inspect.signature(method).parameters
        args: list[Any] = [seed.SIBLING_WARD]
        if "period" in parameters:
            args.append(seeded.period)
        if "kind" in parameters:
            args.append("air")
        with pytest.raises(UnitOutsideSite):
            method(*args)
    with pytest.raises(UnitOutsideSite):
        data.export_file(seed.SIBLING_WARD, [], [], "csv", access=None)
    with pytest.raises(UnitOutsideSite):
        data.record_export(seed.SIBLING_WARD, "x", "csv", access=None, rows=0, revealed=False, window=None)
    with pytest.raises(UnitOutsideSite):
        data.incident(seed.SIBLING_INCIDENT, unit=seed.SIBLING_WARD)
    with pytest.raises(NotAllowed):  # even the site's own operator acts on no unit outside the site
        data.incident_snapshot(
            {"incident_id": seed.SIBLING_INCIDENT, "opened_at": seeded.now},
            unit=seed.SIBLING_WARD,
            reveal_for=auth.local_access(data.site, auth.Role.OPERATOR),
        )
    with pytest.raises(UnitOutsideSite):
        data.run("incident_queue", seed.DISTRICT)


def test_an_incident_of_the_sibling_is_invisible_by_id(chdb_seeded: tuple[Path, seed.Seeded]) -> None:
    path, _ = chdb_seeded
    data = _site_data(path, seed.FLOOD_WARD)
    assert data.incident(seed.FLOOD_INCIDENT) is not None
    assert data.incident(seed.SIBLING_INCIDENT) is None
    assert data.incident_history(seed.SIBLING_INCIDENT) == []


def test_escalated_incident_is_seen_by_the_responsible_district(chdb_seeded: tuple[Path, seed.Seeded]) -> None:
    path, _ = chdb_seeded
    escalated = "flood-rise:25942:20250601T0600"
    assert _site_data(path, seed.DISTRICT).incident(escalated) is not None
    assert _site_data(path, seed.OTHER_WARD).incident(escalated) is not None
    assert _site_data(path, seed.FLOOD_WARD).incident(escalated) is None


def test_unplaced_dead_letters_belong_to_the_root_site_only(chdb_seeded: tuple[Path, seed.Seeded]) -> None:
    path, _ = chdb_seeded
    province = {r["reason"] for r in _site_data(path, seed.PROVINCE).rejections_recent(seed.PROVINCE)}
    assert "not-json" in province
    drilled = {r["reason"] for r in _site_data(path, seed.PROVINCE).rejections_recent(seed.DISTRICT)}
    assert "not-json" not in drilled
    district = {r["reason"] for r in _site_data(path, seed.DISTRICT).rejections_recent(seed.DISTRICT)}
    assert district == {"implausible-value", "schema"}


def test_2025_site_sees_the_communes_it_absorbed(chdb_seeded: tuple[Path, seed.Seeded]) -> None:
    path, seeded = chdb_seeded
    # The 2025 ward Đông Hòa (code 25951 in the new tree) absorbed the old Đông Hòa and Bình An.
    data = _site_data(path, "25951", edition="2025")
    units = {row["unit"] for row in data.incident_queue("25951")}
    assert units == {seed.FLOOD_WARD, seed.SIBLING_WARD}
    assert {r["unit"] for r in data.score_ranking("25951", seeded.period)} == {seed.FLOOD_WARD, seed.SIBLING_WARD}
    hcmc = _site_data(path, "79", edition="2025")
    assert {r["code"] for r in hcmc.children_figures("79") if r["incidents"]} >= {"25951"}


@pytest.mark.parametrize("page", ["overview", "environment", "incidents", "reports", "services"])
def test_commune_pages_show_nothing_of_the_sibling(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.FLOOD_WARD, local_role="operator"))
    at.run()
    if page != "overview":
        at.switch_page(f"screens/{page}.py").run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]  # app.py turns a crash into an error
    text = page_text(at)
    assert "25957" in text or "Đông Hòa" in text
    for marker in SIBLING_MARKERS:
        assert marker not in text, f"{page} shows {marker}"
