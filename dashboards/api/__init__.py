"""The citizen API: Open311 GeoReport v2 field reports and open data (JSON and NGSI-LD) for one IOC site.

`create_app(settings)` builds the FastAPI application (dashboards.api.app); `python -m dashboards.api`
or `ioc api` serves it. Its data layer (dashboards.api.data, dashboards.api.queries) is its own, beside
the Streamlit app's, and reads ClickHouse only through `ioc.clients.clickhouse`.
"""

from dashboards.api.app import create_app

__all__ = ["create_app"]
