"""Unit boundaries for the maps: GeoJSON polygons matched to unit codes, kept with their licence, read back.

`ioc units import-boundaries` checks and stores a file here (`save`); `dashboards.mapview` reads it (`load`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ioc import units

# The shipped units carry marker points only (ioc/data/SOURCES.md): polygons come from whatever source a
# province may use (its own survey, GADM, OpenStreetMap extracts...), each under its own licence, so the
# platform ships none and keeps the licence text with the polygons, shown under every map that draws them.
# Stored as a file per units tree (`<dir>/<edition>.geojson`, the dashboard setting `boundaries_dir`)
# rather than in the warehouse: polygons are configuration, public, the same for every site of a tree,
# and a file can be mounted into every dashboard pod (a ConfigMap) without a site copy per site.

__all__ = [
    "GEOMETRY_TYPES",
    "LICENCE_MEMBERS",
    "Boundaries",
    "BoundaryError",
    "from_geojson",
    "load",
    "path_for",
    "save",
    "to_geojson",
]

LICENCE_MEMBERS: Final = ("licence", "license", "attribution")
"""Top-level members of an imported FeatureCollection that may carry its licence text (first found wins)."""
GEOMETRY_TYPES: Final = frozenset({"Polygon", "MultiPolygon"})
_NAME_PROPERTIES: Final = ("name", "NAME", "ten", "Ten", "name_vi")


class BoundaryError(ValueError):
    """A boundaries file cannot be used; the message names the feature and what is wrong with it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Boundaries:
    """Polygons by unit code for one units tree, with the licence text that must be shown with them."""

    edition: str
    attribution: str
    source: str
    imported_at: str
    areas: Mapping[str, Mapping[str, Any]]
    """Unit code → GeoJSON geometry (Polygon or MultiPolygon, lon/lat)."""


def _describe(index: int, feature: Mapping[str, Any]) -> str:
    properties = feature.get("properties") or {}
    name = next((properties[p] for p in _NAME_PROPERTIES if isinstance(properties, dict) and properties.get(p)), None)
    ident = feature.get("id")
    extra = ", ".join(str(x) for x in (ident and f"id {ident!r}", name and f"name {name!r}") if x)
    return f"feature #{index}" + (f" ({extra})" if extra else "")


def _check_geometry(where: str, geometry: Any) -> dict[str, Any]:
    if not isinstance(geometry, dict) or geometry.get("type") not in GEOMETRY_TYPES:
        kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        raise BoundaryError(f"{where}: geometry is {kind!r}; a unit's boundary is a Polygon or MultiPolygon")
    coordinates = geometry.get("coordinates")
    polygons = coordinates if geometry["type"] == "MultiPolygon" else [coordinates]
    if not isinstance(polygons, list):
        raise BoundaryError(f"{where}: malformed coordinates (not a list)")
    try:
        for polygon in polygons:
            if not polygon:
                raise BoundaryError(f"{where}: a polygon has no rings")
            for ring in polygon:
                if len(ring) < 4:
                    raise BoundaryError(f"{where}: a ring has {len(ring)} positions; a closed ring needs at least 4")
                for position in ring:
                    lon, lat = float(position[0]), float(position[1])
                    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
                        raise BoundaryError(f"{where}: position {position!r} is not a longitude, latitude pair")
    except (TypeError, IndexError, ValueError) as exc:
        if isinstance(exc, BoundaryError):
            raise
        raise BoundaryError(f"{where}: malformed coordinates ({exc})") from None
    return {"type": geometry["type"], "coordinates": coordinates}


def from_geojson(
    document: Any,
    tree: units.UnitTree,
    *,
    match_property: str = "code",
    licence: str | None = None,
    source: str = "",
    now: dt.datetime | None = None,
) -> Boundaries:
    """The polygons of a FeatureCollection, each matched to a unit of `tree` by `match_property`.

    Refused (`BoundaryError`) unless every feature names a unit of the tree, once, with a polygon, and a
    licence is given (`licence`, or a top-level `licence`/`license`/`attribution` member of the file).
    """
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise BoundaryError('not a GeoJSON FeatureCollection (its top-level `type` must be "FeatureCollection")')
    features = document.get("features")
    if not isinstance(features, list) or not features:
        raise BoundaryError("the FeatureCollection has no features")
    text = (licence or "").strip()
    if not text:
        found = next((document[m] for m in LICENCE_MEMBERS if isinstance(document.get(m), str)), "")
        text = found.strip()
    if not text:
        raise BoundaryError(
            "no licence: boundaries are shown with their licence and attribution; pass --licence TEXT "
            f"or give the file a top-level {' / '.join(repr(m) for m in LICENCE_MEMBERS)} member"
        )
    areas: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise BoundaryError(f"feature #{index} is not a GeoJSON Feature")
        where = _describe(index, feature)
        properties = feature.get("properties")
        if not isinstance(properties, dict) or properties.get(match_property) in (None, ""):
            present = sorted(properties) if isinstance(properties, dict) else []
            raise BoundaryError(
                f"{where} has no property {match_property!r} to match a unit code by "
                f"(its properties: {', '.join(present) or 'none'}; choose one with --property)"
            )
        raw = properties[match_property]
        code = str(int(raw)) if isinstance(raw, int | float) and float(raw).is_integer() else str(raw).strip()
        if code not in tree:
            raise BoundaryError(
                f"{where}: {match_property}={raw!r} is no unit of the {tree.edition} tree "
                f"(`ioc units show NAME --edition {tree.edition}` finds a unit's code)"
            )
        if code in seen:
            raise BoundaryError(f"{where} and {seen[code]} both claim unit {code}: one polygon per unit")
        seen[code] = where
        areas[code] = _check_geometry(where, feature.get("geometry"))
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return Boundaries(tree.edition, text, source, moment.isoformat(timespec="seconds"), areas)


def to_geojson(boundaries: Boundaries) -> dict[str, Any]:
    """The stored form: a FeatureCollection with `code` per feature and the licence as `attribution`."""
    return {
        "type": "FeatureCollection",
        "edition": boundaries.edition,
        "attribution": boundaries.attribution,
        "source": boundaries.source,
        "imported_at": boundaries.imported_at,
        "features": [
            {"type": "Feature", "properties": {"code": code}, "geometry": dict(geometry)}
            for code, geometry in sorted(boundaries.areas.items())
        ],
    }


def path_for(directory: Path, edition: str) -> Path:
    """Where the boundaries of units tree `edition` live under `directory`."""
    return directory / f"{edition}.geojson"


def save(boundaries: Boundaries, directory: Path) -> Path:
    """Write `boundaries` to their tree's file under `directory`, whole or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    target = path_for(directory, boundaries.edition)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{boundaries.edition}-", suffix=".geojson")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(to_geojson(boundaries), out, ensure_ascii=False, separators=(",", ":"))
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def load(path: Path) -> Boundaries | None:
    """The stored boundaries at `path`, or None when none were imported; a damaged file raises `BoundaryError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BoundaryError(f"{path} is not JSON ({exc}); import the boundaries again") from None
    edition = str(document.get("edition", ""))
    if edition not in units.EDITIONS:
        raise BoundaryError(f"{path} names no units tree; import the boundaries again")
    stored = from_geojson(
        document,
        units.load_tree(edition),
        licence=str(document.get("attribution", "")),
        source=str(document.get("source", "")),
    )
    return dataclasses.replace(stored, imported_at=str(document.get("imported_at", "")))
