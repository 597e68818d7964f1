"""Attacks on the dashboards: crossing a ward's scope, reading personal data, and the dashboard process itself.

Real services throughout: the local stack's ClickHouse server and Kafka, the app under Streamlit's AppTest
(the real entry script) or as `ioc dashboard` starts it with Debian's Chromium and a real OIDC provider
(tests/dashboards/harness.py), and for commands the real stream worker (tests/streams/worker.py). Each
test asserts the refusal with its reason and that legitimate use kept working in the same run.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from dashboards import actions, auth
from dashboards.audit import AuditLog
from dashboards.data import KafkaCommandSender, close_senders, command_partition, privacy, source
from dashboards.data import site as data_site
from dashboards.sites import Site
from ioc import kafka_access, topics
from ioc.authz import CommandRefusal
from ioc.events import IncidentAction, IncidentCommand
from ioc.settings import ClickHouseEndpoint, DashboardSettings, KafkaEndpoint
from iocctl.localstack import kafka as localstack_kafka
from tests.dashboards import harness, schema, seed
from tests.dashboards.conftest import OIDC, app, claims, clickhouse_admin, page_text
from tests.streams.test_worker import flood_readings
from tests.streams.worker import Worker

pytestmark = [pytest.mark.slow, pytest.mark.clickhouse]

IOC = str(Path(sys.executable).with_name("ioc"))
COMMANDS = topics.INCIDENT_COMMANDS
WARD_OPERATOR = ["operator@" + seed.FLOOD_WARD]
PENDING_KEY = "ioc.pending"  # dashboards/screens/incidents.py: the commands a session waits on


@pytest.fixture(autouse=True)
def _drop_producers() -> Iterator[None]:
    data_site._CACHE.invalidate()  # query results are cached per process: every test reads afresh
    yield
    close_senders()  # the dashboards' producer lives as long as the process; drop it before Kafka stops


@pytest.fixture
def server_seeded(clickhouse: dict[str, Any]) -> Iterator[tuple[ClickHouseEndpoint, seed.Seeded]]:
    """A fresh database on the real ClickHouse server with tests/dashboards' schema and rows."""
    endpoint = ClickHouseEndpoint.from_service(clickhouse, database=f"secd_{uuid.uuid4().hex[:10]}")
    with clickhouse_admin(endpoint) as admin:
        schema.create_schema(admin, endpoint.database)
        seeded = seed.seed(admin, endpoint.database)
    try:
        yield endpoint, seeded
    finally:
        source.close_all()
        with clickhouse_admin(endpoint) as admin:
            schema.drop_database(admin, endpoint.database)


def _kafka(kafka: dict[str, Any]) -> KafkaEndpoint:
    """The district dashboard's endpoint, as `ioc dashboard` gives it: its site's principal and command topic."""
    return localstack_kafka.site_endpoint(kafka, seed.DISTRICT)


def _admin(kafka: dict[str, Any]) -> KafkaEndpoint:
    """The test reads the command topics as the stack's admin (a site's principal may only write its own)."""
    return KafkaEndpoint.from_service(kafka)


def _command_topic(endpoint: KafkaEndpoint) -> str:
    """Where Dĩ An's dashboard sends commands: its own site topic on an authenticated broker, else the shared one."""
    return kafka_access.site_command_topic(seed.DISTRICT).name if endpoint.uses_sasl else COMMANDS.name


