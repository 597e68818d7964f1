"""Scale on the node: Bình Dương's 101 IOCSites applied on the local node, until every site and its pods are Ready.

Runs on request (`python -m bench cluster`, root, minutes): a fresh node and local stack in a temporary directory,
the chart installed with Helm (`iocctl.localstack.onnode`), then the 2024 tree (1 province, 9 districts,
91 communes; `ioc sites render`) applied with kubectl. Measured from the apply: seconds until every IOCSite reports
Ready for its generation, and until every Deployment of the sites' namespace has its replicas Ready too (whatever
the operator chose to run per site: the sites' status and owned objects are read, not assumed). Then the
resident memory of all dashboard pods together (their cgroups' memory.stat, cgroup v1: rss + mapped files; the
working set as the kubelet counts it beside it), of all pods, of the node's own processes (VmRSS) and the CPU the
node's processes and the pods used during the ramp and over a quiet minute after it. Goal (issue 12): all Ready
within 3 minutes and dashboards under 8 GB on the 2-core, 24 GB machine.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from iocctl.localstack.install import Installer
from iocctl.localstack.onnode import SITES_NAMESPACE, OnNode, PlatformOnNode, apply_sites, site_states
from iocctl.localstack.stack import default_cache_dir

WAIT_S: Final = 900.0
"""Longest wait for the tree to be Ready: past it the figures say how many were Ready."""
QUIET_S: Final = 60.0
"""The steady minute after the ramp over which the idle CPU is measured."""
MIN_AVAILABLE_MB: Final = 3 * 1024
"""The machine is shared: below this much available memory the ramp is stopped and the figures say so."""
GOAL_READY_S: Final = 180.0
GOAL_DASHBOARDS_MB: Final = 8 * 1024
CGROUP: Final = Path("/sys/fs/cgroup")
_TICK: Final = os.sysconf("SC_CLK_TCK")
_QOS_DIR: Final = {"BestEffort": "besteffort", "Burstable": "burstable", "Guaranteed": ""}


def _pods(on_node: OnNode, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["-n", namespace, "get", "pods", "-o", "json"] + (["-l", selector] if selector else [])
    items: list[dict[str, Any]] = json.loads(on_node.kubectl(*args))["items"]
    return items


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def _deployments_ready(on_node: OnNode) -> tuple[int, int]:
    """(Deployments with every replica Ready, Deployments) in the sites' namespace."""
    items = json.loads(on_node.kubectl("-n", SITES_NAMESPACE, "get", "deployments", "-o", "json"))["items"]
    ready = sum(1 for d in items if (d["status"].get("readyReplicas") or 0) >= (d["spec"].get("replicas") or 0))
    return ready, len(items)


def _pod_cgroup(controller: str, pod: dict[str, Any]) -> Path:
    """The pod's cgroup (v1, the kubelet's cgroupfs driver): kubepods/<qos>/pod<uid>."""
    qos = _QOS_DIR[pod["status"].get("qosClass", "BestEffort")]
    base = CGROUP / controller / "kubepods"
    return (base / qos if qos else base) / f"pod{pod['metadata']['uid']}"


def _memory_stat(directory: Path) -> dict[str, int]:
    stat = {}
    for line in (directory / "memory.stat").read_text(encoding="utf-8").splitlines():
        key, value = line.split()
        stat[key] = int(value)
    stat["usage"] = int((directory / "memory.usage_in_bytes").read_text(encoding="utf-8"))
    return stat


def _resident_mb(directory: Path) -> tuple[float, float]:
    """(rss + mapped files, working set = usage - inactive files) of a cgroup and its children, in MB."""
    stat = _memory_stat(directory)
    resident = stat["total_rss"] + stat["total_mapped_file"]
    working = stat["usage"] - stat["total_inactive_file"]
    return resident / 2**20, working / 2**20


def _cpu_s(directory: Path) -> float:
    return int((CGROUP / "cpuacct" / directory / "cpuacct.usage").read_text(encoding="utf-8")) / 1e9


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Cpu:
    """CPU seconds so far of the node's processes and of all pods (cgroup kubepods)."""

    def __init__(self, platform: PlatformOnNode) -> None:
        self.pids = {name: int(info["pid"]) for name, info in platform.node.running().items()}
        self.stack_pids = {name: int(info["pid"]) for name, info in platform.stack.running().items()}

    def sample(self) -> dict[str, float]:
        node = sum(_process_cpu_s(pid) for pid in self.pids.values())
        stack = sum(_process_cpu_s(pid) for pid in self.stack_pids.values())
        return {"node": node, "pods": _cpu_s(Path("kubepods")), "stack": stack, "at": time.monotonic()}


