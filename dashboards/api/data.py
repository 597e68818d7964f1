"""The citizen API's data layer: the site it serves and the named queries it runs on the warehouse.

The only code of the API that touches ClickHouse, always through `ioc.clients.clickhouse` and the statements in
`dashboards.api.queries`, each narrowed to a `Scope` from `ioc.scope`. `ApiSite` is the site's view of
the units tree: which units it may publish and accept reports for, their names, and the nearest commune
to a point (units carry marker points, not boundaries, so placing a report by its coordinates is an
approximation that the reporter can override by naming the unit).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, Final

from dashboards.api.queries import QUERIES
from ioc import units
from ioc.clients import clickhouse
from ioc.reference import ReferenceModel, default_reference_model
from ioc.scope import Scope, site_scope
from ioc.settings import CitizenApiSettings

__all__ = ["MAX_PLACEMENT_KM", "ApiData", "ApiSite", "Rows", "UnitOutsideSite"]

Rows = list[dict[str, Any]]

MAX_PLACEMENT_KM: Final = 15.0
"""A point farther than this from every commune marker is not in the province: refused, not guessed."""

_EARTH_KM: Final = 6371.0


class UnitOutsideSite(LookupError):
    """A unit that is not the site's unit nor under it, or a point that is not in the site."""


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_KM * math.asin(math.sqrt(a))


@dataclasses.dataclass(frozen=True)
class ApiSite:
    """One site's public face: its unit, tree, scope and reference model, and whether it publishes open data."""

    unit: str
    edition: units.Edition
    tree: units.UnitTree
    rows_tree: units.UnitTree
    scope: Scope
    model: ReferenceModel
    public: bool

    @classmethod
    def from_settings(cls, settings: CitizenApiSettings, model: ReferenceModel | None = None) -> ApiSite:
        """The site `settings` describe; raises `UnknownUnitError` for an unknown unit or edition."""
        if settings.edition not in units.EDITIONS:
            raise units.UnknownUnitError(f"no edition {settings.edition!r}; known: {', '.join(units.EDITIONS)}")
        edition: units.Edition = "2025" if settings.edition == "2025" else "2024"
        tree = units.load_tree(edition)
        tree.get(settings.site_unit)
        return cls(
            unit=settings.site_unit,
            edition=edition,
            tree=tree,
            rows_tree=units.load_tree("2024"),
            scope=site_scope(settings.site_unit, edition),
            model=model or default_reference_model(),
            public=settings.public_enabled,
        )

    @property
    def name(self) -> str:
        return self.tree.get(self.unit).full_name

    def contains(self, code: str) -> bool:
        """Whether `code` (a unit of the site's edition) is the site's unit or below it."""
        return code in self.tree and self.tree.is_within(code, self.unit)

    def scope_of(self, code: str | None) -> Scope:
        """The scope of the site, or of one unit within it; raises `UnitOutsideSite` for any other unit."""
        if code is None or code == self.unit:
            return self.scope
        if not self.contains(code):
            raise UnitOutsideSite(f"unit {code!r} is not within site {self.unit} ({self.edition} tree)")
        return _scope(code, self.edition)

    def row_unit_name(self, code: str) -> str:
        """The name of a unit as rows carry it (a 2024 code), or the code itself if unknown."""
        return self.rows_tree.get(code).full_name if code in self.rows_tree else code

    def unit_level(self, code: str) -> str:
        return str(self.rows_tree.get(code).level) if code in self.rows_tree else ""

    def accepts_reports_for(self, code_2024: str) -> bool:
        """Whether a report about this 2024 unit belongs to the site (rows keep 2024 codes)."""
        return self.scope.contains(code_2024)

    def place(self, lat: float, lon: float, address: str | None = None) -> str:
        """The 2024 unit a point lies in, by the nearest commune marker; raises `UnitOutsideSite`.

        The shipped markers are approximate and several communes share one; among those tied, the one
        the address names wins, and failing that the report goes to their common parent (a district),
        which can dispatch it to the right commune, rather than to a guess.
        """
        tied, distance = _nearest_communes(lat, lon)
        if distance > MAX_PLACEMENT_KM:
            raise UnitOutsideSite(
                f"({lat:.5f}, {lon:.5f}) is {distance:.0f} km from the nearest commune; not in this province"
            )
        best = self._pick(tied, address)
        if not self.scope.contains(best):
            raise UnitOutsideSite(
                f"({lat:.5f}, {lon:.5f}) lies in {self.row_unit_name(best)} ({best}), not within site {self.unit}"
            )
        return best

    def _pick(self, tied: list[str], address: str | None) -> str:
        if len(tied) == 1:
            return tied[0]
        if address:
            folded = units.ascii_fold(address)
            named = [c for c in tied if units.ascii_fold(self.rows_tree.get(c).name_ascii) in folded]
            if len(named) == 1:
                return named[0]
        paths = [self.rows_tree.path(c).split("/") for c in tied]
        common = [parts[0] for parts in zip(*paths, strict=False) if len(set(parts)) == 1]
        return common[-1] if common else tied[0]


@functools.lru_cache(maxsize=512)
def _scope(code: str, edition: units.Edition) -> Scope:
    return site_scope(code, edition)


_TIE_KM: Final = 0.05
"""Markers closer than this to the nearest one count as the same place (the shipped data repeats points)."""


def _nearest_communes(lat: float, lon: float) -> tuple[list[str], float]:
    tree = units.load_tree("2024")
    distances = sorted((_distance_km(lat, lon, u.lat, u.lon), u.code) for u in tree.at_level(units.Level.COMMUNE))
    if not distances:
        return [], math.inf
    nearest = distances[0][0]
    return [code for d, code in distances if d - nearest <= _TIE_KM], nearest


class ApiData:
    """Runs the API's named queries on one warehouse, each narrowed to a scope; no caching here."""

    def __init__(self, warehouse: clickhouse.Warehouse) -> None:
        self.warehouse = warehouse

    def run(self, name: str, scope: Scope, **params: Any) -> Rows:
        """Rows of query `name` within `scope`."""
        query = QUERIES[name]
        condition, bound = scope.predicate()
        values: Mapping[str, Any] = {**bound, "scope_units": tuple(sorted(scope.units)), **params}
        return self.warehouse.query(query.sql.replace("{scope}", condition), values)

    def ping(self) -> bool:
        """Whether the warehouse answers."""
        try:
            self.warehouse.query("SELECT 1 AS ok")
        except clickhouse.WarehouseError:
            return False
        return True
