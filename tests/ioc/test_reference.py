"""The reference model: the packaged default is valid; invalid models name the bad field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from ioc import reference
from ioc.events import Module, Severity

DEFAULT = Path(reference.__file__).parent / "data" / "reference-model.yaml"


@pytest.fixture
def data() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT.read_text(encoding="utf-8"))


def test_default_model_loads() -> None:
    model = reference.default_reference_model()
    assert [t.name for t in model.tiers] == ["province", "district", "commune"]
    assert model.tier("commune").parents == ["district", "province"]
    assert Module.TRAFFIC not in model.tier("commune").modules
    assert model.tier_for_level("district").name == "district"
    assert set(model.slas.alarms) == set(Severity)
    assert model.rule("flood-level").severity is Severity.HIGH
    assert model.report_sla("flooding").resolve_working_days == 2
    assert model.report_sla("construction").resolve_working_days == 15  # the default


def _errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(reference.ReferenceModelError) as info:
        reference.parse_reference_model(data, "test")
    assert "invalid reference model test" in str(info.value)
    return info.value.errors


@pytest.mark.parametrize(
    ("mutate", "field", "needle"),
    [
        (lambda d: d["tiers"][2]["modules"].append("weather"), "tiers.2.modules.3", "environment"),
        (lambda d: d["tiers"][2]["parents"].append("county"), "tiers.2.parents.2", "'county' is not a tier"),
        (lambda d: d["tiers"][0].update(parents=["province"]), "tiers.0.parents.0", "own parent"),
        (lambda d: d["modules"].pop("traffic"), "tiers.0.modules.1", "not declared"),
        (lambda d: d["rules"][0].update(measure="pm25"), "rules.0.measure", "measures air"),
        (lambda d: d["rules"][0].update(clear_below=9), "rules.0", "clear_below"),
        (lambda d: d["rules"][1].update(rise=-1), "rules.1.rise", "greater than 0"),
        (lambda d: d["rules"][1].update(id="flood-level"), "rules.1.id", "used twice"),
        (lambda d: d["rules"][2].update(type="magic"), "rules.2", "magic"),
        (lambda d: d["slas"]["alarms"].pop("low"), "slas.alarms", "low"),
        (lambda d: d.update(colour="blue"), "colour", "Extra inputs"),
        (
            lambda d: d["report_categories"]["flooding"].update(module="weather"),
            "report_categories.flooding.module",
            "",
        ),
    ],
)
def test_invalid_models_name_the_field(data: dict[str, Any], mutate: Any, field: str, needle: str) -> None:
    broken = copy.deepcopy(data)
    mutate(broken)
    errors = _errors(broken)
    assert any(loc == field and needle in message for loc, message in errors), errors


def test_load_from_file_and_bad_yaml(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(DEFAULT.read_text(encoding="utf-8"), encoding="utf-8")
    assert reference.load_reference_model(good).name == "vn-ioc"
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers: [\n", encoding="utf-8")
    with pytest.raises(reference.ReferenceModelError, match="not valid YAML"):
        reference.load_reference_model(bad)


def test_model_is_frozen() -> None:
    model = reference.default_reference_model()
    with pytest.raises(Exception, match="frozen"):
        model.name = "other"  # type: ignore[misc]
