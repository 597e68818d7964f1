"""The Decision 766/QĐ-TTg scoring scheme: groups, sub-indicators, weights and formulas, with a strict loader.

The scheme is versioned data (ioc/data/decision-766.yaml), never code: the stream workers score dossiers
against it (streams/scoring766.py) and dashboards read its labels and maxima from it. `parse_scheme`
refuses an invalid scheme with `SchemeError`, whose message names every bad field by its path. Points
are exact (`fractions.Fraction`); `display_points` rounds them the one way every screen shows them.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import importlib.resources
import types
from collections.abc import Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import pydantic

from ioc.yamlfiles import YamlFileError, load_yaml

__all__ = [
    "MEASURE_POPULATION",
    "TOTAL_POINTS",
    "Capped",
    "Defaults",
    "Formula",
    "Group",
    "Indicator",
    "Linear",
    "Measure",
    "Population",
    "Scheme",
    "SchemeError",
    "SourceData",
    "Threshold",
    "Tracked",
    "default_scheme",
    "display_points",
    "load_scheme",
    "parse_scheme",
]

TOTAL_POINTS: Final = 100


class Measure(enum.StrEnum):
    """What the platform counts from ServiceRecords for an indicator: the share of dossiers that ..."""

    SYNCED_TO_NATIONAL_PORTAL = "synced_to_national_portal"  # ... have their status synced to Cổng DVCQG
    ON_TIME = "on_time"  # ... were (or, still in progress, are) processed by their due date
    ONLINE_SUBMISSION = "online_submission"  # ... were submitted online
    FULLY_ONLINE = "fully_online"  # ... were handled fully online (toàn trình)
    ONLINE_PAYMENT = "online_payment"  # ... needing a fee, had it paid online
    RESULT_DIGITAL = "result_digital"  # ... got an electronic result
    DIGITISED = "digitised"  # ... had their components digitised
    SATISFACTION = "satisfaction"  # 100% − (overdue % + disliked %), VPCP's implementation


class Population(enum.StrEnum):
    """Which of a period's dossiers a measure counts over."""

    RECEIVED = "received"  # received in the period
    RECEIVED_NOT_WITHDRAWN = "received_not_withdrawn"  # received in the period, not withdrawn by the citizen
    FINISHED = "finished"  # processed or returned in the period, whenever received


# Submission-side measures count every dossier received: the submission, its digitisation and its sync
# happened whatever became of it. Outcome-side measures leave out dossiers the citizen withdrew (the unit
# had nothing left to process, pay or rate); the result measure counts what finished in the period,
# because a result exists only once a dossier is finished.
MEASURE_POPULATION: Final[Mapping[Measure, Population]] = types.MappingProxyType(
    {
        Measure.SYNCED_TO_NATIONAL_PORTAL: Population.RECEIVED,
        Measure.ON_TIME: Population.RECEIVED_NOT_WITHDRAWN,
        Measure.ONLINE_SUBMISSION: Population.RECEIVED,
        Measure.FULLY_ONLINE: Population.RECEIVED,
        Measure.ONLINE_PAYMENT: Population.RECEIVED_NOT_WITHDRAWN,
        Measure.RESULT_DIGITAL: Population.FINISHED,
        Measure.DIGITISED: Population.RECEIVED,
        Measure.SATISFACTION: Population.RECEIVED_NOT_WITHDRAWN,
    }
)


class SourceData(enum.StrEnum):
    """Where an indicator's data comes from."""

    SERVICE_RECORDS = "service_records"
    NOT_COLLECTED = "not_collected"


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


Label = Annotated[str, pydantic.Field(min_length=1, max_length=300)]
Points = Annotated[Decimal, pydantic.Field(ge=0, le=TOTAL_POINTS, allow_inf_nan=False)]
Rate = Annotated[Decimal, pydantic.Field(ge=0, le=1, allow_inf_nan=False)]
IndicatorCode = Annotated[
    str, pydantic.Field(pattern=r"^[1-9]\.[0-9a-z]{1,8}$", description='"2.1"; a letter suffix splits one: "4.5a".')
]


def _check_rate(rate: Fraction) -> None:
    if not 0 <= rate <= 1:
        raise ValueError(f"rate {rate} is outside [0, 1]")


class Linear(_Model):
    """points = max × rate."""

    kind: Literal["linear"]

    def points(self, rate: Fraction, max_points: Fraction) -> Fraction:
        _check_rate(rate)
        return max_points * rate


