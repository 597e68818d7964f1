"""The administrative-units tree (gazetteer) and the 2025 reform mapping, loaded from packaged open data.

Two editions ship: "2024" is Bình Dương before 1 July 2025 (province → district → commune, GSO codes)
and "2025" is the two-tier layout after the reform (Hồ Chí Minh City → the new commune-level units that
absorbed Bình Dương's communes). Codes are only unique within an edition: the reform reused some old
codes for new units. Queries "for a unit" mean the unit and its whole subtree. Data and attribution:
ioc/data/SOURCES.md.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import functools
import importlib.resources
import math
import unicodedata
from collections.abc import Iterator
from typing import Final, Literal

__all__ = [
    "EDITIONS",
    "HCMC_CODE",
    "Level",
    "ReformLink",
    "Unit",
    "UnitTree",
    "UnknownUnitError",
    "ascii_fold",
    "distance_m",
    "legacy_codes",
    "load_tree",
    "reform_links",
    "successors",
]

Edition = Literal["2024", "2025"]
EDITIONS: Final[tuple[Edition, ...]] = ("2024", "2025")


EARTH_RADIUS_M: Final = 6_371_000.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance between two points, in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


class Level(enum.StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"


class UnknownUnitError(LookupError):
    """No unit (or more than one) answers a lookup; the message says what was asked and what exists."""


@dataclasses.dataclass(frozen=True, slots=True)
class Unit:
    """One administrative unit. `lat`/`lon` are approximate marker points, not boundaries."""

    code: str
    name: str
    name_ascii: str
    level: Level
    type: str
    parent: str | None
    lat: float
    lon: float

    @property
    def full_name(self) -> str:
        """The name with its unit type, as Vietnamese writes it: "phường Đông Hòa"."""
        return f"{self.type} {self.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class ReformLink:
    """An old (2024) commune and a new (2025) unit that took over all or part of it."""

    old_code: str
    new_code: str
    relation: Literal["full", "partial"]
    resolution: str
    clause: str


def ascii_fold(text: str) -> str:
    """Lowercase ASCII form of a Vietnamese name, for matching: "Đông Hòa" → "dong hoa"."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return " ".join(stripped.lower().split())


_TYPE_PREFIXES: Final = (
    "thanh pho",
    "thi xa",
    "thi tran",
    "phuong",
    "huyen",
    "quan",
    "tinh",
    "xa",
    "tp.",
    "tp",
)


class UnitTree:
    """An edition's units as a tree, with subtree queries and lookups by code and ASCII name."""

    def __init__(self, edition: str, units: list[Unit]) -> None:
        self.edition = edition
        self._units: dict[str, Unit] = {}
        self._children: dict[str, list[str]] = {}
        for unit in units:
            if unit.code in self._units:
                raise ValueError(f"edition {edition}: unit code {unit.code} appears twice")
            self._units[unit.code] = unit
            self._children.setdefault(unit.code, [])
        for unit in units:
            if unit.parent is not None:
                if unit.parent not in self._units:
                    raise ValueError(f"edition {edition}: unit {unit.code}'s parent {unit.parent} is not in the tree")
                self._children[unit.parent].append(unit.code)
        self._by_ascii: dict[str, list[str]] = {}
        for unit in units:
            self._by_ascii.setdefault(ascii_fold(unit.name_ascii), []).append(unit.code)
        self._subtrees: dict[str, frozenset[str]] = {}
        self._paths: dict[str, str] = {}

    def __contains__(self, code: object) -> bool:
        return code in self._units

    def __iter__(self) -> Iterator[Unit]:
        return iter(self._units.values())

    def __len__(self) -> int:
        return len(self._units)

    def get(self, code: str) -> Unit:
        try:
            return self._units[code]
        except KeyError:
            raise UnknownUnitError(f"no unit with code {code!r} in the {self.edition} tree") from None

    @property
    def roots(self) -> list[Unit]:
        return [u for u in self._units.values() if u.parent is None]

    def at_level(self, level: Level | str) -> list[Unit]:
        return [u for u in self._units.values() if u.level == level]

    def children(self, code: str) -> list[Unit]:
        self.get(code)
        return [self._units[c] for c in self._children[code]]

    def subtree(self, code: str) -> frozenset[str]:
        """Codes of the unit and everything under it (FIWARE's `/a/#`)."""
        cached = self._subtrees.get(code)
        if cached is None:
            self.get(code)
            found: set[str] = set()
            stack = [code]
            while stack:
                current = stack.pop()
                found.add(current)
                stack.extend(self._children[current])
            cached = self._subtrees[code] = frozenset(found)
        return cached

    def ancestors(self, code: str) -> list[Unit]:
        """From the root down to the unit's parent."""
        chain: list[Unit] = []
        parent = self.get(code).parent
        while parent is not None:
            unit = self._units[parent]
            chain.append(unit)
            parent = unit.parent
        chain.reverse()
        return chain

    def path(self, code: str) -> str:
        """The unit's path from the root, e.g. "74/724/25957": a subtree is every path with its prefix."""
        path = self._paths.get(code)
        if path is None:
            path = self._paths[code] = "/".join([*(u.code for u in self.ancestors(code)), code])
        return path

    def is_within(self, code: str, ancestor: str) -> bool:
        """Whether `code` is `ancestor` or somewhere under it."""
        return code in self.subtree(ancestor)

    def find(self, name: str, level: Level | str | None = None) -> Unit:
        """Look a unit up by name, with or without diacritics or type ("Phường Đông Hòa", "dong hoa").

        Names repeat across levels (Dĩ An is a district and a ward): pass `level` to choose, otherwise an
        ambiguous name raises `UnknownUnitError` listing the candidates.
        """
        key = ascii_fold(name)
        codes = self._by_ascii.get(key)
        if codes is None:
            for prefix in _TYPE_PREFIXES:
                if key.startswith(prefix + " "):
                    codes = self._by_ascii.get(key[len(prefix) + 1 :].strip())
                    if codes is not None:
                        break
        candidates = [self._units[c] for c in codes or ()]
        if level is not None:
            candidates = [u for u in candidates if u.level == level]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise UnknownUnitError(
                f"no unit named {name!r}{f' at level {level}' if level else ''} in the {self.edition} tree"
            )
        listed = ", ".join(f"{u.code} ({u.level}, in {u.parent})" for u in candidates)
        raise UnknownUnitError(f"{name!r} names several units: {listed}; pass a level or use a code")


