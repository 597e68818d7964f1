"""A site's dashboard pod: sign-in from the referenced OIDC client Secret, or an explicit read-only viewer mode.

Pure builder tests (as tests/operators/test_builders.py): the Deployment's environment for both cases, the
CRD field's refusals, and the SignIn status condition. The pod itself is run in
tests/dashboards/test_pod_settings.py (`ioc dashboard` from the environment alone).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from dashboards import launch
from ioc.settings import DashboardSettings
from operators import conditions, manifests, sites
from operators.models import IOCSiteSpec, ResourceError, parse
from tests.operators.test_builders import SETTINGS, names, spec

SIGN_IN = {"signIn": {"secretRef": {"name": "binh-duong-oidc"}}}


def _dashboard(**fields: Any) -> dict[str, Any]:
    login = manifests.Login("ch", 9000, 8123, "ioc_site_25942", "ioc_site_25942", "pw")
    children = manifests.site_children(
        names(), "uid-1", spec(**fields), config_text="{}", login=login, settings=SETTINGS, modules=["environment"]
    )
    deployment = next(c for c in children if c["kind"] == "Deployment" and c["metadata"]["name"].endswith("dashboard"))
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _settings_from(env: dict[str, Any], secret: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> DashboardSettings:
    """The settings the pod's `ioc dashboard` builds from this environment, its Secrets resolved as kubelet does."""
    clickhouse = {"host": "ch", "port": "9000", "http_port": "8123", "database": "d", "user": "u", "password": "p"}
    for name in [k for k in os.environ if k.startswith("IOC_DASHBOARD_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if isinstance(value, dict):
            ref = value["secretKeyRef"]
            monkeypatch.setenv(name, (secret if ref["name"] == "binh-duong-oidc" else clickhouse)[ref["key"]])
        else:
            monkeypatch.setenv(name, value)
    return DashboardSettings()


def test_without_sign_in_the_pod_serves_read_only_viewers_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    container = _dashboard()
    env = _env(container)
    assert env["IOC_DASHBOARD_ANONYMOUS_VIEWER"] == "true"
    assert env["IOC_DASHBOARD_ADDRESS"] == "0.0.0.0"
    assert not any(name.startswith(("IOC_DASHBOARD_OIDC_", "IOC_DASHBOARD_COOKIE")) for name in env)
    assert "IOC_DASHBOARD_LOCAL_ROLE" not in env  # never an operator; `ioc dashboard` makes them viewers
    # The warehouse comes from the site's Secret, so `ioc dashboard` runs from settings, reading no stack file.
    assert env["IOC_DASHBOARD_CLICKHOUSE__HOST"] == {"secretKeyRef": {"name": "dong-hoa-clickhouse", "key": "host"}}
    assert container["command"] == ["ioc", "dashboard", "--site", "25942"]
    # What the launcher makes of it: allowed on 0.0.0.0, every visitor a viewer.
    settings = launch.effective(_settings_from(env, {}, monkeypatch))
    launch.check_exposure(settings)
    assert settings.local_role == "viewer" and settings.oidc_metadata_url is None


def test_with_sign_in_the_pod_takes_its_oidc_client_from_the_referenced_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container = _dashboard(
        dashboard={
            "signIn": {
                "secretRef": {"name": "binh-duong-oidc"},
                "redirectUri": "https://ioc.binhduong.gov.vn/dong-hoa/oauth2callback",
                "scope": "openid email profile ioc",
            }
        }
    )
    env = _env(container)
    assert "IOC_DASHBOARD_ANONYMOUS_VIEWER" not in env
    for variable, key in (
        ("IOC_DASHBOARD_OIDC_CLIENT_ID", "client_id"),
        ("IOC_DASHBOARD_OIDC_CLIENT_SECRET", "client_secret"),
        ("IOC_DASHBOARD_OIDC_METADATA_URL", "server_metadata_url"),
        ("IOC_DASHBOARD_COOKIE_SECRET", "cookie_secret"),
    ):
        # Required keys: a Secret missing one keeps the pod from starting instead of serving without sign-in.
        assert env[variable] == {"secretKeyRef": {"name": "binh-duong-oidc", "key": key}}, variable
    assert env["IOC_DASHBOARD_OIDC_REDIRECT_URI"] == "https://ioc.binhduong.gov.vn/dong-hoa/oauth2callback"
    assert env["IOC_DASHBOARD_OIDC_SCOPE"] == "openid email profile ioc"
    secret = {
        "client_id": "ioc-dashboard",
        "client_secret": "s3cret",
        "server_metadata_url": "https://sso.binhduong.gov.vn/.well-known/openid-configuration",
        "cookie_secret": "same-on-every-replica",
    }
    settings = launch.effective(_settings_from(env, secret, monkeypatch))
    launch.check_exposure(settings)  # sign-in configured: 0.0.0.0 is allowed
    toml = launch.secrets_toml(settings, "same-on-every-replica")
    assert '[auth.ioc]\nclient_id = "ioc-dashboard"\nclient_secret = "s3cret"' in toml
    assert 'redirect_uri = "https://ioc.binhduong.gov.vn/dong-hoa/oauth2callback"' in toml
    # No redirect URI or scope in the spec: the settings' defaults, no variable.
    plain = _env(_dashboard(dashboard=SIGN_IN))
    assert "IOC_DASHBOARD_OIDC_REDIRECT_URI" not in plain and "IOC_DASHBOARD_OIDC_SCOPE" not in plain


@pytest.mark.parametrize(
    ("sign_in", "where"),
    [
        ({}, "spec.dashboard.signIn.secretRef"),
        ({"secretRef": {"name": "Not_A_Name"}}, "spec.dashboard.signIn.secretRef.name"),
        ({"secretRef": {"name": "oidc"}, "redirectUri": "https://x.vn/callback"}, "spec.dashboard.signIn.redirectUri"),
        ({"secretRef": {"name": "oidc"}, "clientSecret": "inline"}, "spec.dashboard.signIn.clientSecret"),
    ],
)
def test_sign_in_refusals_name_the_field(sign_in: dict[str, Any], where: str) -> None:
    with pytest.raises(ResourceError) as info:
        parse(IOCSiteSpec, {"unit": "25942", "tier": "commune", "dashboard": {"signIn": sign_in}})
    assert str(info.value).startswith(where), info.value


def test_the_status_says_whether_visitors_sign_in_or_only_view() -> None:
    kind, ok, reason, message = sites.sign_in(spec())
    assert (kind, ok, reason) == ("SignIn", False, "ReadOnlyViewer")
    assert message == "no identity provider configured; visitors can only view"
    kind, ok, reason, message = sites.sign_in(spec(dashboard=SIGN_IN))
    assert (kind, ok, reason) == ("SignIn", True, "IdentityProvider") and "binh-duong-oidc" in message
    # A choice, not a failure: a read-only site is still Ready when every part is.
    parts = [conditions.condition(p, True, "Done") for p in sites.PARTS]
    merged = conditions.merge(parts, [conditions.condition(kind, False, "ReadOnlyViewer")])
    assert conditions.ready(merged, sites.PARTS)["status"] == "True"
    assert conditions.phase([*merged, conditions.ready(merged, sites.PARTS)], sites.PARTS) == "Ready"


def test_an_anonymous_viewer_is_never_an_operator() -> None:
    with pytest.raises(ValueError, match="IOC_DASHBOARD_ANONYMOUS_VIEWER serves anonymous visitors as viewers only"):
        DashboardSettings(anonymous_viewer=True, local_role="operator")
    # Without the flag, no sign-in and no loopback stays refused, whatever the role.
    for role in (None, "viewer", "operator"):
        with pytest.raises(launch.LaunchRefused, match="without sign-in"):
            launch.check_exposure(DashboardSettings(address="0.0.0.0", local_role=role))
    launch.check_exposure(DashboardSettings(address="127.0.0.1", local_role="operator"))  # a laptop's operator
