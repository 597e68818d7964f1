"""The operator killed with SIGKILL in the middle of provisioning converges when it starts again.

While it is down, a spec changes and a child object is deleted: the restarted operator resumes every
site (Kopf's resume handlers), finishes what was cut off, applies the change and repairs the child.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from ioc import units
from tests.operators.conftest import (
    GROUP,
    VERSION,
    OperatorProcess,
    api_client,
    clickhouse_admin,
    custom_api,
    kubectl,
    operator_env,
    ready,
    site,
    wait_for,
)

DISTRICT = "722"


@pytest.fixture(scope="module")
def env(
    kube: dict[str, Any],
    clickhouse: dict[str, Any],
    kafka: dict[str, Any],
    mosquitto: dict[str, Any],
    module_namespace: str,
    warehouse_tables: str,
) -> dict[str, str]:
    return operator_env(kube, clickhouse, kafka, mosquitto, namespace=module_namespace)


def test_killed_mid_reconcile_then_restarted_converges(
    kube: dict[str, Any], clickhouse: dict[str, Any], env: dict[str, str], module_namespace: str, tmp_path: Path
) -> None:
    ns = module_namespace
    communes = [u.code for u in units.load_tree("2024").children(DISTRICT)][:6]
    names = ["phu-giao", *(f"pg-{code}" for code in communes)]
    manifests = [site("phu-giao", DISTRICT, "district")] + [
        site(f"pg-{code}", code, "commune", ("phu-giao", "district")) for code in communes
    ]
    operator = OperatorProcess(env, tmp_path / "first.log").start()
    core = kubernetes.client.CoreV1Api(api_client(kube["kubeconfig"]))
    kubectl(kube, "apply", "-n", ns, "-f", "-", stdin="\n---\n".join(json.dumps(m) for m in manifests))
    # Kill as soon as the first child object exists: that site's reconcile is under way, most others not begun.
    wait_for(lambda: core.list_namespaced_config_map(ns).items, 30, "the first ConfigMap", interval=0.02)
    operator.kill()
    unfinished = [n for n in names if ready(kube, ns, n) is None]
    assert unfinished, "every site finished before the kill: nothing was cut off"

    api = custom_api(kube)
    api.patch_namespaced_custom_object(
        GROUP, VERSION, ns, "iocsites", "phu-giao", {"spec": {"dashboard": {"replicas": 2}}}
    )
    first = core.list_namespaced_config_map(ns).items[0].metadata.name
    core.delete_namespaced_config_map(first, ns)

    restarted = OperatorProcess(env, tmp_path / "second.log").start()
    try:
        for name in names:
            wait_for(
                lambda name=name: ready(kube, ns, name),
                90,
                f"{name} Ready after the restart\n{restarted.text()[-3000:]}",
            )
        apps = kubernetes.client.AppsV1Api(api_client(kube["kubeconfig"]))
        assert apps.read_namespaced_deployment("phu-giao-dashboard", ns).spec.replicas == 2
        wait_for(lambda: core.read_namespaced_config_map(first, ns), 20, f"{first} repaired")
        with clickhouse_admin(clickhouse) as admin:
            databases = {r["name"] for r in admin.query("SHOW DATABASES")}
        # The communes are served by the district's dashboard (the reference model's default): no database of
        # their own, their status naming the district.
        assert f"ioc_site_{DISTRICT}" in databases
        assert not {f"ioc_site_{code}" for code in communes} & databases
        for code in communes:
            status = api.get_namespaced_custom_object(GROUP, VERSION, ns, "iocsites", f"pg-{code}")["status"]
            assert status["servedBy"] == f"{ns}/phu-giao" and status["database"] == f"ioc_site_{DISTRICT}"

        for name in reversed(names):
            api.delete_namespaced_custom_object(GROUP, VERSION, ns, "iocsites", name)
        wait_for(lambda: not api.list_namespaced_custom_object(GROUP, VERSION, ns, "iocsites")["items"], 60, "deleted")
    finally:
        restarted.stop()
