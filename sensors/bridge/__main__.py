"""`python -m sensors.bridge`: run one bridge replica configured from IOC_BRIDGE_* variables until SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from ioc.settings import BridgeSettings
from sensors.bridge.service import Bridge


def main() -> int:
    settings = BridgeSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bridge = Bridge(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: finishing what Kafka has, then stopping", signum)
        bridge.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bridge.run(progress_every_s=10.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