def _end_offset(endpoint: KafkaEndpoint, partition: int) -> int:
    consumer = Consumer({**endpoint.client_config(), "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        topic = TopicPartition(_command_topic(endpoint), partition)
        return int(consumer.get_watermark_offsets(topic, timeout=10)[1])
    finally:
        consumer.close()


def _commands_since(endpoint: KafkaEndpoint, partition: int, offset: int, idle_s: float = 3.0) -> list[Any]:
    consumer = Consumer(
        {**endpoint.client_config(), "group.id": f"read-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(_command_topic(endpoint), partition, offset)])
    found: list[Any] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s:
            message = consumer.poll(0.3)
            if message is not None and not message.error():
                found.append(COMMANDS.decode(message.value() or b""))
                last = time.monotonic()
    finally:
        consumer.close()
    return found


def _district(endpoint: ClickHouseEndpoint, kafka: dict[str, Any], tmp_path: Path, **extra: Any) -> DashboardSettings:
    return DashboardSettings(
        site_unit=seed.DISTRICT,
        clickhouse=endpoint,
        kafka=_kafka(kafka),
        audit_log=tmp_path / "audit.jsonl",
        **{**OIDC, **extra},
    )


# --- scope: a ward operator on the district's dashboard ------------------------------------------------------


def test_a_ward_operator_cannot_dispatch_to_a_sibling_ward_from_the_dashboard(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded],
    kafka: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    endpoint, _ = server_seeded
    settings = _district(endpoint, kafka, tmp_path)
    partition = command_partition(seed.FLOOD_INCIDENT)
    start = _end_offset(_admin(kafka), partition)

    # The page offers the ward operator its own ward only.
    at = app(monkeypatch, settings, claims(WARD_OPERATOR, login="op25957"))
    at.run()
    at.switch_page("screens/incidents.py").run()
    at.selectbox(key="incident-select").set_value(seed.FLOOD_INCIDENT).run()
    targets = list(at.selectbox(key="incident-target").options)
    assert len(targets) == 1 and "Đông Hòa" in targets[0], targets

    # Forging the choice (a request the page would not build) is refused before anything is sent.
    site = Site.from_settings(settings)
    ward_operator = auth.access_for(claims(WARD_OPERATOR, login="op25957"), site)
    incident = {
        "incident_id": seed.FLOOD_INCIDENT,
        "unit": seed.FLOOD_WARD,
        "responsible_unit": seed.FLOOD_WARD,
        "state": "open",
        "version": 2,
    }
    sender, audit = KafkaCommandSender(settings.kafka), AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(actions.ActionRefused) as refused:
        actions.send_action(
            sender, audit, ward_operator, incident, IncidentAction.DISPATCH, target_unit=seed.SIBLING_WARD
        )
    assert refused.value.reason is CommandRefusal.TARGET_OUTSIDE_SCOPE
    assert f"dispatch target {seed.SIBLING_WARD} is outside the actor's operator scope" in str(refused.value)

    # The legitimate dispatch in the same run is sent, carrying the actor's grants for the worker to check.
    at.button(key=f"act-{IncidentAction.DISPATCH.value}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [sent] = _commands_since(_admin(kafka), partition, start)
    assert (sent.action, sent.target_unit, sent.grants) == (
        IncidentAction.DISPATCH,
        seed.FLOOD_WARD,
        (f"operator@{seed.FLOOD_WARD}",),
    )


def test_a_token_for_another_site_is_refused(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded],
    kafka: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    endpoint, _ = server_seeded
    settings = _district(endpoint, kafka, tmp_path)
    # Thủ Dầu Một's operator (district 718) signs in on Dĩ An's dashboard: a valid token, the wrong site.
    stranger = claims(["operator@718"], login="op718")
    at = app(monkeypatch, settings, stranger)
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]  # app.py turns a crash into an error
    text = page_text(at)
    assert "Không có quyền truy cập" in text and "Ngập" not in text  # the denied page, no incident in sight
    access = auth.access_for(stranger, Site.from_settings(settings))
    assert not access.allowed
    incident = {"incident_id": seed.FLOOD_INCIDENT, "unit": seed.FLOOD_WARD, "responsible_unit": "", "state": "open"}
    with pytest.raises(actions.ActionRefused) as refused:
        actions.build_command(access, incident, IncidentAction.ACKNOWLEDGE)
    assert refused.value.reason is CommandRefusal.NOT_OPERATOR
    # The district's own operator, in the same run, gets the incidents page.
    own = app(monkeypatch, settings, claims(["operator@724"], login="op724"))
    own.run()
    own.switch_page("screens/incidents.py").run()
    assert not own.exception and "Ngập" in page_text(own)


# --- personal data -------------------------------------------------------------------------------------------


def test_a_viewer_sees_report_text_and_addresses_masked(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded],
    kafka: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    endpoint, _ = server_seeded
    settings = _district(endpoint, kafka, tmp_path)
    raw_text, raw_address = f"Nước ngập tới đầu gối trên đường [{seed.FLOOD_WARD}]", f"Đường số 1 [{seed.FLOOD_WARD}]"
    viewer = app(monkeypatch, settings, claims(["viewer@724"], login="viewer724"))
    viewer.run()
    viewer.switch_page("screens/reports.py").run()
    assert not viewer.exception
    assert not viewer.error, [e.value for e in viewer.error]  # app.py turns a crash into an error
    seen = page_text(viewer)
    assert privacy.mask_text(raw_text) in seen and privacy.mask_address(raw_address) in seen  # masked
    assert raw_text not in seen and raw_address not in seen
    assert not viewer.toggle  # no reveal switch for a viewer
    # An operator of the ward reveals them, and the reveal is audited.
    operator = app(monkeypatch, settings, claims(["operator@724"], login="op724"))
    operator.run()
    operator.switch_page("screens/reports.py").run()
    assert raw_text not in page_text(operator)
    operator.toggle(key="reports-reveal").set_value(True).run()
    assert raw_text in page_text(operator)
    assert "reveal-personal-data" in (tmp_path / "audit.jsonl").read_text(encoding="utf-8")


# --- the dashboard process -------------------------------------------------------------------------------------


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IOC, "dashboard", *args], capture_output=True, text=True, timeout=60, check=False, env=env or dict(os.environ)
    )


def test_without_sign_in_all_addresses_are_refused_and_loopback_visitors_only_view(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded],
    kafka: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    endpoint, _ = server_seeded
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_DASHBOARD_")}
    stack = tmp_path / "stack"
    common = ("--site", seed.DISTRICT, "--chdb", str(tmp_path / "chdb"), "--stack", str(stack))
    for address in ("0.0.0.0", "192.0.2.10", "::"):
        refused = _run_cli(*common, "--address", address, env=env)
        assert refused.returncode != 0
        assert f"refusing to listen on {address} without sign-in" in refused.stderr
        assert "Traceback" not in refused.stderr
        refused = _run_cli(*common, "--address", address, "--role", "operator", env=env)
        assert refused.returncode != 0 and "without sign-in" in refused.stderr
    assert not stack.exists()  # a refused launch writes nothing

    # On loopback it starts, and the local visitor is a viewer.
    dry = _run_cli(*common, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "IOC_DASHBOARD_LOCAL_ROLE=viewer" in dry.stdout and "--server.address=127.0.0.1" in dry.stdout
    settings = DashboardSettings(site_unit=seed.DISTRICT, clickhouse=endpoint, kafka=_kafka(kafka), local_role="viewer")
    partition = command_partition(seed.FLOOD_INCIDENT)
    start = _end_offset(_admin(kafka), partition)
    at = app(monkeypatch, settings)
    at.run()
    at.switch_page("screens/incidents.py").run()
    at.selectbox(key="incident-select").set_value(seed.FLOOD_INCIDENT).run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]  # app.py turns a crash into an error
    assert any("chỉ có quyền xem" in c.value for c in at.caption)  # "you may only view this incident"
    assert not [b for b in at.button if str(b.key).startswith("act-")]  # no action buttons at all
    local = auth.local_access(Site.from_settings(settings), auth.Role.VIEWER)
    with pytest.raises(actions.ActionRefused) as refused_action:
        actions.send_action(
            KafkaCommandSender(settings.kafka),
            AuditLog(None),
            local,
            {"incident_id": seed.FLOOD_INCIDENT, "unit": seed.FLOOD_WARD, "responsible_unit": "", "state": "open"},
            IncidentAction.ACKNOWLEDGE,
        )
    assert refused_action.value.reason is CommandRefusal.NOT_OPERATOR
    assert _commands_since(_admin(kafka), partition, start) == []  # nothing reached the command topic


def _wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 60.0) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=ignored).until(condition, message=what)


