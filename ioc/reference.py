"""The IOC reference model: tiers, modules per tier, default rules and SLAs, with a strict typed loader.

The packaged default (ioc/data/reference-model.yaml) and any ReferenceModel custom resource are the same
shape, so the operator's CRD schema is generated from these classes. `load_reference_model` refuses an
invalid model with `ReferenceModelError`, whose message names every bad field by its path.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic

from ioc.events import MEASURES, Module, SensorKind, Severity
from ioc.units import Level
from ioc.yamlfiles import YamlFileError, load_yaml

__all__ = [
    "AlarmSla",
    "AqiBandRule",
    "CameraRule",
    "HotspotRule",
    "ModuleInfo",
    "RateOfChangeRule",
    "ReferenceModel",
    "ReferenceModelError",
    "ReportCategory",
    "ReportLinking",
    "ReportSla",
    "Rule",
    "SilenceRule",
    "Slas",
    "ThresholdRule",
    "Tier",
    "default_reference_model",
    "load_reference_model",
    "parse_reference_model",
]


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


Label = Annotated[str, pydantic.Field(min_length=1, max_length=200)]
Minutes = Annotated[float, pydantic.Field(gt=0, le=7 * 24 * 60)]
RuleId = Annotated[str, pydantic.Field(pattern=r"^[a-z][a-z0-9-]{1,62}$")]


class ModuleInfo(_Model):
    label_vi: Label
    label_en: Label


class Tier(_Model):
    """A tier of government that can host an IOC replica."""

    name: Annotated[str, pydantic.Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
    level: Level
    parents: list[str] = pydantic.Field(description="Tiers a site of this tier may have as parent; empty for the root.")
    label_vi: Label
    label_en: Label
    modules: list[Module] = pydantic.Field(min_length=1, description="Domain modules a site of this tier may run.")
    dashboard: Literal["own", "parent"] = pydantic.Field(
        "own",
        description="Where a site of this tier gets its dashboard unless its spec says (spec.dashboard.servedBy): "
        "its own (own), or its parent site's, which serves it under its unit's scope (parent; a root site always "
        "has its own). One Streamlit server and one warehouse database per district instead of per commune.",
    )


class _RuleBase(_Model):
    id: RuleId
    module: Module
    severity: Severity
    title_vi: Label
    title_en: Label
    auto_close: bool = pydantic.Field(
        False, description="Close the incident by itself when the condition clears (no operator action)."
    )


class ThresholdRule(_RuleBase):
    """A measurement above `above` for `for_minutes` opens an incident; below `clear_below` clears it."""

    type: Literal["threshold"]
    kind: SensorKind
    measure: str
    above: float
    clear_below: float
    for_minutes: Minutes

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> ThresholdRule:
        _check_measure(self.measure, self.kind)
        if self.clear_below > self.above:
            raise ValueError(f"clear_below ({self.clear_below}) must not exceed above ({self.above})")
        return self


class RateOfChangeRule(_RuleBase):
    """A rise of at least `rise` within `per_minutes` opens an incident."""

    type: Literal["rate_of_change"]
    kind: SensorKind
    measure: str
    rise: Annotated[float, pydantic.Field(gt=0)]
    per_minutes: Minutes

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> RateOfChangeRule:
        _check_measure(self.measure, self.kind)
        return self


class AqiBandRule(_RuleBase):
    """VN_AQI at or above `min_aqi` for `for_minutes` opens an incident; below `clear_below` closes it."""

    type: Literal["aqi_band"]
    kind: Literal[SensorKind.AIR] = SensorKind.AIR
    min_aqi: Annotated[int, pydantic.Field(ge=0, le=500)]
    clear_below: Annotated[int, pydantic.Field(ge=0, le=500)]
    for_minutes: Minutes

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> AqiBandRule:
        if self.clear_below > self.min_aqi:
            raise ValueError(f"clear_below ({self.clear_below}) must not exceed min_aqi ({self.min_aqi})")
        return self


class SilenceRule(_RuleBase):
    """A device of `kind` (every sensor kind when unset) silent for `silent_minutes`: an incident to its vendor."""

    type: Literal["silence"]
    kind: SensorKind | Literal["camera"] | None = None
    silent_minutes: Minutes


class CameraRule(_RuleBase):
    """Camera detections above `min_confidence`, de-duplicated per camera, type and plate over `dedupe_minutes`."""

    type: Literal["camera"]
    dedupe_minutes: Minutes
    min_confidence: Annotated[float, pydantic.Field(ge=0, le=1)]


class HotspotRule(_RuleBase):
    """At least `min_events` violations within `radius_m` and `window_minutes` make a hotspot."""

    type: Literal["hotspot"]
    min_events: Annotated[int, pydantic.Field(ge=2)]
    window_minutes: Minutes
    radius_m: Annotated[float, pydantic.Field(gt=0, le=10000)]


Rule = Annotated[
    ThresholdRule | RateOfChangeRule | AqiBandRule | SilenceRule | CameraRule | HotspotRule,
    pydantic.Field(discriminator="type"),
]


def _check_measure(measure: str, kind: SensorKind) -> None:
    known = MEASURES.get(measure)
    if known is None:
        raise _at("measure", f"{measure!r} is not one of {sorted(MEASURES)}")
    if known.kind is not kind:
        raise _at("measure", f"{measure!r} measures {known.kind.value}, not {kind.value}")


class AlarmSla(_Model):
    acknowledge_hours: Annotated[float, pydantic.Field(gt=0)]
    resolve_hours: Annotated[float, pydantic.Field(gt=0)]


class ReportSla(_Model):
    acknowledge_working_days: Annotated[float, pydantic.Field(gt=0)] = 1
    resolve_working_days: Annotated[float, pydantic.Field(gt=0)] = 15


class Slas(_Model):
    alarms: dict[Severity, AlarmSla]
    citizen_reports: dict[str, ReportSla]

    @pydantic.model_validator(mode="after")
    def _complete(self) -> Slas:
        missing = [s.value for s in Severity if s not in self.alarms]
        if missing:
            raise _at("alarms", f"no SLA for severity {', '.join(missing)}")
        if "default" not in self.citizen_reports:
            raise _at("citizen_reports", "needs a 'default' entry")
        return self


class ReportCategory(_Model):
    module: Module
    label_vi: Label
    label_en: Label
    acknowledge_working_days: Annotated[float, pydantic.Field(gt=0)] | None = None
    resolve_working_days: Annotated[float, pydantic.Field(gt=0)] | None = None
    incident_rules: list[str] = pydantic.Field(
        default=[],
        description="Rules whose open incidents a report of this category is about (a flood report and the "
        "flood-level incident): the stream worker links the report to one nearby (see report_linking).",
    )


class ReportLinking(_Model):
    """How near, in place and time, an open incident must be for a citizen report to be linked to it."""

    radius_m: Annotated[float, pydantic.Field(gt=0, le=50000)] = pydantic.Field(
        default=2000, description="Metres between the report's point and the incident's (or their units' markers)."
    )
    window_minutes: Annotated[float, pydantic.Field(gt=0, le=10080)] = pydantic.Field(
        default=120,
        description="A report links to an incident still open that opened before it, or at most this many "
        "minutes after it was submitted (the citizen saw the water before the gauge's rule fired).",
    )


def _check_incident_rules(categories: dict[str, ReportCategory], rule_ids: list[str]) -> None:
    for code, category in categories.items():
        for j, rule_id in enumerate(category.incident_rules):
            if rule_id not in rule_ids:
                raise _at(f"report_categories.{code}.incident_rules.{j}", f"{rule_id!r} is not a rule id")


class ReferenceModel(_Model):
    """A whole reference model; cross-references between its parts are checked on construction."""

    name: Annotated[str, pydantic.Field(pattern=r"^[a-z][a-z0-9-]{1,62}$")]
    version: Annotated[str, pydantic.Field(min_length=1, max_length=32)]
    description: str = ""
    modules: dict[Module, ModuleInfo]
    tiers: list[Tier] = pydantic.Field(min_length=1)
    rules: list[Rule]
    slas: Slas
    report_categories: dict[Annotated[str, pydantic.Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")], ReportCategory]
    report_linking: ReportLinking = ReportLinking()

    @pydantic.model_validator(mode="after")
    def _cross_references(self) -> ReferenceModel:
        names = [t.name for t in self.tiers]
        for i, tier in enumerate(self.tiers):
            if tier.name in names[:i]:
                raise _at(f"tiers.{i}.name", f"tier name {tier.name!r} is used twice")
            for j, parent in enumerate(tier.parents):
                if parent not in names:
                    raise _at(f"tiers.{i}.parents.{j}", f"{parent!r} is not a tier (tiers: {', '.join(names)})")
                if parent == tier.name:
                    raise _at(f"tiers.{i}.parents.{j}", "a tier cannot be its own parent")
            for j, module in enumerate(tier.modules):
                if module not in self.modules:
                    raise _at(f"tiers.{i}.modules.{j}", f"module {module.value!r} is not declared under modules")
        if not any(not t.parents for t in self.tiers):
            raise _at("tiers", "no root tier (one tier must have no parents)")
        ids = [r.id for r in self.rules]
        for i, rule in enumerate(self.rules):
            if rule.id in ids[:i]:
                raise _at(f"rules.{i}.id", f"rule id {rule.id!r} is used twice")
        _check_incident_rules(self.report_categories, ids)
        return self

    def tier(self, name: str) -> Tier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(
            f"no tier {name!r} in reference model {self.name} (tiers: {', '.join(t.name for t in self.tiers)})"
        )

    def tier_for_level(self, level: Level | str) -> Tier:
        for tier in self.tiers:
            if tier.level == level:
                return tier
        raise KeyError(f"no tier for level {level!r} in reference model {self.name}")

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no rule {rule_id!r} in reference model {self.name}")

    def report_sla(self, category: str) -> ReportSla:
        """A category's SLA in working days, falling back to the default per field."""
        default = self.slas.citizen_reports["default"]
        specific = self.slas.citizen_reports.get(category)
        cat = self.report_categories.get(category)
        ack = (cat and cat.acknowledge_working_days) or (specific and specific.acknowledge_working_days)
        res = (cat and cat.resolve_working_days) or (specific and specific.resolve_working_days)
        return ReportSla(
            acknowledge_working_days=ack or default.acknowledge_working_days,
            resolve_working_days=res or default.resolve_working_days,
        )


