"""The platform's face for people and apps: Streamlit dashboards, the citizen API, and their one data layer.

`dashboards.app` is the Streamlit entry script, `dashboards.api` the citizen API, `dashboards.data` the data layer.
"""

__all__: list[str] = []
