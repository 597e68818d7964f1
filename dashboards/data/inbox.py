"""The upward reports a parent IOC's children sent, as its portal connector received and kept them.

The connector (sensors/gateways, `POST /reports/v1/upward`) checks each child's signature and keeps the
report in its state file; its read API (`GET /reports/v1/upward` and `/{report_id}`, behind the read token)
is where they are read from, here, for the parent's Public services page. `HttpInbox` is the real reader;
`reports_for` shapes what it returns into rows for one unit of the site, newest period first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any, Final, Protocol

import httpx
import msgspec

from dashboards.data.cache import TtlCache
from ioc import units, upward

__all__ = ["HttpInbox", "Inbox", "InboxError", "ReceivedReport", "inbox_for", "reports_for"]

MAX_REPORTS: Final = 500
"""Most reports read per refresh (a province's 91 communes × a few periods fit well within it)."""


class InboxError(RuntimeError):
    """The connector's read API could not be read; the message says which address and why."""


@dataclasses.dataclass(frozen=True, slots=True)
class ReceivedReport:
    """A child's report as kept by the parent, with when it was received."""

    report: upward.UpwardReport
    received_at: dt.datetime


class Inbox(Protocol):
    def latest(self) -> list[ReceivedReport]:
        """Every child's latest report per period; raises `InboxError`."""
        ...


class HttpInbox:
    """Reads the connector's received reports over its read API (a bearer token), a request per report."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 5.0, client: httpx.Client | None = None) -> None:
        self._url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._client = client or httpx.Client(timeout=timeout_s)

    def latest(self) -> list[ReceivedReport]:
        listed = self._get(self._url)
        if not isinstance(listed, list):
            raise InboxError(f"{self._url} did not answer a list of reports")
        found = []
        for summary in listed[:MAX_REPORTS]:
            body = self._get(f"{self._url}/{summary['report_id']}")
            try:
                report = msgspec.convert(body, upward.UpwardReport, strict=False)
                received = dt.datetime.fromisoformat(str(summary["received_at"]))
            except (msgspec.ValidationError, KeyError, ValueError) as exc:
                raise InboxError(
                    f"report {summary.get('report_id')!r} from {self._url} is not readable: {exc}"
                ) from None
            found.append(ReceivedReport(report, received))
        return found

    def _get(self, url: str) -> Any:
        try:
            answer = self._client.get(url, headers=self._headers)
        except httpx.HTTPError as exc:
            raise InboxError(f"cannot read {url}: {exc}") from None
        if answer.status_code != 200:
            raise InboxError(f"{url} answered {answer.status_code}: {answer.text[:200]}")
        return answer.json()

    def close(self) -> None:
        self._client.close()


_inboxes: dict[tuple[str, str], HttpInbox] = {}
_lock = threading.Lock()
_cache = TtlCache()


def inbox_for(url: str, token: str) -> HttpInbox:
    """The process's reader of one connector, created on first use."""
    with _lock:
        found = _inboxes.get((url, token))
        if found is None:
            found = _inboxes[(url, token)] = HttpInbox(url, token)
        return found


def cached_latest(inbox: Inbox, key: str, ttl_s: float) -> list[ReceivedReport]:
    """`inbox.latest()`, kept `ttl_s` seconds for every session (reports arrive hourly at most)."""
    return _cache.get_or_load(("inbox", key), ttl_s, inbox.latest)


def reports_for(received: list[ReceivedReport], unit: str, edition: units.Edition) -> list[dict[str, Any]]:
    """Rows of the reports sent by units under `unit` (of the site's edition), newest period, then unit, first."""
    tree = units.load_tree(edition)
    rows: list[dict[str, Any]] = []
    for item in received:
        report = item.report
        if report.edition != edition or report.unit not in tree or report.unit == unit:
            continue
        if unit not in tree or not tree.is_within(report.unit, unit):
            continue
        score = report.score
        rows.append(
            {
                "unit": report.unit,
                "place": report.unit_name,
                "period": report.period_label,
                "period_start": report.period_start,
                "points": score.points,
                "coverage": score.coverage,
                "dossiers": score.dossiers,
                "incidents_opened": report.incidents.opened,
                "overdue": report.incidents.overdue,
                "escalated": report.incidents.escalated,
                "citizen_reports": report.citizen_reports.received,
                "generated_at": report.generated_at,
                "received_at": item.received_at,
            }
        )
    rows.sort(key=lambda r: (-int(r["period_start"].toordinal()), str(r["place"]), str(r["unit"])))
    return rows
