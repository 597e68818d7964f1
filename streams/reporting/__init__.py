"""Upward reporting: a site's Decision 766 and incident figures per period, signed and pushed to its parent IOC.

`build` makes an `ioc.upward.UpwardReport` from the warehouse's rows (`source` reads them), `outbox`
seals it with the site's Ed25519 key into `ioc.reports-outbox.v1`, `pusher` delivers the outbox to the
parent with retries and idempotency keys, `service` runs both on a timer (`python -m streams.reporting`),
and `export` writes the same report as CSV, XLSX or JSON (`ioc report export`).
"""

from streams.reporting.build import ReportInputs, build_report
from streams.reporting.export import FORMATS, Format, export, facts
from streams.reporting.outbox import Outbox, OutboxError
from streams.reporting.periods import ReportPeriod, current, parse_period, previous
from streams.reporting.pusher import Pusher, PushStats, classify
from streams.reporting.service import ReportingService, build_for
from streams.reporting.source import read_inputs

__all__ = [
    "FORMATS",
    "Format",
    "Outbox",
    "OutboxError",
    "PushStats",
    "Pusher",
    "ReportInputs",
    "ReportPeriod",
    "ReportingService",
    "build_for",
    "build_report",
    "classify",
    "current",
    "export",
    "facts",
    "parse_period",
    "previous",
    "read_inputs",
]
