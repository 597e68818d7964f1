"""`python -m dashboards.api`: serve one site's citizen API, configured from IOC_API_* variables, until SIGTERM."""

from __future__ import annotations

import gc
import logging
import sys

import uvicorn

from dashboards.api.app import create_app
from ioc.settings import CitizenApiSettings


def main() -> int:
    settings = CitizenApiSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    # Everything loaded so far (units tree, reference model, routes, schemas) lives as long as the process:
    # out of the collector's sight, full collections stop walking it, which trims the tail of latency.
    gc.freeze()
    # One process per pod: uvicorn's own workers would each hold a Kafka producer and a cache; scale with
    # replicas instead. The access log is off: at hundreds of requests a second it costs more than it tells.
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level=settings.log_level.lower())
    return 0


if __name__ == "__main__":
    sys.exit(main())
