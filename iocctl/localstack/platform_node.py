"""`ioc up --on-node`: the platform as pods on the local node with the simulated province, live until Ctrl-C.

The pod counterpart of `platform.Platform` (processes): `onnode.PlatformOnNode` installs the chart (operator, bridge,
stream workers, citizen API as pods), the province's IOCSites are applied with kubectl and the operator provisions
them; the simulator keeps publishing from this machine to the stack's Mosquitto, on one simulated clock with the
workers (their `IOC_STREAMS_CLOCK_*` through the chart's streams.extraEnv). Dashboards are reached from this machine
through their Services' ClusterIPs (kube-proxy's rules cover the host's own connections).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TextIO

from ioc.clients import clickhouse
from ioc.settings import ClickHouseEndpoint
from iocctl.localstack.install import Installer
from iocctl.localstack.onnode import SITES_NAMESPACE, OnNode, PlatformOnNode, SiteState, apply_sites, site_states
from iocctl.localstack.process import every_until_interrupted, is_alive, start_process, stop_process
from sensors.simulators import parse_duration

__all__ = ["PlatformOnNodeDemo"]

PYTHON: Final = sys.executable
ANCHOR_LEAD_S: Final = 60.0
"""Seconds from `helm install` to the shared clock's start: the install, the sites' apply and the simulator's start."""


@dataclasses.dataclass
class PlatformOnNodeDemo:
    """The platform on the node under `root` (node in `root/node`, stack services in `root`); `stop` removes it."""

    root: Path
    installer: Installer
    speed: float = 60.0
    rate: float = 200.0
    duration: str = "6h"
    scenarios: tuple[str, ...] = ("demo",)
    with_simulator: bool = True
    with_operator: bool = True  # without it, no sites either
    say: Callable[[str], None] = print
    on_node: OnNode | None = None
    simulator_pid: int = 0
    platform: PlatformOnNode | None = None

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def start(self) -> None:
        self.platform = PlatformOnNode(self.root, self.installer, say=self.say)
        self.say(f"starting the node and the local stack in {self.root} ...")
        self.on_node = on_node = self.platform.up(install=False)
        # One simulated clock for the workers (pods) and the simulator (here): see platform.Platform.start.
        anchor = time.time() + ANCHOR_LEAD_S
        started_at = dt.datetime.fromtimestamp(int(anchor), dt.UTC)
        self.platform.install(on_node, values=self._clock_values(started_at, anchor))
        if self.with_operator:
            count = apply_sites(on_node)
            self.say(f"applied the Bình Dương sites ({count} IOCSites) in namespace {SITES_NAMESPACE}")
        if self.with_simulator:
            argv = [
                PYTHON, "-m", "iocctl", "simulate", "--stack", str(self.root),
                "--speed", str(self.speed), "--rate", str(self.rate), "--duration", self.duration,
                "--start", started_at.strftime("%Y-%m-%dT%H:%M:%S%z"), "--anchor", str(anchor),
            ]  # fmt: skip
            for scenario in self.scenarios:
                argv += ["--scenario", scenario]
            self.simulator_pid = start_process("simulator", argv, self.logs / "simulator.log").pid

    def _clock_values(self, started_at: dt.datetime, anchor: float) -> dict[str, Any]:
        def env(**values: str) -> list[dict[str, str]]:
            return [{"name": name, "value": value} for name, value in values.items()]

        return {
            "operator": {"enabled": self.with_operator},
            "streams": {
                "extraEnv": env(
                    IOC_STREAMS_CLOCK_SPEED=str(self.speed),
                    IOC_STREAMS_CLOCK_START=started_at.isoformat(),
                    IOC_STREAMS_CLOCK_ANCHOR=str(anchor),
                    IOC_STREAMS_INDICATORS_EVERY_S="20",
                )
            },
            # The simulated province runs `speed` times faster: its readings are dated up to the whole run ahead.
            "bridge": {"extraEnv": env(IOC_BRIDGE_MAX_AHEAD_S=str(parse_duration(self.duration) + 300.0))},
        }

    # --- watching and stopping ------------------------------------------------------------------------------

    def status_line(self, warehouse: clickhouse.Warehouse, sites: list[SiteState]) -> str:
        assert self.on_node is not None
        parts = []
        if self.with_operator:
            ready = sum(1 for s in sites if s.generation_ready)
            parts.append(f"sites Ready {ready}/{len(sites)}")
        for namespace in (self.on_node.namespace, SITES_NAMESPACE):
            pods = json.loads(self.on_node.kubectl("-n", namespace, "get", "pods", "-o", "json", check=False) or "{}")
            items = pods.get("items", [])
            ready_pods = sum(
                1
                for p in items
                if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
            )
            parts.append(f"pods Ready in {namespace} {ready_pods}/{len(items)}")
        try:
            row = warehouse.query(
                "SELECT (SELECT count() FROM ioc.readings) AS readings,"
                " (SELECT count() FROM ioc.incidents_current WHERE state NOT IN ('resolved', 'closed')) AS open"
            )[0]
            parts.append(f"{int(row['readings']):,} readings stored, {int(row['open'])} open incidents")
        except clickhouse.WarehouseError as exc:
            parts.append(f"warehouse: {exc}")
        if self.simulator_pid and not is_alive(self.simulator_pid):
            parts.append(f"simulator stopped (see {self.logs / 'simulator.log'})")
        return " · ".join(parts)

    def run_until_interrupted(self, out: TextIO = sys.stdout, every_s: float = 5.0) -> None:
        """A status line every few seconds, the dashboards' addresses as they come up, until Ctrl-C (or SIGTERM)."""
        assert self.on_node is not None
        out.write(f"export KUBECONFIG={self.on_node.kubeconfig}  # kubectl: {self.on_node.kubectl_path}\n")
        out.write(f"kubectl -n {SITES_NAMESPACE} get ioc   # the sites and their status columns\n")
        out.write(
            f"logs: {self.logs}   endpoints: ioc stack status --json --dir {self.root}\nCtrl-C stops everything.\n"
        )
        out.flush()
        shown: set[str] = set()
        endpoint = ClickHouseEndpoint.from_service(self.on_node.services["clickhouse"])
        on_node = self.on_node
        with clickhouse.connect(endpoint) as warehouse:

            def tick() -> None:
                sites = site_states(on_node) if self.with_operator else []
                for site in sites:  # the province's and the districts' dashboards, once each is reachable
                    if site.level in ("province", "district") and site.host_url and site.name not in shown:
                        shown.add(site.name)
                        out.write(f"dashboard of {site.name} ({site.unit}): {site.host_url}\n")
                out.write(f"[{dt.datetime.now():%H:%M:%S}] {self.status_line(warehouse, sites)}\n")
                out.flush()

            every_until_interrupted(every_s, tick)

    def stop(self, *, keep: bool = False) -> None:
        """Stop the simulator and (unless `keep`) the node with its pods and the stack; a second Ctrl-C waits."""

        def hold(_signum: int, _frame: object) -> None:
            self.say("stopping; a moment, please ...")

        previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.simulator_pid and stop_process(self.simulator_pid, timeout=20):
                self.say("stopped the simulator")
            if not keep and self.platform is not None:
                self.say(f"stopped: {', '.join(self.platform.down()) or 'nothing was running'}")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
