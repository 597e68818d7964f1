"""The dashboards' pure parts: grants and expiry, masks, episode partitions, incident actions, sites, strings."""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pytest

from dashboards import actions, auth
from dashboards.audit import AuditLog
from dashboards.data import MemoryCommandSender, TtlCache, command_partition, episode_key, privacy
from dashboards.i18n import LANGUAGES, Translator, strings
from dashboards.sites import Site, UnitOutsideSite
from ioc import topics
from ioc.authz import CommandRefusal
from ioc.events import DeadLetterReason, IncidentAction
from ioc.settings import DashboardSettings

DASHBOARDS = Path(__file__).parents[2] / "dashboards"


def site(unit: str, edition: str = "2024", **overrides: object) -> Site:
    return Site.from_settings(DashboardSettings(site_unit=unit, edition=edition, **overrides))  # type: ignore[arg-type]


# --- grants ------------------------------------------------------------------------------------------------


def test_grants_parse_lists_and_strings_and_ignore_junk() -> None:
    assert auth.parse_grants(["viewer@74", "operator@724"]) == (
        auth.Grant(auth.Role.VIEWER, "74"),
        auth.Grant(auth.Role.OPERATOR, "724"),
    )
    assert auth.parse_grants("operator:25957, viewer@724") == (
        auth.Grant(auth.Role.OPERATOR, "25957"),
        auth.Grant(auth.Role.VIEWER, "724"),
    )
    assert auth.parse_grants(["admin@74", "viewer@Dĩ An", 7, "viewer@1"]) == ()
    assert auth.parse_grants(None) == ()


def test_grant_above_the_site_covers_all_of_it() -> None:
    access = auth.access_for({"sub": "a", "ioc_grants": ["viewer@74"]}, site("724"))
    assert access.allowed and access.home == "724"
    assert access.can_see("25957") and not access.can_act("25957")
    assert not access.can_see("725")  # outside the site, whatever the grant


def test_grant_inside_the_site_covers_that_part_only() -> None:
    access = auth.access_for({"sub": "a", "ioc_grants": ["operator@25957"]}, site("724"))
    assert access.home == "25957"
    assert access.can_act("25957")
    assert not access.can_see("25951") and not access.can_see("724")


def test_overlapping_grants_take_the_higher_role_where_both_apply() -> None:
    access = auth.access_for({"sub": "a", "ioc_grants": ["viewer@74", "operator@25957"]}, site("724"))
    assert access.home == "724"
    assert access.role_at("25957") is auth.Role.OPERATOR
    assert access.role_at("25951") is auth.Role.VIEWER
    redundant = auth.access_for({"sub": "a", "ioc_grants": ["operator@724", "viewer@25957"]}, site("724"))
    assert dict(redundant.grants) == {"724": auth.Role.OPERATOR}


def test_grants_elsewhere_give_nothing() -> None:
    access = auth.access_for({"sub": "a", "ioc_grants": ["operator@725", "operator@99999"]}, site("724"))
    assert not access.allowed


def test_actor_prefers_email() -> None:
    access = auth.access_for({"sub": "s-1", "email": "a@b.vn", "ioc_grants": "viewer@74"}, site("74"))
    assert access.actor == "a@b.vn"
    assert auth.access_for({"sub": "s-1", "ioc_grants": "viewer@74"}, site("74")).actor == "s-1"


def test_2025_sites_read_grants_in_2025_codes() -> None:
    access = auth.access_for({"sub": "a", "ioc_grants": ["operator@79"]}, site("25951", edition="2025"))
    assert access.can_act("25951")


# --- session expiry ----------------------------------------------------------------------------------------


def test_session_ends_at_token_expiry_or_max_age_whichever_first() -> None:
    issued = 1_750_000_000
    assert auth.session_expires_at({"iat": issued, "exp": issued + 3600}, 600) == dt.datetime.fromtimestamp(
        issued + 600, dt.UTC
    )
    assert auth.session_expires_at({"iat": issued, "exp": issued + 300}, 600) == dt.datetime.fromtimestamp(
        issued + 300, dt.UTC
    )
    assert auth.session_expires_at({"auth_time": issued, "iat": issued + 50}, 100) == dt.datetime.fromtimestamp(
        issued + 100, dt.UTC
    )
    assert auth.session_expires_at({}, 600) is None
    assert auth.session_expires_at({"exp": True}, 600) is None


# --- personal data -----------------------------------------------------------------------------------------


