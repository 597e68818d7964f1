"""The map layers (dashboards.maps): places, areas, colours, the fitted view and the basemap style (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dashboards import maps
from ioc import aqi

RING = [[106.7, 10.9], [106.8, 10.9], [106.8, 11.0], [106.7, 11.0], [106.7, 10.9]]
SQUARE = {"type": "Polygon", "coordinates": [RING]}


def spec(deck: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(deck.to_json())
    return result


def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {layer["id"]: layer for layer in document["layers"]}


def test_rows_become_places_and_rows_without_a_position_are_left_out() -> None:
    rows = [
        {"name": "Đông Hòa", "lat": 10.90, "lon": 106.78, "aqi": 177},
        {"name": "nowhere", "lat": None, "lon": None, "aqi": 20},
    ]
    layer = maps.MapLayer.of_rows(
        "stations",
        rows,
        colour=lambda r: maps.aqi_hex(r["aqi"]),
        size=lambda r: 500,
        tooltip=lambda r: f"{r['name']} {r['aqi']}",
    )
    assert layer.places == (maps.Place(10.90, 106.78, "#FF0000", 500.0, "Đông Hòa 177"),)


def test_aqi_colour_is_the_band_colour_of_decision_1459_and_grey_without_data() -> None:
    assert maps.aqi_hex(42) == aqi.band(42).hex == "#00E400"
    assert maps.aqi_hex(177) == "#FF0000"
    assert maps.aqi_hex(350) == "#7E0023"
    assert maps.aqi_hex(None) == maps.NO_AQI_HEX
    assert maps.rgba("#FF7E00", 200) == [255, 126, 0, 200]
    with pytest.raises(ValueError, match="not a #RRGGBB"):
        maps.rgba("red")


def test_deck_carries_each_layer_with_its_data_colours_and_tooltips() -> None:
    incidents = maps.MapLayer(
        "incidents",
        places=(
            maps.Place(10.95, 106.75, maps.SEVERITY_HEX["low"], 200, "Ùn tắc"),
            maps.Place(10.91, 106.77, maps.SEVERITY_HEX["critical"], 600, "Cháy", label="Đông Hòa"),
        ),
    )
    areas = maps.areas_layer("boundaries", [maps.Area("25957", SQUARE, "#546E7A", "Đông Hòa")])
    document = spec(maps.deck([areas, incidents], maps.Basemap()))
    layers = by_id(document)
    assert [layer["@@type"] for layer in document["layers"]] == ["GeoJsonLayer", "ScatterplotLayer", "TextLayer"]
    points = layers["incidents"]["data"]
    # The biggest drawn first, so a small place is never hidden under a big one.
    assert [p["tooltip"] for p in points] == ["Cháy", "Ùn tắc"]
    assert points[0]["fill"] == [198, 40, 40, 210] and points[0]["radius"] == 600
    assert layers["incidents"]["pickable"] is True and layers["incidents"]["radiusUnits"] == "meters"
    assert layers["incidents-labels"]["data"] == [{"lat": 10.91, "lon": 106.77, "text": "Đông Hòa"}]
    (feature,) = layers["boundaries"]["data"]["features"]
    assert feature["properties"] == {"code": "25957", "tooltip": "Đông Hòa", "fill": [84, 110, 122, 40]}
    assert feature["geometry"] == SQUARE
    assert maps.TOOLTIP == {"text": "{tooltip}"}  # Streamlit sends it beside the spec


def test_places_sharing_a_point_share_one_label() -> None:
    places = (
        maps.Place(10.89354, 106.79926, "#000000", 100, "a", label="Bình An"),
        maps.Place(10.89354, 106.79926, "#000000", 100, "b", label="Đông Hòa"),
        maps.Place(10.95, 106.75, "#000000", 100, "c", label="Tân Bình"),
    )
    labels = by_id(spec(maps.deck([maps.MapLayer("units", places=places)], maps.Basemap())))["units-labels"]["data"]
    assert [label["text"] for label in labels] == ["Bình An · Đông Hòa", "Tân Bình"]


def test_many_places_are_not_labelled() -> None:
    places = tuple(maps.Place(10.9 + i / 100, 106.7, "#000000", 100, f"P{i}", label=f"P{i}") for i in range(17))
    document = spec(maps.deck([maps.MapLayer("cameras", places=places)], maps.Basemap()))
    assert [layer["id"] for layer in document["layers"]] == ["cameras"]


def test_view_fits_the_places_and_areas() -> None:
    near = maps.MapLayer("a", places=(maps.Place(10.90, 106.70, "#000000", 1, ""),))
    far = maps.MapLayer("b", places=(maps.Place(11.32, 106.37, "#000000", 1, ""),))
    wide = maps.fit([near, far])
    assert wide.latitude == pytest.approx(11.11) and wide.longitude == pytest.approx(106.535)
    close = maps.fit([near, maps.areas_layer("c", [maps.Area("x", SQUARE, "#000000", "")])])
    assert close.zoom > wide.zoom
    assert 10.9 <= close.latitude <= 11.0 and 106.7 <= close.longitude <= 106.8
    assert maps.fit([maps.MapLayer("empty")]).zoom == 9


def test_basemap_is_a_raster_style_with_its_credit_or_a_plain_background() -> None:
    tiles = maps.Basemap("https://tiles.example.vn/{z}/{x}/{y}.png", "© Province")
    style = maps.style(tiles)
    assert style["sources"]["basemap"]["tiles"] == ["https://tiles.example.vn/{z}/{x}/{y}.png"]
    assert style["sources"]["basemap"]["attribution"] == "© Province"
    assert [layer["type"] for layer in style["layers"]] == ["background", "raster"]
    plain = maps.style(maps.Basemap("", "ignored"))
    assert plain["sources"] == {} and [layer["type"] for layer in plain["layers"]] == ["background"]
    # Streamlit draws the first item of a list style and falls back to a hosted style without one.
    document = spec(maps.deck([], tiles))
    assert document["mapStyle"] == [style]
    assert "mapProvider" not in document
    assert "tiles" not in json.dumps(spec(maps.deck([], maps.Basemap())))