def _body(driver: Any) -> str:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return str(driver.find_element(By.TAG_NAME, "body").text)


def _click_text(driver: Any, tag: str, text: str) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    def clicked(d: Any) -> bool:
        target = next((e for e in d.find_elements(By.TAG_NAME, tag) if text in e.text and e.is_displayed()), None)
        if target is None:
            return False
        target.click()
        return True

    _wait(driver, clicked, f"a <{tag}> saying {text!r}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = harness.chrome(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


def _idp(port: int, callbacks: list[str]) -> dict[str, Any]:
    return {
        "port": port,
        "id_token_ttl": 3600,
        "session_ttl": 3600,
        "users": {
            "op724": {
                "password": "mat-khau-724",
                "claims": {
                    "name": "Trần Thị Điều Hành",
                    "email": "op724@binhduong.gov.vn",
                    "email_verified": True,
                    "ioc_grants": ["operator@724"],
                },
            }
        },
        "clients": [
            {
                "client_id": "ioc-dashboard",
                "client_secret": "dashboard-secret",
                "redirect_uris": callbacks,
                "post_logout_redirect_uris": callbacks,
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }
        ],
    }


def test_a_second_dashboard_for_the_same_site_leaves_the_first_ones_sign_in_working(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded], browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    endpoint, _ = server_seeded
    first_port, second_port, idp_port = harness.free_port(), harness.free_port(), harness.free_port()
    callbacks = [f"http://localhost:{p}/oauth2callback" for p in (first_port, second_port)]
    run_dir = tmp_path / "stack" / f"dashboard-{seed.DISTRICT}"  # where `ioc dashboard --stack` puts its files
    with harness.oidc_provider(_idp(idp_port, callbacks), tmp_path / "idp.log") as issuer:
        metadata = f"{issuer}/.well-known/openid-configuration"
        oidc: dict[str, Any] = {
            "clickhouse": endpoint,
            "site_unit": seed.DISTRICT,
            "oidc_metadata_url": metadata,
            "oidc_client_secret": SecretStr("dashboard-secret"),
            "oidc_scope": "openid email profile ioc",
            "audit_log": tmp_path / "audit.jsonl",
        }
        with harness.dashboard(DashboardSettings(port=first_port, **oidc), run_dir):
            [first_secrets] = run_dir.glob("instance-*/secrets.toml")
            before = first_secrets.read_bytes()
            assert oct(first_secrets.stat().st_mode & 0o777) == "0o600"
            # The attack: another `ioc dashboard` for the same site, first as a dry run, then for real.
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("IOC_DASHBOARD_")},
                "IOC_DASHBOARD_OIDC_METADATA_URL": metadata,
                "IOC_DASHBOARD_OIDC_CLIENT_SECRET": "another-secret",
            }
            dry = _run_cli(
                "--site", seed.DISTRICT, "--chdb", str(tmp_path / "chdb"), "--stack", str(tmp_path / "stack"),
                "--port", str(second_port), "--dry-run", env=env,
            )  # fmt: skip
            assert dry.returncode == 0, dry.stderr
            assert "another-secret" not in dry.stdout  # secrets are never printed
            assert list(run_dir.glob("instance-*/secrets.toml")) == [first_secrets]  # the dry run wrote nothing
            with harness.dashboard(DashboardSettings(port=second_port, **oidc), run_dir):
                assert first_secrets.read_bytes() == before
                assert len(list(run_dir.glob("instance-*/secrets.toml"))) == 2  # each its own
                # Sign in on the first dashboard while the second runs.
                browser.get(f"http://localhost:{first_port}/")
                _click_text(browser, "button", "Đăng nhập")
                _wait(browser, lambda d: d.find_elements(By.ID, "login"), "the provider's sign-in form")
                browser.find_element(By.ID, "login").send_keys("op724")
                browser.find_element(By.ID, "password").send_keys("mat-khau-724")
                browser.find_element(By.ID, "submit").click()
                _wait(browser, lambda d: "Trần Thị Điều Hành · Điều hành" in _body(d), "signed in on the first")
                assert "Traceback" not in _body(browser)
            assert first_secrets.read_bytes() == before


