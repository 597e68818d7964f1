"""ioc.authz: the one verdict on an incident command, as the dashboard and the stream worker both ask it. Pure."""

from __future__ import annotations

import pytest

from ioc import units
from ioc.authz import CommandRefusal, Grant, Role, authorise_command, format_grants, operator_units, parse_grants
from ioc.events import IncidentAction

TREE = units.load_tree("2024")
DI_AN, THU_DAU_MOT = "724", "718"
DONG_HOA, BINH_AN = "25957", "25951"  # two wards of Dĩ An
PHU_CUONG = "25747"  # a ward of Thủ Dầu Một


def verdict(
    grants: list[str],
    *,
    site: str = DI_AN,
    action: IncidentAction = IncidentAction.DISPATCH,
    place: str = DONG_HOA,
    responsible: str | None = None,
    target: str | None = DONG_HOA,
) -> CommandRefusal | None:
    return authorise_command(
        grants=parse_grants(grants),
        site_unit=site,
        action=action,
        incident_unit=place,
        responsible_unit=responsible,
        target_unit=target,
        tree=TREE,
    ).reason


def test_grants_parse_strictly_and_format_back() -> None:
    assert parse_grants("operator@724, viewer@74") == (Grant(Role.OPERATOR, "724"), Grant(Role.VIEWER, "74"))
    assert parse_grants(["admin@74", "operator@7", "operator@724; DROP", 5, "viewer:25957"]) == (
        Grant(Role.VIEWER, "25957"),
    )
    assert parse_grants(None) == () and parse_grants({"operator": "74"}) == ()
    assert len(parse_grants(["viewer@74"] * 1000)) == 64  # a claim cannot inflate the work done per command
    assert format_grants(parse_grants(["viewer@74", "operator@724"])) == ("operator@724", "viewer@74")


def test_operator_scope_is_cut_to_the_site() -> None:
    assert operator_units(parse_grants(["operator@74"]), DI_AN, TREE) == (DI_AN,)  # above the site: the site
    assert operator_units(parse_grants(["operator@25957", "viewer@724"]), DI_AN, TREE) == (DONG_HOA,)
    assert operator_units(parse_grants(["operator@718", "operator@25747"]), DI_AN, TREE) == ()  # another site's


def test_a_ward_operator_dispatches_within_its_ward_only() -> None:
    assert verdict([f"operator@{DONG_HOA}"]) is None
    assert verdict([f"operator@{DONG_HOA}"], target=BINH_AN) is CommandRefusal.TARGET_OUTSIDE_SCOPE
    assert verdict([f"operator@{DONG_HOA}", f"viewer@{BINH_AN}"], target=BINH_AN) is (
        CommandRefusal.TARGET_OUTSIDE_SCOPE
    )  # seeing a ward is not operating it
    assert verdict(["operator@724"], target=BINH_AN) is None  # the district's operator may
    assert verdict(["operator@724"], target=PHU_CUONG) is CommandRefusal.TARGET_OUTSIDE_SCOPE  # not outside it
    assert verdict(["operator@724"], target="99999") is CommandRefusal.TARGET_OUTSIDE_SCOPE
    assert verdict(["operator@724"], target=None) is CommandRefusal.TARGET_OUTSIDE_SCOPE


@pytest.mark.parametrize(
    ("grants", "kwargs", "reason"),
    [
        ([], {}, CommandRefusal.NOT_OPERATOR),  # no grants at all (an old or forged command)
        (["viewer@724"], {}, CommandRefusal.NOT_OPERATOR),
        ([f"operator@{BINH_AN}"], {}, CommandRefusal.NOT_OPERATOR),  # the sibling ward's operator
        (["operator@718"], {}, CommandRefusal.NOT_OPERATOR),  # a grant from another site counts for nothing
        (["operator@74"], {"site": DI_AN, "place": PHU_CUONG, "target": PHU_CUONG}, CommandRefusal.OUTSIDE_SITE),
        (["operator@74"], {"site": "99999"}, CommandRefusal.UNKNOWN_SITE),
        (["operator@74"], {"site": DONG_HOA, "place": BINH_AN}, CommandRefusal.OUTSIDE_SITE),
    ],
)
def test_refusals_name_their_reason(grants: list[str], kwargs: dict[str, str], reason: CommandRefusal) -> None:
    assert verdict(grants, action=IncidentAction.ACKNOWLEDGE, **kwargs) is reason


def test_an_incident_dispatched_into_a_ward_is_that_wards_to_act_on() -> None:
    # Opened in Đông Hòa, dispatched to Bình An: Bình An's operator may now act on it, and send it back.
    ward = [f"operator@{BINH_AN}"]
    assert verdict(ward, action=IncidentAction.RESOLVE, place=DONG_HOA, responsible=BINH_AN, target=None) is None
    assert verdict(ward, place=DONG_HOA, responsible=BINH_AN, target=BINH_AN) is None
    refused = verdict(ward, place=DONG_HOA, responsible=BINH_AN, target=DONG_HOA)
    assert refused is CommandRefusal.TARGET_OUTSIDE_SCOPE


def test_every_refusal_has_a_label_in_both_languages() -> None:
    from dashboards.i18n import LANGUAGES, strings  # noqa: PLC0415 - tests may import the dashboards

    for lang in LANGUAGES:
        assert {f"refusal.{r.value}" for r in CommandRefusal} <= set(strings(lang)), lang
