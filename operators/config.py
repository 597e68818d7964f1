"""A site's effective configuration: the reference model narrowed to its tier and modules, plus its overrides.

Pure: the IOCSite handler builds it, the ConfigMap carries it and the compacted `ioc.site-config.v1`
topic publishes it for the shared stream workers, so all of them see the same document. Anything in a
spec that the API server could not check (the cluster's ReferenceModel differs from the packaged one, an
override names a field its rule does not have, a parent of the wrong unit) raises `SiteSpecError`, whose
message names the field (`spec.thresholds.flood-level.above: ...`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from typing import Any, Final

import pydantic

from ioc import units
from ioc.events import Module
from ioc.reference import ReferenceModel, Rule, Tier
from ioc.scope import site_scope
from operators.models import API_VERSION, IOCSiteSpec
from operators.names import SiteNames

__all__ = [
    "SiteRecord",
    "SiteSpecError",
    "check_parent",
    "config_hash",
    "config_json",
    "effective_config",
    "effective_modules",
    "owner_of_unit",
    "served_by",
    "serving_site",
]

CONFIG_KIND: Final = "SiteConfig"


class SiteSpecError(ValueError):
    """A spec the operator must refuse; `field` is its path (`spec.modules.1`)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclasses.dataclass(frozen=True, slots=True)
class SiteRecord:
    """What the operator remembers of every IOCSite (from its index), to check parents and duplicates."""

    namespace: str
    name: str
    uid: str
    unit: str
    edition: str
    tier: str
    parent: tuple[str, str] | None
    created: str
    deleting: bool = False
    served_by: str | None = None
    """spec.dashboard.servedBy as written (None: the tier's default)."""


def served_by(tier: str, parent: object, explicit: str | None, model: ReferenceModel) -> str:
    """Own or Parent: who serves a site's dashboard. The spec's choice, else its tier's default in `model`; a root
    site (no parent) always serves itself, and so does a site whose tier the model does not know."""
    if parent is None:
        return "Own"
    if explicit is not None:
        return explicit
    known = {t.name: t for t in model.tiers}
    return "Parent" if tier in known and known[tier].dashboard == "parent" else "Own"


def serving_site(records: Iterable[SiteRecord], me: SiteRecord, model: ReferenceModel) -> SiteRecord | None:
    """The nearest ancestor of `me` that runs its own dashboard (`served_by` Own); None while a site on the way
    up does not exist (yet). Ancestors' defaults are read from `model`, the site's own reference model."""
    by_key = {(r.namespace, r.name): r for r in records if not r.deleting}
    current, seen = me, set()
    while current.parent is not None and current.parent not in seen:
        seen.add(current.parent)
        parent = by_key.get(current.parent)
        if parent is None:
            return None
        if served_by(parent.tier, parent.parent, parent.served_by, model) == "Own":
            return parent
        current = parent
    return None


def effective_modules(spec: IOCSiteSpec, tier: Tier) -> list[Module]:
    """The modules the site runs: those it lists (each allowed for its tier), or all its tier allows."""
    if not spec.modules:
        return list(tier.modules)
    for i, module in enumerate(spec.modules):
        if module not in tier.modules:
            allowed = ", ".join(m.value for m in tier.modules)
            raise SiteSpecError(f"spec.modules.{i}", f"a {tier.name} site may run only {allowed}, not {module.value}")
    return list(spec.modules)


def _apply_overrides(spec: IOCSiteSpec, model: ReferenceModel, modules: list[Module]) -> list[Rule]:
    by_id = {rule.id: rule for rule in model.rules}
    for rule_id in spec.thresholds:
        if rule_id not in by_id:
            raise SiteSpecError(f"spec.thresholds.{rule_id}", f"no rule {rule_id!r} in reference model {model.name}")
        if by_id[rule_id].module not in modules:
            raise SiteSpecError(
                f"spec.thresholds.{rule_id}",
                f"rule {rule_id} belongs to module {by_id[rule_id].module.value}, which the site does not run",
            )
    rules: list[Rule] = []
    for rule in model.rules:
        if rule.module not in modules:
            continue
        override = spec.thresholds.get(rule.id)
        if override is None:
            rules.append(rule)
            continue
        changes = override.fields()
        for field in changes:
            if field not in type(rule).model_fields:
                raise SiteSpecError(f"spec.thresholds.{rule.id}.{field}", f"a {rule.type} rule has no field {field}")
        try:
            rules.append(type(rule).model_validate({**rule.model_dump(), **changes}))
        except pydantic.ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in err["loc"]) or next(iter(changes))
            message = str(err["msg"]).removeprefix("Value error, ")
            raise SiteSpecError(f"spec.thresholds.{rule.id}.{loc}", message) from None
    return rules


