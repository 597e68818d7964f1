"""The chart on the real local kube-apiserver: server-side validation, a real `helm install`, and the operator at work.

1. Every rendered object (hooks and the chart test included) passes a server-side dry-run apply with strict
   field validation, the CRDs applied first; every pod it would create is admitted by the API server's own
   PodSecurity admission in a namespace that enforces "restricted".
2. `helm install` with the admin kubeconfig creates every object of the release (hooks skipped: this API
   server has no controller-manager, so the migrations Job would never run; the test runs the Job's own
   command line here instead, against the real ClickHouse).
3. The operator runs here as `python -m operators` with the environment of the installed Deployment
   (secretKeyRefs resolved from the installed Secrets) and a TokenRequest token of the chart's
   ServiceAccount, as tests/operators/test_rbac.py does; an IOCSite applied with kubectl becomes Ready
   with its ConfigMap, dashboard Deployment and Service, without a single refusal.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ioc.clients import dynsec
from ioc.settings import MqttEndpoint
from iocctl.localstack.kube import write_kubeconfig
from iocctl.localstack.process import free_port
from operators import crds
from tests.charts import pss
from tests.charts.conftest import CHART, Helm, container, one
from tests.operators.conftest import OperatorProcess, kubectl, ready, site, wait_for

DATABASE = "ioc_charttest"
"""The warehouse the installed release uses: not `ioc` (the streams tests') nor the operator tests' one."""
UNIT = "723"
"""Tân Uyên: a district no other test module provisions (site databases are named by unit, server-wide)."""
PSS_MODES = ("enforce", "warn", "audit")
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in PSS_MODES} | {
    f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in PSS_MODES
}
"""Namespace labels: the API server's PodSecurity admission enforces, warns about and audits "restricted"."""


def _namespace(kube: dict[str, Any], prefix: str, labels: dict[str, str] | None = None) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    kubectl(kube, "create", "-f", "-", stdin=json.dumps(body))
    return name


def _secret(kube: dict[str, Any], namespace: str, name: str, data: dict[str, str]) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}
    kubectl(kube, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))


def _get(kube: dict[str, Any], *args: str) -> dict[str, Any]:
    return dict(json.loads(kubectl(kube, "get", *args, "-o", "json").stdout))


