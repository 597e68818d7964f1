"""Seeded, deterministic fleet simulators: a fleet on real communes, scenarios, a pure plan and its runner."""

from sensors.simulators.fleet import DeviceSpec, Fleet, FleetUnit, Vendor, build_fleet
from sensors.simulators.generators import LOCAL_TZ
from sensors.simulators.living import living_hours, occasional_events
from sensors.simulators.plan import (
    Planned,
    Simulation,
    Volumes,
    iter_plan,
    kind_of,
    plan,
    seq_base,
)
from sensors.simulators.runner import RunError, RunSummary, issue_credentials, run, run_living
from sensors.simulators.scenarios import (
    PRESETS,
    Scenario,
    ScenarioKind,
    parse_duration,
    parse_scenario,
    resolve_scenarios,
)
from sensors.simulators.summary import Tally, describe, tally

__all__ = [
    "LOCAL_TZ",
    "PRESETS",
    "DeviceSpec",
    "Fleet",
    "FleetUnit",
    "Planned",
    "RunError",
    "RunSummary",
    "Scenario",
    "ScenarioKind",
    "Simulation",
    "Tally",
    "Vendor",
    "Volumes",
    "build_fleet",
    "describe",
    "issue_credentials",
    "iter_plan",
    "kind_of",
    "living_hours",
    "occasional_events",
    "parse_duration",
    "parse_scenario",
    "plan",
    "resolve_scenarios",
    "run",
    "run_living",
    "seq_base",
    "tally",
]
