"""Every page under Streamlit's AppTest, with seeded data, for a province, a district and a commune site.

Also: the language switch, the drill-down and breadcrumb, who sees which pages, masking for viewers and
audited reveals for operators, the public page without sign-in, expired sessions, and incident actions
(with an in-memory command sender here; tests/dashboards/test_incident_commands.py uses real Kafka).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from dashboards.data import MemoryCommandSender, command_partition
from dashboards.shell import LANGUAGE_KEY
from ioc.events import IncidentAction
from ioc.settings import ClickHouseEndpoint, DashboardSettings
from tests.dashboards import seed
from tests.dashboards.conftest import OIDC, app, chdb_settings, claims, page_text

TIERS = {
    seed.PROVINCE: ["overview", "environment", "traffic", "incidents", "reports", "services", "quality"],
    seed.DISTRICT: ["overview", "environment", "traffic", "incidents", "reports", "services", "quality"],
    seed.FLOOD_WARD: ["overview", "environment", "incidents", "reports", "services"],
}
TITLES_VI = {
    "overview": "Tổng quan",
    "environment": "Môi trường",
    "traffic": "Giao thông & camera",
    "incidents": "Sự cố",
    "reports": "Phản ánh hiện trường",
    "services": "Dịch vụ công",
    "quality": "Chất lượng dữ liệu",
    "public": "Thông tin công khai",
}


def registered(at: AppTest) -> list[str]:
    """The pages the run put in the navigation (file pages by file name, others by URL path)."""
    names = []
    for info in at._registered_pages.values():
        if info.get("script_path"):
            names.append(Path(str(info["script_path"])).stem)
        else:
            # The default page's URL path is "", but its hash is still that of the path it was given.
            url = str(info.get("url_pathname")) or next(
                n for n in ("signin", "denied") if calc_hash(n) == info["page_script_hash"]
            )
            names.append(url)
    return names


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("site", list(TIERS))
def test_every_page_runs_for_each_tier(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch, site: str
) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, site, local_role="operator", public_enabled=True))
    at.run()
    assert_clean(at)
    assert at.title[0].value == "Tổng quan"
    pages = [*TIERS[site], "public"]
    assert sorted(registered(at)) == sorted(pages)
    for page in pages[1:]:
        at.switch_page(f"screens/{page}.py").run()
        assert_clean(at)
        assert at.title[0].value == TITLES_VI[page], page
        assert at.dataframe or at.metric, f"{page} shows no data"


def test_commune_site_has_no_traffic_or_quality_pages(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.FLOOD_WARD, local_role="viewer"))
    at.run()
    with pytest.raises(ValueError, match="navigation page"):
        at.switch_page("screens/traffic.py")


def test_language_switch_to_english(chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.DISTRICT, local_role="operator"))
    at.run()
    assert at.title[0].value == "Tổng quan"
    assert at.sidebar.button_group(key=LANGUAGE_KEY).options == ["Tiếng Việt", "English"]
    at.sidebar.button_group(key=LANGUAGE_KEY).set_value("en").run()
    assert_clean(at)
    assert at.title[0].value == "Overview"
    assert any(m.label == "Open incidents" for m in at.metric)
    at.switch_page("screens/incidents.py").run()
    assert at.title[0].value == "Incidents"
    assert "Open" in page_text(at)


def test_english_by_default_when_the_site_says_so(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.DISTRICT, local_role="viewer", language="en"))
    at.run()
    assert at.title[0].value == "Overview"


def test_drill_down_and_breadcrumb(chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.PROVINCE, local_role="viewer"))
    at.run()
    assert "Thành phố Dĩ An" in page_text(at)  # Dĩ An is one of the province's districts on the overview
    at.button(key=f"open-{seed.DISTRICT}").click().run()
    assert_clean(at)
    assert [b.label for b in at.button if b.key and b.key.startswith("crumb-")] == [
        "Tỉnh Bình Dương",
        "Thành phố Dĩ An",
    ]
    assert "Phường Đông Hòa" in page_text(at)
    at.selectbox(key=f"drill-{seed.DISTRICT}").set_value(seed.FLOOD_WARD).run()
    crumbs = [b.label for b in at.button if b.key and b.key.startswith("crumb-")]
    assert crumbs == ["Tỉnh Bình Dương", "Thành phố Dĩ An", "Phường Đông Hòa"]
    # The unit chosen on the overview carries over to the other pages.
    at.switch_page("screens/incidents.py").run()
    assert "[25957]" in page_text(at) and "[25951]" not in page_text(at)
    at.button(key=f"crumb-{seed.PROVINCE}").click().run()
    assert [b.label for b in at.button if b.key and b.key.startswith("crumb-")] == ["Tỉnh Bình Dương"]
    assert "[25747]" in page_text(at)


def test_viewer_gets_masked_personal_data_and_no_actions(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, _ = chdb_seeded
    settings = chdb_settings(path, seed.DISTRICT, audit_log=tmp_path / "audit.jsonl", **OIDC)
    at = app(monkeypatch, settings, claims(["viewer@724"], login="viewer"))
    at.run()
    assert_clean(at)
    at.switch_page("screens/traffic.py").run()
    text = page_text(at)
    assert "61A-•••.••" in text and "61A-957.00" not in text
    assert not at.toggle
    at.switch_page("screens/reports.py").run()
    text = page_text(at)
    assert "Nguyễn Văn Dân" not in text and "091225957" not in text and "N. V. D." in text
    at.switch_page("screens/incidents.py").run()
    at.selectbox(key="incident-select").set_value(seed.FLOOD_INCIDENT).run()
    assert_clean(at)
    assert not [b for b in at.button if b.key and b.key.startswith("act-")]
    assert "Bạn chỉ có quyền xem sự cố này." in page_text(at)
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [e["action"] for e in audit] == ["sign-in"] and audit[0]["actor"] == "viewer@binhduong.gov.vn"


def test_operator_reveals_personal_data_and_it_is_audited(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, _ = chdb_seeded
    settings = chdb_settings(path, seed.DISTRICT, audit_log=tmp_path / "audit.jsonl", **OIDC)
    at = app(monkeypatch, settings, claims(["operator@724"], login="op724"))
    at.run()
    at.switch_page("screens/traffic.py").run()
    assert "61A-957.00" not in page_text(at)
    at.toggle(key="traffic-reveal").set_value(True).run()
    assert_clean(at)
    assert "61A-957.00" in page_text(at)
    at.switch_page("screens/reports.py").run()
    at.toggle(key="reports-reveal").set_value(True).run()
    assert "091225957" in page_text(at)
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    reveals = [e for e in audit if e["action"] == "reveal-personal-data"]
    assert {e["detail"]["kind"] for e in reveals} == {"plate", "contact"}
    assert all(e["actor"] == "op724@binhduong.gov.vn" and e["site"] == "724" for e in reveals)
    assert any("cam-vendor/cam-25957#0" in e["targets"] for e in reveals)


def test_public_page_needs_no_sign_in_and_shows_no_personal_data(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.DISTRICT, public_enabled=True, **OIDC))
    at.run()
    assert_clean(at)
    assert registered(at) == ["public"]
    assert at.title[0].value == "Thông tin công khai"
    assert any(b.label == "Đăng nhập" for b in at.sidebar.button)
    text = page_text(at)
    assert "Báo động" in text  # Đông Hòa's gauge above its alert level
    for personal in ("61A-", "0912", "Nguyễn", "@example.vn", "Ghi chú"):
        assert personal not in text


def test_without_public_page_strangers_only_see_sign_in(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.DISTRICT, **OIDC))
    at.run()
    assert registered(at) == ["signin"]
    assert at.title[0].value == "Đăng nhập"
    assert not at.dataframe and not at.metric


def test_no_grant_for_this_site_is_denied(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.DISTRICT, **OIDC), claims(["operator@725"]))
    at.run()
    assert registered(at) == ["denied"]
    assert "chưa được cấp quyền" in page_text(at)
    assert not at.dataframe


def test_ward_grant_on_the_district_site_sees_its_ward_only(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.DISTRICT, **OIDC), claims(["viewer@25957"]))
    at.run()
    assert_clean(at)
    assert [b.label for b in at.button if b.key and b.key.startswith("crumb-")] == ["Phường Đông Hòa"]
    at.switch_page("screens/incidents.py").run()
    text = page_text(at)
    assert "[25957]" in text and "[25951]" not in text and "[25942]" not in text


def test_expired_session_is_signed_out(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, _ = chdb_seeded
    settings = chdb_settings(path, seed.DISTRICT, audit_log=tmp_path / "audit.jsonl", session_max_age_s=600, **OIDC)
    at = app(monkeypatch, settings, claims(["operator@724"], login="late", age_s=601))
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]  # app.py turns a crash into an error
    assert at.user.get("is_logged_in") is False
    assert not at.dataframe and not at.metric
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [e["action"] for e in audit] == ["session-expired"]


def _act(at: AppTest, action: IncidentAction, **inputs: Any) -> None:
    at.switch_page("screens/incidents.py").run()
    at.selectbox(key="incident-select").set_value(seed.FLOOD_INCIDENT).run()
    for key, value in inputs.items():
        widget = at.text_area(key=key) if key == "incident-note" else at.selectbox(key=key)
        widget.set_value(value)
    at.button(key=f"act-{action.value}").click().run()


def test_operator_acknowledges_and_waits_for_the_new_state(
    chdb_seeded: tuple[Path, seed.Seeded],
    monkeypatch: pytest.MonkeyPatch,
    memory_sender: MemoryCommandSender,
    tmp_path: Path,
) -> None:
    path, _ = chdb_seeded
    settings = chdb_settings(path, seed.DISTRICT, audit_log=tmp_path / "audit.jsonl", **OIDC)
    at = app(monkeypatch, settings, claims(["operator@724"], login="op724"))
    at.run()
    _act(at, IncidentAction.ACKNOWLEDGE)
    assert_clean(at)
    [command] = memory_sender.sent
    assert command.action is IncidentAction.ACKNOWLEDGE and command.actor == "op724@binhduong.gov.vn"
    assert command.site_unit == seed.DISTRICT and command.incident_id == seed.FLOOD_INCIDENT
    assert any(f"phân vùng {command_partition(seed.FLOOD_INCIDENT)}" in s.value for s in at.success)
    at.run()
    assert any("Đang chờ xử lý" in i.value for i in at.info)
    assert "Đã gửi lệnh, đang chờ hệ thống xử lý." in page_text(at)
    audit = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    assert "incident-acknowledge" in audit and command.command_id in audit


def test_resolve_needs_a_note_and_dispatch_a_unit(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch, memory_sender: MemoryCommandSender
) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.DISTRICT, **OIDC), claims(["operator@724"]))
    at.run()
    _act(at, IncidentAction.RESOLVE)
    assert any("note" in w.value for w in at.warning)
    assert not memory_sender.sent
    at.text_area(key="incident-note").set_value("Đã bơm thoát nước, đường thông [25957]")
    at.button(key="act-resolve").click().run()
    assert [c.note for c in memory_sender.sent] == ["Đã bơm thoát nước, đường thông [25957]"]


def test_dispatch_sends_the_chosen_unit(
    chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch, memory_sender: MemoryCommandSender
) -> None:
    path, _ = chdb_seeded
    at = app(monkeypatch, chdb_settings(path, seed.DISTRICT, **OIDC), claims(["operator@724"]))
    at.run()
    _act(at, IncidentAction.DISPATCH, **{"incident-target": seed.OTHER_WARD})
    assert_clean(at)
    assert [(c.action, c.target_unit) for c in memory_sender.sent] == [(IncidentAction.DISPATCH, seed.OTHER_WARD)]


def test_a_missing_warehouse_is_a_message_not_a_crash(
    clickhouse: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = ClickHouseEndpoint(
        host=clickhouse["host"],
        port=clickhouse["port"],
        http_port=clickhouse["http_port"],
        user=clickhouse["user"],
        password=SecretStr(clickhouse["password"]),
        database="no_such_database",
    )
    settings = DashboardSettings(
        site_unit=seed.DISTRICT, clickhouse=endpoint, local_role="operator", public_enabled=True
    )
    at = app(monkeypatch, settings)
    at.run()
    for page in [*TIERS[seed.DISTRICT][1:], "public"]:
        at.switch_page(f"screens/{page}.py").run()
        assert not at.exception, (page, [e.message for e in at.exception])
        assert any("Không đọc được kho dữ liệu" in e.value for e in at.error), page
