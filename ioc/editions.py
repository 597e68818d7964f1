"""What a deployment's edition (2024 three-tier or 2025 two-tier tree) means for places, routing and escalation.

Rows in the warehouse always carry 2024 unit codes (ioc.units, ioc.scope): that is what lets a 2025 site
see the old communes it absorbed and the 2024 sites keep working on the same data. An edition decides
three things, each defined once here:

- `row_unit`: which 2024 code a unit code on the wire becomes. On a 2025 deployment a device publishes under
  its new unit's code; the row gets the absorbed 2024 commune nearest the device (the new unit's namesake
  commune when the device gives no location: every new unit kept the code of one commune it absorbed). An old
  commune's code is still accepted: the reform mapping carries it onto its new unit.
- `responsible_unit`: which unit of the edition answers for a place (a 2024 code): itself in 2024; in 2025 the
  new unit that absorbed it (for a split commune, the successor nearest the place).
- `escalation_parent`: where an overdue incident goes next. In 2024 the district, then the province; in
  2025 there is no district tier, so a commune's incident goes straight to the city, and a unit that no
  longer exists (a 2024 district or commune) hands over to the city, never to a district.
- `hierarchy`: what lies within what, for authorising a command where it is carried out: a 2025 site (the
  city, a new ward) acts on incidents placed in the 2024 communes it absorbed and on those its units answer for.
"""

from __future__ import annotations

import functools
import math
from typing import Final

from ioc import units
from ioc.scope import site_scope

__all__ = [
    "DEFAULT_EDITION",
    "EditionView",
    "escalation_parent",
    "hierarchy",
    "parse_edition",
    "path",
    "responsible_unit",
    "row_unit",
    "unit_name",
]

DEFAULT_EDITION: Final[units.Edition] = "2024"
"""Bình Dương as it was until 1 July 2025; the shipped sites and the demo use it."""


def parse_edition(text: str) -> units.Edition:
    """`text` as an edition; raises `UnknownUnitError` naming the known ones."""
    for edition in units.EDITIONS:
        if text == edition:
            return edition
    raise units.UnknownUnitError(f"no units tree edition {text!r}; known: {', '.join(units.EDITIONS)}")


def _distance2(lat: float, lon: float, unit: units.Unit) -> float:
    # Squared degrees, longitude shrunk by the latitude: only compared, over a few tens of km.
    dlat, dlon = lat - unit.lat, (lon - unit.lon) * math.cos(math.radians(lat))
    return dlat * dlat + dlon * dlon


def _nearest(codes: list[str], tree: units.UnitTree, lat: float | None, lon: float | None, prefer: str) -> str | None:
    """The unit among `codes` whose marker is nearest (lat, lon); on a tie (communes sharing a marker), `prefer`."""
    if lat is None or lon is None or not codes:
        return None
    return min(codes, key=lambda c: (round(_distance2(lat, lon, tree.get(c)), 12), c != prefer, c))


@functools.cache
def _absorbed(new_code: str) -> tuple[str, ...]:
    """The 2024 communes a 2025 commune-level unit took over, in whole or in part."""
    return tuple(sorted({link.old_code for link in units.reform_links() if link.new_code == new_code}))


def row_unit(code: str, edition: units.Edition, lat: float | None = None, lon: float | None = None) -> str | None:
    """The 2024 code a row is stamped with for `code` as a device of an `edition` deployment names its unit.

    None when the code is no unit of the edition (nor, in 2025, an old commune the reform carried over).
    """
    old = units.load_tree("2024")
    if edition == "2024":
        return code if code in old else None
    new = units.load_tree("2025")
    if code not in new:
        # An old code the mapping carries over (a device not yet renamed); its place is unchanged.
        return code if code in old and units.successors(code) else None
    unit = new.get(code)
    if unit.parent is None:
        return old.roots[0].code  # the city: the province's own rows (what has no finer place)
    absorbed = list(_absorbed(code))
    return _nearest(absorbed, old, lat, lon, code) or (code if code in absorbed else absorbed[0])


def responsible_unit(place: str, edition: units.Edition, lat: float | None = None, lon: float | None = None) -> str:
    """The unit of `edition` that answers for `place` (a 2024 code, as rows carry): where an incident opens."""
    if edition == "2024":
        return place
    old = units.load_tree("2024")
    if place not in old:
        return place  # already a 2025 unit (a dispatch target) or no place at all
    level = old.get(place).level
    if level != units.Level.COMMUNE:
        return units.HCMC_CODE  # the province or a district: in 2025 the city holds what they held
    links = units.successors(place)
    if len(links) == 1:
        return links[0].new_code
    new = units.load_tree("2025")
    candidates = [link.new_code for link in links]
    return _nearest(candidates, new, lat, lon, place) or (place if place in candidates else sorted(candidates)[0])


def escalation_parent(unit: str, edition: units.Edition) -> str | None:
    """The unit an overdue incident held by `unit` escalates to in `edition`; None at the top of the tree.

    The one definition of "the parent for escalation": the stream workers' lifecycle asks it.
    """
    tree = units.load_tree(edition)
    if unit in tree:
        return tree.get(unit).parent
    if edition == "2025":
        old = units.load_tree("2024")
        if unit in old and old.get(unit).level != units.Level.PROVINCE:
            # A 2024 district or commune that no longer exists: the city takes over, never a district.
            return units.HCMC_CODE
    return None


def path(unit: str, edition: units.Edition) -> str:
    """`unit`'s path in the edition's tree ("74/724/25957", "79/25951"); the code alone when it is not in it."""
    tree = units.load_tree(edition)
    return tree.path(unit) if unit in tree else unit


def unit_name(unit: str, edition: units.Edition) -> str:
    """`unit` as the edition names it with its type ("phường Đông Hòa"); codes of the other edition too."""
    for tree in (units.load_tree(edition), *(units.load_tree(e) for e in units.EDITIONS if e != edition)):
        if unit in tree:
            return tree.get(unit).full_name
    return unit


class EditionView:
    """The 2025 deployment's units for authorisation: its own units, over the 2024 places rows carry.

    A code of the 2025 tree means its 2025 unit (the reform reused old codes); within a 2025 unit lie its own
    subtree and the 2024 communes it absorbed (`ioc.scope.site_scope`). A 2024 unit keeps its 2024 subtree.
    """

    def __init__(self, edition: units.Edition) -> None:
        self.edition = edition
        self._tree = units.load_tree(edition)
        self._old = units.load_tree("2024")

    def __contains__(self, code: object, /) -> bool:
        return code in self._tree or code in self._old

    def is_within(self, code: str, ancestor: str) -> bool:
        if ancestor in self._tree:
            return site_scope(ancestor, self.edition).contains(code)
        return ancestor in self._old and code in self._old and self._old.is_within(code, ancestor)


@functools.cache
def hierarchy(edition: units.Edition) -> units.UnitTree | EditionView:
    """What lies within what for commands on a deployment of `edition`: the 2024 tree itself, or its 2025 view."""
    return units.load_tree("2024") if edition == "2024" else EditionView(edition)
