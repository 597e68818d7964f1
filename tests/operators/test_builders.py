"""The operator's pure parts: effective configuration, manifests, SQL, ACLs, conditions, the province as code."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest
import yaml

from ioc import topics, units
from ioc.reference import default_reference_model
from ioc.scope import site_scope
from ioc.settings import OperatorSettings
from operators import broker, conditions, config, manifests, province, rbac, sitedb
from operators.credentials import derive_password
from operators.handlers import _common
from operators.models import IOCSiteSpec, parse
from operators.names import SiteNames, site_names

MODEL = default_reference_model()
SETTINGS = OperatorSettings()


def spec(**fields: Any) -> IOCSiteSpec:
    return parse(IOCSiteSpec, {"unit": "25942", "tier": "commune", **fields})


def names(unit: str = "25942", edition: str = "2024") -> SiteNames:
    return SiteNames("dong-hoa", "ns", unit, edition)


# --- names and effective configuration ------------------------------------------------------------------------


def test_external_names_carry_the_edition_when_codes_could_clash() -> None:
    assert names().database == "ioc_site_25942" and names().mqtt_role == "ioc-site-25942"
    reformed = names("25747", "2025")
    assert reformed.database == "ioc_site_25747_2025" and reformed.config_key == "25747_2025"
    assert site_names("a", "b", spec()).credentials_secret == "a-clickhouse"


def test_effective_config_narrows_the_model_to_the_tier_and_applies_overrides() -> None:
    document = config.effective_config(names(), spec(thresholds={"flood-level": {"above": 1.8}}), MODEL)
    assert document["modules"] == ["environment", "public_services", "citizen_reports"]
    rules = {r["id"]: r for r in document["rules"]}
    assert rules["flood-level"]["above"] == 1.8 and "camera-event" not in rules  # traffic is not a commune module
    assert document["site"]["unitName"] == "phường Dĩ An" and document["scope"]["path"] == "74/724/25942"
    text = config.config_json(document)
    assert config.config_hash(text) == config.config_hash(config.config_json(document))


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"thresholds": {"flood-level": {"above": 1.0}}}, "spec.thresholds.flood-level"),  # below clear_below
        ({"thresholds": {"aqi-bad": {"above": 3}}}, "spec.thresholds.aqi-bad.above"),  # no such field
        ({"thresholds": {"camera-event": {}}}, "spec.thresholds.camera-event"),  # a module the commune does not run
        ({"thresholds": {"camera-silence": {"silent_minutes": 9}}}, "spec.thresholds.camera-silence"),
        ({"modules": ["environment", "traffic"]}, "spec.modules.1"),
        ({"tier": "district"}, "spec.tier"),
    ],
)
def test_effective_config_refusals_name_the_field(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(config.SiteSpecError) as info:
        config.effective_config(names(), spec(**fields), MODEL)
    assert str(info.value).startswith(where), info.value


def _record(name: str, unit: str, tier: str, created: str = "2025-01-01T00:00:00Z", **kw: Any) -> config.SiteRecord:
    return config.SiteRecord("ns", name, f"uid-{name}", unit, "2024", tier, kw.get("parent"), created)


def test_parent_checks() -> None:
    me = _record("me", "25942", "commune", parent=("ns", "di-an"))
    records = [_record("di-an", "724", "district"), _record("thu-dau-mot", "718", "district")]
    good = spec(parentRef={"name": "di-an", "tier": "district"})
    assert config.check_parent(records, me, good, MODEL) == records[0]
    assert config.check_parent([], me, good, MODEL) is None  # not there yet: wait for it
    with pytest.raises(config.SiteSpecError, match=r"spec.parentRef.name: unit 25942 is not under unit 718"):
        config.check_parent(records, me, spec(parentRef={"name": "thu-dau-mot", "tier": "district"}), MODEL)
    with pytest.raises(config.SiteSpecError, match=r"spec.parentRef.tier: IOCSite ns/di-an is a district site"):
        config.check_parent(records, me, spec(parentRef={"name": "di-an", "tier": "province"}), MODEL)


def test_the_oldest_site_owns_a_unit() -> None:
    older = _record("a", "724", "district", "2025-01-01T00:00:00Z")
    newer = _record("b", "724", "district", "2025-02-01T00:00:00Z")
    assert config.owner_of_unit([newer, older], "724", "2024") == older
    assert config.owner_of_unit([newer], "725", "2024") is None


# --- manifests --------------------------------------------------------------------------------------------------


def _children(**fields: Any) -> list[dict[str, Any]]:
    login = manifests.Login("127.0.0.1", 9000, 8123, "ioc_site_25942", "ioc_site_25942", "pw")
    return manifests.site_children(
        names(), "uid-1", spec(**fields), config_text="{}", login=login, settings=SETTINGS, modules=["environment"]
    )


def test_children_are_owned_labelled_and_complete() -> None:
    children = _children()
    kinds = [c["kind"] for c in children]
    assert kinds == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "NetworkPolicy",
    ]
    for child in children:
        owner = child["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "IOCSite" and owner["uid"] == "uid-1" and owner["controller"] is True
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ioc-operator"
        assert child["metadata"]["namespace"] == "ns"
    secret = next(c for c in children if c["kind"] == "Secret")
    assert base64.b64decode(secret["data"]["password"]) == b"pw"
    role = next(c for c in children if c["kind"] == "Role")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["dong-hoa-config"],
            "verbs": ["get", "watch"],
        }
    ]


@pytest.mark.parametrize("isolated", [False, True])
def test_pods_meet_the_restricted_pod_security_standard(isolated: bool) -> None:
    deployments = [c for c in _children(workers={"isolated": isolated}) if c["kind"] == "Deployment"]
    assert len(deployments) == (2 if isolated else 1)
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
            assert container["image"] == SETTINGS.image
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    dashboard = deployments[0]["spec"]["template"]["spec"]["containers"][0]
    assert dashboard["command"] == ["ioc", "dashboard", "--site", "25942"]


def test_public_tier_opens_the_network_policy() -> None:
    closed = next(c for c in _children() if c["kind"] == "NetworkPolicy")["spec"]
    opened = next(c for c in _children(dashboard={"public": True}) if c["kind"] == "NetworkPolicy")["spec"]
    assert "from" in closed["ingress"][0] and "from" not in opened["ingress"][0]
    assert closed["policyTypes"] == ["Ingress", "Egress"]


def test_a_site_served_by_its_parent_has_no_dashboard_credentials_or_service() -> None:
    served = manifests.site_children(
        names(), "uid-1", spec(), config_text="{}", login=None, settings=SETTINGS, modules=["environment"]
    )
    assert [c["kind"] for c in served] == ["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "NetworkPolicy"]
    # Isolation is independent of who serves the dashboard.
    isolated = manifests.site_children(
        names(),
        "uid-1",
        spec(workers={"isolated": True}),
        config_text="{}",
        login=None,
        settings=SETTINGS,
        modules=["environment"],
    )
    assert [c["metadata"]["name"] for c in isolated if c["kind"] == "Deployment"] == ["dong-hoa-worker"]
    # What a formerly own dashboard leaves behind is deleted.
    gone = {(r.kind, r.name) for r in manifests.obsolete_children(names(), spec(), dashboard=False)}
    assert gone == {
        ("Deployment", "dong-hoa-worker"),
        ("Deployment", "dong-hoa-dashboard"),
        ("Service", "dong-hoa-dashboard"),
        ("Secret", "dong-hoa-clickhouse"),
        ("Secret", "dong-hoa-kafka"),
    }


def test_who_serves_a_sites_dashboard() -> None:
    district = parse(IOCSiteSpec, {"unit": "724", "tier": "district"})
    commune = spec(parentRef={"name": "di-an", "tier": "district"})
    # The reference model declares the tier's default: communes are served by their parent.
    assert MODEL.tier("commune").dashboard == "parent" and MODEL.tier("district").dashboard == "own"
    assert config.served_by("commune", commune.parent_ref, None, MODEL) == "Parent"
    assert config.served_by("commune", None, None, MODEL) == "Own"  # a root commune serves itself
    assert config.served_by("commune", commune.parent_ref, "Own", MODEL) == "Own"
    assert config.served_by("district", ("ns", "p"), None, MODEL) == "Own"
    document = config.effective_config(names(), commune, MODEL)
    assert document["dashboard"]["servedBy"] == "Parent"
    assert config.effective_config(names("724"), district, MODEL)["dashboard"]["servedBy"] == "Own"
    with pytest.raises(config.SiteSpecError, match=r"^spec.dashboard.servedBy: .* needs spec.parentRef"):
        config.effective_config(names(), spec(dashboard={"servedBy": "Parent"}), MODEL)


def test_the_nearest_ancestor_with_its_own_dashboard_serves_a_site() -> None:
    province = _record("binh-duong", "74", "province")
    district = _record("di-an", "724", "district", parent=("ns", "binh-duong"))
    ward = _record("dong-hoa", "25942", "commune", parent=("ns", "di-an"))
    assert config.serving_site([province, district, ward], ward, MODEL) == district
    # A district served by the province hands its communes up too.
    served_district = dataclasses.replace(district, served_by="Parent")
    assert config.serving_site([province, served_district, ward], ward, MODEL) == province
    assert config.serving_site([served_district, ward], ward, MODEL) is None  # the province is not there yet
    assert config.serving_site([ward], ward, MODEL) is None
    deleting = dataclasses.replace(district, deleting=True)
    assert config.serving_site([province, deleting, ward], ward, MODEL) is None


def test_the_worker_goes_when_isolation_ends() -> None:
    assert manifests.obsolete_children(names(), spec(workers={"isolated": True})) == []
    assert [r.kind for r in manifests.obsolete_children(names(), spec())] == ["Deployment"]
    copies = manifests.isolated_topics("25942")
    assert copies[0].name == topics.site_topic("25942", "readings")
    assert copies[0].partitions == topics.READINGS.partitions


# --- ClickHouse ---------------------------------------------------------------------------------------------------


# The site's copies and user: tests/operators/test_sitedb.py.


def test_ages_are_short() -> None:
    assert [sitedb.format_age(s) for s in (5, 125, 7300, 200000)] == ["5s", "2m", "2h", "2d"]


# --- MQTT ---------------------------------------------------------------------------------------------------------


def test_site_roles_and_vendor_grants() -> None:
    assert [a.topic for a in broker.site_acls(site_scope("74"))] == ["ioc/v1/+/#", "ioc/v1/+/#"]
    district = broker.site_acls(site_scope("724"))
    assert len(district) == 2 * len(units.load_tree("2024").subtree("724"))
    unit_segments, kinds = broker.vendor_grants(["724"], ["water", "air"])
    assert "25942" in unit_segments and "724" in unit_segments and kinds == ["air", "water"]
    assert broker.vendor_grants(["74"], sorted(topics.MQTT_KINDS)) == (["+"], ["+"])
    # Đông Hòa (25957) went into the new ward 25951, which on the 2024 tree is Bình An: listed on a 2025 deployment
    # only, never on a 2024 one, where it would let the vendor publish as another ward.
    assert broker.vendor_grants(["25957"], ["water"])[0] == ["25957"]
    assert "25951" in broker.vendor_grants(["25957"], ["water"], "2025")[0]


# --- conditions, credentials, handlers' plumbing -----------------------------------------------------------------


def test_conditions_keep_their_transition_time_until_status_changes() -> None:
    old = [{**conditions.condition("Kubernetes", True, "Applied"), "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    same = conditions.merge(old, [conditions.condition("Kubernetes", True, "Applied", "again")])
    assert same[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z" and same[0]["message"] == "again"
    flipped = conditions.merge(old, [conditions.condition("Kubernetes", False, "Forbidden")])
    assert flipped[0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    ready = conditions.ready(flipped, ["Kubernetes", "Broker"])
    assert ready["status"] == "False" and "Kubernetes (Forbidden), Broker (not checked)" in ready["message"]
    assert conditions.phase([*flipped, ready], ["Kubernetes"]) == "Degraded"


def test_passwords_are_derived_per_object_and_purpose() -> None:
    one = derive_password(b"k", "clickhouse", "uid-1")
    assert one == derive_password(b"k", "clickhouse", "uid-1") and len(one) == 32
    assert one != derive_password(b"k", "mqtt", "uid-1") != derive_password(b"k", "clickhouse", "uid-2")
    assert one != derive_password(b"other", "clickhouse", "uid-1")


def test_timers_write_status_only_when_more_than_a_timestamp_changed() -> None:
    cond = conditions.condition("Ready", True, "Provisioned")
    old = {"phase": "Ready", "conditions": [{**cond, "lastTransitionTime": "2020-01-01T00:00:00Z"}]}
    assert not _common._differs({"phase": "Ready", "conditions": [cond]}, old)
    assert _common._differs({"phase": "Degraded", "conditions": [cond]}, old)
    assert [_common.retry_delay(r) for r in (0, 1, 3, 10)] == [1, 2, 8, 60]


# --- the province as code and the operator's RBAC ----------------------------------------------------------------


def test_province_as_code_lists_every_unit_parents_first() -> None:
    sites = province.province_sites("2024")
    assert len(sites) == 101
    assert [s["spec"]["tier"] for s in sites].count("district") == 9
    seen: set[str] = set()
    for site in sites:
        parent = site["spec"].get("parentRef")
        assert parent is None or parent["name"] in seen
        seen.add(site["metadata"]["name"])
    assert len(seen) == 101 and all(len(n) <= 40 for n in seen)
    two_tier = province.province_sites("2025", "hcm")
    assert len(two_tier) == 37 and {s["spec"]["tier"] for s in two_tier} == {"province", "commune"}
    assert all(s["metadata"]["name"].endswith("-2025") for s in two_tier)
    text = province.render("2024", "ioc-sites")
    assert next(yaml.safe_load_all(text))["kind"] == "Namespace"


def test_operator_role_is_least_privilege_data() -> None:
    for rule in rbac.CLUSTER_ROLE_RULES:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        if "secrets" in rule["resources"]:
            assert not {"get", "list", "watch"} & set(rule["verbs"]), "the operator never reads Secrets"
    role = rbac.cluster_role()
    assert role["kind"] == "ClusterRole" and role["rules"] == rbac.CLUSTER_ROLE_RULES


def test_operator_settings_new_fields_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOC_OPERATOR_REPAIR_INTERVAL_S", "5")
    monkeypatch.setenv("IOC_OPERATOR_CLICKHOUSE_USERS_D", "/tmp/users.d")
    monkeypatch.setenv("IOC_OPERATOR_SECRET_KEY", "k")
    built = OperatorSettings()
    assert built.repair_interval_s == 5 and str(built.clickhouse_users_d) == "/tmp/users.d"
    assert built.secret_key is not None and "k" not in repr(built.secret_key)
