"""The citizen API: Open311 GeoReport v2 field reports and open data (JSON and NGSI-LD) for one IOC site.

Only its routes, models and state live here; it reads through the one data layer, `dashboards.data`.
"""

from dashboards.api.app import create_app

__all__ = ["create_app"]
