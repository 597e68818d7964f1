"""A camera incident's snapshot on the Incidents page: shown to an operator of its unit (audited), never to others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboards import auth
from dashboards.data import NotAllowed, SiteData, warehouse_for
from dashboards.sites import Site
from ioc.snapshots import DirectoryStore
from tests.dashboards import seed
from tests.dashboards.conftest import app, chdb_settings
from tests.dashboards.test_pages import assert_clean


def images(at: AppTest) -> list[str]:
    """The captions of every image the page shows."""
    return [caption for image in at.image for caption in image.captions]


def open_hotspot(at: AppTest) -> AppTest:
    at.run()
    at.switch_page("screens/incidents.py").run()
    at.selectbox(key="incident-select").set_value(seed.HOTSPOT_INCIDENT).run()
    assert_clean(at)
    return at


def test_an_operator_sees_the_snapshot_and_the_view_is_audited(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, _ = chdb_seeded
    DirectoryStore(tmp_path / "snapshots").put(seed.SNAPSHOT_IMAGE, "png")
    audit = tmp_path / "audit.jsonl"
    settings = chdb_settings(
        path, seed.PROVINCE, local_role="operator", snapshots_dir=tmp_path / "snapshots", audit_log=audit
    )
    at = open_hotspot(app(monkeypatch, settings))
    (caption,) = images(at)
    assert caption.startswith(f"Ảnh chụp từ camera cam-vendor/cam-{seed.CAMERA_WARDS[0]} lúc ")
    entries = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    viewed = [e for e in entries if e["action"] == "view-snapshot"]
    assert viewed and viewed[-1]["targets"] == [f"cam-vendor/cam-{seed.CAMERA_WARDS[0]}#0"]


def test_no_snapshot_for_a_viewer_nor_when_the_store_lacks_it(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, _ = chdb_seeded
    DirectoryStore(tmp_path / "snapshots").put(seed.SNAPSHOT_IMAGE, "png")
    viewer = chdb_settings(path, seed.PROVINCE, local_role="viewer", snapshots_dir=tmp_path / "snapshots")
    assert images(open_hotspot(app(monkeypatch, viewer))) == []
    empty = chdb_settings(path, seed.PROVINCE, local_role="operator", snapshots_dir=tmp_path / "empty")
    assert images(open_hotspot(app(monkeypatch, empty))) == []


def test_the_data_layer_refuses_a_snapshot_to_anyone_but_an_operator_of_the_unit(
    chdb_seeded: tuple[Path, seed.Seeded], tmp_path: Path
) -> None:
    path, seeded = chdb_seeded
    settings = chdb_settings(path, seed.PROVINCE, snapshots_dir=tmp_path)
    data = SiteData(warehouse_for(settings), Site.from_settings(settings), snapshots_dir=tmp_path)
    incident = {"incident_id": seed.HOTSPOT_INCIDENT, "opened_at": seeded.now}
    for access in (None, auth.local_access(data.site, auth.Role.VIEWER)):
        with pytest.raises(NotAllowed, match="only an operator"):
            data.incident_snapshot(incident, unit=seed.PROVINCE, reveal_for=access)
