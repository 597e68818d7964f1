"""The Streamlit entry script: one IOC site's dashboard (`streamlit run dashboards/app.py`, or `ioc dashboard`)."""

from __future__ import annotations

import logging

import streamlit as st

from dashboards import context, shell, ui
from dashboards.audit import AuditLog
from ioc.settings import DashboardSettings

# It builds the process's settings from the environment (IOC_DASHBOARD_*), frames the run (language,
# sign-in, sidebar) and hands over to the page the person chose through `st.navigation`. An unexpected
# error becomes a friendly message with a reference; its traceback goes to the server's log only (and
# `client.showErrorDetails` is `none`, so Streamlit itself never shows one either).

__all__: list[str] = []

log = logging.getLogger("dashboards.app")

try:
    settings = DashboardSettings()
    run_context, pages = shell.frame(settings, AuditLog(settings.audit_log))
    context.install(run_context)
    st.navigation(pages).run()
except Exception:
    ctx = context.installed()
    if ctx is not None:
        ui.unexpected(ctx)
    else:
        reference = ui.error_reference()
        log.exception("dashboard page failed [%s]", reference)
        st.error(
            f"Trang gặp lỗi ngoài dự kiến / Something went wrong on this page. Mã tham chiếu / reference: {reference}",
            icon=":material/error:",
        )
