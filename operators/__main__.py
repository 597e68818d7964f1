"""`python -m operators`: run the IOC operator with settings from the environment (IOC_OPERATOR_*)."""

from __future__ import annotations

import logging
import sys

from ioc.settings import OperatorSettings
from operators import runtime

__all__ = ["main"]


def main() -> int:
    settings = OperatorSettings()
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    runtime.run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
