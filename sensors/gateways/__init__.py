"""HTTP gateways into the platform: the one-stop public-service portal connector and the children's report inbox.

`create_app(settings)` (sensors.gateways.app) serves the signed dossier webhook and the upward-report
inbox, and runs the poller for portals that cannot push; `python -m sensors.gateways` or `ioc portal`
starts it. Dossier snapshots are judged (sensors.gateways.judge), de-duplicated by dossier and status
version and produced to Kafka (sensors.gateways.intake) with the MQTT bridge's dead-letter discipline.
"""

from sensors.gateways.app import create_app
from sensors.gateways.intake import DossierIntake, ItemResult
from sensors.gateways.judge import Accepted, Rejected, judge
from sensors.gateways.poller import FeedError, Poller
from sensors.gateways.reports import ReportInbox, ReportRefused
from sensors.gateways.state import GatewayState

__all__ = [
    "Accepted",
    "DossierIntake",
    "FeedError",
    "GatewayState",
    "ItemResult",
    "Poller",
    "Rejected",
    "ReportInbox",
    "ReportRefused",
    "create_app",
    "judge",
]
