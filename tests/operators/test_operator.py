"""The operator end to end on the real API server, ClickHouse, Kafka and Mosquitto: provision, change, repair, delete.

One operator process serves this module's namespace; the tests run in order on one small tree: district
Bến Cát (721) with communes Mỹ Phước (25813) and An Điền (25840), and a vendor allowed in Mỹ Phước.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from ioc import topics
from ioc.clients import dynsec, kafka_admin
from ioc.clients.clickhouse import WarehouseError, connect
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint
from ioc.workdays import default_calendar
from operators import conditions, config
from operators.runtime import default_reference_model_manifest
from tests.operators.conftest import (
    GROUP,
    VERSION,
    MqttProbe,
    OperatorProcess,
    api_client,
    clickhouse_admin,
    condition,
    custom_api,
    dump,
    get_site,
    kubectl,
    mqtt_admin,
    operator_env,
    ready,
    site,
    site_config_messages,
    wait_for,
)

DISTRICT, COMMUNE, OTHER = "721", "25813", "25840"
VENDOR = f"acme-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def operator(
    kube: dict[str, Any],
    clickhouse: dict[str, Any],
    kafka: dict[str, Any],
    mosquitto: dict[str, Any],
    module_namespace: str,
    warehouse_tables: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    env = operator_env(kube, clickhouse, kafka, mosquitto, namespace=module_namespace)
    process = OperatorProcess(env, tmp_path_factory.mktemp("operator") / "operator.log").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def tree(kube: dict[str, Any], module_namespace: str, operator: OperatorProcess) -> dict[str, Any]:
    """The sites, applied with kubectl and with the Python client, and the vendor; all Ready."""
    ns = module_namespace
    kubectl(kube, "apply", "-n", ns, "-f", "-", stdin=json.dumps(site("ben-cat", DISTRICT, "district")))
    api = custom_api(kube)
    api.create_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        "iocsites",
        # Its own dashboard and login, as a commune may ask; an-dien takes its tier's default (served by ben-cat).
        site("my-phuoc", COMMUNE, "commune", ("ben-cat", "district"), dashboard={"servedBy": "Own"}),
    )
    isolated = site(
        "an-dien",
        OTHER,
        "commune",
        ("ben-cat", "district"),
        thresholds={"flood-level": {"above": 1.8, "for_minutes": 2}},
        workers={"isolated": True},
    )
    kubectl(kube, "apply", "-n", ns, "-f", "-", stdin=json.dumps(isolated))
    vendor = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SensorVendor",
        "metadata": {"name": VENDOR},
        "spec": {"units": [COMMUNE], "kinds": ["water"], "displayName": "ACME Water"},
    }
    api.create_namespaced_custom_object(GROUP, VERSION, ns, "sensorvendors", vendor)
    for name in ("ben-cat", "my-phuoc", "an-dien"):
        wait_for(lambda name=name: ready(kube, ns, name), 60, f"{name} Ready\n{operator.text()[-3000:]}")
    wait_for(lambda: ready(kube, ns, VENDOR, "sensorvendors"), 60, "the vendor Ready")
    return {"namespace": ns}


def _core(kube: dict[str, Any]) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api_client(kube["kubeconfig"]))


def _secret(kube: dict[str, Any], ns: str, name: str) -> dict[str, str]:
    data = _core(kube).read_namespaced_secret(name, ns).data
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


# --- provisioning ---------------------------------------------------------------------------------------------


def test_children_are_created_and_owned(kube: dict[str, Any], tree: dict[str, Any]) -> None:
    ns = tree["namespace"]
    client = api_client(kube["kubeconfig"])
    core, apps = kubernetes.client.CoreV1Api(client), kubernetes.client.AppsV1Api(client)
    net, rbac = kubernetes.client.NetworkingV1Api(client), kubernetes.client.RbacAuthorizationV1Api(client)
    owner = get_site(kube, ns, "ben-cat")
    objects = [
        core.read_namespaced_config_map("ben-cat-config", ns),
        core.read_namespaced_secret("ben-cat-clickhouse", ns),
        core.read_namespaced_service("ben-cat-dashboard", ns),
        core.read_namespaced_service_account("ben-cat-site", ns),
        apps.read_namespaced_deployment("ben-cat-dashboard", ns),
        net.read_namespaced_network_policy("ben-cat-site", ns),
        rbac.read_namespaced_role("ben-cat-site", ns),
        rbac.read_namespaced_role_binding("ben-cat-site", ns),
    ]
    for obj in objects:
        (ref,) = obj.metadata.owner_references
        assert (ref.kind, ref.name, ref.uid, ref.controller) == ("IOCSite", "ben-cat", owner["metadata"]["uid"], True)
    # Only the isolated site has a dedicated worker.
    assert (
        apps.read_namespaced_deployment("an-dien-worker", ns).spec.template.spec.containers[0].command[-1] == "worker"
    )
    with pytest.raises(kubernetes.client.ApiException):
        apps.read_namespaced_deployment("ben-cat-worker", ns)
    status = owner["status"]
    for part in ("Valid", "Parent", "Kubernetes", "Warehouse", "Streams", "Broker", "Ready"):
        assert condition(owner, part)["status"] == "True", dump(status)
    assert status["database"] == f"ioc_site_{DISTRICT}" and status["unitName"] == "thành phố Bến Cát"
    assert condition(get_site(kube, ns, "my-phuoc"), "Parent")["message"] == f"the site reports to {ns}/ben-cat"


def _absent(read: Any, name: str, ns: str) -> bool:
    try:
        read(name, ns)
    except kubernetes.client.ApiException as exc:
        return exc.status == 404
    return False


def test_a_commune_is_served_by_its_districts_dashboard_by_default(
    kube: dict[str, Any], clickhouse: dict[str, Any], tree: dict[str, Any]
) -> None:
    ns = tree["namespace"]
    client = api_client(kube["kubeconfig"])
    core, apps = kubernetes.client.CoreV1Api(client), kubernetes.client.AppsV1Api(client)
    obj = get_site(kube, ns, "an-dien")
    status = obj["status"]
    assert status["phase"] == "Ready" and status["servedBy"] == f"{ns}/ben-cat", dump(status)
    assert status["dashboardUrl"] == f"http://ben-cat-dashboard.{ns}.svc"
    assert status["database"] == f"ioc_site_{DISTRICT}" and "credentialsSecret" not in status
    dashboard = condition(obj, "Dashboard")
    assert (dashboard["status"], dashboard["reason"]) == ("True", "ServedByParent")
    assert f"IOCSite {ns}/ben-cat" in dashboard["message"] and OTHER in dashboard["message"]
    assert condition(obj, "Warehouse")["reason"] == condition(obj, "SignIn")["reason"] == "ServedByParent"
    # No dashboard, Service or credentials of its own; its dedicated worker (isolation) is still there.
    assert _absent(apps.read_namespaced_deployment, "an-dien-dashboard", ns)
    assert _absent(core.read_namespaced_service, "an-dien-dashboard", ns)
    assert _absent(core.read_namespaced_secret, "an-dien-clickhouse", ns)
    assert _absent(core.read_namespaced_secret, "an-dien-kafka", ns)
    assert apps.read_namespaced_deployment("an-dien-worker", ns)
    with clickhouse_admin(clickhouse) as admin:
        databases = {r["name"] for r in admin.query("SHOW DATABASES")}
    assert f"ioc_site_{OTHER}" not in databases and f"ioc_site_{COMMUNE}" in databases
    # The commune asking for its own dashboard has one, and its district's too.
    assert condition(get_site(kube, ns, "my-phuoc"), "Dashboard")["reason"] == "Own"
    assert "servedBy" not in get_site(kube, ns, "my-phuoc")["status"]


def test_effective_configuration_in_the_config_map_and_on_kafka(
    kube: dict[str, Any], kafka: dict[str, Any], tree: dict[str, Any]
) -> None:
    ns = tree["namespace"]
    data = _core(kube).read_namespaced_config_map("an-dien-config", ns).data["site.json"]
    document = json.loads(data)
    rules = {r["id"]: r for r in document["rules"]}
    assert rules["flood-level"]["above"] == 1.8 and rules["flood-level"]["for_minutes"] == 2
    assert document["workers"]["isolated"] is True and document["site"]["parent"]["name"] == "ben-cat"
    assert get_site(kube, ns, "an-dien")["status"]["configHash"] == config.config_hash(data)
    published = site_config_messages(kafka, OTHER)
    assert published and published[-1] is not None and published[-1].decode() == data
    # The isolated site's dedicated worker filters the shared topics (streams/siteconfig.py): no copies of them.
    assert topics.site_topic(OTHER, "readings") not in kafka_admin.list_topics(KafkaEndpoint.from_service(kafka))
    streams = condition(get_site(kube, ns, "an-dien"), "Streams")["message"]
    assert "1 threshold override(s)" in streams and "dedicated worker an-dien-worker" in streams, streams


def _insert_rows(clickhouse: dict[str, Any], database: str) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    base = {
        "vendor": "v",
        "device": "d",
        "kind": "water",
        "measure": "waterLevel",
        "value": 1.0,
        "lat": None,
        "lon": None,
    }
    with clickhouse_admin(clickhouse) as admin:
        admin.insert(
            f"{database}.readings",
            [
                {
                    **base,
                    "device_key": "v/in",
                    "unit": COMMUNE,
                    "path": f"74/{DISTRICT}/{COMMUNE}",
                    "seq": 1,
                    "observed_at": now,
                    "received_at": now,
                },
                {
                    **base,
                    "device_key": "v/mid",
                    "unit": OTHER,
                    "path": f"74/{DISTRICT}/{OTHER}",
                    "seq": 1,
                    "observed_at": now,
                    "received_at": now,
                },
                {
                    **base,
                    "device_key": "v/out",
                    "unit": "25942",
                    "path": "74/724/25942",
                    "seq": 1,
                    "observed_at": now,
                    "received_at": now,
                },
            ],
        )


def _login(clickhouse: dict[str, Any], secret: dict[str, str]) -> Any:
    endpoint = ClickHouseEndpoint(
        host=clickhouse["host"], port=int(secret["port"]), user=secret["user"], password=secret["password"]
    )
    return wait_for(lambda: connect(endpoint, database=secret["database"]), 15, f"login as {secret['user']}")


def test_read_only_credentials_see_only_their_subtree(
    kube: dict[str, Any], clickhouse: dict[str, Any], warehouse_tables: str, tree: dict[str, Any]
) -> None:
    ns = tree["namespace"]
    _insert_rows(clickhouse, warehouse_tables)
    district = _login(clickhouse, _secret(kube, ns, "ben-cat-clickhouse"))
    commune = _login(clickhouse, _secret(kube, ns, "my-phuoc-clickhouse"))
    try:
        assert {r["device_key"] for r in district.query("SELECT device_key FROM readings")} == {"v/in", "v/mid"}
        assert {r["device_key"] for r in commune.query("SELECT device_key FROM readings")} == {"v/in"}
        with pytest.raises(WarehouseError, match=r"(?i)readonly"):
            commune.command(f"DROP TABLE ioc_site_{COMMUNE}.readings")
        with pytest.raises(WarehouseError, match="Access denied to database"):
            commune.query(f"SELECT count() FROM ioc_site_{DISTRICT}.readings")
        names = {r["name"] for r in district.query("SHOW TABLES")}
        assert {"readings", "incidents", "device_status", "indicators_766"} <= names
    finally:
        district.close()
        commune.close()
    # The views of tables that do not exist yet are reported, not failed.
    warehouse = condition(get_site(kube, ns, "ben-cat"), "Warehouse")
    assert warehouse["reason"] == "TablesMissing" and "camera_events" in warehouse["message"]


def test_status_figures_come_from_the_site_views(
    kube: dict[str, Any], clickhouse: dict[str, Any], warehouse_tables: str, tree: dict[str, Any]
) -> None:
    ns = tree["namespace"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    incident = {
        "rule": "flood-level",
        "module": "environment",
        "unit": COMMUNE,
        "path": f"74/{DISTRICT}/{COMMUNE}",
        "responsible_unit": COMMUNE,
        "responsible_path": f"74/{DISTRICT}/{COMMUNE}",
        "severity": "high",
        "title": "Ngập",
        "opened_at": now,
        "updated_at": now,
    }
    month = now.date().replace(day=1)
    with clickhouse_admin(clickhouse) as admin:
        admin.insert(
            f"{warehouse_tables}.incidents",
            [
                {**incident, "incident_id": "i-open", "version": 1, "state": "open"},
                {**incident, "incident_id": "i-done", "version": 1, "state": "open"},
                {**incident, "incident_id": "i-done", "version": 2, "state": "resolved"},
                {
                    **incident,
                    "incident_id": "i-far",
                    "version": 1,
                    "state": "open",
                    "unit": "25942",
                    "path": "74/724/25942",
                    "responsible_unit": "25942",
                    "responsible_path": "74/724/25942",
                },
            ],
        )
        admin.insert(
            f"{warehouse_tables}.device_status",
            [
                {
                    "device_key": "v/in",
                    "vendor": "v",
                    "device": "in",
                    "unit": COMMUNE,
                    "path": f"74/{DISTRICT}/{COMMUNE}",
                    "kind": "water",
                    "last_seen": now - dt.timedelta(minutes=3),
                    "last_seq": 1,
                    "readings": 1,
                    "lat": None,
                    "lon": None,
                }
            ],
        )
        admin.insert(
            f"{warehouse_tables}.indicators_766",
            [
                {
                    "unit": DISTRICT,
                    "path": f"74/{DISTRICT}",
                    "period_kind": "month",
                    "period_start": month,
                    "scheme": "766",
                    "code": code,
                    "group_code": code[0],
                    "points": points,
                    "max_points": max_points,
                    "no_data": 1 - measured,
                    "measured": measured,
                    "policy": "766-nodata.measured-only.v1",
                    "computed_at": now,
                }
                # 1.1 has no data (scored 6 of 6 before migration 0010): it counts for nothing. 22.5 of 26 measured.
                for code, points, max_points, measured in (
                    ("1.1", 6.0, 6.0, 0),
                    ("1.4", 4.5, 6.0, 1),
                    ("2.1", 18.0, 20.0, 1),
                )
            ],
        )

    def figures() -> dict[str, Any] | None:
        status = get_site(kube, ns, "ben-cat")["status"]
        return status if status.get("openIncidents") == 1 and status.get("score766") == 86.5 else None

    status = wait_for(figures, 30, "figures in the status")
    assert status["dataFreshness"] in ("3m", "4m") and 170 <= status["dataFreshnessSeconds"] < 300
    row = kubectl(kube, "get", "ioc", "ben-cat", "-n", ns, "--no-headers").stdout.split()
    assert status["score766Coverage"] == 26.0  # 86.5 = 22.5 × 100 / 26, on 26 points measured
    assert row[1:8] == [DISTRICT, "district", "Ready", "1", status["dataFreshness"], "86.5", "26"], row
    # How many live stream workers hold its configuration (whichever workers share this broker), from their reports.
    applied = condition(get_site(kube, ns, "ben-cat"), "SettingsApplied")
    assert applied["reason"] in ("Applied", "Applying", "NoWorkers") and "worker" in applied["message"], applied
    assert isinstance(status["configOffset"], int)
    # Whether the working-day calendar still covers today (False from 1 October of its last year): a warning, not Ready.
    expected = conditions.calendar(default_calendar().coverage(dt.datetime.now(dt.UTC)))
    calendar = condition(get_site(kube, ns, "ben-cat"), "Calendar")
    assert (calendar["status"], calendar["reason"]) == (expected["status"], expected["reason"]), calendar
    assert f"{default_calendar().years[-1]}" in calendar["message"]

    # The commune served by ben-cat reads its figures from ben-cat's database, scoped to its own unit: the open
    # incident and the device are my-phuoc's, not an-dien's.
    def served_figures() -> dict[str, Any] | None:
        served = get_site(kube, ns, "an-dien")["status"]
        return served if served.get("openIncidents") == 0 and served.get("dataFreshness") == "no data" else None

    wait_for(served_figures, 30, "an-dien's figures, scoped to an-dien")


def test_vendor_publishes_inside_its_acl_only(
    kube: dict[str, Any], mosquitto: dict[str, Any], tree: dict[str, Any]
) -> None:
    secret = _secret(kube, tree["namespace"], f"{VENDOR}-mqtt")
    assert secret["username"] == f"vendor.{VENDOR}" and secret["port"] == str(mosquitto["port"])
    probe = MqttProbe(mosquitto, secret["username"], secret["password"])
    try:
        assert probe.connect_code == 0
        # 0 or 16 ("no matching subscribers"): accepted either way.
        assert probe.publish(topics.mqtt_topic(COMMUNE, "water", VENDOR, "wl-1")) in (0, 16)
        assert probe.publish(topics.mqtt_topic(OTHER, "water", VENDOR, "wl-1")) == 135  # another unit
        assert probe.publish(topics.mqtt_topic(COMMUNE, "air", VENDOR, "aq-1")) == 135  # another kind
        assert probe.publish(topics.mqtt_topic(COMMUNE, "water", "someone", "wl-1")) == 135  # another vendor
    finally:
        probe.close()
    with dynsec.DynsecAdmin(mqtt_admin(mosquitto)) as admin:
        role = admin.execute("getRole", rolename=f"ioc-site-{DISTRICT}")["data"]["role"]
        assert {a["topic"] for a in role["acls"]} >= {f"ioc/v1/{DISTRICT}/#", f"ioc/v1/{COMMUNE}/#"}


# --- changes and drift ----------------------------------------------------------------------------------------


def test_spec_changes_propagate(kube: dict[str, Any], kafka: dict[str, Any], tree: dict[str, Any]) -> None:
    ns = tree["namespace"]
    before = get_site(kube, ns, "ben-cat")["status"]["configHash"]
    patch = {"spec": {"dashboard": {"replicas": 3, "public": True}, "retention": {"readingsDays": 90}}}
    custom_api(kube).patch_namespaced_custom_object(GROUP, VERSION, ns, "iocsites", "ben-cat", patch)
    custom_api(kube).patch_namespaced_custom_object(
        GROUP, VERSION, ns, "iocsites", "an-dien", {"spec": {"workers": {"isolated": False}}}
    )
    after = wait_for(lambda: ready(kube, ns, "ben-cat"), 20, "ben-cat to handle its new generation")
    assert after["status"]["configHash"] != before
    client = api_client(kube["kubeconfig"])
    apps = kubernetes.client.AppsV1Api(client)
    assert apps.read_namespaced_deployment("ben-cat-dashboard", ns).spec.replicas == 3
    policy = kubernetes.client.NetworkingV1Api(client).read_namespaced_network_policy("ben-cat-site", ns)
    assert policy.spec.ingress[0]._from is None  # public: open to everyone
    document = json.loads(site_config_messages(kafka, DISTRICT)[-1] or b"{}")
    assert document["retention"]["readingsDays"] == 90 and document["dashboard"]["public"] is True
    wait_for(lambda: ready(kube, ns, "an-dien"), 20, "an-dien to handle its new generation")

    def worker_gone() -> bool:
        try:
            apps.read_namespaced_deployment("an-dien-worker", ns)
        except kubernetes.client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(worker_gone, 10, "the dedicated worker to go")


def test_drift_is_repaired(kube: dict[str, Any], clickhouse: dict[str, Any], tree: dict[str, Any]) -> None:
    ns = tree["namespace"]
    core = _core(kube)
    core.delete_namespaced_config_map("my-phuoc-config", ns)
    core.delete_namespaced_secret("my-phuoc-clickhouse", ns)
    with clickhouse_admin(clickhouse) as admin:
        admin.command(f"DROP TABLE ioc_site_{COMMUNE}.incidents")
    wait_for(lambda: core.read_namespaced_config_map("my-phuoc-config", ns), 20, "the ConfigMap to come back")
    wait_for(lambda: core.read_namespaced_secret("my-phuoc-clickhouse", ns), 20, "the Secret to come back")

    def view_back() -> bool:
        with clickhouse_admin(clickhouse) as admin:
            rows = admin.query("SELECT name FROM system.tables WHERE database = %(db)s", {"db": f"ioc_site_{COMMUNE}"})
        return "incidents" in {r["name"] for r in rows}

    wait_for(view_back, 20, "the dropped view to come back")
    # The same derived password: the re-created Secret still logs in.
    _login(clickhouse, _secret(kube, ns, "my-phuoc-clickhouse")).close()
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=my-phuoc").items
    assert any(e.reason == "Repaired" and "ConfigMap/my-phuoc-config" in e.message for e in events)


def test_sites_follow_their_reference_model(kube: dict[str, Any], tree: dict[str, Any]) -> None:
    ns = tree["namespace"]
    api = custom_api(kube)
    name = f"strict-{uuid.uuid4().hex[:5]}"
    model = default_reference_model_manifest()
    model["metadata"]["name"] = name
    api.create_cluster_custom_object(GROUP, VERSION, "referencemodels", model)
    wait_for(
        lambda: api.get_cluster_custom_object(GROUP, VERSION, "referencemodels", name).get("status", {}).get("valid"),
        20,
        "model valid",
    )
    api.patch_namespaced_custom_object(GROUP, VERSION, ns, "iocsites", "my-phuoc", {"spec": {"referenceModel": name}})
    wait_for(lambda: ready(kube, ns, "my-phuoc"), 20, "my-phuoc on the new model")

    def flood_above() -> float:
        document = json.loads(_core(kube).read_namespaced_config_map("my-phuoc-config", ns).data["site.json"])
        return float(next(r for r in document["rules"] if r["id"] == "flood-level")["above"])

    assert flood_above() == 1.5
    rules = model["spec"]["rules"]
    index = next(i for i, r in enumerate(rules) if r["id"] == "flood-level")
    rules[index]["above"] = 2.5
    api.patch_cluster_custom_object(GROUP, VERSION, "referencemodels", name, {"spec": {"rules": rules}})
    # The repair timer notices the model changed and re-publishes the site's configuration.
    wait_for(lambda: flood_above() == 2.5, 20, "the model's new threshold in the site's configuration")
    # A model the API server accepts but the typed loader refuses: the operator says which field.
    rules[index]["measure"] = "pm25"
    api.patch_cluster_custom_object(GROUP, VERSION, "referencemodels", name, {"spec": {"rules": rules}})

    def invalid() -> dict[str, Any] | None:
        status = api.get_cluster_custom_object(GROUP, VERSION, "referencemodels", name).get("status", {})
        return status if status.get("valid") is False else None

    status = wait_for(invalid, 20, "the model reported invalid")
    assert f"spec.rules.{index}.measure" in status["message"]
    refused = wait_for(lambda: get_site(kube, ns, "my-phuoc")["status"]["phase"] == "Failed", 20, "the site refused")
    assert refused
    assert "spec.referenceModel" in condition(get_site(kube, ns, "my-phuoc"), "Valid")["message"]
    api.patch_namespaced_custom_object(
        GROUP, VERSION, ns, "iocsites", "my-phuoc", {"spec": {"referenceModel": "default"}}
    )
    wait_for(lambda: ready(kube, ns, "my-phuoc"), 20, "my-phuoc back on the default model")
    api.delete_cluster_custom_object(GROUP, VERSION, "referencemodels", name)


# --- deletion -------------------------------------------------------------------------------------------------


def test_switching_between_its_own_dashboard_and_its_parents(
    kube: dict[str, Any], clickhouse: dict[str, Any], tree: dict[str, Any]
) -> None:
    ns = tree["namespace"]
    api, core = custom_api(kube), _core(kube)

    def databases() -> set[str]:
        with clickhouse_admin(clickhouse) as admin:
            return {r["name"] for r in admin.query("SHOW DATABASES")}

    api.patch_namespaced_custom_object(
        GROUP, VERSION, ns, "iocsites", "an-dien", {"spec": {"dashboard": {"servedBy": "Own"}}}
    )
    wait_for(lambda: ready(kube, ns, "an-dien"), 30, "an-dien with its own dashboard")
    status = get_site(kube, ns, "an-dien")["status"]
    assert "servedBy" not in status and status["dashboardUrl"] == f"http://an-dien-dashboard.{ns}.svc"
    assert _secret(kube, ns, "an-dien-clickhouse")["user"] == f"ioc_site_{OTHER}"
    assert f"ioc_site_{OTHER}" in databases()
    # Back to its tier's default: what its own dashboard needed is removed.
    api.patch_namespaced_custom_object(
        GROUP, VERSION, ns, "iocsites", "an-dien", {"spec": {"dashboard": {"servedBy": None}}}
    )
    wait_for(lambda: ready(kube, ns, "an-dien"), 30, "an-dien served by ben-cat again")
    wait_for(lambda: _absent(core.read_namespaced_secret, "an-dien-clickhouse", ns), 20, "its login removed")
    assert f"ioc_site_{OTHER}" not in databases()
    assert get_site(kube, ns, "an-dien")["status"]["servedBy"] == f"{ns}/ben-cat"
    assert not (Path(clickhouse["users_d"]) / f"ioc_site_{OTHER}.xml").exists()


def test_deletion_waits_for_child_sites_then_cleans_up(
    kube: dict[str, Any],
    clickhouse: dict[str, Any],
    kafka: dict[str, Any],
    mosquitto: dict[str, Any],
    tree: dict[str, Any],
) -> None:
    ns = tree["namespace"]
    api = custom_api(kube)
    api.delete_namespaced_custom_object(GROUP, VERSION, ns, "iocsites", "ben-cat")

    def blocked() -> dict[str, Any] | None:
        obj = get_site(kube, ns, "ben-cat")
        return obj if condition(obj, "Ready").get("reason") == "ChildSitesExist" else None

    obj = wait_for(blocked, 20, "the deletion to be blocked")
    assert obj["status"]["phase"] == "Deleting" and f"{ns}/my-phuoc" in condition(obj, "Ready")["message"]
    for name in ("my-phuoc", "an-dien"):
        api.delete_namespaced_custom_object(GROUP, VERSION, ns, "iocsites", name)
    api.delete_namespaced_custom_object(GROUP, VERSION, ns, "sensorvendors", VENDOR)

    def gone(plural: str, name: str) -> bool:
        try:
            api.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
        except kubernetes.client.ApiException as exc:
            return exc.status == 404
        return False

    for name in ("my-phuoc", "an-dien", "ben-cat"):
        wait_for(lambda name=name: gone("iocsites", name), 40, f"{name} to be deleted")
    wait_for(lambda: gone("sensorvendors", VENDOR), 20, "the vendor to be deleted")
    core = _core(kube)
    assert not [
        c.metadata.name for c in core.list_namespaced_config_map(ns).items if c.metadata.name.endswith("-config")
    ]
    assert not [s.metadata.name for s in core.list_namespaced_secret(ns).items]
    with clickhouse_admin(clickhouse) as admin:
        databases = {r["name"] for r in admin.query("SHOW DATABASES")}
    assert not {f"ioc_site_{u}" for u in (DISTRICT, COMMUNE, OTHER)} & databases
    assert not (Path(clickhouse["users_d"]) / f"ioc_site_{DISTRICT}.xml").exists()
    assert site_config_messages(kafka, DISTRICT)[-1] is None  # a tombstone: compaction forgets the site
    with dynsec.DynsecAdmin(mqtt_admin(mosquitto)) as admin:
        assert dynsec.vendor_username(VENDOR) not in admin.list_clients()
        reply = admin.execute("getRole", rolename=f"ioc-site-{DISTRICT}", ignore=("not found",))
        assert "not found" in reply.get("error", "")