def _read_csv(name: str) -> list[dict[str, str]]:
    text = importlib.resources.files("ioc.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@functools.cache
def reform_links() -> tuple[ReformLink, ...]:
    """Every (old commune, new unit) pair of the 1 July 2025 reform (1685/NQ-UBTVQH15)."""
    return tuple(
        ReformLink(
            r["old_code"],
            r["new_code"],
            "full" if r["relation"] == "full" else "partial",
            r["resolution"],
            r["clause"],
        )
        for r in _read_csv("hcmc_2025_mapping.csv")
    )


HCMC_CODE: Final = "79"


@functools.cache
def load_tree(edition: Edition = "2024") -> UnitTree:
    """The packaged tree for `edition` ("2024": three tiers; "2025": two tiers)."""
    if edition == "2024":
        rows = _read_csv("binh_duong_units.csv")
        return UnitTree(
            "2024",
            [
                Unit(
                    r["code"],
                    r["name"],
                    r["name_ascii"],
                    Level(r["level"]),
                    r["type"],
                    r["parent_code"] or None,
                    float(r["lat"]),
                    float(r["lon"]),
                )
                for r in rows
            ],
        )
    if edition == "2025":
        rows = _read_csv("hcmc_2025_mapping.csv")
        new: dict[str, Unit] = {}
        for r in rows:
            new.setdefault(
                r["new_code"],
                Unit(
                    r["new_code"],
                    r["new_name"],
                    r["new_name_ascii"],
                    Level.COMMUNE,
                    r["new_type"],
                    HCMC_CODE,
                    float(r["new_lat"]),
                    float(r["new_lon"]),
                ),
            )
        lat = sum(u.lat for u in new.values()) / len(new)
        lon = sum(u.lon for u in new.values()) / len(new)
        # Only the part of Hồ Chí Minh City that absorbed Bình Dương ships; its marker is their mean.
        province = Unit(HCMC_CODE, "Hồ Chí Minh", "Ho Chi Minh", Level.PROVINCE, "thành phố", None, lat, lon)
        return UnitTree("2025", [province, *new.values()])
    raise UnknownUnitError(f"no edition {edition!r}; known: {', '.join(EDITIONS)}")


def legacy_codes(new_code: str) -> frozenset[str]:
    """The 2024 commune codes whose data a 2025 unit (or the whole of HCMC for "79") sees."""
    tree = load_tree("2025")
    scope = tree.subtree(new_code)
    return frozenset(link.old_code for link in reform_links() if link.new_code in scope)


def successors(old_code: str) -> list[ReformLink]:
    """The 2025 units that took over a 2024 commune (two when it was split)."""
    load_tree("2024").get(old_code)
    return [link for link in reform_links() if link.old_code == old_code]
