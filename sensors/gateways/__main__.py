"""`python -m sensors.gateways`: serve the one-stop portal connector (settings from IOC_PORTAL_*) until SIGTERM."""

from __future__ import annotations

import logging
import sys

import uvicorn

from ioc.settings import PortalGatewaySettings
from sensors.gateways.app import create_app


def main() -> int:
    settings = PortalGatewaySettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One process per replica: its SQLite state and Kafka producer are its own; scale with replicas.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level=settings.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
