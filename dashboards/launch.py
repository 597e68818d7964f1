"""Starting one site's dashboard: the Streamlit command line (via `dashboards.serve`), its environment, secrets."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from dashboards.shell import PROVIDER
from ioc.settings import DashboardSettings

# `ioc dashboard --site CODE` and `python -m dashboards` (the container's entry point) both come here. The
# Streamlit process rebuilds `DashboardSettings` from the IOC_DASHBOARD_* variables this module writes, so
# the settings the launcher validated are exactly the ones the app runs with. When an identity provider is
# configured, the OIDC client (`[auth.ioc]`) goes into a secrets.toml readable by the owner only, which
# `st.login` reads; the cookie secret is generated per launch unless set (set it for several replicas).
# Each launch writes its secrets into a directory of its own (`instance-<pid>-<random>` under the run
# directory; the pid is the dashboard's, since the launcher becomes Streamlit), so a second dashboard for
# the same site never rewrites a running one's sign-in; directories of processes that are gone are removed.
# Without an identity provider it serves loopback only, unless `anonymous_viewer` declares every visitor a
# read-only viewer (a site's pod without sign-in): never an operator, whatever the address.

__all__ = [
    "APP",
    "ENV_PREFIX",
    "LaunchRefused",
    "check_exposure",
    "command",
    "effective",
    "is_loopback",
    "redirect_uri",
    "secrets_toml",
    "settings_env",
]

APP: Final = Path(__file__).with_name("app.py")
ENV_PREFIX: Final = "IOC_DASHBOARD_"


class LaunchRefused(ValueError):
    """The settings would expose the dashboard unsafely; nothing was started or written."""


def is_loopback(address: str) -> bool:
    """Whether `address` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(settings: DashboardSettings) -> None:
    """Refuse to serve without sign-in anywhere but loopback, unless every visitor is explicitly an anonymous
    viewer (`anonymous_viewer`, never an operator): without an identity provider every visitor is the local user."""
    if settings.oidc_metadata_url is not None or is_loopback(settings.address):
        return
    if settings.anonymous_viewer and settings.local_role != "operator":
        return  # read-only for everyone; the settings refuse anonymous_viewer with local_role operator
    raise LaunchRefused(
        f"refusing to listen on {settings.address} without sign-in: anyone who can reach it would be the local "
        "user. Configure an identity provider (IOC_DASHBOARD_OIDC_METADATA_URL), or serve visitors as read-only "
        "viewers (IOC_DASHBOARD_ANONYMOUS_VIEWER=true), or listen on 127.0.0.1 / "
        f"Từ chối mở trang trên {settings.address} khi chưa cấu hình đăng nhập OIDC."
    )


def effective(settings: DashboardSettings) -> DashboardSettings:
    """The settings the app runs with: without sign-in, an anonymous viewer's local role is viewer."""
    if settings.oidc_metadata_url is None and settings.anonymous_viewer and settings.local_role is None:
        return settings.model_copy(update={"local_role": "viewer"})
    return settings


def redirect_uri(settings: DashboardSettings) -> str:
    """Where the identity provider sends the browser back: Streamlit's /oauth2callback on this port."""
    return settings.oidc_redirect_uri or f"http://localhost:{settings.port}/oauth2callback"


def _reveal(value: Any) -> Any:
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    if isinstance(value, Mapping):
        return {k: _reveal(v) for k, v in value.items()}
    return value


def settings_env(settings: DashboardSettings) -> dict[str, str]:
    """The IOC_DASHBOARD_* variables from which the app process rebuilds exactly these settings."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = _reveal(getattr(settings, name))
        if value is None:
            continue
        if hasattr(value, "model_dump"):
            dumped = {k: _reveal(getattr(value, k)) for k in type(value).model_fields}
            env[f"{ENV_PREFIX}{name.upper()}"] = json.dumps(dumped, default=str)
        elif isinstance(value, tuple | list):
            env[f"{ENV_PREFIX}{name.upper()}"] = json.dumps(list(value))
        elif isinstance(value, bool):
            env[f"{ENV_PREFIX}{name.upper()}"] = "true" if value else "false"
        else:
            env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env


def _toml(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \\uXXXX included).
    return json.dumps(value, ensure_ascii=False)


def secrets_toml(settings: DashboardSettings, cookie_secret: str) -> str:
    """Streamlit's auth secrets for the site's OIDC client (provider `ioc`)."""
    if settings.oidc_metadata_url is None:
        raise ValueError("no identity provider configured (IOC_DASHBOARD_OIDC_METADATA_URL)")
    return "\n".join(
        [
            "# Written by dashboards.launch for one dashboard process; do not edit or commit.",
            "[auth]",
            f"redirect_uri = {_toml(redirect_uri(settings))}",
            f"cookie_secret = {_toml(cookie_secret)}",
            "",
            f"[auth.{PROVIDER}]",
            f"client_id = {_toml(settings.oidc_client_id)}",
            f"client_secret = {_toml(settings.oidc_client_secret.get_secret_value())}",
            f"server_metadata_url = {_toml(settings.oidc_metadata_url)}",
            f"client_kwargs = {{ scope = {_toml(settings.oidc_scope)} }}",
            "",
        ]
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_instances(run_dir: Path) -> None:
    for old in run_dir.glob("instance-*"):
        parts = old.name.split("-")
        if len(parts) >= 3 and parts[1].isdigit() and not _alive(int(parts[1])):
            shutil.rmtree(old, ignore_errors=True)


def _write_secret_file(path: Path, text: str) -> None:
    # Created 0600 from the start (never world-readable for a moment) and never opened if it already exists.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def command(
    settings: DashboardSettings, run_dir: Path, base_env: Mapping[str, str], *, dry_run: bool = False
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run the dashboard for `settings` (its secrets go in a new directory under
    `run_dir`). `dry_run`: build them, write nothing. Raises `LaunchRefused` for an unsafe exposure."""
    check_exposure(settings)
    settings = effective(settings)
    cookie_secret = (
        settings.cookie_secret.get_secret_value() if settings.cookie_secret is not None else secrets.token_urlsafe(32)
    )
    argv = [
        sys.executable,
        "-m",
        "dashboards.serve",  # Streamlit's own command line, with the first view's imports done at start-up
        "run",
        str(APP),
        f"--server.port={settings.port}",
        f"--server.address={settings.address}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=minimal",
        # Tracebacks (with server paths) go to the server's log only; the app shows a friendly message.
        "--client.showErrorDetails=none",
    ]
    instance = run_dir / f"instance-{os.getpid()}-<random>"
    if not dry_run:
        run_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            _remove_stale_instances(run_dir)
        # mkdtemp: a new directory, mode 0700, that no other launch can have chosen.
        instance = Path(tempfile.mkdtemp(prefix=f"instance-{os.getpid()}-", dir=run_dir))
        if settings.oidc_metadata_url is not None:
            _write_secret_file(instance / "secrets.toml", secrets_toml(settings, cookie_secret))
        else:
            # No [auth] at all: st.user then has no sign-in, and the app serves the local user or the public.
            _write_secret_file(instance / "secrets.toml", "# No identity provider configured.\n")
    argv.append(f"--secrets.files={instance / 'secrets.toml'}")
    env = {k: v for k, v in base_env.items() if not k.startswith(ENV_PREFIX)}
    env.update(settings_env(settings))
    # In the environment, not on the command line, where any local user could read it with `ps`.
    env["STREAMLIT_SERVER_COOKIE_SECRET"] = cookie_secret
    return argv, env
