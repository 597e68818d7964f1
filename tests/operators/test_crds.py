"""CRDs: generated from the typed models, structural, in the chart without drift; refused objects on the API server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from ioc import units
from ioc.reference import ReferenceModel, default_reference_model
from operators import crds, models, openapi, province
from operators.runtime import default_reference_model_manifest
from tests.operators.conftest import GROUP, ROOT, VERSION, custom_api, kubectl, site

# --- pure -------------------------------------------------------------------------------------------------


def test_chart_crds_match_the_models() -> None:
    problems = crds.diff(ROOT / crds.CHART_CRDS)
    assert not problems, "stale CRDs: run `ioc operator crds export`\n" + "\n".join(problems)


def test_every_node_of_every_schema_is_structural() -> None:
    def walk(node: dict[str, Any], where: str) -> None:
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{where} has no type"
        for banned in ("$ref", "oneOf", "anyOf", "allOf", "propertyNames", "patternProperties", "uniqueItems"):
            assert banned not in node, f"{where} has {banned}"
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{where}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{where}.{key}")

    for name, crd in crds.crd_files().items():
        walk(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], name)


def test_reference_model_crd_is_the_reference_model() -> None:
    spec = crds.reference_model_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["properties"]) == set(ReferenceModel.model_fields)
    rule = spec["properties"]["rules"]["items"]
    assert set(rule["properties"]["type"]["enum"]) == {
        "threshold",
        "rate_of_change",
        "aqi_band",
        "silence",
        "camera",
        "hotspot",
    }
    # Variant-specific fields are checked per type by CEL, with a message naming what is missing.
    assert any("a threshold entry needs" in r["message"] for r in rule["x-kubernetes-validations"])
    # exclusiveMinimum becomes OpenAPI v3.0's boolean form.
    assert rule["properties"]["for_minutes"]["minimum"] == 0
    assert rule["properties"]["for_minutes"]["exclusiveMinimum"] is True


def test_iocsite_cel_rules_come_from_the_units_tree_and_the_reference_model() -> None:
    crd = crds.iocsite_crd()
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = " ".join(r["rule"] for r in spec["x-kubernetes-validations"])
    for unit in units.load_tree("2024"):
        assert json.dumps(unit.code) in rules
    for tier in default_reference_model().tiers:
        assert json.dumps(tier.name) in rules
    assert spec["properties"]["unit"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Unit", "Tier", "Phase", "Open incidents", "Data freshness", "766 score", "766 coverage", "Age"]
    assert crd["spec"]["names"]["shortNames"] == ["ioc"]


def test_openapi_refuses_what_it_cannot_express() -> None:
    with pytest.raises(openapi.SchemaError, match="anyOf of differing types"):
        openapi.structural({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    with pytest.raises(openapi.SchemaError, match="unsupported JSON Schema keyword 'not'"):
        openapi.structural({"type": "string", "not": {"enum": ["x"]}})
    nullable = openapi.structural({"anyOf": [{"enum": ["a", "b"], "type": "string"}, {"type": "null"}]})
    assert nullable == {"type": "string", "enum": ["a", "b", None], "nullable": True}


def test_models_name_the_bad_field() -> None:
    with pytest.raises(models.ResourceError, match=r"spec\.parentRef\.tier"):
        models.parse(models.IOCSiteSpec, {"unit": "724", "tier": "district", "parentRef": {"name": "x"}})
    with pytest.raises(models.ResourceError, match=r"spec\.kinds\.0.*not a device kind"):
        models.parse(models.SensorVendorSpec, {"units": ["724"], "kinds": ["smell"]})


# --- the real API server ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def namespace(crds_installed: dict[str, Any]) -> str:
    name = f"t-crds-{uuid.uuid4().hex[:5]}"
    kubectl(crds_installed, "create", "namespace", name)
    return name


def _refused(kube: dict[str, Any], namespace: str, manifest: dict[str, Any]) -> str:
    done = kubectl(kube, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(manifest), check=False)
    assert done.returncode != 0, f"accepted: {manifest}"
    return done.stderr


@pytest.mark.parametrize(
    ("manifest", "field", "words"),
    [
        (site("x1", "99999", "commune"), "spec.unit", "99999 is not a unit code of the 2024 units tree"),
        (site("x2", "25957", "commune", modules=["traffic"]), "spec.modules", "a commune site may run only"),
        (
            site("x3", "25957", "commune", ("y", "commune")),
            "spec.parentRef.tier",
            "parent must be a district or province",
        ),
        (site("x4", "724", "commune"), "spec.tier", "needs a unit at the commune level; 724 is not"),
        (site("x5", "74", "province", ("y", "province")), "spec.parentRef", "root of the tree"),
        (site("x6", "724", "district", thresholds={"nope": {"above": 1}}), "spec.thresholds", "rule ids"),
        (site("x7", "25747", "commune", edition="2025", parentRef={"name": "h", "tier": "district"}), "spec.unit", ""),
        (
            site("x8", "724", "district", dashboard={"servedBy": "Parent"}),
            "spec.dashboard.servedBy",
            "a site served by its parent's dashboard needs spec.parentRef",
        ),
        (site("x9", "724", "district", dashboard={"servedBy": "Mine"}), "spec.dashboard.servedBy", '"Own", "Parent"'),
    ],
    ids=[
        "unknown-unit",
        "module-not-for-tier",
        "parent-wrong-tier",
        "unit-not-at-tier",
        "root-with-parent",
        "unknown-rule",
        "edition-2025-ok-but-parent-tier",
        "served-by-parent-without-parent",
        "served-by-unknown",
    ],
)
def test_the_api_server_refuses_invalid_sites(
    crds_installed: dict[str, Any], namespace: str, manifest: dict[str, Any], field: str, words: str
) -> None:
    if manifest["metadata"]["name"] == "x7":
        # 25747 exists in 2025 (a new ward), so only the parent's tier is wrong: a district has no 2025 sites.
        manifest["spec"]["parentRef"] = {"name": "h", "tier": "commune"}
        field, words = "spec.parentRef.tier", "parent must be a district or province"
    error = _refused(crds_installed, namespace, manifest)
    assert f"{field}: " in error and words in error, error


def test_unit_code_cannot_change(crds_installed: dict[str, Any], namespace: str) -> None:
    kubectl(crds_installed, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(site("keep", "725", "district")))
    done = kubectl(
        crds_installed,
        "patch",
        "-n",
        namespace,
        "ioc",
        "keep",
        "--type=merge",
        "-p",
        '{"spec":{"unit":"726"}}',
        check=False,
    )
    assert done.returncode != 0 and "spec.unit: Forbidden: unit is immutable" in done.stderr, done.stderr


def test_python_client_gets_the_same_refusal(crds_installed: dict[str, Any], namespace: str) -> None:
    with pytest.raises(kubernetes.client.ApiException) as info:
        custom_api(crds_installed).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "iocsites", site("x8", "725", "district", modules=["weather"])
        )
    assert info.value.status == 422 and "spec.modules[0]" in info.value.body


def test_vendor_ids_and_units_are_checked(crds_installed: dict[str, Any], namespace: str) -> None:
    vendor = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SensorVendor",
        "metadata": {"name": "bad.vendor"},
        "spec": {"units": ["12345"], "kinds": ["air"]},
    }
    error = _refused(crds_installed, namespace, vendor)
    assert "spec.units: " in error and "a vendor id" in error, error


def test_the_province_renders_and_the_api_server_accepts_it(crds_installed: dict[str, Any]) -> None:
    for edition, count in (("2024", 101), ("2025", 37)):
        text = province.render(edition, f"dry-{edition}", with_namespace=False)
        documents = list(yaml.safe_load_all(text))
        assert len(documents) == count
        done = kubectl(
            crds_installed,
            "apply",
            "--dry-run=server",
            "-n",
            "default",
            "-f",
            "-",
            stdin=text.replace(f"dry-{edition}", "default"),
        )
        assert done.stdout.count("(server dry run)") == count


def test_printer_columns_show_in_kubectl_get(crds_installed: dict[str, Any], namespace: str) -> None:
    kubectl(crds_installed, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(site("cols", "726", "district")))
    header = kubectl(crds_installed, "get", "ioc", "-n", namespace).stdout.splitlines()[0].split()
    assert header[:4] == ["NAME", "UNIT", "TIER", "PHASE"] and "FRESHNESS" in header and "SCORE" in header


def test_the_default_reference_model_is_accepted(crds_installed: dict[str, Any], tmp_path: Path) -> None:
    manifest = default_reference_model_manifest()
    manifest["metadata"]["name"] = f"check-{uuid.uuid4().hex[:5]}"
    kubectl(crds_installed, "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest))
    broken = json.loads(json.dumps(manifest))
    broken["spec"]["tiers"][2]["parents"] = ["county"]
    done = kubectl(crds_installed, "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(broken), check=False)
    assert done.returncode != 0 and "spec.tiers: " in done.stderr and "must be tiers of this model" in done.stderr
