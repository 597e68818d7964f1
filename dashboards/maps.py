"""Maps as deck.gl layers (pydeck): places and unit boundaries over an optional tile basemap; pure.

`dashboards.mapview` turns a page's rows into these layers (tooltips in the page's language) and draws them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import pydeck as pdk  # type: ignore[import-untyped]  # pydeck ships no type information

from ioc import aqi

# Streamlit bundles deck.gl and mapbox-gl 1.x, so the layers draw without fetching any script: a site
# without internet still gets its places, boundaries and tooltips, only the basemap's tiles are missing
# (and with an empty tile URL nothing is fetched at all). The basemap is a mapbox-gl style object with one
# raster source (any `{z}/{x}/{y}` tile server: OpenStreetMap's by default, the province's own cache
# offline); Streamlit passes the first item of a list `mapStyle` to the map, and falls back to Carto's
# hosted style when there is none, so the style always travels as a one-item list, and "no basemap" is
# a style with a background colour only. Sizes are metres on the ground, kept between a few pixels and a
# hand's width at any zoom. pydeck turns every string argument into a data accessor unless it is quoted
# ("'meters'"), so constants are written quoted.

__all__ = [
    "LABEL_LIMIT",
    "NO_AQI_HEX",
    "SEVERITY_HEX",
    "Area",
    "Basemap",
    "MapLayer",
    "Place",
    "aqi_hex",
    "areas_layer",
    "deck",
    "fit",
    "rgba",
    "style",
]

LABEL_LIMIT: Final = 16
"""Names are written beside the places only up to this many (beyond, the tooltips carry them)."""
MIN_RADIUS_PX: Final = 5
MAX_RADIUS_PX: Final = 28
BACKGROUND: Final = "#F5F7FA"
SEVERITY_HEX: Final[Mapping[str, str]] = {
    "low": "#1565C0",
    "medium": "#F9A825",
    "high": "#EF6C00",
    "critical": "#C62828",
}
"""An incident's colour on a map by severity: blue, amber, orange, red."""
NO_AQI_HEX: Final = "#9E9E9E"
R = TypeVar("R", bound=Mapping[str, Any])
TOOLTIP: Final = {"text": "{tooltip}"}
"""Every pickable object carries its own `tooltip` text (a place's field, an area's property)."""


def aqi_hex(index: int | None) -> str:
    """A VN_AQI's band colour (Decision 1459's Table 1, from `ioc.aqi`); grey without an index."""
    return NO_AQI_HEX if index is None else aqi.band(int(index)).hex


def rgba(colour: str, alpha: int = 255) -> list[int]:
    """`#RRGGBB` as deck.gl's [r, g, b, a]."""
    value = colour.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"{colour!r} is not a #RRGGBB colour")
    return [int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16), alpha]


@dataclasses.dataclass(frozen=True, slots=True)
class Basemap:
    """Where the map's background comes from: a raster tile URL template (empty: none) and its credit."""

    tiles: str = ""
    attribution: str = ""


def style(basemap: Basemap) -> dict[str, Any]:
    """The mapbox-gl style of `basemap`: one raster source and layer, or a plain background when it has no tiles."""
    background = {"id": "background", "type": "background", "paint": {"background-color": BACKGROUND}}
    if not basemap.tiles:
        return {"version": 8, "sources": {}, "layers": [background]}
    source = {"type": "raster", "tiles": [basemap.tiles], "tileSize": 256, "maxzoom": 19}
    if basemap.attribution:
        source["attribution"] = basemap.attribution
    return {
        "version": 8,
        "sources": {"basemap": source},
        "layers": [background, {"id": "basemap", "type": "raster", "source": "basemap"}],
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Place:
    """One point: where, its colour (`#RRGGBB`), its radius on the ground in metres, its name and tooltip."""

    lat: float
    lon: float
    colour: str
    radius_m: float
    tooltip: str
    label: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Area:
    """One polygon (GeoJSON geometry), its fill colour and its tooltip: a unit's boundary."""

    code: str
    geometry: Mapping[str, Any]
    colour: str
    tooltip: str


@dataclasses.dataclass(frozen=True, slots=True)
class MapLayer:
    """A named layer: points (`places`) or polygons (`areas`)."""

    id: str
    places: tuple[Place, ...] = ()
    areas: tuple[Area, ...] = ()

    @classmethod
    def of_rows(
        cls,
        layer_id: str,
        rows: Iterable[R],
        *,
        colour: Callable[[R], str],
        size: Callable[[R], float],
        tooltip: Callable[[R], str],
        label: Callable[[R], str] | None = None,
    ) -> MapLayer:
        """A point per row at its `lat`/`lon` (rows without a position are left out)."""
        return cls(
            layer_id,
            places=tuple(
                Place(
                    lat=float(r["lat"]),
                    lon=float(r["lon"]),
                    colour=colour(r),
                    radius_m=float(size(r)),
                    tooltip=tooltip(r),
                    label=label(r) if label is not None else "",
                )
                for r in rows
                if r.get("lat") is not None and r.get("lon") is not None
            ),
        )


def areas_layer(layer_id: str, areas: Iterable[Area]) -> MapLayer:
    return MapLayer(layer_id, areas=tuple(areas))


def _ring_points(geometry: Mapping[str, Any]) -> Iterable[tuple[float, float]]:
    coordinates = geometry.get("coordinates") or []
    polygons = coordinates if geometry.get("type") == "MultiPolygon" else [coordinates]
    for polygon in polygons:
        for ring in polygon:
            for lon, lat, *_ in ring:
                yield float(lat), float(lon)


def _mercator_y(lat: float) -> float:
    """Latitude in Web Mercator's units (degrees at the equator), so the vertical fit is right anywhere."""
    return math.degrees(math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))


