"""The pages' maps: layers from a page's rows (tooltips in its language) over the boundaries and basemap.

Layers are built by `dashboards.maps` (pure); this module knows the run's `Context` and draws with `st.pydeck_chart`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import streamlit as st

from dashboards import boundaries, maps
from dashboards.context import Context
from dashboards.sites import display_name
from ioc import aqi

__all__ = [
    "HEIGHT_PX",
    "boundary_layer",
    "cameras",
    "hotspots",
    "incidents",
    "reports",
    "show",
    "stations",
    "units",
]

HEIGHT_PX: Final = 420
BOUNDARY_HEX: Final = "#546E7A"

log = logging.getLogger(__name__)

Row = dict[str, Any]


@functools.lru_cache(maxsize=8)
def _boundaries(path: Path, mtime_ns: int) -> boundaries.Boundaries | None:
    del mtime_ns  # part of the cache key only: a new import is read on the next run
    return boundaries.load(path)


def site_boundaries(ctx: Context) -> boundaries.Boundaries | None:
    """The imported boundaries of the site's units tree, or None (none imported, or the file is damaged: logged)."""
    path = boundaries.path_for(ctx.settings.boundaries_dir, ctx.site.edition)
    try:
        return _boundaries(path, path.stat().st_mtime_ns)
    except FileNotFoundError:
        return None
    except boundaries.BoundaryError as exc:
        log.warning("unit boundaries not shown: %s", exc)
        return None


def boundary_layer(ctx: Context, found: boundaries.Boundaries | None = None) -> maps.MapLayer:
    """The boundaries of the unit being looked at's children (or of the unit itself when it has none)."""
    stored = found if found is not None else site_boundaries(ctx)
    if stored is None:
        return maps.MapLayer("boundaries")
    shown = [c for c in ctx.site.children(ctx.unit) if ctx.may_see(c.code)] or [ctx.site.get(ctx.unit)]
    return maps.areas_layer(
        "boundaries",
        (
            maps.Area(unit.code, stored.areas[unit.code], BOUNDARY_HEX, display_name(unit))
            for unit in shown
            if unit.code in stored.areas
        ),
    )


def show(ctx: Context, *layers: maps.MapLayer, height: int = HEIGHT_PX) -> None:
    """Draw `layers` over the site's boundaries and basemap, with the credits the tiles and polygons require."""
    stored = site_boundaries(ctx)
    drawn = [boundary_layer(ctx, stored), *layers]
    if not any(layer.places or layer.areas for layer in drawn):
        return
    basemap = maps.Basemap(ctx.settings.map_tiles, ctx.settings.map_attribution)
    st.pydeck_chart(maps.deck(drawn, basemap, height_px=height), height=height)
    credits = [basemap.attribution] if basemap.tiles and basemap.attribution else []
    if stored is not None and drawn[0].areas:
        credits.append(ctx.t("map.boundaries_credit", attribution=stored.attribution))
    if credits:
        st.caption(" · ".join(credits))


# --- layers from the pages' rows ------------------------------------------------------------------------------


def _place(row: Row) -> str:
    return str(row.get("place") or row.get("name") or "")


def stations(ctx: Context, rows: Sequence[Row]) -> maps.MapLayer:
    """Air stations coloured by their VN_AQI band."""

    def tip(row: Row) -> str:
        index = row.get("aqi")
        if index is None:
            return f"{_place(row)} · {row.get('device_key', '')}"
        band = aqi.band(int(index))
        label = ctx.t.pick(band.label_vi, band.label_en)
        return f"{_place(row)} · {row.get('device_key', '')} · {ctx.t('col.aqi')} {index} ({label})"

    return maps.MapLayer.of_rows(
        "stations", rows, colour=lambda r: maps.aqi_hex(r.get("aqi")), size=lambda r: 500.0, tooltip=tip
    )


_SEVERITY_RADIUS_M: Final = {"low": 200.0, "medium": 300.0, "high": 450.0, "critical": 600.0}


def incidents(ctx: Context, rows: Sequence[Row]) -> maps.MapLayer:
    """Incidents coloured and sized by severity."""

    def tip(row: Row) -> str:
        severity = ctx.t(f"severity.{row['severity']}")
        state = ctx.t(f"state.{row['state']}") if row.get("state") else ""
        return " · ".join(x for x in (str(row.get("title", "")), _place(row), severity, state) if x)

    return maps.MapLayer.of_rows(
        "incidents",
        rows,
        colour=lambda r: maps.SEVERITY_HEX.get(str(r["severity"]), maps.NO_AQI_HEX),
        size=lambda r: _SEVERITY_RADIUS_M.get(str(r["severity"]), 300.0),
        tooltip=tip,
    )


CAMERA_HEX: Final = "#1565C0"
REPORT_HEX: Final = "#6A1B9A"
HOTSPOT_HEX: Final = "#C62828"


def cameras(ctx: Context, rows: Sequence[Row]) -> maps.MapLayer:
    """Cameras where they last reported from."""
    return maps.MapLayer.of_rows(
        "cameras",
        rows,
        colour=lambda r: CAMERA_HEX,
        size=lambda r: 120.0,
        tooltip=lambda r: f"{ctx.t('col.camera')} {r.get('device_key', '')} · {_place(r)}",
    )


def reports(ctx: Context, rows: Sequence[Row], category: Callable[[str], str] | None = None) -> maps.MapLayer:
    """Citizen reports at their point: category, place and state only (never their text or contact)."""
    naming = category or str

    def tip(row: Row) -> str:
        state = ctx.t(f"report_state.{row.get('state') or 'new'}")
        return f"{naming(str(row.get('category', '')))} · {_place(row)} · {state}"

    return maps.MapLayer.of_rows("reports", rows, colour=lambda r: REPORT_HEX, size=lambda r: 150.0, tooltip=tip)


def hotspots(ctx: Context, rows: Sequence[Row]) -> maps.MapLayer:
    """Violation hotspots: discs of the hotspot rule's radius, their cameras and violations."""

    def tip(row: Row) -> str:
        return ctx.t(
            "map.hotspot",
            place=_place(row),
            violations=row["violations"],
            cameras=row["cameras"],
            radius=row["radius_m"],
        )

    return maps.MapLayer.of_rows(
        "hotspots", rows, colour=lambda r: HOTSPOT_HEX, size=lambda r: float(r["radius_m"]), tooltip=tip
    )


def units(
    ctx: Context,
    rows: Sequence[Row],
    *,
    colour: Callable[[Row], str],
    size: Callable[[Row], float],
    tooltip: Callable[[Row], str],
) -> maps.MapLayer:
    """The child units' markers (the overview), named beside them when few."""
    del ctx
    return maps.MapLayer.of_rows("units", rows, colour=colour, size=size, tooltip=tooltip, label=_place)
