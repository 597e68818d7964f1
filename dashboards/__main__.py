"""`python -m dashboards`: run this site's dashboard from IOC_DASHBOARD_* settings (the container's entry point)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dashboards import launch
from dashboards.sites import Site
from ioc.settings import DashboardSettings

__all__: list[str] = []


def main() -> None:
    settings = DashboardSettings()
    Site.from_settings(settings)  # an unknown unit fails here, before Streamlit starts
    run_dir = Path(tempfile.mkdtemp(prefix=f"ioc-dashboard-{settings.site_unit}-"))
    # The entry point hands its own environment (PATH, HOME, ...) to the Streamlit process it becomes.
    try:
        argv, env = launch.command(settings, run_dir, os.environ)
    except launch.LaunchRefused as exc:
        raise SystemExit(f"ioc-dashboard: {exc}") from None
    os.execve(argv[0], argv, env)  # noqa: S606 - becomes Streamlit, so a pod's SIGTERM reaches it


if __name__ == "__main__":
    main()