def test_masks_keep_only_what_routes_work() -> None:
    assert privacy.mask_plate("61A-123.45") == "61A-•••.••"
    assert privacy.mask_phone("0912 345 678") == "•••••••678"
    assert privacy.mask_name("Nguyễn Văn An") == "N. V. A."
    assert privacy.mask_email("an.nguyen@example.vn") == "a•••@example.vn"
    assert privacy.mask_plate("") == "" and privacy.mask_phone("") == ""
    # A site's copy holds masked values already; the dashboards mask them again and must not lose anything.
    for mask, raw in [
        (privacy.mask_phone, "0912 345 678"),
        (privacy.mask_plate, "61A-123.45"),
        (privacy.mask_name, "Nguyễn Văn An"),
        (privacy.mask_email, "an.nguyen@example.vn"),
    ]:
        assert mask(mask(raw)) == mask(raw), mask.__name__
    rows = privacy.mask_rows([{"plate": "61A-123.45", "unit": "25957"}])
    assert rows == [{"plate": "61A-•••.••", "unit": "25957"}]


# --- commands ----------------------------------------------------------------------------------------------


def test_episode_key_drops_the_window_segment() -> None:
    assert episode_key("flood-level:25957:20250601T0810") == "flood-level:25957"
    assert episode_key("no-colon") == "no-colon"


def test_commands_of_one_episode_share_a_partition() -> None:
    topic = topics.INCIDENT_COMMANDS
    first = command_partition("flood-level:25957:20250601T0810")
    assert first == topics.partition_for("flood-level:25957", topic.partitions)
    assert command_partition("flood-level:25957:20250601T1400") == first
    assert {command_partition(f"flood-level:{u}:x") for u in ("25957", "25951", "25942", "25966")} != {first}


# --- incident actions --------------------------------------------------------------------------------------

INCIDENT = {
    "incident_id": "flood-level:25957:20250601T0810",
    "version": 2,
    "state": "open",
    "unit": "25957",
    "responsible_unit": "25957",
}


def test_actions_follow_the_lifecycle() -> None:
    assert actions.allowed_actions("open") == (
        IncidentAction.ACKNOWLEDGE,
        IncidentAction.ASSIGN,
        IncidentAction.DISPATCH,
        IncidentAction.RESOLVE,
    )
    assert actions.allowed_actions("closed") == (IncidentAction.REOPEN,)
    assert actions.allowed_actions("unknown") == ()


def test_operator_command_is_built_and_refused_when_it_does_not_apply() -> None:
    operator = auth.local_access(site("724"), auth.Role.OPERATOR)
    command = actions.build_command(operator, INCIDENT, IncidentAction.ACKNOWLEDGE)
    assert (command.incident_id, command.actor, command.site_unit) == (INCIDENT["incident_id"], "local", "724")
    assert command.grants == ("operator@724",)  # the worker judges the command against these again
    with pytest.raises(actions.ActionRefused, match="note") as note:
        actions.build_command(operator, INCIDENT, IncidentAction.RESOLVE, note="  ")
    assert note.value.reason is CommandRefusal.NOTE_REQUIRED
    with pytest.raises(actions.ActionRefused, match="dispatch target 725") as outside:
        actions.build_command(operator, INCIDENT, IncidentAction.DISPATCH, target_unit="725")
    assert outside.value.reason is CommandRefusal.TARGET_OUTSIDE_SCOPE
    with pytest.raises(actions.ActionRefused, match="does not apply") as state:
        actions.build_command(operator, INCIDENT, IncidentAction.REOPEN)
    assert state.value.reason is CommandRefusal.WRONG_STATE
    dispatched = actions.build_command(operator, INCIDENT, IncidentAction.DISPATCH, target_unit="25957")
    assert dispatched.target_unit == "25957"
    viewer = auth.local_access(site("724"), auth.Role.VIEWER)
    with pytest.raises(actions.ActionRefused, match="no operator grant") as refused:
        actions.build_command(viewer, INCIDENT, IncidentAction.ACKNOWLEDGE)
    assert refused.value.reason is CommandRefusal.NOT_OPERATOR


def test_a_ward_operator_may_dispatch_only_within_its_ward() -> None:
    district = site("724")
    ward, sibling = sorted(u.code for u in district.tree.children("724"))[:2]
    incident = {**INCIDENT, "unit": ward, "responsible_unit": ward}
    ward_operator = auth.access_for({"sub": "w", "ioc_grants": [f"operator@{ward}"]}, district)
    assert actions.dispatch_targets(ward_operator, incident) == [ward]
    with pytest.raises(actions.ActionRefused) as refused:
        actions.build_command(ward_operator, incident, IncidentAction.DISPATCH, target_unit=sibling)
    assert refused.value.reason is CommandRefusal.TARGET_OUTSIDE_SCOPE
    assert actions.build_command(ward_operator, incident, IncidentAction.DISPATCH, target_unit=ward).grants == (
        f"operator@{ward}",
    )
    # The district's operator may send it to the sibling ward.
    district_operator = auth.access_for({"sub": "d", "ioc_grants": ["operator@724"]}, district)
    assert sibling in actions.dispatch_targets(district_operator, incident)
    assert actions.build_command(district_operator, incident, IncidentAction.DISPATCH, target_unit=sibling)


