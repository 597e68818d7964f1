"""Unit boundaries: `ioc units import-boundaries` on generated GeoJSON (good, mismatching, unlicensed).

The polygons are squares around the shipped units' marker points, generated here: no third-party boundary data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dashboards import boundaries
from ioc import units
from iocctl.cli import cli

DI_AN = "724"
LICENCE = "Test squares, CC0 1.0"


def square(lat: float, lon: float, half: float = 0.01) -> dict[str, Any]:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half]]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def collection(codes: list[str], *, property_name: str = "ma", **top: Any) -> dict[str, Any]:
    tree = units.load_tree("2024")
    return {
        "type": "FeatureCollection",
        **top,
        "features": [
            {
                "type": "Feature",
                "id": f"f-{code}",
                "properties": {property_name: code, "name": tree.get(code).name if code in tree else "?"},
                "geometry": square(tree.get(code).lat, tree.get(code).lon) if code in tree else square(10.9, 106.7),
            }
            for code in codes
        ],
    }


def di_an_communes() -> list[str]:
    return [u.code for u in units.load_tree("2024").children(DI_AN)]


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "in.geojson"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def test_import_stores_the_polygons_by_unit_code_with_the_licence(tmp_path: Path) -> None:
    codes = [DI_AN, *di_an_communes()]
    source = write(tmp_path, collection(codes))
    store = tmp_path / "boundaries"
    result = CliRunner().invoke(
        cli, ["units", "import-boundaries", str(source), "--property", "ma", "--licence", LICENCE, "--dir", str(store)]
    )
    assert result.exit_code == 0, result.output
    assert f"imported {len(codes)} unit boundaries of the 2024 tree" in result.output
    assert "units have no boundary" in result.output  # the rest of the province
    stored = boundaries.load(boundaries.path_for(store, "2024"))
    assert stored is not None
    assert stored.attribution == LICENCE and stored.source == "in.geojson" and stored.edition == "2024"
    assert sorted(stored.areas) == sorted(codes)
    tree = units.load_tree("2024")
    assert stored.areas["25957"] == square(tree.get("25957").lat, tree.get("25957").lon)


def test_the_licence_may_come_from_the_file_itself(tmp_path: Path) -> None:
    source = write(tmp_path, collection([DI_AN], property_name="code", licence="© Sở TN&MT Bình Dương"))
    result = CliRunner().invoke(cli, ["units", "import-boundaries", str(source), "--dir", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    stored = boundaries.load(tmp_path / "b" / "2024.geojson")
    assert stored is not None and stored.attribution == "© Sở TN&MT Bình Dương"


def test_a_feature_naming_no_unit_is_refused_by_name(tmp_path: Path) -> None:
    document = collection([DI_AN, "99999"], property_name="ma")
    source = write(tmp_path, document)
    store = tmp_path / "b"
    result = CliRunner().invoke(
        cli, ["units", "import-boundaries", str(source), "--property", "ma", "--licence", LICENCE, "--dir", str(store)]
    )
    assert result.exit_code != 0
    assert "feature #1 (id 'f-99999', name '?'): ma='99999' is no unit of the 2024 tree" in result.output
    assert not store.exists()  # nothing half-imported


def test_a_feature_without_the_property_is_refused_listing_what_it_has(tmp_path: Path) -> None:
    source = write(tmp_path, collection([DI_AN], property_name="GSO"))
    result = CliRunner().invoke(
        cli, ["units", "import-boundaries", str(source), "--licence", LICENCE, "--dir", str(tmp_path / "b")]
    )
    assert result.exit_code != 0
    assert "feature #0 (id 'f-724', name 'Dĩ An') has no property 'code'" in result.output
    assert "its properties: GSO, name" in result.output


def test_without_a_licence_nothing_is_imported(tmp_path: Path) -> None:
    source = write(tmp_path, collection([DI_AN], property_name="code"))
    result = CliRunner().invoke(cli, ["units", "import-boundaries", str(source), "--dir", str(tmp_path / "b")])
    assert result.exit_code != 0
    assert "no licence" in result.output and "--licence" in result.output
    assert not (tmp_path / "b").exists()


def test_the_2025_tree_matches_its_own_codes() -> None:
    tree = units.load_tree("2025")
    code = next(u.code for u in tree if u.parent is not None)
    document = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"code": code}, "geometry": square(10.9, 106.7)}],
    }
    assert list(boundaries.from_geojson(document, tree, licence=LICENCE).areas) == [code]
    with pytest.raises(boundaries.BoundaryError, match="is no unit of the 2024 tree"):
        boundaries.from_geojson(
            {**document, "features": [{**document["features"][0], "properties": {"code": "99999"}}]},
            units.load_tree("2024"),
            licence=LICENCE,
        )


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Point", "coordinates": [106.7, 10.9]}, "geometry is 'Point'"),
        ({"type": "Polygon", "coordinates": [[[106.7, 10.9], [106.8, 10.9], [106.7, 10.9]]]}, "a ring has 3 positions"),
        ({"type": "Polygon", "coordinates": [[[500, 10.9], [106.8, 10.9], [106.8, 11], [500, 10.9]]]}, "not a lon"),
    ],
)
def test_geometries_that_are_no_polygon_are_refused(geometry: dict[str, Any], message: str) -> None:
    document = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"code": DI_AN}, "geometry": geometry}],
    }
    with pytest.raises(boundaries.BoundaryError, match=message):
        boundaries.from_geojson(document, units.load_tree("2024"), licence=LICENCE)


def test_two_features_for_one_unit_are_refused() -> None:
    document = collection([DI_AN, DI_AN], property_name="code")
    with pytest.raises(boundaries.BoundaryError, match=r"feature #1 .* and feature #0 .* both claim unit 724"):
        boundaries.from_geojson(document, units.load_tree("2024"), licence=LICENCE)


def test_a_damaged_store_is_an_error_and_a_missing_one_is_none(tmp_path: Path) -> None:
    assert boundaries.load(tmp_path / "2024.geojson") is None
    (tmp_path / "2024.geojson").write_text("{", encoding="utf-8")
    with pytest.raises(boundaries.BoundaryError, match="import the boundaries again"):
        boundaries.load(tmp_path / "2024.geojson")
