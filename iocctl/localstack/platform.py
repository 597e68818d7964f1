"""`ioc up`: the whole platform on one machine, each part in its own process, with live status until Ctrl-C.

The local stack, warehouse, bridge, stream workers, operator, sites, dashboards and the simulated province run
as they would in pods (`python -m sensors.bridge`, `python -m streams worker`, `ioc dashboard`, ...), configured
through the same environment variables, logging to the stack directory's `logs/`. The workers and the simulator
share one clock, so at `--speed 60` an hour of the province, SLAs included, happens in a minute.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ioc import kafka_access, units
from ioc.clients import clickhouse
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint
from iocctl.localstack import clickhouse as local_clickhouse
from iocctl.localstack.demopeople import DEMO_PEOPLE
from iocctl.localstack.process import (
    every_until_interrupted,
    free_port,
    is_alive,
    port_open,
    start_process,
    stop_process,
)
from iocctl.localstack.stack import Stack
from operators import crds, province
from sensors.simulators import parse_duration
from streams.warehouse import migrate

__all__ = ["Platform", "Process", "apply_crds", "kubectl", "operator_env"]

PYTHON = sys.executable
SITES_NAMESPACE = "ioc-sites"
RESTARTED = frozenset({"simulator"})
"""Processes a living demo starts again when they stop (`Platform.restart_stopped`)."""
ANCHOR_LEAD_S = 30.0
"""Seconds from starting the workers to the shared clock's start: about the time the simulator needs to be ready."""


def operator_env(services: dict[str, Any]) -> dict[str, str]:
    """The environment of `python -m operators` on the local stack's `services` (kube-apiserver included)."""
    m, ch = services["mosquitto"], services["clickhouse"]
    return {
        **os.environ,
        **local_clickhouse.component_env("IOC_OPERATOR_", ch),
        "IOC_OPERATOR_KUBE__KUBECONFIG": services["kube-apiserver"]["kubeconfig"],
        **KafkaEndpoint.from_service(services["kafka"], kafka_access.OPERATOR).environment("IOC_OPERATOR_KAFKA__"),
        "IOC_OPERATOR_MQTT__HOST": m["host"],
        # Over TLS too: the vendors' Secrets it writes name this port and carry the stack's CA.
        "IOC_OPERATOR_MQTT__PORT": str(m["tls_port"]),
        "IOC_OPERATOR_MQTT__TLS_CA_FILE": m["ca_file"],
        "IOC_OPERATOR_MQTT__USERNAME": m["admin_user"],
        "IOC_OPERATOR_MQTT__PASSWORD": m["admin_password"],
        "IOC_OPERATOR_CLICKHOUSE_USERS_D": ch["users_d"],
        "IOC_OPERATOR_SECRET_KEY": ch["password"],  # stable for this stack's life
    }


def kubectl(kube: dict[str, Any], *args: str, stdin: str | None = None, timeout: float = 300) -> str:
    """Run kubectl against the stack's API server (`kube`, its `kube-apiserver` info); its output, or RuntimeError."""
    argv = [kube["kubectl"], f"--kubeconfig={kube['kubeconfig']}", *args]
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args[:3])} failed: {done.stderr.strip()[:1000]}")
    return done.stdout


