"""The notifier's effects: e-mail over SMTP, signed webhook calls, retries with backoff, warehouse lookups.

streams/notify.py decides (pure); the agent (streams/agents/notifications.py) calls `Sender.deliver` for each
delivery, in a thread (smtplib and the HTTP client block). A webhook call carries `X-IOC-Signature:
t=<unix>,v1=<hex HMAC-SHA256 of "<t>." + body>` (ioc.signing, the scheme the portal's webhooks use) with the
secret its site names, plus `X-IOC-Delivery` (the delivery id: receivers de-duplicate on it, as the platform
delivers at least once). `Lookups` reads what the stream does not carry: which deliveries the warehouse
already holds as sent, and the e-mail of a citizen whose report is linked to an incident.
"""

from __future__ import annotations

import dataclasses
import email.message
import email.utils
import logging
import smtplib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import httpx

from ioc.clients.clickhouse import Warehouse
from ioc.settings import NotifySettings
from ioc.signing import SIGNATURE_HEADER, sign_webhook
from streams.notify import Delivery

__all__ = ["DELIVERY_HEADER", "Lookups", "Outcome", "Sender", "digest_delivery"]

log = logging.getLogger(__name__)

DELIVERY_HEADER: Final = "X-IOC-Delivery"


class DeliveryError(RuntimeError):
    """One attempt failed; the message says how (shown on the incident's deliveries)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """How a delivery ended: sent or failed, after how many attempts, and what the last one said."""

    sent: bool
    attempts: int
    detail: str


class Sender:
    """Sends deliveries by e-mail or webhook, retrying each `attempts` times with doubling backoff."""

    def __init__(
        self,
        settings: NotifySettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(timeout=settings.timeout_s, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def deliver(self, delivery: Delivery, on_retry: Callable[[int, str], None] | None = None) -> Outcome:
        """Try until sent or out of attempts; `on_retry(attempt, why)` after each failed attempt but the last."""
        delay = self._settings.backoff_s
        why = ""
        for attempt in range(1, self._settings.attempts + 1):
            try:
                detail = self._once(delivery)
            except DeliveryError as exc:
                why = str(exc)[:500]
                log.warning(
                    "delivery %s (%s) attempt %d failed: %s", delivery.delivery_id, delivery.channel, attempt, why
                )
                if attempt == self._settings.attempts:
                    break
                if on_retry is not None:
                    on_retry(attempt, why)
                self._sleep(delay)
                delay *= 2
            else:
                return Outcome(True, attempt, detail)
        return Outcome(False, self._settings.attempts, why)

    def _once(self, delivery: Delivery) -> str:
        if delivery.webhook is None:
            return self._mail(delivery)
        return self._post(delivery)

    def _mail(self, delivery: Delivery) -> str:
        s = self._settings
        if s.smtp_host is None:
            raise DeliveryError("no SMTP relay configured (IOC_STREAMS_NOTIFY__SMTP_HOST)")
        message = email.message.EmailMessage()
        message["From"] = s.mail_from
        message["To"] = delivery.address
        message["Subject"] = delivery.subject
        message["Date"] = email.utils.formatdate(self._clock(), usegmt=True)
        message["Message-ID"] = f"<{delivery.delivery_id}@ioc.notify>"
        message[DELIVERY_HEADER] = delivery.delivery_id
        message.set_content(delivery.text)
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout_s) as smtp:
                if s.smtp_starttls:
                    smtp.starttls()
                if s.smtp_username and s.smtp_password is not None:
                    smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
                refused = smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {s.smtp_host}:{s.smtp_port}: {type(exc).__name__}: {exc}") from None
        if refused:
            raise DeliveryError(f"SMTP refused {', '.join(refused)}")
        return f"accepted by {s.smtp_host}:{s.smtp_port}"

    def _post(self, delivery: Delivery) -> str:
        hook = delivery.webhook
        assert hook is not None
        secret = self._settings.webhook_secrets.get(hook.secret_name)
        if secret is None:
            raise DeliveryError(f"no webhook secret named {hook.secret_name!r} in the notifier's settings")
        body = delivery.body()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign_webhook(secret.get_secret_value(), body, int(self._clock())),
            DELIVERY_HEADER: delivery.delivery_id,
        }
        try:
            response = self._http.post(delivery.address, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{hook.name}: {type(exc).__name__}: {exc}") from None
        if not response.is_success:
            raise DeliveryError(f"{hook.name}: HTTP {response.status_code} {response.text[:200]}")
        return f"{hook.name}: HTTP {response.status_code}"


def digest_delivery(items: Sequence[Delivery]) -> Delivery:
    """One e-mail carrying several held deliveries to the same address (their ids are recorded one by one)."""
    first = items[0]
    subject = f"[IOC] Tổng hợp {len(items)} thông báo / Digest of {len(items)} notifications"
    text = "\n\n".join(f"— {d.subject}\n{d.text}" for d in items)
    return dataclasses.replace(first, subject=subject, text=text, held=False)


class Lookups:
    """What the notifier reads from the warehouse (its own connection; called from a thread)."""

    def __init__(self, warehouse: Warehouse, database: str) -> None:
        if not database.isidentifier():
            raise ValueError(f"database name {database!r} is not a plain identifier")
        self._warehouse = warehouse
        self._database = database

    def already_sent(self, ids: Iterable[str]) -> set[str]:
        """The deliveries among `ids` the warehouse holds as sent (a worker that crashed after sending them)."""
        wanted = tuple(ids)
        if not wanted:
            return set()
        rows = self._warehouse.query(
            f"SELECT delivery_id FROM {self._database}.notification_deliveries "  # noqa: S608 - checked identifier
            "WHERE delivery_id IN %(ids)s AND status = 'sent'",
            {"ids": wanted},
        )
        return {str(r["delivery_id"]) for r in rows}

    def reporter_emails(self, report_ids: Iterable[str]) -> dict[str, str]:
        """Report id → the e-mail its citizen left, for the reports that left one."""
        wanted = tuple(report_ids)
        if not wanted:
            return {}
        rows = self._warehouse.query(
            f"SELECT report_id, any(contact_email) AS email FROM {self._database}.citizen_reports "  # noqa: S608
            "WHERE report_id IN %(ids)s AND contact_email != '' GROUP BY report_id",
            {"ids": wanted},
        )
        return {str(r["report_id"]): str(r["email"]) for r in rows}
