"""Signatures at the platform's trust boundaries: HMAC-signed webhooks and Ed25519-signed upward reports.

Two schemes, each where it fits:

- **Webhooks** from the provincial one-stop portal (and the responses of a portal we poll) carry
  `X-IOC-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`, the shape Stripe and GitHub
  made familiar, with a shared secret per portal. The timestamp bounds replays to a tolerance window;
  several `v1=` values, and several configured secrets, let a secret be rotated without downtime.
- **Upward reports** (a site's Decision 766 and incident figures for its parent IOC) are signed with the
  sending site's Ed25519 private key and checked with its public key: the parent never holds a secret
  that could forge a child's report, and a stored report stays verifiable later, by anyone up the tree.

Pure: no I/O, no clock (callers pass `now`). `SignatureError.reason` is a short stable code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "SignatureError",
    "generate_signing_key",
    "public_key_of",
    "sign_document",
    "sign_webhook",
    "verify_document",
    "verify_webhook",
]

SIGNATURE_HEADER: Final = "X-IOC-Signature"
"""The HTTP header carrying a webhook signature."""

DEFAULT_TOLERANCE_S: Final = 300
"""How far (seconds) a webhook's timestamp may be from our clock: covers clock skew and the sender's retries."""

_MAX_HEADER: Final = 2048


class SignatureError(ValueError):
    """A signature that is missing, malformed, stale or wrong; `reason` says which, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def _mac(secret: str | bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(_secret_bytes(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_webhook(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The `X-IOC-Signature` value for `body` sent at `timestamp` (Unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_webhook(
    header: str | None,
    body: bytes,
    secrets: Sequence[str | bytes],
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Accept `body` if `header` signs it with one of `secrets` within the tolerance; raise SignatureError."""
    if not header:
        raise SignatureError("missing", f"no {SIGNATURE_HEADER} header: sign the body (t=<unix>,v1=<hmac-sha256>)")
    if len(header) > _MAX_HEADER:
        raise SignatureError("malformed", f"{SIGNATURE_HEADER} is longer than {_MAX_HEADER} characters")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed", f"{SIGNATURE_HEADER} part {part.strip()!r} is not name=value")
        if name == "t":
            if not value.isdigit():
                raise SignatureError("malformed", f"{SIGNATURE_HEADER} timestamp {value!r} is not Unix seconds")
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value.lower())
    if timestamp is None or not candidates:
        raise SignatureError("malformed", f"{SIGNATURE_HEADER} needs both t=<unix seconds> and v1=<hex>")
    age = now - timestamp
    if abs(age) > tolerance_s:
        raise SignatureError(
            "expired", f"signature timestamp is {age:+.0f} s from the receiver's clock; tolerance {tolerance_s:.0f} s"
        )
    if not secrets:
        raise SignatureError("unknown-key", "the receiver has no webhook secret configured")
    for secret in secrets:
        expected = _mac(secret, timestamp, body)
        # compare_digest on every candidate: the time taken must not say how much of a guess was right.
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return
    raise SignatureError("mismatch", "signature does not match the body with any configured secret")


# --- Ed25519 documents -----------------------------------------------------------------------------------


def _decode_key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed", f"{what} is not base64") from None
    if len(raw) != 32:
        raise SignatureError("malformed", f"{what} is {len(raw)} bytes; an Ed25519 key is 32")
    return raw


def _private(private_key_b64: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_decode_key(private_key_b64, "private key"))


def generate_signing_key() -> tuple[str, str]:
    """A new Ed25519 key pair as base64 of the raw 32-byte keys: (private, public)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


def public_key_of(private_key_b64: str) -> str:
    """The base64 public key that checks signatures made with `private_key_b64`."""
    public = _private(private_key_b64).public_key()
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def sign_document(private_key_b64: str, body: bytes) -> bytes:
    """The 64-byte Ed25519 signature of `body`."""
    return _private(private_key_b64).sign(body)


def verify_document(public_key_b64: str, body: bytes, signature: bytes) -> None:
    """Accept `signature` of `body` under the public key, or raise SignatureError("mismatch")."""
    public = Ed25519PublicKey.from_public_bytes(_decode_key(public_key_b64, "public key"))
    try:
        public.verify(signature, body)
    except InvalidSignature:
        raise SignatureError("mismatch", "the report's signature does not match its body and key") from None
