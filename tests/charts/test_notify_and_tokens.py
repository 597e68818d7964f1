"""The chart configures the notifier's relay and secrets, the citizen page and the vendors' read tokens."""

from __future__ import annotations

from typing import Any

import pytest

from ioc.settings import CitizenApiSettings, NotifySettings
from tests.charts.conftest import CHART, Helm, container, one

pytestmark = pytest.mark.slow


def env(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(obj).get("env", [])}


def test_off_by_default(rendered: list[dict[str, Any]]) -> None:
    streams, api = env(one(rendered, "Deployment", "streams")), env(one(rendered, "Deployment", "api"))
    operator = env(one(rendered, "Deployment", "operator"))
    assert "IOC_STREAMS_NOTIFY__SMTP_HOST" not in streams and "IOC_STREAMS_NOTIFY__WEBHOOK_SECRETS" not in streams
    assert "IOC_API_CITIZEN_PAGE_CLIENT" not in api and "IOC_API_VENDOR_TOKEN_KEY" not in api
    assert "IOC_OPERATOR_VENDOR_TOKEN_KEY" not in operator


def test_the_relay_the_secrets_the_page_and_the_token_key_reach_their_components(helm: Helm) -> None:
    objects = helm.template(
        extra=(
            "--set",
            "streams.notify.smtpHost=smtp.tinh.example,streams.notify.smtpPort=587,streams.notify.smtpStarttls=true,"
            "streams.notify.existingSecret=ioc-notify,api.citizenPageClient=citizen-page,"
            "vendorTokens.existingSecret=ioc-vendor-tokens",
        )
    )
    streams, api = env(one(objects, "Deployment", "streams")), env(one(objects, "Deployment", "api"))
    operator = env(one(objects, "Deployment", "operator"))
    notify = NotifySettings(
        smtp_host=streams["IOC_STREAMS_NOTIFY__SMTP_HOST"]["value"],
        smtp_port=streams["IOC_STREAMS_NOTIFY__SMTP_PORT"]["value"],
        smtp_starttls=streams["IOC_STREAMS_NOTIFY__SMTP_STARTTLS"]["value"],
    )
    assert (notify.smtp_host, notify.smtp_port, notify.smtp_starttls) == ("smtp.tinh.example", 587, True)
    for name, key in (
        ("IOC_STREAMS_NOTIFY__SMTP_PASSWORD", "smtp-password"),
        ("IOC_STREAMS_NOTIFY__WEBHOOK_SECRETS", "webhook-secrets.json"),
    ):
        ref = streams[name]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"], ref["optional"]) == ("ioc-notify", key, True)  # secrets never in values
    page = CitizenApiSettings(
        citizen_page_client=api["IOC_API_CITIZEN_PAGE_CLIENT"]["value"], photo_dir=api["IOC_API_PHOTO_DIR"]["value"]
    )
    assert page.citizen_page_client == "citizen-page" and str(page.photo_dir).startswith("/var/lib/ioc/api")
    for tokens in (api["IOC_API_VENDOR_TOKEN_KEY"], operator["IOC_OPERATOR_VENDOR_TOKEN_KEY"]):
        assert tokens["valueFrom"]["secretKeyRef"] == {"name": "ioc-vendor-tokens", "key": "vendor-token-key"}


def test_a_bad_port_is_refused_by_the_schema(helm: Helm) -> None:
    refused = helm.run("template", "ioc", str(CHART), "--set", "streams.notify.smtpPort=0", check=False)
    assert refused.returncode != 0 and "smtpPort" in refused.stderr
