"""One home per shared name: id patterns, active states, the YAML loader and problem details."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pydantic
import pytest

from ioc import events, fields, problems, topics, upward
from ioc.yamlfiles import YamlFileError, load_yaml


def test_msgspec_and_pydantic_unit_codes_share_the_pattern() -> None:
    class Site(pydantic.BaseModel):
        unit: fields.UnitCodeField

    class Wire(msgspec.Struct):
        unit: fields.UnitCode

    for good in ("74", "724", "25957"):
        assert Site(unit=good).unit == msgspec.json.decode(json.dumps({"unit": good}), type=Wire).unit
    for bad in ("7", "123456", "DiAn"):
        with pytest.raises(pydantic.ValidationError):
            Site(unit=bad)
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(json.dumps({"unit": bad}), type=Wire)


def test_upward_reports_use_the_same_unit_code() -> None:
    assert upward.UnitCode is fields.UnitCode
    assert events.UnitCode is fields.UnitCode


def test_topics_check_ids_with_the_same_patterns() -> None:
    assert fields.VENDOR_ID.pattern == fields.VENDOR_ID_PATTERN
    with pytest.raises(topics.TopicError):
        topics.mqtt_topic("25957", "air", "Acme", "aq-1")  # the vendor pattern is lowercase
    assert topics.mqtt_topic("25957", "air", "acme", "AQ_1.a") == "ioc/v1/25957/air/acme/AQ_1.a"


def test_active_states_are_the_ones_still_to_act_on() -> None:
    assert set(events.ACTIVE_STATES) == set(events.IncidentState) - {
        events.IncidentState.RESOLVED,
        events.IncidentState.CLOSED,
    }


def test_yaml_refuses_duplicate_keys_and_non_mappings(tmp_path: Path) -> None:
    assert load_yaml("a: 1\nb: {c: [1, 2]}\n") == {"a": 1, "b": {"c": [1, 2]}}
    with pytest.raises(YamlFileError, match=r"(?s)model\.yaml: .*key 'b' twice"):
        load_yaml("a:\n  b: 1\n  b: 2\n", "model.yaml")
    with pytest.raises(YamlFileError, match="root must be a mapping"):
        load_yaml("- 1\n", "list.yaml")
    path = tmp_path / "broken.yaml"
    path.write_text("a: [\n", encoding="utf-8")
    with pytest.raises(YamlFileError, match=r"broken\.yaml: not valid YAML") as refused:
        load_yaml(path)
    assert refused.value.source == str(path)


def test_problem_body_leaves_out_what_is_not_there() -> None:
    body: dict[str, Any] = json.loads(problems.problem_body(404, "Not found", "no such report"))
    assert body == {
        "type": "https://ioc-platform.github.io/errors/404",
        "title": "Not found",
        "status": 404,
        "detail": "no such report",
    }
    with_field = json.loads(problems.problem_body(400, "Bad", "wrong", field="unit", kind="urn:x"))
    assert with_field["field"] == "unit" and with_field["type"] == "urn:x"
