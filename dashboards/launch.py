"""Starting one site's dashboard: the Streamlit command line (via `dashboards.serve`), its environment, secrets."""

from __future__ import annotations

import json
import os
import secrets
import sys
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

__all__ = ["APP", "ENV_PREFIX", "command", "redirect_uri", "secrets_toml", "settings_env"]

APP: Final = Path(__file__).with_name("app.py")
ENV_PREFIX: Final = "IOC_DASHBOARD_"


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


def command(
    settings: DashboardSettings, run_dir: Path, base_env: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run the dashboard for `settings` (files it needs go in `run_dir`)."""
    run_dir.mkdir(parents=True, exist_ok=True)
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
    ]
    secrets_file = run_dir / "secrets.toml"
    if settings.oidc_metadata_url is not None:
        secrets_file.touch(mode=0o600, exist_ok=True)
        os.chmod(secrets_file, 0o600)
        secrets_file.write_text(secrets_toml(settings, cookie_secret), encoding="utf-8")
    else:
        # No [auth] at all: st.user then has no sign-in, and the app serves the local user or the public.
        secrets_file.write_text("# No identity provider configured.\n", encoding="utf-8")
    argv.append(f"--secrets.files={secrets_file}")
    env = {k: v for k, v in base_env.items() if not k.startswith(ENV_PREFIX)}
    env.update(settings_env(settings))
    # In the environment, not on the command line, where any local user could read it with `ps`.
    env["STREAMLIT_SERVER_COOKIE_SECRET"] = cookie_secret
    return argv, env
