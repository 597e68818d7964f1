"""The platform's face for people and apps: Streamlit dashboards, citizen API, and the data layer.

`dashboards.app` is the Streamlit entry script (one app per IOC site, pages in `dashboards/screens/`);
`dashboards.data` is the only code of that app that touches ClickHouse; `dashboards.launch` starts the app
for a site; `dashboards.api` is the citizen API.
"""

__all__: list[str] = []
