"""Real things the dashboards' end-to-end tests run: Debian's Chromium, the npm OIDC provider, the Streamlit app.

Everything installs itself on a fresh machine and is cached outside the repository: Chromium and its
driver from Debian's packages (apt-get, under the local stack's apt lock, as iocctl.localstack.install does),
`oidc-provider` from npm into ~/.cache/ioc/npm/oidc-provider-<version>. Playwright's own browser download
does not work on these machines, so the tests drive Debian's chromium through chromium-driver (Selenium).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from dashboards import launch
from ioc.settings import DashboardSettings
from iocctl.localstack.install import Installer, MissingPrerequisite
from iocctl.localstack.stack import default_cache_dir

OIDC_PROVIDER_VERSION = "9.13.3"
OIDC_DIR = Path(__file__).parent / "oidc"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The AQI band marks are emoji; without a colour-emoji font the screenshots show empty boxes.
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status < 500:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


# --- Chromium from Debian ------------------------------------------------------------------------------------


def ensure_chromium() -> tuple[Path, Path]:
    """Debian's chromium and chromium-driver, installed with apt-get when missing."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists() and EMOJI_FONT.exists():
        return CHROMIUM, CHROMEDRIVER
    installer = Installer(default_cache_dir())
    # The local stack's apt lock: two apt-get runs at once fail on dpkg's own lock.
    with installer._lock("apt"):
        if not (CHROMIUM.exists() and CHROMEDRIVER.exists() and EMOJI_FONT.exists()):
            installer._apt_install(("chromium", "chromium-driver", "fonts-noto-color-emoji"))
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise MissingPrerequisite(
            "chromium and chromium-driver are not installed: apt-get install chromium chromium-driver"
        )
    return CHROMIUM, CHROMEDRIVER


def chrome(profile: Path, flags: Sequence[str] = ()) -> Any:
    """A headless Chromium driven through chromium-driver, with a fresh profile and any extra `flags`."""
    from selenium import webdriver  # noqa: PLC0415 - only the browser test needs Selenium
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    browser, driver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(browser)
    for flag in (*CHROME_FLAGS, *flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(driver)), options=options)


# --- the OIDC provider from npm --------------------------------------------------------------------------------


def ensure_oidc_provider() -> Path:
    """node_modules with `oidc-provider`, installed with npm into ~/.cache/ioc/npm (never into the repo)."""
    target = default_cache_dir() / "npm" / f"oidc-provider-{OIDC_PROVIDER_VERSION}"
    done = target / ".complete"
    if done.exists():
        return target / "node_modules"
    npm = shutil.which("npm")
    if npm is None:
        raise MissingPrerequisite("npm is not installed (Debian: apt-get install npm)")
    installer = Installer(default_cache_dir())
    with installer._lock("npm-oidc-provider"):
        if not done.exists():
            target.mkdir(parents=True, exist_ok=True)
            manifest = json.loads((OIDC_DIR / "package.json").read_text(encoding="utf-8"))
            (target / "package.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(target)],
                check=True,
                capture_output=True,
                timeout=600,
            )
            done.write_text(OIDC_PROVIDER_VERSION, encoding="utf-8")
    return target / "node_modules"


@contextlib.contextmanager
def oidc_provider(config: Mapping[str, Any], log: Path) -> Iterator[str]:
    """A real OpenID provider (panva's `oidc-provider`) on config's host (default loopback); yields its issuer."""
    node = shutil.which("node")
    if node is None:
        raise MissingPrerequisite("node is not installed (Debian: apt-get install nodejs)")
    modules = ensure_oidc_provider()
    config_file = log.with_suffix(".json")
    config_file.write_text(json.dumps(config), encoding="utf-8")
    env = {**os.environ, "NODE_PATH": str(modules)}
    # An ES module resolves packages from its own directory upward, not from NODE_PATH: run a copy of the
    # script next to the cached node_modules.
    script = modules.parent / "provider.mjs"
    shutil.copyfile(OIDC_DIR / "provider.mjs", script)
    with log.open("wb") as out:
        process = subprocess.Popen([node, str(script), str(config_file)], stdout=out, stderr=subprocess.STDOUT, env=env)
        issuer = f"http://{config.get('host', '127.0.0.1')}:{config['port']}"
        try:
            wait_http(f"{issuer}/.well-known/openid-configuration", timeout=30, process=process)
            yield issuer
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


# --- the dashboard itself ------------------------------------------------------------------------------------


@contextlib.contextmanager
def dashboard(settings: DashboardSettings, run_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`streamlit run dashboards/app.py` for `settings`, as `ioc dashboard` starts it; stopped afterwards."""
    argv, env = launch.command(settings, run_dir, os.environ)
    log = run_dir / "streamlit.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            wait_http(f"http://127.0.0.1:{settings.port}/_stcore/health", timeout=90, process=process)
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def python() -> str:
    return sys.executable
