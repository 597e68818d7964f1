"""A real headless Chromium (Debian's) against the running app, signed in through a real OIDC provider.

The app runs as `ioc dashboard` starts it (`streamlit run dashboards/app.py`) against the local stack's
ClickHouse; the identity provider is panva's `oidc-provider` from npm on loopback. The browser opens the
public page, signs in (a wrong password first), switches language and page, and finally sees its
session expire. Screenshots go to $IOC_TEST_ARTIFACTS/dashboards (default .pytest_cache/artifacts/).
"""

from __future__ import annotations

import json
import os
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from ioc.settings import ClickHouseEndpoint, DashboardSettings
from tests.dashboards import harness, seed
from tests.dashboards.conftest import ARTIFACTS

SHOTS = ARTIFACTS / "dashboards"
SESSION_S = 60.0
USERS = {
    "op724": {
        "password": "mat-khau-724",
        "claims": {
            "name": "Trần Thị Điều Hành",
            "email": "op724@binhduong.gov.vn",
            "email_verified": True,
            "ioc_grants": ["operator@724"],
        },
    }
}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = harness.chrome(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 45.0) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    # Streamlit replaces elements as a run progresses: an element found a moment ago may be gone.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=ignored).until(condition, message=what)


def _heading(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return [e.text for e in driver.find_elements(By.TAG_NAME, "h1")]


def _click_text(driver: Any, tag: str, text: str) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    def clicked(d: Any) -> bool:
        target = next((e for e in d.find_elements(By.TAG_NAME, tag) if text in e.text and e.is_displayed()), None)
        if target is None:
            return False
        target.click()  # a stale element raises, and the wait tries again
        return True

    _wait(driver, clicked, f"a <{tag}> saying {text!r}")


def _shot(driver: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    time.sleep(1.0)  # let the last charts and tables paint
    driver.save_screenshot(str(path))
    return path


def _rendered(driver: Any, heading: str, marker: str) -> bool:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    if heading not in _heading(driver):
        return False
    body = driver.find_element(By.TAG_NAME, "body").text
    return marker in body and "Running..." not in body


def test_chromium_signs_in_switches_language_and_page(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded], browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    endpoint, _ = server_seeded
    app_port, idp_port = harness.free_port(), harness.free_port()
    callback = f"http://localhost:{app_port}/oauth2callback"
    idp = {
        "port": idp_port,
        "id_token_ttl": 3600,
        "session_ttl": 3600,
        "users": USERS,
        "clients": [
            {
                "client_id": "ioc-dashboard",
                "client_secret": "dashboard-secret",
                "redirect_uris": [callback],
                "post_logout_redirect_uris": [callback],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }
        ],
    }
    audit = tmp_path / "audit.jsonl"
    with harness.oidc_provider(idp, tmp_path / "idp.log") as issuer:
        settings = DashboardSettings(
            site_unit=seed.DISTRICT,
            port=app_port,
            clickhouse=endpoint,
            public_enabled=True,
            oidc_metadata_url=f"{issuer}/.well-known/openid-configuration",
            oidc_client_secret=SecretStr("dashboard-secret"),
            oidc_scope="openid email profile ioc",
            session_max_age_s=SESSION_S,
            audit_log=audit,
        )
        with harness.dashboard(settings, tmp_path / "run"):
            base = f"http://localhost:{app_port}/"
            browser.get(base)
            _wait(browser, lambda d: _rendered(d, "Thông tin công khai", "Nguy hại"), "the public page")
            _shot(browser, "01-public-vi")

            _click_text(browser, "button", "Đăng nhập")
            _wait(browser, lambda d: d.find_elements(By.ID, "login"), "the provider's sign-in form")
            browser.find_element(By.ID, "login").send_keys("op724")
            browser.find_element(By.ID, "password").send_keys("wrong")
            browser.find_element(By.ID, "submit").click()
            _wait(browser, lambda d: d.find_elements(By.ID, "error"), "the provider refusing a wrong password")
            _shot(browser, "02-provider-refuses-wrong-password")
            browser.find_element(By.ID, "login").send_keys("op724")
            browser.find_element(By.ID, "password").send_keys(USERS["op724"]["password"])
            browser.find_element(By.ID, "submit").click()
            signed_in = time.monotonic()
            _wait(browser, lambda d: _rendered(d, "Tổng quan", "Sự cố đang mở"), "the overview after sign-in")
            assert "Trần Thị Điều Hành · Điều hành" in browser.find_element(By.TAG_NAME, "body").text
            _shot(browser, "03-overview-vi")

            _click_text(browser, "button", "English")
            _wait(browser, lambda d: _rendered(d, "Overview", "Open incidents"), "the overview in English")
            _shot(browser, "04-overview-en")

            _click_text(browser, "a", "Incidents")
            _wait(browser, lambda d: _rendered(d, "Incidents", "incidents"), "the incidents page")
            assert "/incidents" in browser.current_url
            _shot(browser, "05-incidents-en")

            _click_text(browser, "a", "Public services")
            _wait(browser, lambda d: _rendered(d, "Public services", "Total points"), "the public-services page")
            _shot(browser, "06-services-en")

            # The sign-in lasts SESSION_S seconds; after that the next visit signs the person out.
            time.sleep(max(0.0, SESSION_S + 2 - (time.monotonic() - signed_in)))
            browser.get(base)
            _wait(browser, lambda d: _rendered(d, "Thông tin công khai", "Nguy hại"), "the public page after expiry")
            body = browser.find_element(By.TAG_NAME, "body").text
            assert "Đăng nhập" in body and "Trần Thị Điều Hành" not in body
            _shot(browser, "07-expired-back-to-public")

    actions = [json.loads(line)["action"] for line in audit.read_text(encoding="utf-8").splitlines()]
    assert actions[0] == "sign-in" and "session-expired" in actions
    assert all(p.stat().st_size > 10_000 for p in SHOTS.glob("0*.png"))


# --- every page, both languages, photographed ------------------------------------------------------------------

SCREEN_SIZE = (1280, 800)
CONTENT = ", ".join(
    f'[data-testid="{kind}"]' for kind in ("stDataFrame", "stMetric", "stVegaLiteChart", "stDeckGlJsonChart")
)
"""What shows data on a page: a table, a headline figure, a chart or a map."""


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _click_link(driver: Any, text: str) -> None:
    """Click the navigation link whose text is exactly `text` ("Public" is not "Public services")."""
    from selenium.common.exceptions import TimeoutException  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    def clicked(d: Any) -> bool:
        # A link's text is its icon's name (a Material ligature) on one line, then its label on the next.
        found = next((e for e in d.find_elements(By.TAG_NAME, "a") if _nfc(e.text).endswith(f" {text}")), None)
        if found is None:
            return False
        d.execute_script("arguments[0].click()", found)  # the sidebar's link, wherever the viewport puts it
        return True

    try:
        _wait(driver, clicked, f"a link saying {text!r}")
    except TimeoutException:
        seen = [ascii(e.text) for e in driver.find_elements(By.TAG_NAME, "a")]
        raise AssertionError(f"no link saying {text!r}; the links say {', '.join(seen)}") from None


def _optimised(path: Path) -> None:
    """The screenshot as a 256-colour PNG: a fifth of the size, still sharp for text and flat charts."""
    from PIL import Image  # noqa: PLC0415 - only the screenshots need Pillow

    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def test_every_page_in_both_languages_shows_data_and_is_photographed(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded], browser: Any, tmp_path: Path
) -> None:
    """The province's pages in Vietnamese then English, each with data and no error, saved as screenshots:
    under the test's directory, or into IOC_SCREENSHOTS_DIR (docs/screenshots for the README)."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    from dashboards.i18n import Translator  # noqa: PLC0415
    from dashboards.shell import PAGES  # noqa: PLC0415

    endpoint, _ = server_seeded
    port = harness.free_port()
    settings = DashboardSettings(
        site_unit=seed.PROVINCE,
        port=port,
        clickhouse=endpoint,
        public_enabled=True,
        local_role="operator",
        audit_log=tmp_path / "audit.jsonl",
    )
    # The test's own directory unless asked for the committed ones (never read from the environment in the app).
    out = Path(os.environ.get("IOC_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    with harness.dashboard(settings, tmp_path / "run"):
        width, height = SCREEN_SIZE
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        browser.get(f"http://localhost:{port}/")
        for lang in ("vi", "en"):
            t = Translator(lang)
            if lang == "en":
                _click_text(browser, "button", "English")
            for number, (page, _icon) in enumerate(PAGES, start=1):
                if page != "overview" or lang == "en":
                    _click_link(browser, t(f"nav.{page}"))
                heading = t(f"{page}.title")
                _wait(browser, lambda d, h=heading: _rendered(d, h, h), f"the {page} page in {lang}", timeout=90)
                _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, CONTENT), f"data on the {page} page")
                time.sleep(2.0)  # charts and maps paint after their data arrives
                body = browser.find_element(By.TAG_NAME, "body").text
                assert t("error.warehouse") not in body, (page, lang)
                assert t("error.unexpected", ref="").split(".")[0] not in body, (page, lang)
                path = out / f"{number:02d}-{page}-{lang}.png"
                browser.save_screenshot(str(path))
                _optimised(path)
                taken.append(path)
                charts = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')
                if charts:  # and the page's charts, which lie below the first screen
                    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", charts[0])
                    time.sleep(1.0)
                    path = out / f"{number:02d}-{page}-{lang}-charts.png"
                    browser.save_screenshot(str(path))
                    _optimised(path)
                    taken.append(path)
    assert len([p for p in taken if not p.stem.endswith("-charts")]) == 2 * len(PAGES)
    assert any(p.stem.startswith("02-environment") and p.stem.endswith("-charts") for p in taken)
    sizes = [p.stat().st_size for p in taken]
    assert all(10_000 < size < 400_000 for size in sizes), dict(zip((p.name for p in taken), sizes, strict=True))
    assert sum(sizes) < 3_000_000
