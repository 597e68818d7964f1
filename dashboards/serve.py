"""`python -m dashboards.serve run APP ...`: Streamlit's command line, with the first page view's imports done."""

from __future__ import annotations

import importlib
import sys
from typing import Final

# Streamlit runs the app script only when the first browser connects, so the first view would pay for
# importing pandas and pyarrow (every table and chart goes through them), the data layer and the units
# tree. Importing them here, while the server starts, moves that cost to start-up, where a readiness
# probe waits for it instead of a person. Everything else is Streamlit's own `streamlit` command.

__all__ = ["WARM_MODULES", "main", "warm"]

WARM_MODULES: Final = (
    "pandas",
    "pyarrow",
    "streamlit.dataframe_util",
    "dashboards.context",
    "dashboards.shell",
    "dashboards.ui",
    "dashboards.data",
    "dashboards.maps",
)


def warm() -> None:
    """Import what every first page view needs and load the packaged units tree and reference model."""
    for name in WARM_MODULES:
        importlib.import_module(name)
    from dashboards.sites import Site  # noqa: PLC0415 - after the imports above, on purpose
    from ioc.settings import DashboardSettings  # noqa: PLC0415

    Site.from_settings(DashboardSettings())


def main() -> None:
    warm()
    from streamlit.web import cli  # noqa: PLC0415

    sys.argv[0] = "streamlit"
    cli.main()


if __name__ == "__main__":
    main()
