"""Upward reporting as a process: rebuild the site's reports on a timer, publish changed ones, push the outbox."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from ioc import upward
from ioc.clients import clickhouse
from ioc.decision766 import Scheme, default_scheme
from ioc.scope import Scope, site_scope
from ioc.settings import ReportingSettings
from streams.reporting.build import build_report
from streams.reporting.outbox import Outbox
from streams.reporting.periods import ReportPeriod, current
from streams.reporting.pusher import Pusher
from streams.reporting.source import read_inputs

__all__ = ["ReportingService", "build_for"]

log = logging.getLogger(__name__)


def build_for(
    warehouse: clickhouse.Warehouse,
    database: str,
    scope: Scope,
    period: ReportPeriod,
    *,
    generated_at: dt.datetime,
    scheme: Scheme | None = None,
) -> upward.UpwardReport:
    """The site's report for `period`, from the warehouse as it is now."""
    inputs = read_inputs(warehouse, database, scope, period)
    return build_report(scope, period, inputs, scheme or default_scheme(), generated_at=generated_at)


class ReportingService:
    """One site's publisher and pusher.

    `publish_due(now)` rebuilds the current and previous period of each configured kind and puts a report in the outbox
    only when its figures changed since last published (its revision); a restart may publish an unchanged revision once
    more, which the parent recognises by its idempotency key. `run(stop)` does both: the publisher on its timer in one
    thread, the pusher (streams.reporting.pusher) in another. `python -m streams.reporting` runs it from IOC_REPORTING_*
    settings; `build_for` (also what `ioc report export` calls) reads the warehouse and builds one report.
    """

    def __init__(
        self,
        settings: ReportingSettings,
        *,
        warehouse: clickhouse.Warehouse | None = None,
        outbox: Outbox | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if settings.signing_key is None:
            raise ValueError(
                "publishing needs the site's signing key: set IOC_REPORTING_SIGNING_KEY (ioc report keygen)"
            )
        self.settings = settings
        self.scope = site_scope(settings.site_unit, settings.edition)
        self._warehouse = warehouse
        self._outbox = outbox
        self._clock = clock
        self._published: dict[str, str] = {}
        self.key_id = settings.key_id or settings.site_unit

    @property
    def warehouse(self) -> clickhouse.Warehouse:
        if self._warehouse is None:
            self._warehouse = clickhouse.connect(self.settings.clickhouse)
        return self._warehouse

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = Outbox(self.settings.kafka, client_id=f"ioc-reporting-{self.settings.site_unit}")
        return self._outbox

    def periods(self, now: dt.datetime) -> list[ReportPeriod]:
        """The periods reported at `now`: the previous (still settling) and current of each kind."""
        found = []
        for kind in self.settings.period_kinds:
            this = current(kind, now)
            found += [this.previous(), this]
        return found

    def publish(self, period: ReportPeriod, now: dt.datetime) -> upward.SignedReport | None:
        """Build the period's report and put it in the outbox if its figures changed; the envelope if so."""
        assert self.settings.signing_key is not None
        report = build_for(self.warehouse, self.settings.clickhouse.database, self.scope, period, generated_at=now)
        revision = upward.revision_of(report)
        if self._published.get(report.report_id) == revision:
            return None
        envelope = self.outbox.seal_and_publish(report, self.settings.signing_key.get_secret_value(), self.key_id)
        self._published[report.report_id] = revision
        return envelope

    def publish_due(self, now: dt.datetime | None = None) -> list[upward.SignedReport]:
        """Publish every due period whose figures changed."""
        at = now or dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        published = []
        for period in self.periods(at):
            envelope = self.publish(period, at)
            if envelope is not None:
                published.append(envelope)
        return published

    def run(self, stop: threading.Event) -> None:
        """Publish on the timer and push the outbox until `stop` is set."""
        pusher_thread = None
        if self.settings.parent_url is not None:
            pusher = Pusher(self.settings)
            pusher_thread = threading.Thread(target=pusher.run, args=(stop,), name="reporting-pusher", daemon=True)
            pusher_thread.start()
        else:
            log.warning("no IOC_REPORTING_PARENT_URL: reports wait in the outbox until a pusher with a parent runs")
        while not stop.is_set():
            try:
                for envelope in self.publish_due():
                    log.info("published %s", envelope.idempotency_key)
            except (clickhouse.WarehouseError, RuntimeError) as exc:
                log.warning("building or publishing reports failed (%s); retrying at the next interval", exc)
            stop.wait(self.settings.publish_every_s)
        if pusher_thread is not None:
            pusher_thread.join(timeout=30)
        if self._outbox is not None:
            self._outbox.close()
