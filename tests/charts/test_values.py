"""The chart's values and what it is generated from: every value commented and in values.schema.json, no drift.

Pure file checks, no helm: values.yaml against its schema (both directions), the generated files in files/
and crds/ against their sources, and the versions the chart, the project and the operator agree on.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from ioc.settings import OperatorSettings
from operators import crds
from tests.charts import generate
from tests.charts.conftest import CHART, ROOT, values_yaml


def schema() -> dict[str, Any]:
    return dict(json.loads((CHART / "values.schema.json").read_text(encoding="utf-8")))


def _paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        found.append(path)
        if isinstance(value, dict) and value:
            found += _paths(value, path)
    return found


def test_schema_is_valid_draft_7() -> None:
    jsonschema.Draft7Validator.check_schema(schema())


def test_default_values_meet_the_schema() -> None:
    jsonschema.Draft7Validator(schema()).validate(values_yaml())


def test_every_value_is_in_the_schema() -> None:
    missing = []
    for path in _paths(values_yaml()):
        node = schema()
        for key in path.split("."):
            if key not in node.get("properties", {}) and isinstance(node.get("additionalProperties"), dict):
                break  # a free-form map (labels): its keys are described by their value type
            node = node.get("properties", {}).get(key)
            if node is None:
                missing.append(path)
                break
    assert not missing, f"values.yaml keys not in values.schema.json: {missing}"


def test_the_schema_describes_only_values_that_exist() -> None:
    """No dead schema: every property of the chart's own (closed) objects is a value in values.yaml."""
    dead = []

    def walk(node: dict[str, Any], values: dict[str, Any], path: str) -> None:
        if node.get("additionalProperties", True) is not False or not values:
            return  # free-form Kubernetes fields (securityContext, resources): only what values set is described
        for key, sub in node.get("properties", {}).items():
            here = f"{path}.{key}" if path else key
            if key not in values:
                dead.append(here)
            elif isinstance(values[key], dict):
                walk(sub, values[key], here)

    walk(schema(), values_yaml(), "")
    assert not dead, f"values.schema.json describes values that values.yaml lacks: {dead}"


def test_the_schema_refuses_unknown_values_and_bad_types() -> None:
    validator = jsonschema.Draft7Validator(schema())
    for bad in (
        {"bridge": {"replica": 2}},  # a typo of replicas
        {"operator": {"workers": 0}},
        {"clickhouse": {"port": "9000"}},
        {"kafka": {"bootstrap": "no-port"}},
        {"mqtt": {"tls": {"enabled": True, "caSecret": ""}}},
        {"clickhouseInstallation": {"enabled": True}},  # needs clickhouse.auth.existingSecret
        {"streams": {"autoOffsetReset": "newest"}},
    ):
        merged = _merge(values_yaml(), bad)
        assert list(validator.iter_errors(merged)), f"the schema accepted {bad}"


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def _comments() -> tuple[dict[str, str], list[str]]:
    """The `# --` comment of each documented value, and the values neither they nor an ancestor document."""
    comments: dict[str, str] = {}
    uncommented = []
    stack: list[tuple[str, bool]] = []  # (key, documented) per indentation level
    previous = ""
    for line in (CHART / "values.yaml").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(\s*)([A-Za-z0-9_.-]+):(.*)$", line)
        if match:
            depth = len(match.group(1)) // 2
            documented = previous.lstrip().startswith("# --")
            stack = [*stack[:depth], (match.group(2), documented)]
            path = ".".join(key for key, _ in stack)
            if documented:
                comments[path] = previous.lstrip().removeprefix("# --").strip()
            is_object_header = match.group(3).strip() == ""
            if not is_object_header and not any(doc for _, doc in stack):
                uncommented.append(path)
        if line.strip():
            previous = line
    return comments, uncommented


def test_every_value_is_commented() -> None:
    """helm-docs style: a `# --` line right above each value (or above the object it belongs to)."""
    _, uncommented = _comments()
    assert not uncommented, f"values without a `# --` comment: {uncommented}"


def test_the_schema_describes_each_value_with_its_comment() -> None:
    comments, _ = _comments()
    for path, comment in comments.items():
        node = schema()
        for key in path.split("."):
            node = node["properties"][key]
        assert node.get("description") == comment, f"{path}: values.schema.json's description differs"


def test_generated_files_are_fresh() -> None:
    assert not generate.stale(), f"stale chart files {generate.stale()}: run `python -m tests.charts.generate`"


def test_chart_crds_are_exactly_the_generated_ones() -> None:
    problems = crds.diff(CHART / "crds")
    assert not problems, "stale CRDs: run `ioc operator crds`\n" + "\n".join(problems)
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == sorted(crds.crd_files())


def test_versions_agree() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"]
    # The operator's own default image is the chart's default image.
    default_image = OperatorSettings.model_fields["image"].default
    assert default_image == f"{values_yaml()['image']['repository']}:{chart['appVersion']}"


@pytest.mark.parametrize("component", ["operator", "bridge", "streams", "migrations"])
def test_resources_are_unset_by_default(component: str) -> None:
    assert values_yaml()[component]["resources"] == {}


def test_optional_features_are_off_by_default() -> None:
    values = values_yaml()
    assert not values["strimzi"]["enabled"]
    assert not values["clickhouseInstallation"]["enabled"]
    # Security is not optional: MQTT over TLS is on by default (issue 17), with a CA Secret to supply.
    assert values["mqtt"]["tls"]["enabled"] and values["mqtt"]["tls"]["caSecret"]
