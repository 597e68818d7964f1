"""What a site may see: the units of its subtree, as a membership test and as a parameterised SQL predicate.

A site for unit U of the 2024 tree sees every row whose `path` is U's path or lies under it (FIWARE's
`/a/#`). A site for a unit of the 2025 tree sees the 2024 communes it absorbed (rows keep their 2024
codes) and, as the unit responsible for an incident, its own 2025 units (ioc.editions routes incidents to
them; the city's code 79 is no 2024 code). The dashboards' data layer, the citizen API and the operator's
per-site ClickHouse views all build their filters here, so "the subtree" means the same thing everywhere.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ioc import units

__all__ = ["Scope", "site_scope"]


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    """A site's view of the data: `unit` in `edition`, covering the 2024 codes in `units`."""

    edition: str
    unit: str
    path: str | None
    units: frozenset[str]

    def contains(self, unit_2024: str) -> bool:
        """Whether a row stamped with this 2024 unit code is visible to the site."""
        return unit_2024 in self.units

    def predicate(
        self, path_column: str = "path", unit_column: str = "unit", name: str = "scope"
    ) -> tuple[str, dict[str, Any]]:
        """A SQL condition and its parameters (`%(name_...)s` placeholders) selecting the site's rows."""
        if self.path is not None:
            # LIKE rather than startsWith: paths are digits and slashes, and LIKE exists on every server.
            return (
                f"({path_column} = %({name}_path)s OR {path_column} LIKE %({name}_prefix)s)",
                {f"{name}_path": self.path, f"{name}_prefix": f"{self.path}/%"},
            )
        return f"{unit_column} IN %({name}_units)s", {f"{name}_units": tuple(sorted(self.units))}


def site_scope(unit: str, edition: str = "2024") -> Scope:
    """The scope of a site for `unit` in the given edition; raises UnknownUnitError for an unknown unit."""
    if edition == "2024":
        tree = units.load_tree("2024")
        return Scope("2024", unit, tree.path(unit), tree.subtree(unit))
    if edition == "2025":
        own = units.load_tree("2025").subtree(unit)
        return Scope("2025", unit, None, units.legacy_codes(unit) | own)
    raise units.UnknownUnitError(f"no edition {edition!r}; known: {', '.join(units.EDITIONS)}")
