"""A parent IOC taking its children's upward reports: check the seal, keep each report once, relay upward.

A child site (streams.reporting) pushes a `SignedReport` envelope with an Idempotency-Key. The report
is accepted only if its key id is a child we know the public key of, its Ed25519 signature holds, it is
a report of that same unit, and that unit lies under this site. The first copy of an idempotency key is
kept (sensors.gateways.state) and answered 201; every later copy, after a sender restart or a retry
whose answer got lost, is answered 200 `duplicate` and changes nothing: exactly once, in effect. With
`relay_reports`, a new report is also put unchanged on our own outbox, so it travels on up the tree
(commune → province → centre) still verifiable by its origin's key.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Final, Literal

import msgspec

from ioc import codecs, signing, topics, units, upward
from ioc.clients.delivery import EventSink
from sensors.gateways.state import GatewayState, StoredReport

__all__ = ["ReportInbox", "ReportOutcome", "ReportRefused", "decode_report"]

# Not codecs.codec_for: its 256 KiB cap is for events; an envelope's size is bounded by the route's body limit.
_envelopes: Final = msgspec.json.Decoder(upward.SignedReport)


class ReportRefused(ValueError):
    """A report this parent will not take: the HTTP status to answer and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True, slots=True)
class ReportOutcome:
    result: Literal["accepted", "duplicate"]
    report_id: str
    idempotency_key: str


class ReportInbox:
    """Checks, keeps and (optionally) relays the reports of the sites under this one."""

    def __init__(
        self,
        state: GatewayState,
        sink: EventSink,
        *,
        site_unit: str,
        public_keys: Mapping[str, str],
        relay: bool,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._state = state
        self._sink = sink
        self._site = site_unit
        self._keys = dict(public_keys)
        self._relay = relay
        self._clock = clock

    async def receive(self, body: bytes, idempotency_key: str | None) -> ReportOutcome:
        """Take one pushed envelope; raises ReportRefused (4xx) or ioc.clients.delivery.DeliveryError (503)."""
        try:
            envelope = _envelopes.decode(body)
        except msgspec.ValidationError as exc:
            raise ReportRefused(400, f"not a signed report envelope: {exc}") from None
        except msgspec.DecodeError as exc:
            raise ReportRefused(400, f"not JSON: {exc}") from None
        if idempotency_key is not None and idempotency_key != envelope.idempotency_key:
            raise ReportRefused(
                422, f"Idempotency-Key {idempotency_key!r} differs from the envelope's {envelope.idempotency_key!r}"
            )
        try:
            report = upward.open_signed(envelope, self._keys)
        except signing.SignatureError as exc:
            raise ReportRefused(401, f"{exc.reason}: {exc.message}") from None
        except codecs.ContractError as exc:
            raise ReportRefused(422, f"{exc.reason}: {exc.message}") from None
        self._check_unit(report, envelope.key_id)
        if self._state.has_report(envelope.idempotency_key):
            return ReportOutcome("duplicate", report.report_id, envelope.idempotency_key)
        if self._relay:
            await self._sink.send(topics.REPORTS_OUTBOX.name, envelope.report_id, body)
        kept = self._state.store_report(
            StoredReport(
                idempotency_key=envelope.idempotency_key,
                report_id=report.report_id,
                unit=report.unit,
                period_kind=report.period_kind,
                period_label=report.period_label,
                revision=report.revision,
                generated_at=report.generated_at,
                received_at=self._clock(),
                envelope=body,
            )
        )
        return ReportOutcome("accepted" if kept else "duplicate", report.report_id, envelope.idempotency_key)

    def _check_unit(self, report: upward.UpwardReport, key_id: str) -> None:
        tree = units.load_tree(report.edition)
        if report.unit not in tree:
            raise ReportRefused(422, f"unit {report.unit!r} is not a unit of the {report.edition} tree")
        if key_id != report.unit:
            raise ReportRefused(403, f"key {key_id!r} may sign only its own unit's reports, not unit {report.unit}")
        if self._site not in tree or report.unit == self._site or not tree.is_within(report.unit, self._site):
            raise ReportRefused(
                403, f"unit {report.unit} is not under this site ({self._site}): report to its own parent"
            )


def decode_report(stored: StoredReport) -> upward.UpwardReport:
    """The report inside a kept envelope (already checked when it was received)."""
    envelope = _envelopes.decode(stored.envelope)
    return msgspec.json.decode(envelope.body, type=upward.UpwardReport)
