"""Passwords the operator issues (ClickHouse site users, MQTT vendor clients), derived rather than stored.

Each password is an HMAC of the operator's secret key and the owning object's uid and purpose, so the
operator never reads a Secret back: it can re-create a deleted credentials Secret with the same password,
and its RBAC role needs no `get` on Secrets anywhere. A new object (new uid) gets a new password, and
rotating the key rotates every credential on the next reconcile.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["derive_password"]


def derive_password(key: bytes, purpose: str, uid: str) -> str:
    """A 32-hex-digit password for `purpose` (e.g. "clickhouse") of the object with this uid."""
    if not key:
        raise ValueError("the operator's secret key is empty")
    return hmac.new(key, f"{purpose}\0{uid}".encode(), hashlib.sha256).hexdigest()[:32]
