"""`python -m streams worker`: run one stream worker configured from IOC_STREAMS_* variables.

Several workers with the same app id share the partitions. Extra arguments go to Faust's own command
line (`python -m streams worker --loglevel=info`).
"""

from __future__ import annotations

import sys

from ioc.settings import StreamsSettings
from streams.agents import register_all
from streams.runtime import Runtime


def main() -> None:
    runtime = Runtime.build(StreamsSettings())
    register_all(runtime)
    runtime.app.main()


if __name__ == "__main__":
    main()
    sys.exit(0)
