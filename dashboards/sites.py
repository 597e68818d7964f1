"""The IOC site a dashboard or citizen API serves: its unit, tree, modules, thresholds, and what lies below.

Pure: no Streamlit, no I/O beyond the packaged reference data.
"""

# Rows in the warehouse carry 2024 unit codes, so a 2025 site reads the 2024 communes it absorbed
# (`ioc.units.legacy_codes`) and rolls them up to its own units here.

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Final

from ioc import editions, reference, topics, units
from ioc.events import Module
from ioc.scope import Scope, site_scope
from ioc.settings import CitizenApiSettings, DashboardSettings

__all__ = ["MAX_PLACEMENT_KM", "PAGE_MODULES", "Site", "UnitOutsideSite", "display_name"]

PAGE_MODULES: Final[Mapping[str, Module]] = {
    "environment": Module.ENVIRONMENT,
    "traffic": Module.TRAFFIC,
    "reports": Module.CITIZEN_REPORTS,
    "services": Module.PUBLIC_SERVICES,
    "quality": Module.DATA_QUALITY,
}
"""Pages that belong to one domain module; they are served only where the site runs that module."""


MAX_PLACEMENT_KM: Final = 15.0
"""A point farther than this from every commune marker is not in the province: refused, not guessed."""

_TIE_KM: Final = 0.05
"""Markers closer than this to the nearest one count as the same place (the shipped data repeats points)."""


class UnitOutsideSite(LookupError):
    """A unit that is not the site's unit nor under it, or a point not in the site: nothing about it may be shown."""


@dataclasses.dataclass(frozen=True)
class Site:
    """One site's view of the administrative tree, with the reference model's settings for its tier."""

    unit: str
    edition: units.Edition
    tree: units.UnitTree
    scope: Scope
    modules: frozenset[Module]
    public: bool
    model: reference.ReferenceModel

    @classmethod
    def from_settings(cls, settings: DashboardSettings | CitizenApiSettings) -> Site:
        """The site `settings` describe; raises `UnknownUnitError` for a unit not in its edition."""
        edition: units.Edition = "2025" if settings.edition == "2025" else "2024"
        if settings.edition not in units.EDITIONS:
            raise units.UnknownUnitError(f"no edition {settings.edition!r}; known: {', '.join(units.EDITIONS)}")
        modules = settings.modules if isinstance(settings, DashboardSettings) else None
        return _site(settings.site_unit, edition, modules, settings.public_enabled)

    # --- the tree ---------------------------------------------------------------------------------------

    @property
    def root(self) -> units.Unit:
        return self.tree.get(self.unit)

    @property
    def level(self) -> units.Level:
        return self.root.level

    @property
    def name(self) -> str:
        return self.root.full_name

    @property
    def is_tree_root(self) -> bool:
        """Whether the site is the whole tree (the province, or HCMC for 2025), which owns unplaced data."""
        return self.root.parent is None

    def contains(self, code: str) -> bool:
        """Whether `code` (a unit of the site's edition) is the site's unit or below it."""
        return code in self.tree and self.tree.is_within(code, self.unit)

    def get(self, code: str) -> units.Unit:
        """A unit of the site's subtree; raises `UnitOutsideSite` for any other."""
        if not self.contains(code):
            raise UnitOutsideSite(f"unit {code!r} is not within site {self.unit} ({self.edition} tree)")
        return self.tree.get(code)

    def scope_of(self, code: str) -> Scope:
        """The rows `code` covers, for a unit within the site."""
        self.get(code)
        return _scope(code, self.edition)

    def crumbs(self, code: str) -> list[units.Unit]:
        """From the site's unit down to `code`: the breadcrumb (never above the site)."""
        unit = self.get(code)
        chain = [u for u in self.tree.ancestors(code) if self.contains(u.code)]
        return [*chain, unit]

    def children(self, code: str) -> list[units.Unit]:
        """The units directly under `code`, sorted by name."""
        self.get(code)
        return sorted(self.tree.children(code), key=lambda u: units.ascii_fold(u.name))

    def children_by_row_unit(self, code: str) -> Mapping[str, tuple[str, ...]]:
        """For each 2024 unit code under `code`, the child(ren) of `code` holding it (two for a split commune)."""
        return _children_by_row_unit(code, self.edition)

    def row_unit_name(self, code: str) -> str:
        """A warehouse row's unit (always a 2024 code) as a heading names it."""
        tree = units.load_tree("2024")
        return display_name(tree.get(code)) if code in tree else code

    def row_unit_full_name(self, code: str) -> str:
        """A warehouse row's unit as the citizen API names it ("phường Đông Hòa"), or the code if unknown."""
        tree = units.load_tree("2024")
        return tree.get(code).full_name if code in tree else code

    def responsible_name(self, code: str) -> str:
        """The unit answering for an incident as a heading names it: a unit of the site's edition (ioc.editions
        routes incidents to the deployment's units, and the reform reused 2024 codes for new units)."""
        name = editions.unit_name(code, self.edition)
        return name[:1].upper() + name[1:]

    def responsible_full_name(self, code: str) -> str:
        """The unit answering for an incident as the citizen API names it ("phường Đông Hòa")."""
        return editions.unit_name(code, self.edition)

    def row_unit_level(self, code: str) -> str:
        tree = units.load_tree("2024")
        return str(tree.get(code).level) if code in tree else ""

    def accepts_reports_for(self, code_2024: str) -> bool:
        """Whether a report about this 2024 unit belongs to the site (rows keep 2024 codes)."""
        return self.scope.contains(code_2024)

    def place(self, lat: float, lon: float, address: str | None = None) -> str:
        """The 2024 unit a point lies in, by the nearest commune marker; raises `UnitOutsideSite`.

        Units carry marker points, not boundaries, and several communes share one: among those tied, the
        one the address names wins, and failing that their common parent (a district), which can dispatch
        the report to the right commune, rather than a guess.
        """
        tied, distance = _nearest_communes(lat, lon)
        if distance > MAX_PLACEMENT_KM:
            raise UnitOutsideSite(
                f"({lat:.5f}, {lon:.5f}) is {distance:.0f} km from the nearest commune; not in this province"
            )
        best = _pick(tied, address)
        if not self.scope.contains(best):
            raise UnitOutsideSite(
                f"({lat:.5f}, {lon:.5f}) lies in {self.row_unit_full_name(best)} ({best}), not within site {self.unit}"
            )
        return best

    # --- the reference model for this tier --------------------------------------------------------------

    def serves(self, module: Module) -> bool:
        return module in self.modules

    def threshold(self, rule_id: str) -> reference.ThresholdRule:
        rule = self.model.rule(rule_id)
        assert isinstance(rule, reference.ThresholdRule), f"{rule_id} is not a threshold rule"
        return rule

    def silence_minutes(self, kind: str) -> float:
        """How long a device of `kind` may be quiet before it counts as silent ("camera" or a sensor kind)."""
        rule_id = "camera-silence" if kind == topics.CAMERA_KIND else "device-silence"
        rule = self.model.rule(rule_id)
        assert isinstance(rule, reference.SilenceRule), f"{rule_id} is not a silence rule"
        return rule.silent_minutes


