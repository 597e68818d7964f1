"""Vendors' read tokens for their own rejections: issued from one secret key, checked without a table. Pure.

A token is `<vendor id>.<hex HMAC-SHA256 of the vendor id under the key>`: the operator writes it into the
vendor's Secret (`api-token`, operators.manifests.vendor_secret) and the citizen API accepts it as a bearer
token for `GET /vendors/v1/rejections.json`, which answers only that vendor's dead letters. Neither side
stores a token; both hold the key (`vendor_token_key` in their settings). Rotating the key replaces every
vendor's token at once (docs/vendors.md).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from ioc.fields import VENDOR_ID

__all__ = ["issue", "verify"]

_CONTEXT: Final = b"ioc-vendor-read-token:v1:"
"""Keeps these MACs apart from anything else the same key might ever sign."""


def _mac(key: str, vendor: str) -> str:
    return hmac.new(key.encode("utf-8"), _CONTEXT + vendor.encode("utf-8"), hashlib.sha256).hexdigest()


def issue(key: str, vendor: str) -> str:
    """The read token of `vendor` under `key`."""
    if not key:
        raise ValueError("the vendor token key is empty: set a long random secret")
    if not VENDOR_ID.match(vendor):
        raise ValueError(f"{vendor!r} is not a vendor id")
    return f"{vendor}.{_mac(key, vendor)}"


def verify(key: str, token: str) -> str | None:
    """The vendor `token` was issued to under `key`, or None (malformed, another key, or forged)."""
    vendor, dot, mac = token.strip().partition(".")
    if not key or not dot or not VENDOR_ID.match(vendor) or len(mac) != 64:
        return None
    return vendor if hmac.compare_digest(mac, _mac(key, vendor)) else None
