"""The Streamlit entry script: one IOC site's dashboard (`streamlit run dashboards/app.py`, or `ioc dashboard`)."""

from __future__ import annotations

import streamlit as st

from dashboards import context, shell
from dashboards.audit import AuditLog
from ioc.settings import DashboardSettings

# It builds the process's settings from the environment (IOC_DASHBOARD_*), frames the run (language,
# sign-in, sidebar) and hands over to the page the person chose through `st.navigation`.

__all__: list[str] = []

settings = DashboardSettings()
run_context, pages = shell.frame(settings, AuditLog(settings.audit_log))
context.install(run_context)
st.navigation(pages).run()