def display_name(unit: units.Unit) -> str:
    """ "Phường Đông Hòa": the unit's type and name as a heading writes them."""
    full = unit.full_name
    return full[:1].upper() + full[1:]


@functools.cache
def _scope(code: str, edition: units.Edition) -> Scope:
    return site_scope(code, edition)


@functools.cache
def _children_by_row_unit(code: str, edition: units.Edition) -> Mapping[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for child in units.load_tree(edition).children(code):
        for row_unit in _scope(child.code, edition).units:
            found.setdefault(row_unit, []).append(child.code)
    return {k: tuple(v) for k, v in found.items()}


@functools.cache
def _site(unit: str, edition: units.Edition, modules: tuple[str, ...] | None, public: bool) -> Site:
    tree = units.load_tree(edition)
    root = tree.get(unit)
    model = reference.default_reference_model()
    tier_modules = frozenset(model.tier_for_level(root.level).modules)
    chosen = tier_modules if modules is None else frozenset(Module(m) for m in modules) & tier_modules
    return Site(unit, edition, tree, _scope(unit, edition), chosen, public, model)


def _nearest_communes(lat: float, lon: float) -> tuple[list[str], float]:
    tree = units.load_tree("2024")
    distances = sorted(
        (units.distance_m(lat, lon, u.lat, u.lon) / 1000, u.code) for u in tree.at_level(units.Level.COMMUNE)
    )
    if not distances:
        return [], math.inf
    nearest = distances[0][0]
    return [code for d, code in distances if d - nearest <= _TIE_KM], nearest


def _pick(tied: list[str], address: str | None) -> str:
    if len(tied) == 1:
        return tied[0]
    tree = units.load_tree("2024")
    if address:
        folded = units.ascii_fold(address)
        named = [c for c in tied if units.ascii_fold(tree.get(c).name_ascii) in folded]
        if len(named) == 1:
            return named[0]
    paths = [tree.path(c).split("/") for c in tied]
    common = [parts[0] for parts in zip(*paths, strict=False) if len(set(parts)) == 1]
    return common[-1] if common else tied[0]
