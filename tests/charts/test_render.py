"""The chart as helm renders it: lint, labels, the restricted Pod Security Standard, and agreement with the code.

Every check reads `helm template` output (no cluster): the ClusterRole is operators.rbac's rules, the
ReferenceModel is the packaged model, the CRDs are the generated ones, every IOC_* variable is a field of
the component's settings (ioc.settings) and parses there, credentials only come from Secrets, and the
image is the one values name. Marked slow: the first run builds helm from Go modules (minutes).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pydantic_settings
import pytest
import yaml
from click.testing import CliRunner

from ioc import kafka_access
from ioc.settings import (
    BridgeSettings,
    CitizenApiSettings,
    OperatorSettings,
    PortalGatewaySettings,
    ReportingSettings,
    StreamsSettings,
)
from iocctl import cli
from iocctl.localstack.install import HELM_VERSION
from operators import crds, rbac, runtime
from tests.charts import pss
from tests.charts.conftest import CHART, Helm, container, find, one, values_yaml

pytestmark = pytest.mark.slow

APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))["appVersion"]
EVERYTHING_ON = (
    "strimzi.enabled=true",
    "clickhouseInstallation.enabled=true",
    "clickhouse.auth.existingSecret=ioc-clickhouse-admin",
    "mqtt.auth.existingSecret=ioc-mqtt-admin",
    "mqtt.tls.enabled=true",
    "mqtt.tls.caSecret=ioc-mqtt-ca",
    "bridge.mqttAuth.existingSecret=ioc-bridge-mqtt",
    "streams.clickhouseAuth.existingSecret=ioc-streams-writer",
    "operator.secretKey.existingSecret=ioc-operator-key",
    "operator.watchNamespace=ioc-sites",
    "imagePullSecrets[0].name=regcred",
    "operator.nodeSelector.pool=system",
    "bridge.tolerations[0].key=dedicated",
    "streams.priorityClassName=high",
    "api.clients.existingSecret=ioc-api-clients",
    "api.clickhouseAuth.existingSecret=ioc-api-reader",
    "gateway.enabled=true",
    "gateway.existingSecret=ioc-gateway",
    "reporting.enabled=true",
    "reporting.existingSecret=ioc-reporting",
    "reporting.parentUrl=https://parent.example/reports/v1/upward",
    "ingress.enabled=true",
    "ingress.tls.secretName=ioc-tls",
)
SETTINGS: dict[str, type[pydantic_settings.BaseSettings]] = {
    "IOC_OPERATOR_": OperatorSettings,
    "IOC_BRIDGE_": BridgeSettings,
    "IOC_STREAMS_": StreamsSettings,
    "IOC_API_": CitizenApiSettings,
    "IOC_PORTAL_": PortalGatewaySettings,
    "IOC_REPORTING_": ReportingSettings,
}
JSON_SECRETS = {"IOC_API_CLIENTS": '{"app": {"key": "k"}}', "IOC_PORTAL_WEBHOOK_SECRETS": '["s"]'}
"""What a Secret holds for the settings that are JSON (a client table, a list of HMAC secrets)."""
STANDARD_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/component",
)


@pytest.fixture(scope="module")
def everything(helm: Helm) -> list[dict[str, Any]]:
    """The chart with every optional feature on."""
    return helm.template(*EVERYTHING_ON)


# --- helm and lint --------------------------------------------------------------------------------------------


def test_helm_is_the_pinned_build_that_ioc_deps_reports(helm: Helm) -> None:
    done = CliRunner().invoke(cli.cli, ["deps", "--which", "helm"])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == str(helm.binary)
    assert helm.run("version", "--template", "{{.Version}}").stdout == HELM_VERSION
    # Built with its client-go's Kubernetes version: with helm's v1.20 fallback, Chart.yaml's kubeVersion
    # (>=1.27) would refuse to render without a cluster, and `make lint` with it.
    helm.run("template", "x", str(CHART))


@pytest.mark.parametrize("sets", [(), EVERYTHING_ON], ids=["defaults", "everything-on"])
def test_helm_lint_strict(helm: Helm, sets: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for item in sets:
        args += ["--set", item]
    done = helm.run(*args)
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def test_helm_enforces_the_schema(helm: Helm) -> None:
    done = helm.run("template", "ioc", str(CHART), "--set", "bridge.replica=3", check=False)
    assert done.returncode != 0
    assert "replica" in done.stderr


# --- labels and names ---------------------------------------------------------------------------------------


def test_every_object_has_the_standard_labels(everything: list[dict[str, Any]]) -> None:
    for obj in everything:
        labels = obj["metadata"].get("labels", {})
        missing = [label for label in STANDARD_LABELS if label not in labels]
        assert not missing, f"{obj['kind']}/{obj['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == APP_VERSION


def test_selectors_select_their_own_pods(everything: list[dict[str, Any]]) -> None:
    for obj in everything:
        if obj["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        selector = obj["spec"]["selector"]["matchLabels"]
        pod_labels = obj["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        assert "app.kubernetes.io/version" not in selector, "a selector must not change on upgrade"
    workloads = [o for o in everything if o["kind"] in {"Deployment", "StatefulSet"}]
    components = [o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for o in workloads]
    assert len(components) == len(set(components)), "two workloads would select each other's pods"


def test_full_name_overrides(helm: Helm) -> None:
    objects = helm.template("fullnameOverride=iocp", release="prod")
    assert one(objects, "Deployment", "operator")["metadata"]["name"] == "iocp-operator"
    objects = helm.template(release="ioc-platform")
    assert one(objects, "StatefulSet", "bridge")["metadata"]["name"] == "ioc-platform-bridge"


# --- security -------------------------------------------------------------------------------------------------


def test_every_pod_meets_the_restricted_standard(
    rendered: list[dict[str, Any]], everything: list[dict[str, Any]]
) -> None:
    # operator, bridge, streams, the citizen API, the migrations Job and the chart test; with everything on
    # also the portal gateway and the reporting service.
    for objects, count in ((rendered, 6), (everything, 8)):
        pods = list(pss.pod_specs(objects))
        assert len(pods) == count, [where for where, _, _ in pods]
        assert pss.check(objects) == []


def test_only_the_operator_gets_an_api_token(rendered: list[dict[str, Any]]) -> None:
    for where, _, spec in pss.pod_specs(rendered):
        operator = where.startswith("Deployment/") and where.endswith("-operator")
        assert spec.get("automountServiceAccountToken") is operator, where


def test_credentials_come_only_from_secrets(everything: list[dict[str, Any]]) -> None:
    for _where, _, spec in pss.pod_specs(everything):
        for env in spec["containers"][0].get("env", []):
            # A Kafka principal is public (its KafkaUser's name, named by ACLs); the Secret holds the password.
            public = env["name"].endswith("KAFKA__USERNAME")
            if env["name"].endswith(("PASSWORD", "SECRET_KEY", "USERNAME", "USER")) and not public:
                assert "secretKeyRef" in env.get("valueFrom", {}), env
    assert not find(everything, "Secret"), "with existingSecret set the chart creates no Secret"


def test_each_component_uses_its_own_credentials(everything: list[dict[str, Any]]) -> None:
    def secret_of(obj: dict[str, Any], suffix: str) -> str:
        env = {e["name"]: e for e in container(obj)["env"]}
        name = next(n for n in env if n.endswith(suffix))
        return str(env[name]["valueFrom"]["secretKeyRef"]["name"])

    assert secret_of(one(everything, "Deployment", "operator"), "MQTT__PASSWORD") == "ioc-mqtt-admin"
    assert secret_of(one(everything, "Deployment", "operator"), "CLICKHOUSE__PASSWORD") == "ioc-clickhouse-admin"
    assert secret_of(one(everything, "Deployment", "operator"), "SECRET_KEY") == "ioc-operator-key"
    assert secret_of(one(everything, "StatefulSet", "bridge"), "MQTT__PASSWORD") == "ioc-bridge-mqtt"
    assert secret_of(one(everything, "Deployment", "streams"), "CLICKHOUSE__PASSWORD") == "ioc-streams-writer"
    # One Kafka principal each (ioc.kafka_access), its password from its own KafkaUser's Secret.
    kafka_secrets = {
        secret_of(one(everything, kind, name), "KAFKA__PASSWORD")
        for kind, name in (("StatefulSet", "bridge"), ("Deployment", "streams"), ("Deployment", "operator"))
    }
    assert kafka_secrets == {"ioc-bridge", "ioc-streams", "ioc-operator"}


def test_the_operator_key_is_generated_only_when_asked(helm: Helm) -> None:
    generated = helm.template("operator.secretKey.existingSecret=", "operator.secretKey.generate=true")
    secret = one(generated, "Secret", "operator")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert len(base64.b64decode(secret["data"]["secret-key"])) >= 32
    env = {e["name"]: e for e in container(one(generated, "Deployment", "operator"))["env"]}
    assert env["IOC_OPERATOR_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]


# --- agreement with the code ------------------------------------------------------------------------------------


def test_the_cluster_role_is_the_operators_rules(rendered: list[dict[str, Any]]) -> None:
    role = one(rendered, "ClusterRole", "operator")
    assert role["rules"] == rbac.CLUSTER_ROLE_RULES
    binding = one(rendered, "ClusterRoleBinding", "operator")
    account = one(rendered, "ServiceAccount", "operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "ioc-system"}
    ]
    deployment = one(rendered, "Deployment", "operator")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]


def test_the_reference_model_is_the_packaged_one(rendered: list[dict[str, Any]]) -> None:
    model = one(rendered, "ReferenceModel")
    expected = runtime.default_reference_model_manifest()
    assert model["apiVersion"] == expected["apiVersion"]
    assert model["metadata"]["name"] == expected["metadata"]["name"] == "default"
    assert model["spec"] == expected["spec"]


def test_helm_installs_exactly_the_generated_crds(helm: Helm) -> None:
    # `helm show crds` concatenates the files without separators; --include-crds renders them one by one.
    shown = find(helm.template(extra=("--include-crds",)), "CustomResourceDefinition")
    assert sorted(shown, key=lambda c: c["metadata"]["name"]) == sorted(
        crds.crd_files().values(), key=lambda c: c["metadata"]["name"]
    )


def test_every_variable_is_a_setting_and_parses(
    everything: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = 0
    for obj in everything:
        if obj["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        env = container(obj)["env"]
        prefixes = {p for p in SETTINGS for e in env if e["name"].startswith(p)}
        assert len(prefixes) == 1, f"{obj['metadata']['name']}: one component's settings per container"
        prefix = prefixes.pop()
        cls = SETTINGS[prefix]
        for item in env:
            name = item["name"]
            if not name.startswith("IOC_"):
                continue
            assert name.startswith(prefix), name
            _assert_is_field(cls, name.removeprefix(prefix).lower().split("__"), name)
        for key in [k for k in os.environ if k.startswith("IOC_")]:
            monkeypatch.delenv(key)
        for item in env:
            value = item.get("value") or (
                "pod-0" if "fieldRef" in item.get("valueFrom", {}) else JSON_SECRETS.get(item["name"], "from-a-secret")
            )
            monkeypatch.setenv(item["name"], value)
        settings: Any = cls()  # extra="forbid": an unknown nested name or a bad value fails here
        checked += 1
        if cls is OperatorSettings:
            assert settings.kafka.bootstrap.endswith("-kafka-kafka-bootstrap.ioc-system.svc:9093")  # TLS listener
            assert (settings.kafka.security_protocol, settings.kafka.username) == ("SASL_SSL", "ioc-operator")
            assert settings.clickhouse.host == "clickhouse-ioc-ioc-platform-ch.ioc-system.svc"
            assert settings.namespace == "ioc-sites"
            assert settings.image == f"ghcr.io/ioc-platform/ioc:{APP_VERSION}"
            assert settings.workers == values_yaml()["operator"]["workers"]
            assert settings.mqtt.tls_ca_file is not None
        elif cls is BridgeSettings:
            assert settings.replica == "pod-0"
            assert settings.device_rate_per_s == values_yaml()["bridge"]["deviceRatePerSecond"]
        elif cls is StreamsSettings:
            assert settings.database == settings.clickhouse.database == values_yaml()["clickhouse"]["database"]
            assert settings.sink_flush_s == values_yaml()["streams"]["sinkFlushSeconds"]
            assert settings.fetch_min_bytes == values_yaml()["streams"]["fetchMinBytes"]
            assert settings.fetch_max_wait_ms == values_yaml()["streams"]["fetchMaxWaitMs"]
    assert checked == 6


def _assert_is_field(cls: type[Any], parts: list[str], name: str) -> None:
    fields = cls.model_fields
    assert parts[0] in fields, f"{name}: {cls.__name__} has no field {parts[0]!r}"
    if len(parts) > 1:
        nested = fields[parts[0]].annotation
        _assert_is_field(nested, parts[1:], name)


# --- components -------------------------------------------------------------------------------------------------


def test_images_come_from_values(helm: Helm, rendered: list[dict[str, Any]]) -> None:
    def images(objects: list[dict[str, Any]]) -> set[str]:
        return {c["image"] for _, _, spec in pss.pod_specs(objects) for c in spec["containers"]}

    assert images(rendered) == {f"{values_yaml()['image']['repository']}:{APP_VERSION}"}
    tagged = helm.template("image.repository=registry.local/ioc", "image.tag=1.2.3")
    assert images(tagged) == {"registry.local/ioc:1.2.3"}
    env = {e["name"]: e.get("value") for e in container(one(tagged, "Deployment", "operator"))["env"]}
    assert env["IOC_OPERATOR_IMAGE"] == "registry.local/ioc:1.2.3", "site dashboards get the release's image"
    digest = "sha256:" + "a" * 64
    assert images(helm.template(f"image.digest={digest}")) == {f"ghcr.io/ioc-platform/ioc@{digest}"}


def test_the_operator_is_one_replica_recreated(rendered: list[dict[str, Any]]) -> None:
    deployment = one(rendered, "Deployment", "operator")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    probe = container(deployment)["livenessProbe"]["httpGet"]
    env = {e["name"]: e.get("value") for e in container(deployment)["env"]}
    assert env["IOC_OPERATOR_LIVENESS_ENDPOINT"].endswith(f":{values_yaml()['operator']['livenessPort']}/healthz")
    assert probe["path"] == "/healthz"


def test_the_bridge_replicas_have_stable_names(rendered: list[dict[str, Any]]) -> None:
    bridge = one(rendered, "StatefulSet", "bridge")
    assert not find(rendered, "Deployment", "bridge")
    service = one(rendered, "Service", "bridge")
    assert bridge["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert bridge["spec"]["replicas"] == values_yaml()["bridge"]["replicas"]
    env = {e["name"]: e for e in container(bridge)["env"]}
    assert env["IOC_BRIDGE_REPLICA"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_the_stream_workers_keep_state_in_scratch_space(rendered: list[dict[str, Any]]) -> None:
    streams = one(rendered, "Deployment", "streams")
    env = {e["name"]: e.get("value") for e in container(streams)["env"]}
    mounts = {m["mountPath"] for m in container(streams)["volumeMounts"]}
    assert env["IOC_STREAMS_DATA_DIR"] in mounts
    assert container(streams)["command"] == ["python", "-m", "streams", "worker"]


def test_resources_are_unset_by_default(helm: Helm, rendered: list[dict[str, Any]]) -> None:
    for _, _, spec in pss.pod_specs(rendered):
        assert "resources" not in spec["containers"][0]
    sized = helm.template("operator.resources.limits.memory=512Mi", "streams.resources.requests.cpu=500m")
    assert container(one(sized, "Deployment", "operator"))["resources"] == {"limits": {"memory": "512Mi"}}
    assert container(one(sized, "Deployment", "streams"))["resources"] == {"requests": {"cpu": "500m"}}


def test_the_migrations_run_before_install_and_upgrade(helm: Helm, rendered: list[dict[str, Any]]) -> None:
    job = one(rendered, "Job", "migrations")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    migrate = container(job)
    assert migrate["command"] == ["ioc", "warehouse", "migrate"]
    assert f"--database={values_yaml()['clickhouse']['database']}" in migrate["args"]
    assert not find(helm.template("migrations.enabled=false"), "Job")


def test_optional_dependencies_are_off_by_default_and_wired_when_on(
    rendered: list[dict[str, Any]], everything: list[dict[str, Any]]
) -> None:
    for kind in ("Kafka", "KafkaNodePool", "ClickHouseInstallation"):
        assert not find(rendered, kind)
        assert find(everything, kind)
    kafka = one(everything, "Kafka")
    assert one(everything, "KafkaNodePool")["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    chi = one(everything, "ClickHouseInstallation")
    env = {e["name"]: e.get("value") for e in container(one(everything, "Deployment", "streams"))["env"]}
    assert env["IOC_STREAMS_KAFKA__BOOTSTRAP"] == f"{kafka['metadata']['name']}-kafka-bootstrap.ioc-system.svc:9093"
    # SCRAM over TLS on its only listener, ACLs enforced; one KafkaUser per component, as ioc.kafka_access says.
    [listener] = kafka["spec"]["kafka"]["listeners"]
    assert (listener["tls"], listener["authentication"]["type"]) == (True, "scram-sha-512")
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    users = {u["metadata"]["name"]: u for u in find(everything, "KafkaUser")}
    assert set(users) == set(kafka_access.COMPONENT_GRANTS)
    assert users["ioc-bridge"]["spec"]["authorization"]["acls"] == kafka_access.strimzi_acls(
        kafka_access.COMPONENT_GRANTS["ioc-bridge"]
    )
    assert env["IOC_STREAMS_CLICKHOUSE__HOST"] == f"clickhouse-{chi['metadata']['name']}.ioc-system.svc"
    # The first migration cannot run before the in-cluster ClickHouse exists.
    assert one(everything, "Job")["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"


def test_mqtt_tls_mounts_the_ca_where_the_settings_point(everything: list[dict[str, Any]]) -> None:
    for obj in (one(everything, "Deployment", "operator"), one(everything, "StatefulSet", "bridge")):
        main = container(obj)
        env = {e["name"]: e.get("value") for e in main["env"]}
        ca_file = next(v for k, v in env.items() if k.endswith("MQTT__TLS_CA_FILE"))
        mount = next(m for m in main["volumeMounts"] if m["name"] == "mqtt-ca")
        assert ca_file.startswith(mount["mountPath"] + "/")
        volume = next(v for v in obj["spec"]["template"]["spec"]["volumes"] if v["name"] == "mqtt-ca")
        assert volume["secret"]["secretName"] == "ioc-mqtt-ca"


def test_a_chart_test_checks_the_warehouse(rendered: list[dict[str, Any]], helm: Helm) -> None:
    pod = one(rendered, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert "ioc warehouse status" in container(pod)["args"][0]
    assert not find(helm.template("tests.enabled=false"), "Pod")
