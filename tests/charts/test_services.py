"""The chart's HTTP services and reporter as helm renders them: the citizen API, the portal gateway, upward
reporting and the Ingress in front of the first two.

Each workload runs its component's entry point with settings the code accepts, listens where its probes,
Service and Ingress point, takes every credential from a Secret by reference and meets the restricted Pod
Security Standard; the Ingress serves TLS from the named Secret and routes the paths the apps really serve
(read from their OpenAPI documents) to the right Service. Marked slow: rendering needs helm (tests/charts).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from dashboards.api.app import create_app as create_api
from ioc.settings import CitizenApiSettings, PortalGatewaySettings
from sensors.gateways.app import create_app as create_gateway
from sensors.gateways.state import GatewayState
from tests.charts import pss
from tests.charts.conftest import Helm, container, find, one, values_yaml
from tests.charts.test_values import schema

pytestmark = pytest.mark.slow

ALL_ON = (
    "api.clients.existingSecret=ioc-api-clients",
    "api.clickhouseAuth.existingSecret=ioc-api-reader",
    "gateway.enabled=true",
    "gateway.existingSecret=ioc-gateway",
    "gateway.pollUrl=https://portal.example/events",
    "gateway.reportKeys.724=cHVibGljLWtleQ==",
    "reporting.enabled=true",
    "reporting.existingSecret=ioc-reporting",
    "reporting.clickhouseAuth.existingSecret=ioc-reporting-reader",
    "reporting.parentUrl=https://parent.example/reports/v1/upward",
    "reporting.periodKinds={month,quarter}",
    "ingress.enabled=true",
    "ingress.className=nginx",
    "ingress.hosts={ioc.binhduong.gov.vn,api.binhduong.gov.vn}",
    "ingress.tls.secretName=ioc-tls",
    "ingress.annotations.cert-manager\\.io/cluster-issuer=letsencrypt",
)
COMPONENTS = (("api", "Deployment"), ("gateway", "StatefulSet"), ("reporting", "Deployment"))


class _NoKafka:
    """An EventSink that is never used: the apps are built only to read their routes."""

    async def send(self, topic: str, key: str, value: bytes, *, headers: Mapping[str, str] | None = None) -> None:
        raise AssertionError("not sent in these tests")

    def partitions(self, topic: str) -> int:
        return 1

    def close(self, timeout_s: float = 10.0) -> None:
        return None


@pytest.fixture(scope="module")
def services(helm: Helm) -> list[dict[str, Any]]:
    return helm.template(*ALL_ON)


@pytest.fixture(scope="module")
def served_paths() -> dict[str, set[str]]:
    """The paths each app serves, from its own OpenAPI document (no ClickHouse or Kafka needed)."""
    api = create_api(CitizenApiSettings(), sink=_NoKafka())
    gateway = create_gateway(PortalGatewaySettings(), sink=_NoKafka(), state=GatewayState(None))
    return {"api": set(api.openapi()["paths"]), "gateway": set(gateway.openapi()["paths"])}


def _env(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(obj)["env"]}


def _secret_ref(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(_env(obj)[name]["valueFrom"]["secretKeyRef"])


def _mount_of(obj: dict[str, Any], path: str) -> dict[str, Any]:
    """The volume mount holding a file path (the deepest mount above it)."""
    mounts = [m for m in container(obj)["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/")]
    assert mounts, f"{path} is on no volume"
    return max(mounts, key=lambda m: len(m["mountPath"]))


# --- defaults ---------------------------------------------------------------------------------------------------


def test_the_api_is_on_by_default_and_the_rest_off(rendered: list[dict[str, Any]]) -> None:
    values = values_yaml()
    assert values["api"]["enabled"]
    assert not values["gateway"]["enabled"] and not values["reporting"]["enabled"] and not values["ingress"]["enabled"]
    one(rendered, "Deployment", "api")
    one(rendered, "Service", "api")
    assert not find(rendered, "StatefulSet", "gateway") and not find(rendered, "Service", "gateway")
    assert not find(rendered, "Deployment", "reporting")
    assert not find(rendered, "Ingress")
    for component, _ in COMPONENTS:
        assert values[component]["resources"] == {}


def test_what_needs_a_secret_or_a_host_refuses_to_run_without(helm: Helm) -> None:
    validator = jsonschema.Draft7Validator(schema())
    for bad in (
        {"gateway": {"enabled": True}},
        {"reporting": {"enabled": True}},
        {"ingress": {"enabled": True}},  # no tls.secretName
        {"ingress": {"enabled": True, "hosts": [], "tls": {"secretName": "t"}}},
        {"api": {"siteUnit": "Bình Dương"}},
        {"reporting": {"periodKinds": ["week"]}},
        {"ingress": {"apiPaths": ["open311"]}},
    ):
        values = values_yaml()
        for key, sub in bad.items():
            values[key] = {**values[key], **sub}
        assert list(validator.iter_errors(values)), f"the schema accepted {bad}"
    done = helm.run("template", "ioc", "charts/ioc-platform", "--set", "gateway.enabled=true", check=False)
    assert done.returncode != 0 and "existingSecret" in done.stderr


# --- pods -------------------------------------------------------------------------------------------------------


def test_each_runs_its_entry_point_restricted_and_without_an_api_token(services: list[dict[str, Any]]) -> None:
    commands = {
        "api": ["python", "-m", "dashboards.api"],
        "gateway": ["python", "-m", "sensors.gateways"],
        "reporting": ["python", "-m", "streams.reporting"],
    }
    workloads = [one(services, kind, component) for component, kind in COMPONENTS]
    assert pss.check(workloads) == []
    for (component, _), obj in zip(COMPONENTS, workloads, strict=True):
        spec = obj["spec"]["template"]["spec"]
        assert container(obj)["command"] == commands[component]
        assert spec["automountServiceAccountToken"] is False
        assert container(obj)["securityContext"]["readOnlyRootFilesystem"] is True
        tmp = _mount_of(obj, "/tmp/x")
        assert next(v for v in spec["volumes"] if v["name"] == tmp["name"])["emptyDir"] is not None
        assert obj["spec"]["replicas"] == values_yaml()[component]["replicas"]


def test_every_credential_comes_from_its_own_secret(services: list[dict[str, Any]]) -> None:
    api = one(services, "Deployment", "api")
    gateway = one(services, "StatefulSet", "gateway")
    reporting = one(services, "Deployment", "reporting")
    assert _secret_ref(api, "IOC_API_CLIENTS") == {"name": "ioc-api-clients", "key": "clients.json"}
    assert _secret_ref(api, "IOC_API_CLICKHOUSE__PASSWORD")["name"] == "ioc-api-reader"
    assert _secret_ref(gateway, "IOC_PORTAL_WEBHOOK_SECRETS") == {"name": "ioc-gateway", "key": "webhook-secrets"}
    # Reading received reports and polling are optional: without their keys the gateway still starts.
    assert _secret_ref(gateway, "IOC_PORTAL_READ_TOKEN") == {
        "name": "ioc-gateway",
        "key": "read-token",
        "optional": True,
    }
    assert _secret_ref(gateway, "IOC_PORTAL_POLL_TOKEN") == {
        "name": "ioc-gateway",
        "key": "poll-token",
        "optional": True,
    }
    assert _secret_ref(reporting, "IOC_REPORTING_SIGNING_KEY") == {"name": "ioc-reporting", "key": "signing-key"}
    assert _secret_ref(reporting, "IOC_REPORTING_CLICKHOUSE__PASSWORD")["name"] == "ioc-reporting-reader"
    secret_like = ("PASSWORD", "USER", "CLIENTS", "SECRETS", "TOKEN", "SIGNING_KEY")
    for obj in (api, gateway, reporting):
        for name, item in _env(obj).items():
            if name.endswith(secret_like):
                assert "secretKeyRef" in item.get("valueFrom", {}), name
    assert not find(services, "Secret", "api") and not find(services, "Secret", "gateway")


def test_the_api_serves_the_site_on_its_probed_port(
    services: list[dict[str, Any]], rendered: list[dict[str, Any]], served_paths: dict[str, set[str]]
) -> None:
    api = one(services, "Deployment", "api")
    env = {k: v.get("value") for k, v in _env(api).items()}
    assert env["IOC_API_HOST"] == "0.0.0.0"
    (port,) = container(api)["ports"]
    assert port == {"name": "http", "containerPort": int(env["IOC_API_PORT"]), "protocol": "TCP"}
    assert env["IOC_API_SITE_UNIT"] == values_yaml()["api"]["siteUnit"]
    assert container(api)["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container(api)["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"/healthz", "/readyz"} <= served_paths["api"]
    # The Idempotency-Key ledger is a file on its own emptyDir, not the read-only root.
    ledger = _mount_of(api, env["IOC_API_IDEMPOTENCY_DB"])
    volume = next(v for v in api["spec"]["template"]["spec"]["volumes"] if v["name"] == ledger["name"])
    assert volume["emptyDir"]["sizeLimit"] == values_yaml()["api"]["ledgerSizeLimit"]
    # Without a clients Secret the API only reads: no IOC_API_CLIENTS at all (not an empty one).
    assert "IOC_API_CLIENTS" not in _env(one(rendered, "Deployment", "api"))


def test_the_gateway_keeps_its_state_on_a_volume_per_replica(
    helm: Helm, services: list[dict[str, Any]], served_paths: dict[str, set[str]]
) -> None:
    gateway = one(services, "StatefulSet", "gateway")
    service = one(services, "Service", "gateway")
    assert gateway["spec"]["serviceName"] == service["metadata"]["name"]
    env = {k: v.get("value") for k, v in _env(gateway).items()}
    assert env["IOC_PORTAL_HOST"] == "0.0.0.0"
    assert container(gateway)["ports"][0]["containerPort"] == int(env["IOC_PORTAL_PORT"])
    assert env["IOC_PORTAL_POLL_URL"] == "https://portal.example/events"
    assert env["IOC_PORTAL_REPORT_KEYS"] == '{"724":"cHVibGljLWtleQ=="}'
    assert container(gateway)["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container(gateway)["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert {"/healthz", "/readyz"} <= served_paths["gateway"]
    state = _mount_of(gateway, env["IOC_PORTAL_STATE_DB"])
    (claim,) = gateway["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == state["name"]
    assert claim["spec"]["resources"]["requests"]["storage"] == values_yaml()["gateway"]["persistence"]["size"]
    assert state["mountPath"] == posixpath.dirname(env["IOC_PORTAL_STATE_DB"])
    # Without persistence the same path is an emptyDir (documented: the state then lives as long as the pod).
    scratch = one(helm.template(*ALL_ON, "gateway.persistence.enabled=false"), "StatefulSet", "gateway")
    assert "volumeClaimTemplates" not in scratch["spec"]
    assert any(v["name"] == "state" and "emptyDir" in v for v in scratch["spec"]["template"]["spec"]["volumes"])


def test_reporting_publishes_and_pushes_to_its_parent(services: list[dict[str, Any]]) -> None:
    reporting = one(services, "Deployment", "reporting")
    env = {k: v.get("value") for k, v in _env(reporting).items()}
    assert env["IOC_REPORTING_PARENT_URL"] == "https://parent.example/reports/v1/upward"
    assert env["IOC_REPORTING_PERIOD_KINDS"] == '["month","quarter"]'
    assert env["IOC_REPORTING_CLICKHOUSE__DATABASE"] == values_yaml()["clickhouse"]["database"]
    # It serves no HTTP, so there is nothing to probe (the process exits on a fatal error).
    assert "ports" not in container(reporting) and "livenessProbe" not in container(reporting)


def test_services_select_their_pods_by_port_name(services: list[dict[str, Any]]) -> None:
    for component, kind in COMPONENTS[:2]:
        service = one(services, "Service", component)
        workload = one(services, kind, component)
        assert service["spec"]["selector"].items() <= workload["spec"]["template"]["metadata"]["labels"].items()
        (port,) = service["spec"]["ports"]
        assert port["targetPort"] == "http" and port["port"] == values_yaml()[component]["service"]["port"]


# --- ingress ----------------------------------------------------------------------------------------------------


def test_the_ingress_serves_tls_from_the_named_secret(services: list[dict[str, Any]]) -> None:
    ingress = one(services, "Ingress")
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    hosts = ["ioc.binhduong.gov.vn", "api.binhduong.gov.vn"]
    assert ingress["spec"]["tls"] == [{"secretName": "ioc-tls", "hosts": hosts}]
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == hosts


def test_the_ingress_routes_what_each_app_serves_to_its_service(
    services: list[dict[str, Any]], served_paths: dict[str, set[str]]
) -> None:
    ingress = one(services, "Ingress")
    backends = {one(services, "Service", component)["metadata"]["name"]: component for component in ("api", "gateway")}
    for rule in ingress["spec"]["rules"]:
        routed: dict[str, set[str]] = {"api": set(), "gateway": set()}
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["port"] == {"name": "http"}
            component = backends[backend["name"]]
            routed[component].add(path["path"])
            # Every routed prefix leads to something the app serves, and never to the operations routes.
            assert any(p.startswith(path["path"] + "/") for p in served_paths[component]), path
        for component, paths in served_paths.items():
            public = {p for p in paths if p not in ("/healthz", "/readyz")}
            unrouted = [p for p in public if not any(p.startswith(prefix + "/") for prefix in routed[component])]
            assert not unrouted, f"{component} serves {unrouted} but the Ingress routes none of it"


def test_the_ingress_routes_only_to_what_runs(helm: Helm) -> None:
    api_only = helm.template("ingress.enabled=true", "ingress.tls.secretName=ioc-tls")
    paths = one(api_only, "Ingress")["spec"]["rules"][0]["http"]["paths"]
    assert {p["path"] for p in paths} == set(values_yaml()["ingress"]["apiPaths"])
    assert {p["backend"]["service"]["name"] for p in paths} == {one(api_only, "Service", "api")["metadata"]["name"]}
    sets = "ingress.enabled=true,ingress.tls.secretName=t,api.enabled=false"
    done = helm.run("template", "ioc", "charts/ioc-platform", "--set", sets, check=False)
    assert done.returncode != 0 and "enable api or gateway" in done.stderr
