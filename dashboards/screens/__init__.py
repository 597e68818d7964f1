"""The dashboard's pages, one Streamlit page script per screen, run through `st.navigation` by dashboards.app.

Each page reads like a description of its screen: widgets from `dashboards.ui`, data from
`dashboards.data.SiteData`; none holds SQL or imports a database driver (tests/dashboards checks it).
The folder is not called `pages/` on purpose: see `dashboards.shell`.
"""