def _cores(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    seconds = after["at"] - before["at"]
    return {key: round((after[key] - before[key]) / seconds, 2) for key in ("node", "pods", "stack")}


def _available_mb() -> float:
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def _wait_tree(on_node: OnNode, count: int, started: float) -> dict[str, Any]:
    sites_at = pods_at = None
    low_memory: float | None = None
    progress = ""
    ready_sites = deployments_ready = deployments = ready_pods = 0
    pods: list[dict[str, Any]] = []
    while time.monotonic() - started < WAIT_S:
        sites = site_states(on_node)
        ready_sites = sum(1 for s in sites if s.generation_ready)
        deployments_ready, deployments = _deployments_ready(on_node)
        pods = [p for p in _pods(on_node, SITES_NAMESPACE) if not p["metadata"].get("deletionTimestamp")]
        ready_pods = sum(1 for p in pods if _ready(p))
        line = (
            f"sites {ready_sites}/{count}, deployments {deployments_ready}/{deployments}, pods {ready_pods}/{len(pods)}"
        )
        if line != progress:
            print(f"[{time.monotonic() - started:5.0f} s] {line}", flush=True)
            progress = line
        if sites_at is None and len(sites) == count and ready_sites == count:
            sites_at = time.monotonic() - started
        all_pods = deployments_ready == deployments and ready_pods == len(pods)
        if sites_at is not None and all_pods:
            pods_at = time.monotonic() - started
            break
        if (available := _available_mb()) < MIN_AVAILABLE_MB:
            low_memory = available
            print(f"stopping: {available:.0f} MB available on the machine", flush=True)
            break
        time.sleep(2)
    return {
        "stopped_with_available_mb": round(low_memory) if low_memory is not None else None,
        "sites_ready_s": round(sites_at, 1) if sites_at is not None else None,
        "sites_and_pods_ready_s": round(pods_at, 1) if pods_at is not None else None,
        "sites_ready": ready_sites,
        "deployments_ready": f"{deployments_ready}/{deployments}",
        "site_pods_ready": f"{ready_pods}/{len(pods)}",
    }


def _memory(on_node: OnNode, platform: PlatformOnNode) -> dict[str, Any]:
    dashboards = _pods(on_node, SITES_NAMESPACE, "app.kubernetes.io/component=dashboard")
    resident = working = 0.0
    for pod in dashboards:
        r, w = _resident_mb(_pod_cgroup("memory", pod))
        resident += r
        working += w
    all_resident, all_working = _resident_mb(CGROUP / "memory" / "kubepods")
    node_rss = sum(_process_rss_mb(int(info["pid"])) for info in platform.node.running().values())
    return {
        "dashboard_pods": len(dashboards),
        "dashboards_resident_mb": round(resident),
        "dashboards_working_set_mb": round(working),
        "dashboard_pod_resident_mb_mean": round(resident / len(dashboards)) if dashboards else None,
        "all_pods_resident_mb": round(all_resident),
        "all_pods_working_set_mb": round(all_working),
        "node_processes_rss_mb": round(node_rss),
    }


def _run(platform: PlatformOnNode) -> dict[str, Any]:
    installed = time.monotonic()
    on_node = platform.up()
    figures: dict[str, Any] = {"helm_install_and_prerequisites_s": round(time.monotonic() - installed, 1)}
    cpu = _Cpu(platform)
    before = cpu.sample()
    started = time.monotonic()
    count = apply_sites(on_node)
    figures["sites"] = count
    figures.update(_wait_tree(on_node, count, started))
    ramp = cpu.sample()
    figures["ramp_cpu_cores"] = _cores(before, ramp)
    time.sleep(QUIET_S)
    figures["quiet_cpu_cores"] = _cores(ramp, cpu.sample())
    figures.update(_memory(on_node, platform))
    ready_s = figures["sites_and_pods_ready_s"]
    figures["goal_ready_within_180_s"] = ready_s is not None and ready_s <= GOAL_READY_S
    figures["goal_dashboards_under_8_gb"] = figures["dashboards_resident_mb"] < GOAL_DASHBOARDS_MB
    return figures


def run() -> dict[str, Any]:
    if os.geteuid() != 0:
        raise SystemExit("python -m bench cluster needs root: it runs a real node (namespaces, bridges, iptables)")
    with tempfile.TemporaryDirectory(prefix="ioc-bench-cluster-") as root:
        platform = PlatformOnNode(Path(root), Installer(default_cache_dir()), say=lambda m: print(m, flush=True))
        try:
            return _run(platform)
        finally:
            platform.down()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