class Threshold(_Model):
    """Full points at a rate of `full_at_percent` or more, otherwise rate × max / full_at."""

    kind: Literal["threshold"]
    full_at_percent: Annotated[Decimal, pydantic.Field(gt=0, le=100, allow_inf_nan=False)]

    def points(self, rate: Fraction, max_points: Fraction) -> Fraction:
        _check_rate(rate)
        return max_points * min(Fraction(1), rate / (Fraction(self.full_at_percent) / 100))


class Capped(_Model):
    """points = min(max, coefficient × rate), as DVCQG publishes some formulas (4.1: min(6, 6 × rate))."""

    kind: Literal["capped"]
    coefficient: Annotated[Decimal, pydantic.Field(gt=0, allow_inf_nan=False)]

    def points(self, rate: Fraction, max_points: Fraction) -> Fraction:
        _check_rate(rate)
        return min(max_points, Fraction(self.coefficient) * rate)


class Tracked(_Model):
    """Shown on the scorecard, never scored."""

    kind: Literal["tracked"]

    def points(self, rate: Fraction, max_points: Fraction) -> Fraction:
        _check_rate(rate)
        return Fraction(0)


Formula = Annotated[Linear | Threshold | Capped | Tracked, pydantic.Field(discriminator="kind")]
_FORMULA_KINDS: Final = frozenset({"linear", "threshold", "capped", "tracked"})


class Indicator(_Model):
    """One sub-indicator: its weight, its formula, and what (if anything) the platform counts for it."""

    code: IndicatorCode
    label_vi: Label
    label_en: Label
    max_points: Points
    formula: Formula
    source_data: SourceData
    measure: Measure | None = pydantic.Field(
        default=None, description="What is counted; required for service_records, absent for not_collected."
    )
    default_rate: Rate | None = pydantic.Field(
        default=None,
        description="Rate used when there is nothing to count (always, if not collected); unset: the scheme's default.",
    )
    source: Label = pydantic.Field(description="Where the weight and formula come from.")
    confirmed: bool = pydantic.Field(description="False where the domain sources mark the rule [UNCONFIRMED].")

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Indicator:
        if self.source_data is SourceData.SERVICE_RECORDS and self.measure is None:
            raise _at("measure", "an indicator computed from service_records needs a measure")
        if self.source_data is SourceData.NOT_COLLECTED and self.measure is not None:
            raise _at("measure", "a not_collected indicator has nothing to measure; remove measure")
        tracked = isinstance(self.formula, Tracked)
        if tracked and self.max_points != 0:
            raise _at("max_points", f"a tracked indicator carries no points, not {self.max_points}")
        if not tracked and self.max_points == 0:
            raise _at("formula", "an indicator worth 0 points must use the tracked formula")
        if isinstance(self.formula, Capped) and self.formula.coefficient < self.max_points:
            raise _at(
                "formula.coefficient",
                f"{self.formula.coefficient} is below max_points ({self.max_points}): full points are unreachable",
            )
        return self

    @property
    def collected(self) -> bool:
        return self.source_data is SourceData.SERVICE_RECORDS

    @property
    def population(self) -> Population | None:
        """The dossiers this indicator counts over, or None when the platform does not collect it."""
        return None if self.measure is None else MEASURE_POPULATION[self.measure]

    def points_for(self, rate: Fraction) -> Fraction:
        """Exact points for a rate in [0, 1]."""
        return self.formula.points(rate, Fraction(self.max_points))


class Group(_Model):
    """One of the five groups: its maximum is the sum of its indicators' maxima."""

    code: Annotated[str, pydantic.Field(pattern=r"^[1-9]$")]
    label_vi: Label
    label_en: Label
    max_points: Points
    indicators: tuple[Indicator, ...] = pydantic.Field(min_length=1)

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Group:
        for i, indicator in enumerate(self.indicators):
            if not indicator.code.startswith(f"{self.code}."):
                raise _at(f"indicators.{i}.code", f"{indicator.code!r} does not belong to group {self.code!r}")
        total = sum((ind.max_points for ind in self.indicators), Decimal(0))
        if total != self.max_points:
            raise _at("indicators", f"max_points add up to {total}, but the group's max_points is {self.max_points}")
        return self


class Defaults(_Model):
    """Rates for indicators with nothing to count, unless an indicator sets its own `default_rate`."""

    not_collected_rate: Rate = pydantic.Field(description="For indicators the platform does not collect.")
    empty_rate: Rate = pydantic.Field(description="For collected indicators with no dossier in the denominator.")