def test_an_error_page_shows_no_traceback_or_server_paths(
    clickhouse: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    # A warehouse that cannot be reached (a closed port) makes every data section fail.
    closed = harness.free_port()
    broken = ClickHouseEndpoint(host="127.0.0.1", port=closed, http_port=closed, database="ioc")
    port = harness.free_port()
    settings = DashboardSettings(site_unit=seed.DISTRICT, port=port, clickhouse=broken, local_role="viewer")
    with harness.dashboard(settings, tmp_path / "run") as process:
        browser.get(f"http://localhost:{port}/")
        _wait(browser, lambda d: "Không đọc được kho dữ liệu" in _body(d), "the friendly warehouse error")
        body = _body(browser)
        assert "Mã tham chiếu lỗi" in body  # a reference to quote, instead of the details
        for leak in ("Traceback", 'File "', str(Path(__file__).parents[2]), ".py", str(closed), "Connection refused"):
            assert leak not in body, leak
        assert process.poll() is None  # the server is up and answering
    # The details are in the server's log, with the same reference.
    log = (tmp_path / "run" / "streamlit.log").read_text(encoding="utf-8")
    reference = body.split("Mã tham chiếu lỗi: ", 1)[1].split(" ", 1)[0]
    assert f"warehouse error [{reference}]" in log


# --- commands where they are carried out: the real stream worker ------------------------------------------------


@pytest.fixture
def worker(kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path) -> Iterator[Worker]:
    running = Worker(kafka, clickhouse, tmp_path / "worker")
    running.start()
    try:
        running.wait_live()
        yield running
    finally:
        running.close()


def test_a_forged_sibling_dispatch_is_refused_by_the_worker_and_a_legitimate_one_is_carried_out(
    worker: Worker, kafka: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db = worker.database
    base = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    worker.readings(flood_readings("acme-hydro", f"wl-{uuid.uuid4().hex[:6]}", base))
    worker.tick(base + dt.timedelta(minutes=31))
    [incident] = worker.wait_for(
        f"SELECT * FROM {db}.incidents FINAL WHERE unit = %(u)s AND rule = 'flood-level'",
        lambda rows: len(rows) == 1,
        u=seed.FLOOD_WARD,
    )
    incident_id = incident["incident_id"]
    episode = topics.episode_of(incident_id)
    partition = topics.incident_partition(episode, COMMANDS.partitions, is_episode=True)

    # Legitimate: the ward operator, on the district's dashboard, dispatches the incident within its ward.
    settings = DashboardSettings(
        site_unit=seed.DISTRICT,
        clickhouse=ClickHouseEndpoint.from_service(worker.ch, database=db),
        kafka=_kafka(kafka),
        audit_log=tmp_path / "audit.jsonl",
        query_ttl_s=0.001,
        oidc_metadata_url=OIDC["oidc_metadata_url"],
    )
    at = app(monkeypatch, settings, claims(WARD_OPERATOR, login="op25957"))
    at.run()
    at.switch_page("screens/incidents.py").run()
    at.selectbox(key="incident-select").set_value(incident_id).run()
    at.button(key=f"act-{IncidentAction.DISPATCH.value}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [dispatched] = worker.wait_for(
        f"SELECT * FROM {db}.incidents FINAL WHERE incident_id = %(i)s",
        lambda rows: rows and rows[0]["state"] == "dispatched",
        i=incident_id,
    )
    assert dispatched["responsible_unit"] == seed.FLOOD_WARD

    # Forged straight onto the command topic with the platform's own credentials: the same ward operator's
    # grants sending it to the sibling ward, and a body whose grant (the whole district) is more than its
    # site (the ward) could give.
    def forge(site: str, grants: tuple[str, ...]) -> IncidentCommand:
        command = IncidentCommand(
            command_id=f"forged-{uuid.uuid4().hex[:8]}",
            incident_id=incident_id,
            action=IncidentAction.DISPATCH,
            actor="op25957@binhduong.gov.vn",
            site_unit=site,
            issued_at=dt.datetime.now(dt.UTC),
            target_unit=seed.SIBLING_WARD,
            grants=grants,
        )
        worker.send(COMMANDS, episode, COMMANDS.encode(command), partition)
        return command

    forged = [forge(seed.DISTRICT, (f"operator@{seed.FLOOD_WARD}",)), forge(seed.FLOOD_WARD, ("operator@724",))]
    refusals = worker.wait_for(
        f"SELECT * FROM {db}.command_refusals FINAL WHERE command_id IN %(ids)s ORDER BY command_id",
        lambda rows: len(rows) == 2,
        ids=tuple(c.command_id for c in forged),
    )
    assert {r["reason"] for r in refusals} == {CommandRefusal.TARGET_OUTSIDE_SCOPE.value}
    assert all(f"dispatch target {seed.SIBLING_WARD} is outside" in r["detail"] for r in refusals)
    assert {r["path"] for r in refusals} == {f"74/{seed.DISTRICT}/{seed.FLOOD_WARD}"}
    # Nothing moved: the incident is still the ward's, at the version the legitimate dispatch wrote.
    worker.tick(worker.now)
    [after] = worker.query(f"SELECT * FROM {db}.incidents FINAL WHERE incident_id = %(i)s", i=incident_id)
    assert (after["responsible_unit"], after["version"]) == (seed.FLOOD_WARD, dispatched["version"])
    history = worker.query(
        f"SELECT action, actor FROM {db}.incident_history FINAL WHERE incident_id = %(i)s ORDER BY version",
        i=incident_id,
    )
    assert [h["action"] for h in history] == ["opened", "dispatch"]

    # The dashboard shows the workers' reason, in Vietnamese and English, for a command it is waiting on.
    at.session_state[PENDING_KEY] = {
        incident_id: actions.Pending(
            incident_id=incident_id,
            version=int(after["version"]),
            action=IncidentAction.DISPATCH,
            command_id=forged[0].command_id,
            partition=partition,
            sent_at=forged[0].issued_at,
        )
    }
    at.run()
    shown = [e.value for e in at.error]
    assert any("Hệ thống từ chối lệnh" in m and "Đơn vị nhận nằm ngoài phạm vi" in m for m in shown), shown
    assert any("Dispatch target outside your scope" in m for m in shown), shown


def test_an_unexpected_crash_becomes_a_friendly_error_with_a_reference(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded],
    kafka: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint, _ = server_seeded
    settings = _district(endpoint, kafka, tmp_path)
    secret_path = "/srv/ioc/secrets/site-724/secrets.toml"

    def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(f"cannot open {secret_path}")

    monkeypatch.setattr(data_site.SiteData, "headline", crash)  # a bug in the page's data path
    at = app(monkeypatch, settings, claims(["viewer@724"], login="viewer724"))
    with caplog.at_level("ERROR"):
        at.run()
    assert not at.exception  # nothing reaches Streamlit's own error page
    [shown] = [e.value for e in at.error]
    assert "Trang gặp lỗi ngoài dự kiến" in shown and secret_path not in shown and "Traceback" not in shown
    reference = shown.rsplit("mã ", 1)[1].split(".")[0]
    assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)  # the details: server log only
    # Other pages keep working in the same session.
    at.switch_page("screens/incidents.py").run()
    assert not at.exception and not at.error and "Ngập" in page_text(at)