@pytest.fixture(scope="module")
def chart_crds(kube: dict[str, Any]) -> dict[str, Any]:
    """The chart's crds/ applied (server-side) and Established."""
    kubectl(kube, "apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    names = [f"crd/{c['metadata']['name']}" for c in crds.crd_files().values()]
    kubectl(kube, "wait", "--for=condition=Established", "--timeout=60s", *names)
    return kube


# --- 1. server-side validation ------------------------------------------------------------------------------


def test_every_rendered_object_passes_server_side_validation(
    chart_crds: dict[str, Any], helm: Helm, tmp_path: Path
) -> None:
    kube = chart_crds
    namespace = _namespace(kube, "ioc-dry", RESTRICTED)
    # Every feature this API server has the CRDs for (Strimzi's and Altinity's are not installed here).
    objects = helm.template(
        "clickhouse.auth.existingSecret=ch-admin",
        "mqtt.auth.existingSecret=mqtt-admin",
        "mqtt.tls.enabled=true",
        "mqtt.tls.caSecret=mqtt-ca",
        "bridge.mqttAuth.existingSecret=bridge-mqtt",
        "streams.clickhouseAuth.existingSecret=streams-writer",
        "operator.resources.limits.memory=512Mi",
        "imagePullSecrets[0].name=regcred",
        "api.clients.existingSecret=api-clients",
        "gateway.enabled=true",
        "gateway.existingSecret=gateway",
        "reporting.enabled=true",
        "reporting.existingSecret=reporting",
        "ingress.enabled=true",
        "ingress.tls.secretName=ioc-tls",
        # The warehouse's NetworkPolicy, for an in-cluster ClickHouse (here: in this namespace), and the site
        # logins' networks.
        f"clickhouse.networkPolicy.namespace={namespace}",
        "clickhouse.networkPolicy.podSelector.app=clickhouse",
        "clickhouse.siteReaderNetworks[0]=10.244.0.0/16",
        namespace=namespace,
    )
    assert [o["kind"] for o in objects].count("NetworkPolicy") == 1
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
    done = kubectl(
        kube,
        "apply",
        "--server-side",
        "--dry-run=server",
        "--validate=strict",
        "--force-conflicts",
        "--field-manager=ioc-chart-test",
        "-f",
        str(manifest),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr  # e.g. "would violate PodSecurity", unknown fields
    applied = [line for line in done.stdout.splitlines() if "serverside-applied (server dry run)" in line]
    assert len(applied) == len(objects), done.stdout

    # The pods themselves, judged by the API server's PodSecurity admission ("restricted", enforced). A
    # StatefulSet's pod also gets a volume per claim template, as its controller adds them (the gateway's).
    claims = {
        f"StatefulSet/{o['metadata']['name']}": [
            {"name": t["metadata"]["name"], "persistentVolumeClaim": {"claimName": t["metadata"]["name"]}}
            for t in o["spec"].get("volumeClaimTemplates", [])
        ]
        for o in objects
        if o["kind"] == "StatefulSet"
    }
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"pss-{i}", "namespace": namespace, "labels": meta.get("labels", {})},
            "spec": {**spec, "volumes": [*spec.get("volumes", []), *claims.get(where, [])]},
        }
        for i, (where, meta, spec) in enumerate(pss.pod_specs(objects))
    ]
    assert len(pods) == 8  # operator, bridge, streams, API, gateway, reporting, migrations, chart test
    pod_file = tmp_path / "pods.yaml"
    pod_file.write_text(yaml.safe_dump_all(pods), encoding="utf-8")
    done = kubectl(kube, "create", "--dry-run=server", "-f", str(pod_file), check=False)
    assert done.returncode == 0, done.stderr
    # The control: the same admission refuses a pod that escalates privileges.
    bad = json.loads(json.dumps(pods[0]))
    bad["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    done = kubectl(kube, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(bad), check=False)
    assert done.returncode != 0 and "violates PodSecurity" in done.stderr, done.stderr


# --- 2. helm install ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release(
    chart_crds: dict[str, Any],
    helm: Helm,
    clickhouse: dict[str, Any],
    kafka: dict[str, Any],
    mosquitto: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """The chart installed with the admin kubeconfig, its endpoints the local stack's, its warehouse migrated."""
    kube = chart_crds
    name = f"ioc-{uuid.uuid4().hex[:5]}"
    namespace = _namespace(kube, "ioc-system", RESTRICTED)
    _secret(kube, namespace, "ioc-clickhouse-admin", {"user": clickhouse["user"], "password": clickhouse["password"]})
    _secret(
        kube,
        namespace,
        "ioc-mqtt-admin",
        {"username": mosquitto["admin_user"], "password": mosquitto["admin_password"]},
    )
    # The chart's defaults: MQTT over TLS (the broker's CA in ioc-mqtt-ca) and the bridge's own login.
    _secret(kube, namespace, "ioc-mqtt-ca", {"ca.crt": Path(mosquitto["ca_file"]).read_text(encoding="utf-8")})
    _secret(
        kube,
        namespace,
        "ioc-bridge-mqtt",
        {"username": f"ioc-bridge-{name}", "password": uuid.uuid4().hex},
    )
    # Kafka as the chart expects an external one: SCRAM over TLS, the brokers' CA in ioc-kafka-ca and each
    # component's password in the Secret named after its principal (a stack without authentication: PLAINTEXT).
    # Topics with the copies the stack's brokers can hold (the chart's default, 3/2, needs three brokers).
    kafka_values: dict[str, Any] = {
        "bootstrap": kafka["bootstrap"],
        "replicationFactor": int(kafka.get("replication_factor", 1)),
        "minInsyncReplicas": int(kafka.get("min_insync_replicas", 1)),
    }
    if "principals" in kafka:
        _secret(kube, namespace, "ioc-kafka-ca", {"ca.crt": Path(kafka["ca_file"]).read_text(encoding="utf-8")})
        for principal, password in kafka["principals"].items():
            if principal != kafka["admin_principal"]:
                _secret(kube, namespace, principal, {"password": password})
    else:
        kafka_values["securityProtocol"] = "PLAINTEXT"
    values = {
        "kafka": kafka_values,
        "clickhouse": {
            "host": clickhouse["host"],
            "port": clickhouse["port"],
            "httpPort": clickhouse["http_port"],
            "database": DATABASE,
            "auth": {"existingSecret": "ioc-clickhouse-admin"},
        },
        "mqtt": {
            "host": mosquitto["host"],
            "port": mosquitto["tls_port"],
            "auth": {"existingSecret": "ioc-mqtt-admin"},
        },
        # The opt-in to a generated key (kept through Helm's lookup), so that path runs on a real API server;
        # the default, an existing Secret, is what tests/node/test_chart.py installs.
        "operator": {"secretKey": {"existingSecret": "", "generate": True}},
    }
    values_file = tmp_path_factory.mktemp("release") / "values.yaml"
    values_file.write_text(yaml.safe_dump(values), encoding="utf-8")
    secrets = {"CLICKHOUSE_USER": clickhouse["user"], "CLICKHOUSE_PASSWORD": clickhouse["password"]}
    _run_migrations_job(helm.template(namespace=namespace, release=name, values=values_file), secrets)
    _adopt_default_reference_model(kube, name, namespace)
    installed = helm.run(
        "install",
        name,
        str(CHART),
        "--namespace",
        namespace,
        "--kubeconfig",
        kube["kubeconfig"],
        "--values",
        str(values_file),
        "--no-hooks",
        "--timeout",
        "2m",
    )
    try:
        yield {
            "name": name,
            "namespace": namespace,
            "notes": installed.stdout,
            "kube": kube,
            "values": values,
            "mqtt_ca_file": mosquitto["ca_file"],
            "kafka_ca_file": kafka.get("ca_file"),
            "mosquitto": mosquitto,
        }
    finally:
        helm.run("uninstall", name, "--namespace", namespace, "--kubeconfig", kube["kubeconfig"], check=False)


def _run_migrations_job(objects: list[dict[str, Any]], secrets: dict[str, str]) -> None:
    """The hook Job's own command line, run here: its $(VAR)s expanded as the kubelet would."""
    job = container(one(objects, "Job", "migrations"))
    argv = [re.sub(r"\$\((\w+)\)", lambda m: secrets[m.group(1)], arg) for arg in [*job["command"], *job["args"]]]
    assert argv[0] == "ioc"
    argv[0] = str(Path(sys.executable).parent / "ioc")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{DATABASE}:" in done.stdout


def _adopt_default_reference_model(kube: dict[str, Any], release: str, namespace: str) -> None:
    # The operator creates "default" at startup when missing (an earlier test's operator may have): helm
    # adopts an existing object only when it carries the release's ownership metadata, as NOTES/values say.
    if kubectl(kube, "get", "referencemodel", "default", check=False).returncode != 0:
        return
    kubectl(kube, "label", "--overwrite", "referencemodel", "default", "app.kubernetes.io/managed-by=Helm")
    kubectl(
        kube,
        "annotate",
        "--overwrite",
        "referencemodel",
        "default",
        f"meta.helm.sh/release-name={release}",
        f"meta.helm.sh/release-namespace={namespace}",
    )


def test_helm_install_creates_every_object(release: dict[str, Any], helm: Helm) -> None:
    kube, namespace = release["kube"], release["namespace"]
    status = helm.run("status", release["name"], "-n", namespace, "--kubeconfig", kube["kubeconfig"], "-o", "json")
    assert json.loads(status.stdout)["info"]["status"] == "deployed"
    manifest = helm.run("get", "manifest", release["name"], "-n", namespace, "--kubeconfig", kube["kubeconfig"])
    objects = [doc for doc in yaml.safe_load_all(manifest.stdout) if doc]
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == sorted(
        {
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "ReferenceModel",
            "Secret",
            "Service",
            "ServiceAccount",
            "StatefulSet",
        }
    )
    for obj in objects:
        where = ["-n", namespace] if obj["metadata"].get("namespace") else []
        live = _get(kube, obj["kind"].lower(), obj["metadata"]["name"], *where)
        assert live["metadata"]["labels"]["app.kubernetes.io/instance"] == release["name"]
    model = _get(kube, "referencemodel", "default")
    assert model["metadata"]["annotations"]["meta.helm.sh/release-name"] == release["name"]


def test_notes_print_the_next_commands(release: dict[str, Any]) -> None:
    notes = release["notes"]
    operator = f"{release['name']}-ioc-platform-operator"
    assert f"kubectl -n {release['namespace']} rollout status deployment/{operator}" in notes
    assert "kubectl -n ioc-sites apply -f -" in notes
    assert "kind: IOCSite" in notes
    assert "kubectl -n ioc-sites port-forward service/di-an-dashboard 8501:80" in notes
    assert f"helm test {release['name']} -n {release['namespace']}" in notes
    api = f"{release['name']}-ioc-platform-api"
    assert f"kubectl -n {release['namespace']} port-forward service/{api} 8080:80" in notes
    assert "curl http://localhost:8080/open311/v2/services.json" in notes
    # The IOCSite in NOTES is one the CRD accepts.
    manifest = notes.split("cat <<'YAML' | kubectl -n ioc-sites apply -f -\n", 1)[1].split("  YAML\n", 1)[0]
    body = yaml.safe_load("\n".join(line.removeprefix("  ") for line in manifest.splitlines()))
    assert body["kind"] == "IOCSite"
    done = kubectl(
        release["kube"], "apply", "--dry-run=server", "-n", "default", "-f", "-", stdin=json.dumps(body), check=False
    )
    assert done.returncode == 0, done.stderr


# --- 3. the operator, with the chart's ServiceAccount ---------------------------------------------------------------


def _operator_environment(kube: dict[str, Any], namespace: str, deployment: dict[str, Any]) -> dict[str, str]:
    """The installed operator container's environment, each secretKeyRef read from its Secret."""
    resolved: dict[str, str] = {}
    secrets: dict[str, dict[str, str]] = {}
    for item in container(deployment)["env"]:
        if "value" in item:
            resolved[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        if ref["name"] not in secrets:
            secrets[ref["name"]] = _get(kube, "secret", ref["name"], "-n", namespace)["data"]
        resolved[item["name"]] = base64.b64decode(secrets[ref["name"]][ref["key"]]).decode()
    return resolved


def test_the_operator_reconciles_a_site_with_the_charts_service_account(
    release: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path
) -> None:
    kube, namespace = release["kube"], release["namespace"]
    deployment = _get(kube, "deployment", f"{release['name']}-ioc-platform-operator", "-n", namespace)
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    token = kubectl(kube, "create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    kubeconfig = tmp_path / "operator.kubeconfig"
    write_kubeconfig(kubeconfig, kube["server"], Path(kube["ca_file"]), account, token)
    who = json.loads(
        subprocess.run(
            [kube["kubectl"], f"--kubeconfig={kubeconfig}", "auth", "whoami", "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:{account}"

    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(_operator_environment(kube, namespace, deployment))
    env.update(
        {
            # What differs from the pod: no in-cluster config here, so the token's kubeconfig; ...
            "IOC_OPERATOR_KUBE__KUBECONFIG": str(kubeconfig),
            # ... the local ClickHouse 18.16 has no CREATE USER, so site logins go to its users.d; ...
            "IOC_OPERATOR_CLICKHOUSE_USERS_D": clickhouse["users_d"],
            # ... the pod's liveness port may be taken on this machine; ...
            "IOC_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{free_port()}/healthz",
            # ... and the CA the pod mounts from ioc-mqtt-ca is the stack's file here.
            "IOC_OPERATOR_MQTT__TLS_CA_FILE": release["mqtt_ca_file"],
        }
    )
    if release["kafka_ca_file"]:  # ... and the Kafka CA it mounts from ioc-kafka-ca
        env["IOC_OPERATOR_KAFKA__CA_FILE"] = release["kafka_ca_file"]
    assert env["IOC_OPERATOR_KAFKA__BOOTSTRAP"] == release["values"]["kafka"]["bootstrap"]
    assert env["IOC_OPERATOR_CLICKHOUSE__DATABASE"] == DATABASE
    assert "IOC_OPERATOR_NAMESPACE" not in env, "the chart's operator watches every namespace"

    sites = _namespace(kube, "ioc-sites")
    name = "tan-uyen"
    operator = OperatorProcess(env, tmp_path / "operator.log").start()
    try:
        kubectl(kube, "apply", "-n", sites, "-f", "-", stdin=json.dumps(site(name, UNIT, "district")))
        found = wait_for(lambda: ready(kube, sites, name), 90, f"{name} Ready\n{operator.text()[-3000:]}")
        assert found["status"]["database"] == f"ioc_site_{UNIT}"
        # The bridge's own login (bridge.mqttAuth), created by the operator with role ioc-bridge only.
        broker = release["mosquitto"]
        admin = MqttEndpoint(
            host=broker["host"], port=broker["port"], username=broker["admin_user"], password=broker["admin_password"]
        )
        with dynsec.DynsecAdmin(admin) as control:
            bridge = control.get_client(env["IOC_OPERATOR_BRIDGE_USERNAME"])
        assert bridge is not None and [r["rolename"] for r in bridge["roles"]] == [dynsec.BRIDGE_ROLE]
        config_map = _get(kube, "configmap", f"{name}-config", "-n", sites)
        assert "site.json" in config_map["data"]
        dashboard = _get(kube, "deployment", f"{name}-dashboard", "-n", sites)
        # The site's dashboard runs the release's image (IOC_OPERATOR_IMAGE from the chart).
        assert container(dashboard)["image"] == env["IOC_OPERATOR_IMAGE"]
        assert container(dashboard)["command"] == ["ioc", "dashboard", "--site", UNIT]
        _get(kube, "service", f"{name}-dashboard", "-n", sites)
        # The chart's ReferenceModel is the one the site follows; the operator left it alone.
        model = _get(kube, "referencemodel", "default")
        assert model["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"

        kubectl(kube, "delete", "iocsite", name, "-n", sites, "--wait=false")
        wait_for(
            lambda: kubectl(kube, "get", "iocsite", name, "-n", sites, check=False).returncode != 0,
            60,
            f"{name} finalized and gone\n{operator.text()[-3000:]}",
        )
    finally:
        operator.stop()
    log = operator.text()
    refusals = [line for line in log.splitlines() if "orbidden" in line]
    assert not refusals, "\n".join(refusals[:20])
    assert "Handler 'provision' succeeded" in log and "Handler 'cleanup' succeeded" in log


def test_the_installed_workloads_still_meet_the_standard(release: dict[str, Any]) -> None:
    """As stored (defaults filled in by the API server), the release's workloads are still "restricted"."""
    kube, namespace = release["kube"], release["namespace"]
    labels = _get(kube, "namespace", namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    workloads = [
        {**item, "kind": kind}
        for kind, plural in (("Deployment", "deployments"), ("StatefulSet", "statefulsets"))
        for item in _get(kube, plural, "-n", namespace)["items"]
    ]
    assert len(workloads) == 4, [w["metadata"]["name"] for w in workloads]  # operator, bridge, streams, API
    assert pss.check(workloads) == []