class Scheme(_Model):
    """A whole, versioned scoring scheme: five groups worth 100 points together."""

    id: Annotated[str, pydantic.Field(pattern=r"^[0-9a-z][0-9a-z.-]{1,63}$")]
    decision: Label
    title_vi: Label
    title_en: Label
    valid_from: dt.date
    description: str = ""
    defaults: Defaults
    groups: tuple[Group, ...] = pydantic.Field(min_length=1)

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Scheme:
        group_codes = [g.code for g in self.groups]
        for i, group in enumerate(self.groups):
            if group.code in group_codes[:i]:
                raise _at(f"groups.{i}.code", f"group code {group.code!r} is used twice")
        seen: set[str] = set()
        for i, group in enumerate(self.groups):
            for j, indicator in enumerate(group.indicators):
                if indicator.code in seen:
                    raise _at(f"groups.{i}.indicators.{j}.code", f"indicator code {indicator.code!r} is used twice")
                seen.add(indicator.code)
        total = sum((g.max_points for g in self.groups), Decimal(0))
        if total != TOTAL_POINTS:
            raise _at("groups", f"max_points add up to {total}, not {TOTAL_POINTS}")
        return self

    @property
    def max_points(self) -> Fraction:
        return Fraction(TOTAL_POINTS)

    def indicators(self) -> Iterator[Indicator]:
        for group in self.groups:
            yield from group.indicators

    def group(self, code: str) -> Group:
        for group in self.groups:
            if group.code == code:
                return group
        raise KeyError(f"no group {code!r} in scheme {self.id} (groups: {', '.join(g.code for g in self.groups)})")

    def indicator(self, code: str) -> Indicator:
        for indicator in self.indicators():
            if indicator.code == code:
                return indicator
        raise KeyError(f"no indicator {code!r} in scheme {self.id}")

    def fallback_rate(self, indicator: Indicator) -> Fraction:
        """The rate an indicator scores at when there is nothing to count."""
        if indicator.default_rate is not None:
            return Fraction(indicator.default_rate)
        if indicator.collected:
            return Fraction(self.defaults.empty_rate)
        return Fraction(self.defaults.not_collected_rate)


def display_points(value: Fraction) -> Decimal:
    """Points as shown and reported: two decimals, halves rounded up (13.335 → 13.34)."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class _FieldError(ValueError):
    def __init__(self, loc: str, message: str) -> None:
        super().__init__(f"{loc}: {message}")


def _at(loc: str, message: str) -> _FieldError:
    return _FieldError(loc, message)


class SchemeError(ValueError):
    """An invalid scoring scheme; `errors` lists (field path, message) pairs, and the message names them."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {loc}: {msg}" for loc, msg in errors)
        super().__init__(f"invalid Decision 766 scheme {source}:\n{lines}")


def _loc(parts: tuple[int | str, ...]) -> str:
    # pydantic puts the discriminator value in the path ("...formula.threshold.full_at_percent"): leave it out.
    kept = [p for i, p in enumerate(parts) if not (p in _FORMULA_KINDS and i > 0 and parts[i - 1] == "formula")]
    return ".".join(str(p) for p in kept) or "(root)"


def parse_scheme(data: Any, source: str = "<data>") -> Scheme:
    """Validate already-parsed data (a dict from YAML)."""
    try:
        return Scheme.model_validate(data)
    except pydantic.ValidationError as exc:
        errors: list[tuple[str, str]] = []
        for err in exc.errors(include_url=False):
            message = str(err["msg"]).removeprefix("Value error, ")
            loc = _loc(tuple(err["loc"]))
            # Cross-field errors carry their own path in the message ("indicators.2.code: ..."): join the two.
            if ": " in message and isinstance(err.get("ctx", {}).get("error"), _FieldError):
                inner_loc, message = message.split(": ", 1)
                loc = inner_loc if loc == "(root)" else f"{loc}.{inner_loc}"
            errors.append((loc, message))
        raise SchemeError(source, errors) from None


def load_scheme(path: str | Path) -> Scheme:
    """Load and validate a scheme from a YAML file."""
    try:
        data = load_yaml(Path(path))
    except YamlFileError as exc:
        raise SchemeError(exc.source, [("(file)", exc.message)]) from None
    return parse_scheme(data, str(path))


@functools.cache
def default_scheme() -> Scheme:
    """The scheme that ships with the platform (read once; the model is frozen, so sharing it is safe)."""
    text = importlib.resources.files("ioc.data").joinpath("decision-766.yaml").read_text(encoding="utf-8")
    return parse_scheme(load_yaml(text, "ioc/data/decision-766.yaml"), "ioc/data/decision-766.yaml")
