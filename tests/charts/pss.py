"""A field-by-field check of pod specs against the "restricted" Pod Security Standard (Kubernetes v1.34).

Pure functions over manifests (dicts), so the chart's rendered output can be judged without a cluster:
`pod_specs` finds every pod template (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod) and
`violations` lists what breaks the standard, one line each. It follows
https://kubernetes.io/docs/concepts/security/pod-security-standards/ (baseline checks plus restricted's),
and adds the house rule that every container's root filesystem is read-only. The real PodSecurity
admission of the local kube-apiserver judges the same pods in test_install.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

RESTRICTED_VOLUME_TYPES: Final = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
SAFE_SYSCTLS: Final = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES: Final = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
_VOLUME_META_KEYS: Final = frozenset({"name"})


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, pod metadata, pod spec) of every pod the objects would create."""
    for obj in objects:
        kind, name = obj.get("kind"), obj.get("metadata", {}).get("name")
        where = f"{kind}/{name}"
        spec = obj.get("spec", {})
        if kind == "Pod":
            yield where, obj.get("metadata", {}), spec
        elif kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
            template = spec.get("template", {})
            yield where, template.get("metadata", {}), template.get("spec", {})
        elif kind == "CronJob":
            template = spec.get("jobTemplate", {}).get("spec", {}).get("template", {})
            yield where, template.get("metadata", {}), template.get("spec", {})


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            yield f"{field}[{container.get('name')}]", container


def violations(where: str, metadata: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """Every way this pod breaks the restricted standard (or the read-only-root house rule); empty when none."""
    found: list[str] = []

    def bad(message: str) -> None:
        found.append(f"{where}: {message}")

    pod_sc = spec.get("securityContext") or {}
    # --- baseline ---
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            bad(f"{field} is true")
    for key, value in (metadata.get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            bad(f"AppArmor annotation {key}={value}")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            bad(f"unsafe sysctl {sysctl.get('name')}")
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        bad("windowsOptions.hostProcess is true")
    # --- restricted: volumes ---
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - _VOLUME_META_KEYS
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            bad(f"volume {volume.get('name')} of type {', '.join(sorted(kinds - RESTRICTED_VOLUME_TYPES))}")
    # --- per container, with the pod-level defaults ---
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_sc.get("runAsUser") == 0:
        bad("pod runAsUser is 0")
    if pod_seccomp == "Unconfined":
        bad("pod seccompProfile is Unconfined")
    if pod_sc.get("appArmorProfile", {}).get("type") == "Unconfined":
        bad("pod appArmorProfile is Unconfined")
    _selinux(pod_sc.get("seLinuxOptions"), "pod", bad)
    containers = list(_containers(spec))
    if not containers:
        bad("no containers")
    for name, container in containers:
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            bad(f"{name} is privileged")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            bad(f"{name} windowsOptions.hostProcess is true")
        if sc.get("procMount") not in (None, "Default"):
            bad(f"{name} procMount {sc.get('procMount')}")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                bad(f"{name} hostPort {port['hostPort']}")
        if sc.get("appArmorProfile", {}).get("type") == "Unconfined":
            bad(f"{name} appArmorProfile is Unconfined")
        _selinux(sc.get("seLinuxOptions"), name, bad)
        if sc.get("allowPrivilegeEscalation") is not False:
            bad(f"{name} allowPrivilegeEscalation is not false")
        non_root = sc.get("runAsNonRoot")
        if non_root is False or (non_root is None and not pod_non_root):
            bad(f"{name} runAsNonRoot is not true (neither on the container nor on the pod)")
        if sc.get("runAsUser") == 0:
            bad(f"{name} runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp == "Unconfined" or (seccomp is None and pod_seccomp not in ("RuntimeDefault", "Localhost")):
            bad(f"{name} seccompProfile is not RuntimeDefault or Localhost (neither on the container nor on the pod)")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            bad(f"{name} does not drop ALL capabilities")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            bad(f"{name} adds capabilities {', '.join(sorted(added))}")
        # House rule, stricter than the standard: nothing writes to the image.
        if sc.get("readOnlyRootFilesystem") is not True:
            bad(f"{name} readOnlyRootFilesystem is not true")
    return found


def _selinux(options: dict[str, Any] | None, where: str, bad: Any) -> None:
    if not options:
        return
    if options.get("type", "") not in SELINUX_TYPES:
        bad(f"{where} seLinuxOptions.type {options['type']}")
    for field in ("user", "role"):
        if options.get(field):
            bad(f"{where} seLinuxOptions.{field} is set")


def check(objects: list[dict[str, Any]]) -> list[str]:
    """Every violation in every pod the objects would create."""
    return [problem for where, meta, spec in pod_specs(objects) for problem in violations(where, meta, spec)]
