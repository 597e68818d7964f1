"""The basemap in headless Chromium: tiles from the tile URL the settings name, with its credit on the map.

A tile server of the test's own on loopback stands in for OpenStreetMap's (nothing leaves the machine); the
dashboard runs as `ioc dashboard` starts it, against the local stack's ClickHouse. The screenshot goes to
$IOC_TEST_ARTIFACTS/dashboards/map-basemap.png.
"""

from __future__ import annotations

import http.server
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from dashboards import boundaries
from ioc import units
from ioc.settings import ClickHouseEndpoint, DashboardSettings, KafkaEndpoint
from tests.dashboards import harness, seed
from tests.dashboards.conftest import ARTIFACTS
from tests.dashboards.test_boundaries import square

CREDIT = "© Tiles of the test"


class _Tiles(http.server.BaseHTTPRequestHandler):
    """Answers every tile with one pale green PNG and remembers what was asked."""

    asked: list[str]
    image: bytes

    def do_GET(self) -> None:  # the name http.server calls
        self.asked.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(self.image)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def tile_server() -> Iterator[tuple[str, list[str]]]:
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 230, 200)).save(buffer, "PNG")
    asked: list[str] = []
    handler = type("Tiles", (_Tiles,), {"asked": asked, "image": buffer.getvalue()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png", asked
    finally:
        server.shutdown()
        server.server_close()


def test_the_basemap_comes_from_the_configured_tile_server_with_its_credit(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded], tile_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415 - only the browser tests need Selenium

    endpoint, _ = server_seeded
    url, asked = tile_server
    tree = units.load_tree("2024")
    document = {
        "type": "FeatureCollection",
        "licence": "Test squares (CC0)",
        "features": [
            {"type": "Feature", "properties": {"code": u.code}, "geometry": square(u.lat, u.lon)} for u in tree
        ],
    }
    boundaries.save(boundaries.from_geojson(document, tree), tmp_path / "boundaries")
    settings = DashboardSettings(
        site_unit=seed.DISTRICT,
        clickhouse=endpoint,
        kafka=KafkaEndpoint(bootstrap="127.0.0.1:1"),
        port=harness.free_port(),
        local_role="viewer",
        map_tiles=url,
        map_attribution=CREDIT,
        boundaries_dir=tmp_path / "boundaries",
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with harness.dashboard(settings, run_dir):
        driver = harness.chrome(tmp_path / "profile", flags=("--enable-unsafe-swiftshader",))
        try:
            driver.get(f"http://127.0.0.1:{settings.port}/")
            deadline = time.monotonic() + 90
            credit: list[str] = []
            while time.monotonic() < deadline and not (asked and credit):
                time.sleep(0.5)
                credit = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".mapboxgl-ctrl-attrib") if e.text]
            assert asked, "the browser asked the configured tile server for nothing"
            assert all(path.endswith(".png") and path.count("/") == 3 for path in asked), asked
            assert credit == [CREDIT]
            captions = driver.find_element(By.TAG_NAME, "body").text
            assert "Ranh giới hành chính: Test squares (CC0)" in captions
            (ARTIFACTS / "dashboards").mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / "dashboards" / "map-basemap.png"))
        finally:
            driver.quit()
