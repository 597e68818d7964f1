"""The restricted Pod Security Standard checker (tests/charts/pss.py): it passes a good pod and names each fault."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.charts import pss

GOOD: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "x"},
    "spec": {
        "template": {
            "metadata": {},
            "spec": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "c",
                        "image": "i",
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
            },
        }
    },
}


def _with(path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(GOOD)
    node: Any = obj["spec"]["template"]["spec"]
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[keys[-1]] = value
    return obj


def test_a_restricted_pod_passes() -> None:
    assert pss.check([GOOD]) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("hostNetwork", True, "hostNetwork"),
        ("securityContext.runAsNonRoot", False, "runAsNonRoot"),
        ("securityContext.seccompProfile", {"type": "Unconfined"}, "seccompProfile"),
        ("securityContext.runAsUser", 0, "runAsUser is 0"),
        ("containers.0.securityContext.allowPrivilegeEscalation", True, "allowPrivilegeEscalation"),
        ("containers.0.securityContext.privileged", True, "privileged"),
        ("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}, "drop ALL"),
        ("containers.0.securityContext.capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}, "SYS_ADMIN"),
        ("containers.0.securityContext.readOnlyRootFilesystem", False, "readOnlyRootFilesystem"),
        ("containers.0.securityContext.runAsNonRoot", False, "runAsNonRoot"),
        ("containers.0.ports", [{"containerPort": 80, "hostPort": 80}], "hostPort"),
        ("volumes", [{"name": "h", "hostPath": {"path": "/"}}], "hostPath"),
        ("securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}], "unsafe sysctl"),
    ],
)
def test_each_fault_is_named(path: str, value: Any, expected: str) -> None:
    found = pss.check([_with(path, value)])
    assert found and any(expected in problem for problem in found), found


def test_container_level_settings_can_stand_in_for_the_pods() -> None:
    obj = _with("securityContext", {})
    container = obj["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert pss.check([obj]), "without any runAsNonRoot or seccomp it fails"
    container.update({"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}})
    assert pss.check([obj]) == []


def test_every_kind_of_pod_template_is_found() -> None:
    template = GOOD["spec"]["template"]
    objects = [
        {"kind": "Pod", "metadata": {"name": "p"}, "spec": template["spec"]},
        {"kind": "StatefulSet", "metadata": {"name": "s"}, "spec": {"template": template}},
        {"kind": "Job", "metadata": {"name": "j"}, "spec": {"template": template}},
        {"kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": template}}}},
        {"kind": "ConfigMap", "metadata": {"name": "m"}},
    ]
    assert [where for where, _, _ in pss.pod_specs(objects)] == ["Pod/p", "StatefulSet/s", "Job/j", "CronJob/c"]
