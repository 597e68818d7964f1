"""The dashboard's pages, one Streamlit page script per screen, run through `st.navigation` by dashboards.app.

Pages hold no SQL and import no database driver (tests/dashboards checks it).
"""

# Each page reads like a description of its screen: widgets from `dashboards.ui`, data from
# `dashboards.data.SiteData`. The folder is not called `pages/` on purpose: see `dashboards.shell`.
