"""Upward reporting: a site's Decision 766 and incident figures per period, signed and pushed to its parent IOC.

`build` makes the report, `outbox` seals it, `pusher` delivers it, `service` runs both, `export` writes files.
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
