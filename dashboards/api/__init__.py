"""The citizen API: Open311 GeoReport v2 field reports and open data (JSON and NGSI-LD) for one IOC site.

It reads through the dashboards' one data layer (`dashboards.data`); here are only its routes, models and state.
"""

from dashboards.api.app import create_app

__all__ = ["create_app"]
