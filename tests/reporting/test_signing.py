"""Signatures and the upward-report contract: webhooks (HMAC), sealed reports (Ed25519), revisions, tampering."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from ioc import codecs, signing, upward
from tests.reporting.samples import sample_report

SECRET = "s3cret-portal"


def test_a_webhook_signature_round_trips() -> None:
    body = b'{"dossier_id": "HS-1"}'
    header = signing.sign_webhook(SECRET, body, 1_750_000_000)
    signing.verify_webhook(header, body, [SECRET], now=1_750_000_100)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=abc", "malformed"),
        ("t=12x,v1=abc", "malformed"),
        ("t=1750000000", "malformed"),
        ("garbage", "malformed"),
    ],
)
def test_malformed_webhook_signatures_are_refused_with_a_reason(header: str | None, reason: str) -> None:
    with pytest.raises(signing.SignatureError) as caught:
        signing.verify_webhook(header, b"{}", [SECRET], now=1_750_000_000)
    assert caught.value.reason == reason


def test_a_wrong_secret_a_changed_body_and_an_old_timestamp_are_refused() -> None:
    body = b'{"a": 1}'
    header = signing.sign_webhook(SECRET, body, 1_750_000_000)
    with pytest.raises(signing.SignatureError, match="does not match") as wrong:
        signing.verify_webhook(header, body, ["other"], now=1_750_000_000)
    assert wrong.value.reason == "mismatch"
    with pytest.raises(signing.SignatureError) as changed:
        signing.verify_webhook(header, b'{"a": 2}', [SECRET], now=1_750_000_000)
    assert changed.value.reason == "mismatch"
    with pytest.raises(signing.SignatureError, match="tolerance 300 s") as old:
        signing.verify_webhook(header, body, [SECRET], now=1_750_000_000 + 301)
    assert old.value.reason == "expired"


def test_a_rotated_secret_and_several_signatures_are_accepted() -> None:
    body = b"[]"
    old = signing.sign_webhook("old", body, 100)
    new = signing.sign_webhook("new", body, 100)
    both = f"{old},v1={new.split('v1=')[1]}"
    signing.verify_webhook(both, body, ["new"], now=100)
    signing.verify_webhook(old, body, ["new", "old"], now=100)


def test_a_sealed_report_opens_with_its_public_key_and_not_with_another() -> None:
    private, public = signing.generate_signing_key()
    _other_private, other_public = signing.generate_signing_key()
    assert signing.public_key_of(private) == public
    envelope = upward.seal(sample_report(), private, "724")
    report = upward.open_signed(envelope, {"724": public})
    assert report.report_id == "724:month:2025-06"
    assert envelope.idempotency_key == f"724:month:2025-06:{report.revision}"
    with pytest.raises(signing.SignatureError) as wrong_key:
        upward.open_signed(envelope, {"724": other_public})
    assert wrong_key.value.reason == "mismatch"
    with pytest.raises(signing.SignatureError) as unknown:
        upward.open_signed(envelope, {"725": public})
    assert unknown.value.reason == "unknown-key"


def test_a_tampered_body_or_envelope_is_refused() -> None:
    private, public = signing.generate_signing_key()
    envelope = upward.seal(sample_report(), private, "724")
    forged = envelope.body.replace(b'"opened":3', b'"opened":0')
    assert forged != envelope.body
    with pytest.raises(signing.SignatureError):
        upward.open_signed(msgspec.structs.replace(envelope, body=forged), {"724": public})
    with pytest.raises(codecs.ContractError, match="idempotency_key"):
        upward.open_signed(msgspec.structs.replace(envelope, idempotency_key="724:month:2025-06:0"), {"724": public})
    with pytest.raises(codecs.ContractError, match="report_id"):
        upward.open_signed(msgspec.structs.replace(envelope, report_id="724:month:2025-05"), {"724": public})


def test_the_revision_depends_on_the_figures_not_on_when_they_were_built() -> None:
    first = sample_report()
    later = msgspec.structs.replace(first, generated_at=first.generated_at + dt.timedelta(hours=5))
    changed = msgspec.structs.replace(first, incidents=msgspec.structs.replace(first.incidents, opened=4))
    assert upward.revision_of(first) == upward.revision_of(later)
    assert upward.revision_of(first) != upward.revision_of(changed)
    private, _public = signing.generate_signing_key()
    assert upward.seal(first, private, "724").idempotency_key == upward.seal(later, private, "724").idempotency_key


def test_malformed_keys_are_named() -> None:
    with pytest.raises(signing.SignatureError, match="not base64"):
        signing.sign_document("not a key!", b"x")
    with pytest.raises(signing.SignatureError, match="32"):
        signing.verify_document("AAAA", b"x", b"sig")
