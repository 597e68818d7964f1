"""The SVG point map: projection, sizes, labels and escaping (pure, no Streamlit)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from dashboards.maps import LABEL_LIMIT, MAX_RADIUS_PX, MIN_RADIUS_PX, WIDTH, MapPoint, svg_map

SVG = "{http://www.w3.org/2000/svg}"


def _circles(svg: str) -> list[ET.Element]:
    return list(ET.fromstring(svg).iter(f"{SVG}circle"))


def test_no_points_draw_nothing() -> None:
    assert svg_map([]) == ""


def test_points_keep_their_geography_and_stay_inside_the_frame() -> None:
    # Thủ Dầu Một (south-west), Dĩ An (south-east, further south), Dầu Tiếng (far north-west).
    points = [
        MapPoint(lat=10.98, lon=106.65, colour="#C62828", radius_m=500, label="Thủ Dầu Một"),
        MapPoint(lat=10.90, lon=106.77, colour="#2E7D32", radius_m=500, label="Dĩ An"),
        MapPoint(lat=11.32, lon=106.37, colour="#F57C00", radius_m=500, label="Dầu Tiếng"),
    ]
    svg = svg_map(points, height=380)
    assert "\n" not in svg  # one line: markdown must not turn any of it into a paragraph or code
    by_colour = {c.get("fill"): (float(c.get("cx", "0")), float(c.get("cy", "0"))) for c in _circles(svg)}
    tdm, di_an, dau_tieng = by_colour["#C62828"], by_colour["#2E7D32"], by_colour["#F57C00"]
    assert dau_tieng[0] < tdm[0] < di_an[0]  # west to east
    assert dau_tieng[1] < tdm[1] < di_an[1]  # north is up
    for x, y in by_colour.values():
        assert 0 <= x <= WIDTH and 0 <= y <= 380
    # Equal degrees of latitude and (cos-scaled) longitude get equal pixels: shapes are not stretched.
    dx = (di_an[0] - tdm[0]) / (0.12 * 0.9818)
    dy = (di_an[1] - tdm[1]) / 0.08
    assert abs(dx - dy) / dy < 0.01


def test_radius_follows_metres_within_bounds() -> None:
    near = [
        MapPoint(lat=10.90, lon=106.70, colour="#111111", radius_m=10, label="tiny"),
        MapPoint(lat=10.95, lon=106.75, colour="#222222", radius_m=200, label="mid"),
        MapPoint(lat=10.92, lon=106.72, colour="#333333", radius_m=1e7, label="huge"),
    ]
    radii = {c.get("fill"): float(c.get("r", "0")) for c in _circles(svg_map(near))}
    assert radii["#111111"] == MIN_RADIUS_PX
    assert MIN_RADIUS_PX < radii["#222222"] < MAX_RADIUS_PX
    assert radii["#333333"] == MAX_RADIUS_PX
    # The biggest is drawn first so the small ones stay visible on top of it.
    assert _circles(svg_map(near))[0].get("fill") == "#333333"


def test_single_point_is_centred() -> None:
    (circle,) = _circles(svg_map([MapPoint(lat=11.0, lon=106.6, colour="#000000", radius_m=100)], height=300))
    assert float(circle.get("cx", "0")) == WIDTH / 2
    assert float(circle.get("cy", "0")) == 150


def test_labels_only_when_readable_and_text_is_escaped() -> None:
    few = [
        MapPoint(lat=10.9 + i / 100, lon=106.7, colour="#000000", radius_m=100, label=f"<b>P{i}</b>", tooltip="a&b")
        for i in range(3)
    ]
    svg = svg_map(few)
    assert "<b>" not in svg and "&lt;b&gt;P0&lt;/b&gt;" in svg
    root = ET.fromstring(svg)
    assert [t.text for t in root.iter(f"{SVG}text")] == ["<b>P0</b>", "<b>P1</b>", "<b>P2</b>"]
    assert {t.text for t in root.iter(f"{SVG}title")} == {"a&b"}
    many = [
        MapPoint(lat=10.9 + i / 100, lon=106.7, colour="#000000", radius_m=100, label=f"P{i}")
        for i in range(LABEL_LIMIT + 1)
    ]
    assert not re.search(r"<text", svg_map(many))
    assert len(list(ET.fromstring(svg_map(many)).iter(f"{SVG}title"))) == LABEL_LIMIT + 1