class _FieldError(ValueError):
    def __init__(self, loc: str, message: str) -> None:
        super().__init__(f"{loc}: {message}")


def _at(loc: str, message: str) -> _FieldError:
    return _FieldError(loc, message)


class ReferenceModelError(ValueError):
    """An invalid reference model; `errors` lists (field path, message) pairs, and the message names them."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {loc}: {msg}" for loc, msg in errors)
        super().__init__(f"invalid reference model {source}:\n{lines}")


_RULE_TYPES = frozenset({"threshold", "rate_of_change", "aqi_band", "silence", "camera", "hotspot"})


def _loc(parts: tuple[int | str, ...]) -> str:
    # pydantic puts the discriminator value in the path ("rules.0.threshold.measure"): leave it out.
    kept = [p for i, p in enumerate(parts) if not (p in _RULE_TYPES and i > 0 and isinstance(parts[i - 1], int))]
    return ".".join(str(p) for p in kept) or "(root)"


def parse_reference_model(data: Any, source: str = "<data>") -> ReferenceModel:
    """Validate already-parsed data (a dict from YAML or a custom resource's spec)."""
    try:
        return ReferenceModel.model_validate(data)
    except pydantic.ValidationError as exc:
        errors: list[tuple[str, str]] = []
        for err in exc.errors(include_url=False):
            message = str(err["msg"]).removeprefix("Value error, ")
            loc = _loc(tuple(err["loc"]))
            # Cross-reference errors carry their own precise path in the message ("tiers.2.modules.0: ...").
            if ": " in message and isinstance(err.get("ctx", {}).get("error"), _FieldError):
                inner_loc, message = message.split(": ", 1)
                loc = inner_loc if loc == "(root)" else f"{loc}.{inner_loc}"
            errors.append((loc, message))
        raise ReferenceModelError(source, errors) from None


def load_reference_model(path: str | Path) -> ReferenceModel:
    """Load and validate a reference model from a YAML file."""
    try:
        data = load_yaml(Path(path))
    except YamlFileError as exc:
        raise ReferenceModelError(exc.source, [("(file)", exc.message)]) from None
    return parse_reference_model(data, str(path))


def default_reference_model() -> ReferenceModel:
    """The reference model that ships with the platform."""
    text = importlib.resources.files("ioc.data").joinpath("reference-model.yaml").read_text(encoding="utf-8")
    return parse_reference_model(load_yaml(text, "ioc/data/reference-model.yaml"), "ioc/data/reference-model.yaml")