def effective_config(names: SiteNames, spec: IOCSiteSpec, model: ReferenceModel) -> dict[str, Any]:
    """The document the site's dashboard and the stream workers configure themselves from."""
    try:
        tier = model.tier(spec.tier)
    except KeyError as exc:
        raise SiteSpecError("spec.tier", str(exc.args[0])) from None
    tree = units.load_tree(spec.edition)
    try:
        unit = tree.get(spec.unit)
    except units.UnknownUnitError as exc:
        raise SiteSpecError("spec.unit", str(exc)) from None
    if unit.level != tier.level:
        raise SiteSpecError("spec.tier", f"unit {unit.code} is a {unit.level}, not at the {tier.level} level")
    modules = effective_modules(spec, tier)
    if spec.dashboard.served_by == "Parent" and spec.parent_ref is None:
        raise SiteSpecError("spec.dashboard.servedBy", "a site served by its parent's dashboard needs spec.parentRef")
    rules = _apply_overrides(spec, model, modules)
    scope = site_scope(spec.unit, spec.edition)
    return {
        "apiVersion": API_VERSION,
        "kind": CONFIG_KIND,
        "site": {
            "name": names.name,
            "namespace": names.namespace,
            "key": names.config_key,
            "unit": unit.code,
            "unitName": unit.full_name,
            "edition": spec.edition,
            "tier": tier.name,
            "level": tier.level.value,
            "parent": None
            if spec.parent_ref is None
            else {"name": spec.parent_ref.name, "namespace": spec.parent_ref.namespace or names.namespace},
        },
        "scope": {"path": scope.path, "units": sorted(scope.units)},
        "referenceModel": {"name": model.name, "version": model.version},
        "modules": [m.value for m in modules],
        "rules": [rule.model_dump(mode="json") for rule in rules],
        "slas": model.slas.model_dump(mode="json"),
        "reportCategories": {
            k: v.model_dump(mode="json") for k, v in model.report_categories.items() if v.module in modules
        },
        "retention": spec.retention.model_dump(mode="json", by_alias=True),
        "dashboard": {
            **spec.dashboard.model_dump(mode="json", by_alias=True),
            "servedBy": served_by(spec.tier, spec.parent_ref, spec.dashboard.served_by, model),
        },
        "workers": {
            **spec.workers.model_dump(mode="json", by_alias=True),
            "database": names.database,
        },
        # The notifier (streams/notify.py) and the dashboard's assignment list read these back (ioc.people).
        "roster": [person.model_dump(mode="json", by_alias=True, exclude_none=True) for person in spec.roster],
        "notifications": spec.notifications.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def config_json(config: dict[str, Any]) -> str:
    """The configuration as stored and published: stable key order, UTF-8 names kept."""
    return json.dumps(config, ensure_ascii=False, sort_keys=True, indent=2) + "\n"


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def owner_of_unit(records: Iterable[SiteRecord], unit: str, edition: str) -> SiteRecord | None:
    """The site that serves a unit: the oldest one, when several ask (later ones are refused)."""
    candidates = [r for r in records if r.unit == unit and r.edition == edition and not r.deleting]
    return min(candidates, key=lambda r: (r.created, r.namespace, r.name), default=None)


def check_parent(
    records: Iterable[SiteRecord], me: SiteRecord, spec: IOCSiteSpec, model: ReferenceModel
) -> SiteRecord | None:
    """The parent site when it exists and fits; None when it does not exist (yet); SiteSpecError when it is wrong."""
    ref = spec.parent_ref
    if ref is None:
        return None
    namespace = ref.namespace or me.namespace
    parent = next((r for r in records if r.namespace == namespace and r.name == ref.name), None)
    if parent is None:
        return None
    where = "spec.parentRef"
    if parent.tier != ref.tier:
        raise SiteSpecError(f"{where}.tier", f"IOCSite {namespace}/{ref.name} is a {parent.tier} site, not {ref.tier}")
    allowed = model.tier(spec.tier).parents if spec.tier in {t.name for t in model.tiers} else []
    if parent.tier not in allowed:
        raise SiteSpecError(f"{where}.tier", f"a {spec.tier} site's parent must be one of {allowed}")
    if parent.edition != spec.edition:
        raise SiteSpecError(f"{where}.name", f"{namespace}/{ref.name} follows the {parent.edition} tree")
    tree = units.load_tree(spec.edition)
    if parent.unit == spec.unit or not tree.is_within(spec.unit, parent.unit):
        raise SiteSpecError(
            f"{where}.name", f"unit {spec.unit} is not under unit {parent.unit} of {namespace}/{ref.name}"
        )
    return parent
