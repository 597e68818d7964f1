"""How the dashboard app is built: pages hold no SQL or driver, only its data layer touches ClickHouse.

Also the launcher: `ioc dashboard --dry-run`, the settings round trip through the environment, and the
sign-in secrets file.
"""

from __future__ import annotations

import ast
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from dashboards import launch
from ioc.settings import ClickHouseEndpoint, DashboardSettings

ROOT = Path(__file__).parents[2]
DASHBOARDS = ROOT / "dashboards"
SCREENS = sorted((DASHBOARDS / "screens").glob("*.py"))
DRIVERS = ("clickhouse_driver", "chdb", "confluent_kafka", "ioc.clients.clickhouse", "aiokafka")
SQL = re.compile(r"\b(SELECT|INSERT|FROM\s+\w+|WHERE|GROUP BY)\b")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", SCREENS, ids=lambda p: p.name)
def test_pages_hold_no_sql_and_import_no_driver(path: Path) -> None:
    assert not any(name.startswith(DRIVERS) for name in _imports(path)), path.name
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not SQL.search(node.value), f"{path.name}: {node.value[:60]!r}"


def test_only_the_data_layer_touches_clickhouse_and_kafka() -> None:
    for path in DASHBOARDS.rglob("*.py"):
        # The citizen API (dashboards/api) is a separate service with its own reads.
        if {"data", "api"} & set(path.relative_to(DASHBOARDS).parts):
            continue
        touched = {name for name in _imports(path) if name.startswith(DRIVERS)}
        # ui.py names the warehouse's error type to show it as a message; it runs no query.
        assert touched <= {"ioc.clients.clickhouse", "ioc.clients.clickhouse.WarehouseError"}, f"{path}: {touched}"
        if touched:
            assert path.name == "ui.py"


def test_every_page_of_the_menu_exists() -> None:
    from dashboards.shell import PAGES  # noqa: PLC0415

    assert sorted(f"{name}.py" for name, _ in PAGES) == sorted(p.name for p in SCREENS if p.name != "__init__.py")


def test_settings_survive_the_trip_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = DashboardSettings(
        site_unit="25957",
        clickhouse=ClickHouseEndpoint(port=19000, password=SecretStr("pw"), database="site_25957"),
        modules=("environment",),
        public_enabled=True,
        oidc_metadata_url="http://127.0.0.1:9/.well-known/openid-configuration",
        oidc_client_secret=SecretStr("client-secret"),
        audit_log=tmp_path / "audit.jsonl",
    )
    argv, env = launch.command(settings, tmp_path / "run", {"PATH": "/usr/bin", "IOC_DASHBOARD_SITE_UNIT": "74"})
    assert argv[:5] == [sys.executable, "-m", "dashboards.serve", "run", str(launch.APP)]
    assert "client-secret" not in " ".join(argv) and env["STREAMLIT_SERVER_COOKIE_SECRET"]
    for key, value in env.items():
        if key.startswith("IOC_"):
            monkeypatch.setenv(key, value)
    assert DashboardSettings() == settings
    [secrets] = (tmp_path / "run").glob("instance-*/secrets.toml")
    assert argv[-1] == f"--secrets.files={secrets}"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600 and stat.S_IMODE(secrets.parent.stat().st_mode) == 0o700
    text = secrets.read_text(encoding="utf-8")
    assert "[auth.ioc]" in text and 'client_secret = "client-secret"' in text
    assert 'redirect_uri = "http://localhost:8501/oauth2callback"' in text


def test_ioc_dashboard_dry_run(tmp_path: Path) -> None:
    chdb = tmp_path / "chdb"
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("ioc")),
            "dashboard",
            "--site",
            "724",
            "--chdb",
            str(chdb),
            "--stack",
            str(tmp_path / "stack"),
            "--port",
            "8765",
            "--public",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "-m dashboards.serve run" in done.stdout and "--server.port=8765" in done.stdout
    assert "IOC_DASHBOARD_SITE_UNIT=724" in done.stdout and "IOC_DASHBOARD_LOCAL_ROLE=viewer" in done.stdout
    assert "IOC_DASHBOARD_PUBLIC_ENABLED=true" in done.stdout and "--client.showErrorDetails=none" in done.stdout
    assert not (tmp_path / "stack" / "dashboard-724").exists()  # a dry run writes nothing
    refused = subprocess.run(
        [str(Path(sys.executable).with_name("ioc")), "dashboard", "--site", "99999", "--chdb", str(chdb), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0 and "99999" in refused.stderr