def test_sent_action_is_audited_and_waits_for_a_newer_version(tmp_path: Path) -> None:
    operator = auth.local_access(site("724"), auth.Role.OPERATOR)
    sender, audit = MemoryCommandSender(), AuditLog(tmp_path / "audit.jsonl")
    waiting = actions.send_action(sender, audit, operator, INCIDENT, IncidentAction.ACKNOWLEDGE)
    assert sender.sent[0].command_id == waiting.command_id
    assert waiting.partition == command_partition(INCIDENT["incident_id"])
    assert not waiting.settled_by({**INCIDENT, "version": 2})
    assert waiting.settled_by({**INCIDENT, "version": 3, "state": "acknowledged"})
    assert not waiting.settled_by(None)
    record = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    assert '"action": "incident-acknowledge"' in record and INCIDENT["incident_id"] in record


# --- sites -------------------------------------------------------------------------------------------------


def test_site_tier_decides_the_modules() -> None:
    assert {m.value for m in site("25957").modules} == {"environment", "public_services", "citizen_reports"}
    assert "traffic" in {m.value for m in site("724").modules}
    assert {m.value for m in site("724", modules=("traffic", "security")).modules} == {"traffic", "security"}


def test_site_refuses_units_outside_it() -> None:
    ward = site("25957")
    assert ward.contains("25957") and not ward.contains("25951") and not ward.contains("724")
    with pytest.raises(UnitOutsideSite):
        ward.scope_of("25951")
    assert [u.code for u in site("74").crumbs("25957")] == ["74", "724", "25957"]
    assert [u.code for u in site("724").crumbs("25957")] == ["724", "25957"]


def test_children_by_row_unit_rolls_2024_codes_up() -> None:
    holder = site("74").children_by_row_unit("74")
    assert holder["25957"] == ("724",) and holder["724"] == ("724",)
    hcmc = site("79", edition="2025").children_by_row_unit("79")
    assert holder and "25951" in hcmc["25957"]


def test_ttl_cache_expires_and_invalidates() -> None:
    now = [0.0]
    cache = TtlCache(clock=lambda: now[0])
    calls: list[int] = []

    def load() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get_or_load("k", 10, load) == 1
    assert cache.get_or_load("k", 10, load) == 1
    now[0] = 11
    assert cache.get_or_load("k", 10, load) == 2
    assert cache.get_or_load("k", 0, load) == 3  # fresh reads bypass and do not store
    assert cache.invalidate(lambda key: key == "k") == 1 and len(cache) == 0


# --- strings -----------------------------------------------------------------------------------------------


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    vi, en = strings("vi"), strings("en")
    assert set(vi) == set(en)
    for key in vi:
        assert set(re.findall(r"{(\w+)}", vi[key])) == set(re.findall(r"{(\w+)}", en[key])), key


def test_every_dead_letter_reason_has_a_label_in_both_languages() -> None:
    for lang in LANGUAGES:
        assert {f"reason.{r.value}" for r in DeadLetterReason} <= set(strings(lang)), lang


def _literal_keys() -> set[str]:
    found: set[str] = set()
    for path in DASHBOARDS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                value = node.args[0].value
                named = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if named in ("t", "header", "empty") and isinstance(value, str) and "." in value:
                    found.add(value)
            if isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[1], ast.Constant):
                value = node.elts[1].value
                if isinstance(value, str) and value.startswith("col."):
                    found.add(value)
    return found


def test_every_key_the_code_names_exists() -> None:
    keys = _literal_keys()
    assert len(keys) > 100
    for lang in LANGUAGES:
        missing = sorted(k for k in keys if not Translator(lang).has(k))
        assert not missing, f"{lang}: {missing}"


def test_translator_fills_placeholders_and_picks_contract_labels() -> None:
    assert Translator("vi")("common.last_hours", h=6) == "6 giờ qua"
    assert Translator("en")("common.last_hours", h=6) == "last 6 hours"
    assert Translator("en").pick("Tốt", "Good") == "Good"
    assert Translator("vi")("no.such.key") == "no.such.key"
