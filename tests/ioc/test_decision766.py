"""The Decision 766 scheme: the packaged one is valid and adds up to 100; invalid ones name the bad field."""

from __future__ import annotations

import copy
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from ioc import decision766

PACKAGED = Path(decision766.__file__).parent / "data" / "decision-766.yaml"


@pytest.fixture
def data() -> dict[str, Any]:
    return yaml.safe_load(PACKAGED.read_text(encoding="utf-8"))


def test_packaged_scheme_has_five_groups_worth_100() -> None:
    scheme = decision766.default_scheme()
    assert scheme.id == "766-2022.dvcqg-2025"
    assert [(g.code, g.max_points) for g in scheme.groups] == [
        ("1", 18),
        ("2", 20),
        ("3", 22),
        ("4", 22),
        ("5", 18),
    ]
    assert sum(g.max_points for g in scheme.groups) == decision766.TOTAL_POINTS == scheme.max_points
    for group in scheme.groups:
        assert sum(i.max_points for i in group.indicators) == group.max_points
    assert scheme.groups[0].label_en == "Publicity and transparency"
    assert scheme.group("4").label_vi == "Số hóa hồ sơ"
    assert decision766.default_scheme() is scheme  # read once


def test_packaged_scheme_maps_the_service_record_indicators() -> None:
    scheme = decision766.default_scheme()
    measured = {i.code: i.measure for i in scheme.indicators() if i.collected}
    assert measured == {
        "1.4": decision766.Measure.SYNCED_TO_NATIONAL_PORTAL,
        "2.1": decision766.Measure.ON_TIME,
        "3.3": decision766.Measure.ONLINE_SUBMISSION,
        "3.4": decision766.Measure.FULLY_ONLINE,
        "3.6": decision766.Measure.ONLINE_PAYMENT,
        "4.1": decision766.Measure.RESULT_DIGITAL,
        "4.2": decision766.Measure.DIGITISED,
        "5.4": decision766.Measure.SATISFACTION,
    }
    # What the platform cannot see is still listed, so the 100 points add up, and scores full by default.
    not_collected = [i for i in scheme.indicators() if not i.collected]
    assert {"1.1", "1.2", "1.3", "4.x", "5.2", "5.3"} <= {i.code for i in not_collected}
    assert all(scheme.fallback_rate(i) == 1 for i in not_collected)
    assert sum(i.max_points for i in not_collected) == 12 + 10 + 12 + 12  # groups 1, 3, 4, 5: 46 of 100
    # Where DOMAIN.md marks a rule [UNCONFIRMED], the file says so.
    assert not scheme.indicator("2.2").confirmed and not scheme.indicator("3.3").confirmed
    assert scheme.indicator("2.1").confirmed
    assert scheme.indicator("4.2").population is decision766.Population.RECEIVED
    assert scheme.indicator("4.1").population is decision766.Population.FINISHED
    assert scheme.indicator("1.1").population is None


@pytest.mark.parametrize(
    ("code", "rate", "points"),
    [
        ("2.1", Fraction(2, 3), Fraction(40, 3)),  # linear: 20 × rate
        ("4.2", Fraction(7, 10), Fraction(7, 2)),  # threshold 80%: 4 × 0.7 / 0.8
        ("4.2", Fraction(4, 5), Fraction(4)),  # ... full at 80%
        ("4.2", Fraction(1), Fraction(4)),
        ("3.3", Fraction(2, 5), Fraction(12, 5)),  # threshold 50%: 3 × 0.4 / 0.5
        ("5.4", Fraction(9, 10), Fraction(6)),  # full at the 90% target
        ("4.1", Fraction(1, 2), Fraction(3)),  # capped: min(6, 6 × rate)
        ("2.2", Fraction(1, 2), Fraction(0)),  # tracked only
    ],
)
def test_formulas(code: str, rate: Fraction, points: Fraction) -> None:
    assert decision766.default_scheme().indicator(code).points_for(rate) == points


def test_capped_formula_stops_at_max_and_rates_are_checked() -> None:
    capped = decision766.Capped(kind="capped", coefficient=Decimal("2.5"))
    assert capped.points(Fraction(1), Fraction(2)) == 2
    assert capped.points(Fraction(2, 5), Fraction(2)) == 1
    with pytest.raises(ValueError, match="outside"):
        decision766.Linear(kind="linear").points(Fraction(3, 2), Fraction(6))


def test_display_rounds_half_up_to_two_decimals() -> None:
    assert decision766.display_points(Fraction(40, 3)) == Decimal("13.33")
    assert decision766.display_points(Fraction(2667, 200)) == Decimal("13.34")  # 13.335
    assert decision766.display_points(Fraction(100)) == Decimal("100.00")


def _errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(decision766.SchemeError) as info:
        decision766.parse_scheme(data, "test")
    assert "invalid Decision 766 scheme test" in str(info.value)
    for loc, _ in info.value.errors:
        assert loc in str(info.value)
    return info.value.errors


