"""The Faust agents, one module per concern; `register_all` attaches them to a runtime."""

from streams.agents import aggregates, cameras, deadletters, dossiers, incidents, readings, reports, ticks
from streams.runtime import Runtime

__all__ = ["register_all"]


def register_all(rt: Runtime) -> None:
    for module in (readings, cameras, aggregates, incidents, reports, dossiers, deadletters, ticks):
        module.register(rt)
