"""The Faust agents, one module per concern; `register_all` attaches them to a runtime."""

from streams.agents import (
    aggregates,
    cameras,
    deadletters,
    dossiers,
    incidents,
    notifications,
    readings,
    reports,
    retention,
    ticks,
)
from streams.runtime import Runtime

__all__ = ["register_all"]


def register_all(rt: Runtime) -> None:
    """Every agent; a worker dedicated to an isolated site (`settings.site`) runs only its readings.

    Its detections and closed minutes go to the shared pool's incident and aggregate workers, and the shared
    pool's ticks reach it on the readings topic, so it sends none itself (streams/siteconfig.py).
    """
    if rt.settings.site is not None:
        readings.register(rt)
        return
    for module in (
        readings,
        cameras,
        aggregates,
        incidents,
        notifications,
        reports,
        dossiers,
        deadletters,
        ticks,
        retention,
    ):
        module.register(rt)