def apply_crds(kube: dict[str, Any]) -> None:
    """The platform's CustomResourceDefinitions on the stack's API server (`kube`), once they are served."""
    manifests = "\n---\n".join(json.dumps(crd) for crd in crds.crd_files().values())
    kubectl(kube, "apply", "--server-side", "-f", "-", stdin=manifests)
    kubectl(kube, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


@dataclasses.dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    pid: int = 0
    log: Path | None = None
    restarts: int = 0


@dataclasses.dataclass
class Platform:
    """One local platform in `stack.root`; `start()` brings it up, `stop()` takes everything down."""

    stack: Stack
    speed: float = 60.0
    rate: float = 200.0
    duration: str = "6h"
    scenarios: tuple[str, ...] = ("demo",)
    dashboards: tuple[tuple[str, int], ...] = (("74", 8501), ("724", 8502))
    with_operator: bool = True
    with_simulator: bool = True
    units: tuple[str, ...] = ()  # simulate only these units' subtrees (default: the whole province)
    living: bool = True
    """After the scripted `duration`, the simulator keeps the province living in real time (SCENARIOS.md story 7)."""
    say: Callable[[str], None] = print
    processes: list[Process] = dataclasses.field(default_factory=list)
    started_at: dt.datetime = dataclasses.field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0))
    anchor: float | None = None
    mailbox_port: int = 0
    """The local mailbox's SMTP port (set by `start`): the stream workers' notifier sends there."""
    """Unix time at which the workers' and the simulator's clocks both read `started_at` (set by `start`)."""

    @property
    def logs(self) -> Path:
        return self.stack.root / "logs"

    @property
    def mailbox(self) -> Path:
        """Where the local mailbox saves what the platform e-mails, one .eml per message."""
        return self.stack.root / "mailbox"

    def start(self) -> None:
        for site, port in self.dashboards:
            if port_open(port):
                raise RuntimeError(
                    f"port {port} for the dashboard of site {site} is in use (is another `ioc up` still running?)"
                )
        self.say(f"starting the local stack in {self.stack.root} ...")
        services = self.stack.up(progress=True)
        ch = services["clickhouse"]
        endpoint = ClickHouseEndpoint.from_service(ch)
        with clickhouse.connect(endpoint) as warehouse:
            applied = migrate(warehouse, "ioc")
        self.say(f"warehouse ready ({len(applied)} migrations applied)")
        if self.with_operator:
            self._apply_sites(services["kube-apiserver"])
        # One simulated clock for the workers and the simulator, although the simulator is ready tens of
        # seconds after the workers: at speed 60 every second between them would be a minute of skew, and
        # every device would look silent to the workers. The simulator waits for (or catches up to) it.
        self.anchor = time.time() + ANCHOR_LEAD_S
        self.started_at = dt.datetime.fromtimestamp(int(self.anchor), dt.UTC)
        self.mailbox_port = free_port()
        mailbox_argv = ["--dir", str(self.mailbox), "--port", str(self.mailbox_port)]
        self._spawn("mailbox", [PYTHON, "-m", "iocctl.localstack.mailbox", *mailbox_argv], dict(os.environ))
        self._spawn("bridge", [PYTHON, "-m", "sensors.bridge"], self._bridge_env(services))
        self._spawn(
            "streams",
            [PYTHON, "-m", "streams", "worker", "--loglevel=warn", "--without-web"],
            self._streams_env(services),
        )
        if self.with_operator:
            self._spawn("operator", [PYTHON, "-m", "operators"], operator_env(services))
        for site, port in self.dashboards:
            env = {**os.environ, **self.clock_env("IOC_DASHBOARD_"), "IOC_DASHBOARD_SITE_CONFIG": self._roster(site)}
            env["IOC_DASHBOARD_EVIDENCE_DIR"] = str(self.stack.root / "evidence" / site)
            self._spawn(f"dashboard-{site}", self.dashboard_argv(site, port), env)
        if self.with_simulator:
            time.sleep(5)  # the bridge subscribes and the workers join their group before data flows
            argv = [
                PYTHON,
                "-m",
                "iocctl",
                "simulate",
                "--stack",
                str(self.stack.root),
                "--speed",
                str(self.speed),
                "--rate",
                str(self.rate),
                "--duration",
                self.duration,
                "--start",
                self.started_at.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "--anchor",
                str(self.anchor),
            ]
            if self.living:
                argv.append("--then-live")
            for scenario in self.scenarios:
                argv += ["--scenario", scenario]
            if self.units:
                argv += ["--units", ",".join(self.units)]
            self._spawn("simulator", argv, dict(os.environ))

    # --- configuration of each part -------------------------------------------------------------------------

    def _roster(self, site: str) -> str:
        """A file with the demo roster a site's dashboard offers for assignment: its own people and those of the
        communes it serves (in a cluster the operator's ConfigMap holds the site's effective configuration)."""
        tree = units.load_tree("2024")
        people: dict[str, Any] = {}
        for unit, declared in DEMO_PEOPLE.items():
            if unit == site or (tree.get(unit).level is units.Level.COMMUNE and tree.get(unit).parent == site):
                for person in declared.get("roster", []):
                    people.setdefault(person["email"], {"unit": unit, **person})
        path = self.stack.root / "sites" / f"{site}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"roster": list(people.values())}, ensure_ascii=False, indent=2), encoding="utf-8")
        return str(path)

    def _bridge_env(self, services: dict[str, Any]) -> dict[str, str]:
        m, k = services["mosquitto"], services["kafka"]
        return {
            **os.environ,
            "IOC_BRIDGE_MQTT__HOST": m["host"],
            # The TLS listener, trusting the stack's CA: the bridge speaks to the broker as it does in the chart.
            "IOC_BRIDGE_MQTT__PORT": str(m["tls_port"]),
            "IOC_BRIDGE_MQTT__TLS_CA_FILE": m["ca_file"],
            "IOC_BRIDGE_MQTT__USERNAME": m["bridge_user"],
            "IOC_BRIDGE_MQTT__PASSWORD": m["bridge_password"],
            **KafkaEndpoint.from_service(k, kafka_access.BRIDGE).environment("IOC_BRIDGE_KAFKA__"),
            "IOC_BRIDGE_REPLICA": "local-0",
            # The simulated province's clock runs `speed` times faster than the wall clock, so its readings are
            # dated up to the whole simulated run ahead of the bridge's clock: allow that, plus the usual skew.
            "IOC_BRIDGE_MAX_AHEAD_S": str(parse_duration(self.duration) + 300.0),
        }

    def _streams_env(self, services: dict[str, Any]) -> dict[str, str]:
        return {
            **os.environ,
            **local_clickhouse.component_env("IOC_STREAMS_", services["clickhouse"]),
            **KafkaEndpoint.from_service(services["kafka"], kafka_access.STREAMS).environment("IOC_STREAMS_KAFKA__"),
            "IOC_STREAMS_DATA_DIR": str(self.stack.root / "streams"),
            "IOC_STREAMS_WEB_PORT": "0",
            **self.clock_env("IOC_STREAMS_"),
            "IOC_STREAMS_INDICATORS_EVERY_S": "20",
            # The notifier e-mails the local mailbox (docs/notifications.md).
            "IOC_STREAMS_NOTIFY__SMTP_HOST": "127.0.0.1",
            "IOC_STREAMS_NOTIFY__SMTP_PORT": str(self.mailbox_port),
        }

    def clock_env(self, prefix: str) -> dict[str, str]:
        """The shared clock (ioc.clock) as a component's settings: its scripted speed, then real time if living."""
        env = {
            f"{prefix}CLOCK_SPEED": str(self.speed),
            f"{prefix}CLOCK_START": self.started_at.isoformat(),
            f"{prefix}CLOCK_ANCHOR": str(self.anchor),
        }
        if self.living:
            env[f"{prefix}CLOCK_FAST_S"] = str(parse_duration(self.duration))
        return env

    def _apply_sites(self, kube: dict[str, Any]) -> None:
        apply_crds(kube)
        sites = province.render("2024", SITES_NAMESPACE, overlays=DEMO_PEOPLE)
        kubectl(kube, "apply", "--server-side", "-f", "-", stdin=sites)
        self.say(f"applied the Bình Dương sites (1 province, 9 districts, 91 communes) in namespace {SITES_NAMESPACE}")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = self.logs / f"{name}.log"
        process = start_process(name, argv, log, env=env)
        self.processes.append(Process(name, argv, env, process.pid, log))

    # --- watching and stopping ------------------------------------------------------------------------------

    def status_line(self, warehouse: clickhouse.Warehouse, previous: dict[str, float]) -> str:
        now = time.monotonic()
        try:
            row = warehouse.query(
                "SELECT (SELECT count() FROM ioc.readings) AS readings,"
                " (SELECT count() FROM ioc.incidents_current WHERE state NOT IN ('resolved', 'closed')) AS open"
            )[0]
        except clickhouse.WarehouseError:
            return "warehouse not answering"
        readings = float(row["readings"])
        rate = 0.0
        if previous:
            rate = (readings - previous["readings"]) / max(now - previous["at"], 1e-6)
        previous.update(readings=readings, at=now)
        parts = [f"{int(readings):,} readings stored ({rate:,.0f}/s)", f"{int(row['open'])} open incidents"]
        parts.append(f"{len(list(self.mailbox.glob('*.eml')))} e-mails in {self.mailbox}")
        return " · ".join([*parts, self.processes_status()])

    def processes_status(self) -> str:
        """The status line's word on the processes, after starting again those a living demo restarts."""
        restarted = self.restart_stopped()
        dead = [p.name for p in self.processes if not is_alive(p.pid)]
        words = "all processes running" if not dead else f"stopped: {', '.join(dead)} (see {self.logs})"
        if restarted:
            words = f"restarted: {', '.join(restarted)} (it had stopped; see {self.logs}) · {words}"
        return words

    def restart_stopped(self) -> list[str]:
        """Start again the processes that keep the demo living (the simulator) if they have stopped; their names.

        A living demo never ends on its own, so a simulator that is gone has failed: started again with the same
        clock, it goes on living from the present (`ioc simulate --then-live`). Other processes are reported,
        not restarted: their failure is what the operator should see.
        """
        if not self.living:
            return []
        restarted: list[str] = []
        for process in self.processes:
            if process.name in RESTARTED and not is_alive(process.pid):
                assert process.log is not None
                fresh = start_process(process.name, process.argv, process.log, env=process.env)
                process.pid = fresh.pid
                process.restarts += 1
                restarted.append(process.name)
        return restarted

    def stop(self, *, keep_stack: bool = False) -> None:
        """Stop every process and (unless `keep_stack`) the services; a second Ctrl-C does not cut this short."""

        def hold(_signum: int, _frame: object) -> None:
            self.say("stopping; a moment, please ...")

        previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for process in reversed(self.processes):
                if stop_process(process.pid, timeout=20):
                    self.say(f"stopped {process.name}")
            if not keep_stack:
                self.say(f"stopped services: {', '.join(self.stack.down()) or 'none'}")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def dashboard_argv(self, site: str, port: int) -> list[str]:
        """`ioc dashboard` for one demo site: on loopback, without sign-in, its one user an operator who can act."""
        argv = [PYTHON, "-m", "iocctl", "dashboard", "--site", site, "--port", str(port)]
        return [*argv, "--stack", str(self.stack.root), "--public", "--address", "127.0.0.1", "--role", "operator"]

    def run_until_interrupted(self, out: TextIO = sys.stdout, every_s: float = 5.0) -> None:
        """Print the URLs and a status line every few seconds until Ctrl-C (or SIGTERM)."""
        for site, port in self.dashboards:
            out.write(f"dashboard for site {site}: http://localhost:{port}/ (loopback only; you are its operator)\n")
        out.write(f"mailbox: what the platform e-mails lands in {self.mailbox} (one .eml per message)\n")
        out.write(f"logs: {self.logs}   endpoints: ioc stack status --json --dir {self.stack.root}\n")
        out.write("Ctrl-C stops everything.\n")
        out.flush()
        services = self.stack.running()
        endpoint = ClickHouseEndpoint.from_service(services["clickhouse"])
        previous: dict[str, float] = {}
        with clickhouse.connect(endpoint) as warehouse:

            def tick() -> None:
                out.write(f"[{dt.datetime.now():%H:%M:%S}] {self.status_line(warehouse, previous)}\n")
                out.flush()

            every_until_interrupted(every_s, tick)