def fit(layers: Sequence[MapLayer], *, width_px: int = 720, height_px: int = 420) -> pdk.ViewState:
    """The view that shows every place and area of `layers` (Web Mercator zoom, with a margin)."""
    points = [(p.lat, p.lon) for layer in layers for p in layer.places]
    points += [pt for layer in layers for area in layer.areas for pt in _ring_points(area.geometry)]
    if not points:
        return pdk.ViewState(latitude=11.0, longitude=106.65, zoom=9)
    lats, lons = [p[0] for p in points], [p[1] for p in points]
    south, north, west, east = min(lats), max(lats), min(lons), max(lons)
    lat, lon = (south + north) / 2, (west + east) / 2
    span_lon = max(east - west, 0.01)
    span_lat = max(_mercator_y(north) - _mercator_y(south), 0.01)
    # deck.gl's Web Mercator world is 512 pixels wide at zoom 0.
    zoom = min(math.log2(width_px * 360 / (512 * span_lon)), math.log2(height_px * 360 / (512 * span_lat))) - 0.3
    return pdk.ViewState(latitude=lat, longitude=lon, zoom=round(min(max(zoom, 4.0), 15.0), 2))


def _point_layers(layer: MapLayer) -> list[pdk.Layer]:
    order = sorted(layer.places, key=lambda p: -p.radius_m)  # the biggest first: small ones stay on top
    data = [
        {"lat": p.lat, "lon": p.lon, "fill": rgba(p.colour, 210), "radius": p.radius_m, "tooltip": p.tooltip}
        for p in order
    ]
    found = [
        pdk.Layer(
            "ScatterplotLayer",
            data=data,
            id=layer.id,
            get_position="[lon, lat]",
            get_fill_color="fill",
            get_radius="radius",
            radius_units="'meters'",
            radius_min_pixels=MIN_RADIUS_PX,
            radius_max_pixels=MAX_RADIUS_PX,
            stroked=True,
            get_line_color=[255, 255, 255, 255],
            line_width_min_pixels=1.5,
            pickable=True,
        )
    ]
    # Places at one point (communes merged into one 2025 unit share a marker) get one label naming them all.
    labels: dict[tuple[float, float], list[str]] = {}
    for place in layer.places:
        if place.label:
            labels.setdefault((place.lat, place.lon), []).append(place.label)
    if labels and len(layer.places) <= LABEL_LIMIT:
        found.append(
            pdk.Layer(
                "TextLayer",
                data=[{"lat": lat, "lon": lon, "text": " · ".join(names)} for (lat, lon), names in labels.items()],
                id=f"{layer.id}-labels",
                get_position="[lon, lat]",
                get_text="text",
                get_size=13,
                get_color=[38, 50, 56, 255],
                get_text_anchor="'start'",
                get_pixel_offset=[10, 0],
                character_set="'auto'",
                outline_width=3,
                outline_color=[245, 247, 250, 255],
                font_settings={"sdf": True},
            )
        )
    return found


def _area_layer(layer: MapLayer) -> pdk.Layer:
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": dict(area.geometry),
                "properties": {"code": area.code, "tooltip": area.tooltip, "fill": rgba(area.colour, 40)},
            }
            for area in layer.areas
        ],
    }
    return pdk.Layer(
        "GeoJsonLayer",
        data=collection,
        id=layer.id,
        stroked=True,
        filled=True,
        get_fill_color="properties.fill",
        get_line_color=[55, 71, 79, 200],
        line_width_min_pixels=1,
        pickable=True,
    )


def deck(layers: Sequence[MapLayer], basemap: Basemap, *, height_px: int = 420) -> pdk.Deck:
    """The deck of `layers` (areas drawn under points, in the given order) over `basemap`, fitted to them."""
    drawn: list[pdk.Layer] = [_area_layer(layer) for layer in layers if layer.areas]
    for layer in layers:
        if layer.places:
            drawn.extend(_point_layers(layer))
    result = pdk.Deck(
        layers=drawn,
        initial_view_state=fit(layers, height_px=height_px),
        map_provider=None,
        map_style=None,
        tooltip=TOOLTIP,
    )
    # pydeck refuses a style object unless the provider is Mapbox's, and Streamlit draws only the first
    # item of a non-string style: set the one-item list after construction (see the module's opening).
    result.map_style = [style(basemap)]
    return result