def _ind(d: dict[str, Any], group: int, index: int) -> dict[str, Any]:
    return d["groups"][group]["indicators"][index]


@pytest.mark.parametrize(
    ("mutate", "field", "needle"),
    [
        # weights: each group adds up, and the groups add up to 100
        (lambda d: _ind(d, 0, 0).update(max_points=5), "groups.0.indicators", "add up to 17"),
        (
            lambda d: (_ind(d, 0, 0).update(max_points=7), d["groups"][0].update(max_points=19)),
            "groups",
            "add up to 101, not 100",
        ),
        (lambda d: _ind(d, 1, 0).update(max_points=-1), "groups.1.indicators.0.max_points", "greater than or equal"),
        # codes: unique, and inside their group
        (lambda d: _ind(d, 1, 1).update(code="2.1"), "groups.1.indicators.1.code", "used twice"),
        (lambda d: _ind(d, 0, 3).update(code="2.9"), "groups.0.indicators.3.code", "does not belong to group '1'"),
        (lambda d: _ind(d, 0, 3).update(code="1.4!"), "groups.0.indicators.3.code", "pattern"),
        (lambda d: d["groups"].append(copy.deepcopy(d["groups"][3])), "groups.5.code", "used twice"),
        # formulas and what is measured
        (
            lambda d: _ind(d, 3, 1)["formula"].update(full_at_percent=120),
            "groups.3.indicators.1.formula.full_at_percent",
            "less than or equal to 100",
        ),
        (lambda d: _ind(d, 3, 1).update(formula={"kind": "magic"}), "groups.3.indicators.1.formula", "magic"),
        (
            lambda d: _ind(d, 3, 0).update(formula={"kind": "capped", "coefficient": 5}),
            "groups.3.indicators.0.formula.coefficient",
            "unreachable",
        ),
        (lambda d: _ind(d, 0, 3).update(measure="vibes"), "groups.0.indicators.3.measure", "on_time"),
        (lambda d: _ind(d, 0, 3).pop("measure"), "groups.0.indicators.3.measure", "needs a measure"),
        (lambda d: _ind(d, 0, 0).update(measure="on_time"), "groups.0.indicators.0.measure", "nothing to measure"),
        (lambda d: _ind(d, 1, 1).update(formula={"kind": "linear"}), "groups.1.indicators.1.formula", "tracked"),
        (
            lambda d: (_ind(d, 1, 1).update(max_points=1), _ind(d, 1, 0).update(max_points=19)),
            "groups.1.indicators.1.max_points",
            "carries no points",
        ),
        (lambda d: _ind(d, 4, 1).update(default_rate=1.5), "groups.4.indicators.1.default_rate", "less than"),
        (lambda d: d["defaults"].update(empty_rate=-0.1), "defaults.empty_rate", "greater than"),
        # labels, provenance and stray fields
        (lambda d: _ind(d, 2, 0).pop("label_en"), "groups.2.indicators.0.label_en", "Field required"),
        (lambda d: _ind(d, 2, 0).pop("confirmed"), "groups.2.indicators.0.confirmed", "Field required"),
        (lambda d: _ind(d, 2, 0).update(weight=3), "groups.2.indicators.0.weight", "Extra inputs"),
        (lambda d: d.update(id="Version 1"), "id", "pattern"),
        (lambda d: d.update(colour="blue"), "colour", "Extra inputs"),
    ],
)
def test_invalid_schemes_name_the_field(data: dict[str, Any], mutate: Any, field: str, needle: str) -> None:
    broken = copy.deepcopy(data)
    mutate(broken)
    errors = _errors(broken)
    assert any(loc == field and needle in message for loc, message in errors), errors


def test_a_different_version_with_other_defaults_loads(data: dict[str, Any]) -> None:
    data["id"] = "766-2022.strict"
    data["defaults"]["not_collected_rate"] = 0
    scheme = decision766.parse_scheme(data)
    assert scheme.fallback_rate(scheme.indicator("1.1")) == 0
    assert scheme.fallback_rate(scheme.indicator("5.2")) == 1  # its own default_rate: no PAKN ⇒ full
    assert scheme.fallback_rate(scheme.indicator("2.1")) == 1  # empty_rate


def test_load_from_file_and_bad_yaml(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(PACKAGED.read_text(encoding="utf-8"), encoding="utf-8")
    assert decision766.load_scheme(good) == decision766.default_scheme()
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups: [\n", encoding="utf-8")
    with pytest.raises(decision766.SchemeError, match="not valid YAML"):
        decision766.load_scheme(bad)


def test_scheme_is_frozen_and_lookups_say_what_is_missing() -> None:
    scheme = decision766.default_scheme()
    with pytest.raises(Exception, match="frozen"):
        scheme.id = "other"  # type: ignore[misc]
    with pytest.raises(KeyError, match=r"9\.9"):
        scheme.indicator("9.9")
    with pytest.raises(KeyError, match="groups: 1, 2, 3, 4, 5"):
        scheme.group("6")
