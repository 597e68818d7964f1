"""`ioc dashboard` as a site's pod runs it: configured from the environment alone, listening on every address.

No local stack anywhere (HOME and the stack directory are empty temporary directories, so a stray
stack.json cannot help): the dashboard starts from IOC_DASHBOARD_* settings, answers /_stcore/health on
0.0.0.0 as an explicit read-only viewer (IOC_DASHBOARD_ANONYMOUS_VIEWER, what the operator sets for a site
without sign-in) and is refused without that flag; with the OIDC client the operator passes from the
site's sign-in Secret it starts too, and its sign-in route sends the browser to the real identity provider.
The Deployment that sets these variables: tests/operators/test_dashboard_pods.py.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboards import harness, seed

pytestmark = [pytest.mark.slow]

IOC = str(Path(sys.executable).with_name("ioc"))
COOKIE_SECRET = "a-cookie-secret-the-same-on-every-replica-0123456789"


def _pod_env(tmp_path: Path, port: int, **settings: str) -> dict[str, str]:
    """A pod's environment: no IOC_* from this machine, an empty HOME and stack directory, the operator's settings."""
    home, cache, tmp = tmp_path / "home", tmp_path / "cache", tmp_path / "tmp"
    for path in (home, cache, tmp):
        path.mkdir(exist_ok=True)
    closed = harness.free_port()  # no warehouse: the server starts and answers its health check without one
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env |= {
        "HOME": str(home),
        "IOC_CACHE_DIR": str(cache),
        "TMPDIR": str(tmp),
        "IOC_DASHBOARD_SITE_UNIT": seed.DISTRICT,
        "IOC_DASHBOARD_ADDRESS": "0.0.0.0",
        "IOC_DASHBOARD_PORT": str(port),
        "IOC_DASHBOARD_CLICKHOUSE__HOST": "127.0.0.1",
        "IOC_DASHBOARD_CLICKHOUSE__PORT": str(closed),
        "IOC_DASHBOARD_CLICKHOUSE__HTTP_PORT": str(closed),
        "IOC_DASHBOARD_CLICKHOUSE__USER": "ioc_site_724",
        "IOC_DASHBOARD_CLICKHOUSE__PASSWORD": "from-the-site-secret",
        "IOC_DASHBOARD_CLICKHOUSE__DATABASE": "ioc_site_724",
        "IOC_DASHBOARD_KAFKA__BOOTSTRAP": f"127.0.0.1:{closed}",
        **settings,
    }
    return env


def _listens_on_all_addresses(port: int) -> bool:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.rpartition(":")
                if state == "0A" and int(hex_port, 16) == port and set(address) == {"0"}:
                    return True
    return False


@contextlib.contextmanager
def _pod(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`ioc dashboard --site U`, the pod's command, until the test is done."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [IOC, "dashboard", "--site", seed.DISTRICT],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            port = int(env["IOC_DASHBOARD_PORT"])
            try:
                harness.wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=90, process=process)
            except (RuntimeError, TimeoutError) as exc:
                raise AssertionError(f"{exc}\n{log.read_text(encoding='utf-8', errors='replace')}") from None
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _get(port: int, path: str) -> tuple[int, bytes, str]:
    """Status, body and Location of one GET, redirects not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read(), answer.getheader("Location") or ""
    finally:
        connection.close()


def test_from_the_environment_alone_it_serves_read_only_viewers_on_every_address(tmp_path: Path) -> None:
    port = harness.free_port()
    env = _pod_env(tmp_path, port)
    refused = subprocess.run(
        [IOC, "dashboard", "--site", seed.DISTRICT], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert refused.returncode != 0
    assert "refusing to listen on 0.0.0.0 without sign-in" in refused.stderr
    assert "IOC_DASHBOARD_ANONYMOUS_VIEWER" in refused.stderr and "Traceback" not in refused.stderr
    # Asked to make the anonymous visitors operators: refused too, naming both settings.
    operator = subprocess.run(
        [IOC, "dashboard", "--site", seed.DISTRICT, "--role", "operator"],
        capture_output=True,
        text=True,
        env={**env, "IOC_DASHBOARD_ANONYMOUS_VIEWER": "true"},
        timeout=60,
        check=False,
    )
    assert operator.returncode != 0 and "IOC_DASHBOARD_LOCAL_ROLE=operator" in operator.stderr
    assert "from-the-site-secret" not in operator.stderr  # the settings' errors never echo their input

    with _pod({**env, "IOC_DASHBOARD_ANONYMOUS_VIEWER": "true"}, tmp_path / "viewer.log") as process:
        assert _get(port, "/_stcore/health")[:2] == (200, b"ok")
        assert _listens_on_all_addresses(port)
        # The app runs as an anonymous viewer: the variables the launcher handed to Streamlit say so.
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        assert b"IOC_DASHBOARD_LOCAL_ROLE=viewer" in environ and b"IOC_DASHBOARD_ANONYMOUS_VIEWER=true" in environ
    assert not (tmp_path / "cache" / "stacks").exists()  # no local stack was looked for or made
    [secrets] = (tmp_path / "tmp").glob("ioc-dashboard-*/instance-*/secrets.toml")
    assert "[auth" not in secrets.read_text(encoding="utf-8")


def _provider_token(monkeypatch: pytest.MonkeyPatch) -> str:
    """The signed token Streamlit's sign-in button puts in /auth/login?provider=..., for provider `ioc`."""
    from streamlit import auth_util  # noqa: PLC0415

    monkeypatch.setattr(auth_util, "get_signing_secret", lambda: COOKIE_SECRET)
    return auth_util.encode_provider_token("ioc")


def test_with_the_sign_in_secret_it_starts_and_sends_visitors_to_the_identity_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, idp_port = harness.free_port(), harness.free_port()
    callback = f"http://localhost:{port}/oauth2callback"
    idp: dict[str, Any] = {
        "port": idp_port,
        "id_token_ttl": 3600,
        "session_ttl": 3600,
        "users": {},
        "clients": [
            {
                "client_id": "ioc-dashboard-pods",
                "client_secret": "pod-secret",
                "redirect_uris": [callback],
                "post_logout_redirect_uris": [callback],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }
        ],
    }
    with harness.oidc_provider(idp, tmp_path / "idp.log") as issuer:
        # The keys of the site's sign-in Secret, as the operator passes them (operators/manifests.py).
        env = _pod_env(
            tmp_path,
            port,
            IOC_DASHBOARD_OIDC_CLIENT_ID="ioc-dashboard-pods",
            IOC_DASHBOARD_OIDC_CLIENT_SECRET="pod-secret",
            IOC_DASHBOARD_OIDC_METADATA_URL=f"{issuer}/.well-known/openid-configuration",
            IOC_DASHBOARD_COOKIE_SECRET=COOKIE_SECRET,
            IOC_DASHBOARD_OIDC_REDIRECT_URI=callback,
        )
        with _pod(env, tmp_path / "oidc.log"):
            assert _get(port, "/_stcore/health")[:2] == (200, b"ok")
            assert _listens_on_all_addresses(port)
            status, _, location = _get(port, f"/auth/login?provider={_provider_token(monkeypatch)}")
            assert status in (302, 303, 307), status
            assert location.startswith(f"{issuer}/"), location
            assert "client_id=ioc-dashboard-pods" in location
    [secrets] = (tmp_path / "tmp").glob("ioc-dashboard-*/instance-*/secrets.toml")
    assert oct(secrets.stat().st_mode & 0o777) == "0o600"
    assert not (tmp_path / "cache" / "stacks").exists()
