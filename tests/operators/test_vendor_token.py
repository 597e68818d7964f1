"""The operator issues each vendor's read token into its Secret, when it holds the token key. Pure."""

from __future__ import annotations

import base64

from ioc import vendortoken
from operators import manifests
from operators.names import vendor_names


def _secret(api_token: str | None) -> dict[str, str]:
    secret = manifests.vendor_secret(
        vendor_names("acme", "ns"), "uid-1", "mqtt.example", 8883, "p", username="vendor.acme", api_token=api_token
    )
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_the_vendor_secret_carries_the_api_token_the_citizen_api_accepts() -> None:
    key = "token-key-" * 4
    data = _secret(vendortoken.issue(key, "acme"))
    assert vendortoken.verify(key, data["api-token"]) == "acme"
    assert "api-token" not in _secret(None)  # no key: no token issued
