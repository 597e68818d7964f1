"""The citizen page in a real headless Chromium at a phone's size: send a report with a photo, then follow it.

The citizen API runs under uvicorn on loopback against the real ClickHouse server and the real Kafka broker
(the report reaches the topic through Open311); a real stream worker (tests/streams/worker.py) stores it, so
the follow page shows its PAKN state and history. Screenshots go to $IOC_TEST_ARTIFACTS/citizen.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import SecretStr

from dashboards.api import create_app
from dashboards.api.routes_citizen import PhotoRefused, reencoded
from ioc import kafka_access
from ioc.settings import ApiClientConfig, ClickHouseEndpoint, KafkaEndpoint
from tests.api.conftest import api_settings
from tests.api.server import serve
from tests.dashboards import harness
from tests.dashboards.conftest import ARTIFACTS
from tests.streams.worker import Worker

SHOTS = ARTIFACTS / "citizen"
PHONE = (390, 844)


def _photo(tmp: Path) -> Path:
    """A JPEG whose EXIF says where it was taken (as a phone's does)."""
    image = Image.new("RGB", (640, 480), (30, 90, 160))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    path = tmp / "photo.jpg"
    image.save(path, "JPEG", exif=exif.tobytes())
    return path


def test_photos_are_re_encoded_without_their_metadata_and_non_images_refused(tmp_path: Path) -> None:
    original = _photo(tmp_path).read_bytes()
    assert b"PhoneMaker" in original
    cleaned = reencoded(original)
    assert b"PhoneMaker" not in cleaned and Image.open(io.BytesIO(cleaned)).format == "JPEG"
    with pytest.raises(PhotoRefused, match="not an image"):
        reencoded(b"<html>not a photo</html>")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = harness.chrome(tmp_path / "profile", flags=(f"--window-size={PHONE[0]},{PHONE[1]}",))
    driver.set_window_size(*PHONE)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def worker(kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path) -> Iterator[Worker]:
    running = Worker(kafka, clickhouse, tmp_path / "worker")
    running.start()
    try:
        running.wait_live()
        yield running
    finally:
        running.close()


def _wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 60.0) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, poll_frequency=0.3, ignored_exceptions=ignored).until(condition, message=what)


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.clickhouse
def test_a_citizen_sends_a_report_from_a_phone_and_follows_it(
    browser: Any, worker: Worker, kafka: dict[str, Any], tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.common.keys import Keys  # noqa: PLC0415
    from selenium.webdriver.support.ui import Select  # noqa: PLC0415

    ch = worker.ch
    endpoint = ClickHouseEndpoint(
        host=ch["host"], port=ch["port"], user=ch["user"], password=SecretStr(ch["password"]), database=worker.database
    )
    settings = api_settings(
        endpoint,
        kafka=KafkaEndpoint.from_service(kafka, kafka_access.API),
        kafka_timeout_s=20,
        clients={"web": ApiClientConfig(key=SecretStr("web-page-key-0123456789"), rate_per_s=5, burst=20)},
        citizen_page_client="web",
        photo_dir=tmp_path / "photos",
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serve(create_app(settings)) as url:
        browser.get(f"{url}/citizen/")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "vi"
        assert browser.find_element(By.TAG_NAME, "h1").text == "Gửi phản ánh hiện trường"
        # Usable on a phone: nothing wider than the screen, and every field has its label.
        assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
        for field in browser.find_elements(By.CSS_SELECTOR, "input, select, textarea"):
            labels = browser.find_elements(By.CSS_SELECTOR, f'label[for="{field.get_attribute("id")}"]')
            assert labels and labels[0].text.strip(), f"#{field.get_attribute('id')} has no label"
        # Focus order follows the form: category, description, photo, then the place.
        browser.execute_script("document.getElementById('category').focus()")
        order = []
        for _ in range(4):
            order.append(browser.switch_to.active_element.get_attribute("id"))
            ActionChains(browser).send_keys(Keys.TAB).perform()
        assert order[:3] == ["category", "description", "photo"], order

        Select(browser.find_element(By.ID, "category")).select_by_value("flooding")
        browser.find_element(By.ID, "description").send_keys("Nước ngập sâu trước cổng chợ Bình Chuẩn")
        browser.find_element(By.ID, "photo").send_keys(str(_photo(tmp_path)))
        # Where: a tap on the map fills the coordinates; the commune list says which ward it is.
        browser.find_element(By.ID, "map").click()
        assert browser.find_element(By.ID, "lat").get_attribute("value")
        Select(browser.find_element(By.ID, "unit")).select_by_value("25969")  # phường Bình Chuẩn
        browser.find_element(By.ID, "address").send_keys("Chợ Bình Chuẩn, Thuận An")
        browser.find_element(By.ID, "email").send_keys("dan@example.vn")
        browser.save_screenshot(str(SHOTS / "1-form.png"))
        browser.find_element(By.ID, "send").click()
        report_id = _wait(browser, lambda d: d.find_element(By.ID, "report-id").text, "the report's number").strip()
        assert report_id.startswith("o311-")
        assert browser.switch_to.active_element.get_attribute("id") == "result"  # announced, focus moved there
        browser.save_screenshot(str(SHOTS / "2-sent.png"))
        photos = list((tmp_path / "photos").glob("*.jpg"))
        assert len(photos) == 1 and b"PhoneMaker" not in photos[0].read_bytes()

        # Follow it: the link leads to its page, which shows the state the workers give it, and its history.
        browser.find_element(By.LINK_TEXT, "Theo dõi phản ánh này").click()
        deadline = time.monotonic() + 90
        while True:
            status = _wait(browser, lambda d: d.find_element(By.ID, "status").text, "the status")
            if status.startswith("Đã tiếp nhận") or time.monotonic() > deadline:
                break
            worker.tick(worker.now)
            time.sleep(1)
            browser.find_element(By.CSS_SELECTOR, "#follow button").click()
        assert status == "Đã tiếp nhận, đang chờ xem xét", status
        assert "Tiếp nhận phản ánh" in browser.find_element(By.ID, "history").text
        assert "Bình Chuẩn" in browser.find_element(By.ID, "result").text
        browser.save_screenshot(str(SHOTS / "3-follow.png"))
        stored = worker.query(
            f"SELECT unit, media_urls FROM {worker.database}.citizen_reports FINAL WHERE report_id = %(r)s", r=report_id
        )
        assert stored[0]["unit"] == "25969" and stored[0]["media_urls"][0].endswith(photos[0].name)
        # English is one tap away.
        browser.find_element(By.LINK_TEXT, "English").click()
        _wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Follow a report", "the English page")
