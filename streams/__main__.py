"""`python -m streams worker`: run one stream worker configured from IOC_STREAMS_* variables.

Workers with the same app id share the partitions; extra arguments go to Faust (`--loglevel=info`).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from ioc import clock, topics
from ioc.clients import kafka_admin
from ioc.settings import StreamsSettings
from streams.agents import register_all
from streams.runtime import Runtime
from streams.siterelay import SiteCommandRelay


def clock_of(settings: StreamsSettings) -> Callable[[], float]:
    """The workers' "now": real time, or the demo's simulated clock (ioc.clock), shared with the simulator."""
    return clock.clock_from(settings.clock_start, settings.clock_speed, settings.clock_anchor, settings.clock_fast_s)


def ensure_changelogs(runtime: Runtime) -> None:
    """Create the tables' changelog topics before Faust starts (compacted, co-partitioned with sources).

    Left to Faust, a topic created at start-up can be missing from the producer's metadata when the first
    state is saved, which fails the agent (the broker does not create topics on use: they come from the
    registry, or from here).
    """
    wanted = [
        topics.KafkaTopic(table.changelog_topic.get_topic_name(), "state key", table.partitions, "changelog", True)
        for table in runtime.app.tables.values()
    ]
    bootstrap = runtime.settings.kafka  # the worker's own principal: it may create its app id's topics
    kafka_admin.ensure_topics(bootstrap, wanted)
    kafka_admin.wait_for_leaders(bootstrap, [t.name for t in wanted])


def main() -> None:
    settings = StreamsSettings()
    runtime = Runtime.build(settings, clock=clock_of(settings))
    register_all(runtime)
    if sys.argv[1:2] == ["worker"]:
        ensure_changelogs(runtime)
    if sys.argv[1:2] == ["worker"] and settings.site is None:
        # Sites' commands reach the incidents agent through the relay (their site taken from their topic); the
        # shared pool runs it, as it runs the incidents agent (a worker dedicated to a site runs neither).
        relay = SiteCommandRelay(settings)
        threading.Thread(target=relay.run, args=(threading.Event(),), name="site-commands", daemon=True).start()
    runtime.app.main()


if __name__ == "__main__":
    main()
    sys.exit(0)
