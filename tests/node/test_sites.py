"""A district's IOCSites on the real node: sites Ready with pods, a signed-in dashboard, killed pods lose nothing.

Issue 12, item 3. On the installed platform (`platform_on_node`: the chart's operator, bridge and stream workers as
pods, the local stack's Mosquitto, Kafka and ClickHouse behind the chart's Service names), a platform engineer's
`kubectl apply` of a district (Dĩ An, 724, signing in through an OIDC client Secret), two of its communes and a
SensorVendor. Then: every site Ready, judged from the operator's status and the Deployments each site owns (a
commune may run its own dashboard or be served by its district's; either way the dashboard its status names must
have Ready pods); the district's Service answers /_stcore/health; Debian's Chromium signs in as the district's
operator through panva's oidc-provider on the node IP (the issuer both the pod and the browser reach) and sees the
readings a vendor published with the SDK over MQTT/TLS, carried by the in-cluster bridge and workers. Finally the
bridge pod and a worker pod are deleted while a device publishes: both are replaced, and ClickHouse holds each
(device, seq) the broker acknowledged exactly once as queries see it (FINAL).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from clickhouse_driver import Client

from ioc.events import SensorKind
from ioc.settings import MqttEndpoint
from iocctl.localstack.node import NODE_IP
from iocctl.localstack.onnode import OnNode
from operators.models import IOCSiteSpec
from operators.names import site_names
from sensors.sdk import VendorClient
from tests.dashboards import harness

pytestmark = [pytest.mark.kube_node, pytest.mark.slow, pytest.mark.timeout(900)]

NAMESPACE = "ioc-di-an"  # not ioc-sites, where `ioc up --on-node` and the cluster bench apply the province
DISTRICT = ("di-an-724", "724")
COMMUNES = (("dong-hoa-25957", "25957"), ("tan-binh-25945", "25945"))
VENDOR = "moi-truong-xanh"
OIDC_SECRET = "di-an-oidc"
OPERATOR_LOGIN = "dieuhanh724"
OPERATOR_PASSWORD = secrets.token_urlsafe(12)
OPERATOR_NAME = "Nguyễn Văn Điều Hành"
# The in-cluster name the operator gives the district's dashboard (its status's dashboardUrl); the browser on this
# machine resolves it to the Service's ClusterIP, as the cluster's DNS would.
DASHBOARD_HOST = str(
    urlsplit(site_names(DISTRICT[0], NAMESPACE, IOCSiteSpec(unit=DISTRICT[1], tier="district")).dashboard_url).hostname
)
WAREHOUSE_ERROR = "Không đọc được kho dữ liệu"  # a section whose query failed (dashboards/i18n/vi.yaml)


@dataclasses.dataclass(frozen=True)
class District:
    """The applied subtree: the cluster, the identity provider, the dashboard's address, the vendor's MQTT login."""

    on_node: OnNode
    issuer: str
    cluster_ip: str
    mqtt: MqttEndpoint

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        return self.on_node.kubectl(*args, stdin=stdin, check=check)

    @contextlib.contextmanager
    def warehouse(self) -> Iterator[Client]:
        """The stack's ClickHouse, where the chart's workers write (database `ioc`, the chart's default)."""
        clickhouse = self.on_node.services["clickhouse"]
        client = Client(
            host=clickhouse["host"],
            port=clickhouse["port"],
            user=clickhouse["user"],
            password=clickhouse["password"],
            database="ioc",
        )
        try:
            yield client
        finally:
            client.disconnect()


# --- what a platform engineer applies ------------------------------------------------------------------------------


def _site(name: str, unit: str, tier: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ioc.platform/v1alpha1",
        "kind": "IOCSite",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"unit": unit, "edition": "2024", "tier": tier, **spec},
    }


def _manifests(issuer: str, cookie_secret: str, client_secret: str) -> list[dict[str, Any]]:
    sign_in = {
        "secretRef": {"name": OIDC_SECRET},
        "redirectUri": f"http://{DASHBOARD_HOST}/oauth2callback",
        "scope": "openid email profile ioc",
    }
    district = _site(*DISTRICT, "district", dashboard={"replicas": 1, "signIn": sign_in})
    communes = [
        _site(name, unit, "commune", parentRef={"name": DISTRICT[0], "tier": "district"}) for name, unit in COMMUNES
    ]
    oidc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": OIDC_SECRET, "namespace": NAMESPACE},
        "stringData": {
            "client_id": "ioc-dashboard-di-an",
            "client_secret": client_secret,
            "server_metadata_url": f"{issuer}/.well-known/openid-configuration",
            "cookie_secret": cookie_secret,
        },
    }
    vendor = {
        "apiVersion": "ioc.platform/v1alpha1",
        "kind": "SensorVendor",
        "metadata": {"name": VENDOR, "namespace": NAMESPACE},
        "spec": {"units": [DISTRICT[1]], "kinds": ["air"], "displayName": "Công ty Môi trường Xanh"},
    }
    return [oidc, district, *communes, vendor]


def _provider_config(port: int, client_secret: str) -> dict[str, Any]:
    callback = f"http://{DASHBOARD_HOST}/oauth2callback"
    return {
        "host": NODE_IP,
        "port": port,
        "id_token_ttl": 3600,
        "session_ttl": 3600,
        "users": {
            OPERATOR_LOGIN: {
                "password": OPERATOR_PASSWORD,
                "claims": {
                    "name": OPERATOR_NAME,
                    "email": f"{OPERATOR_LOGIN}@binhduong.gov.vn",
                    "email_verified": True,
                    "ioc_grants": [f"operator@{DISTRICT[1]}"],
                },
            }
        },
        "clients": [
            {
                "client_id": "ioc-dashboard-di-an",
                "client_secret": client_secret,
                "redirect_uris": [callback],
                "post_logout_redirect_uris": [callback],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }
        ],
    }


# --- judging the sites -----------------------------------------------------------------------------------------------


def _ready(obj: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in obj.get("status", {}).get("conditions", []))


def _pods_ready(district: District, selector: dict[str, str], replicas: int) -> str | None:
    """None when exactly `replicas` live pods match `selector` and all are Ready; else what is wrong."""
    labels = ",".join(f"{k}={v}" for k, v in selector.items())
    pods = json.loads(district.kubectl("-n", NAMESPACE, "get", "pods", "-l", labels, "-o", "json"))["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    ready = [
        p
        for p in live
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]
    if len(live) != replicas or len(ready) != replicas:
        return f"{labels}: {len(ready)} of {len(live)} pods Ready, {replicas} wanted"
    return None


def _site_problems(district: District) -> dict[str, str]:
    """Per site, why it is not yet serving (empty when every site is): status, owned workloads, its dashboard."""
    sites = json.loads(district.kubectl("-n", NAMESPACE, "get", "iocsites", "-o", "json"))["items"]
    deployments = json.loads(district.kubectl("-n", NAMESPACE, "get", "deployments", "-o", "json"))["items"]
    problems: dict[str, str] = {}
    for site in sites:
        name, status = site["metadata"]["name"], site.get("status", {})
        if status.get("phase") != "Ready" or not _ready(site):
            conds = {c["type"]: f"{c['status']} {c.get('reason', '')}" for c in status.get("conditions", [])}
            problems[name] = f"phase {status.get('phase')}, conditions {conds}"
            continue
        if status.get("observedGeneration") != site["metadata"]["generation"]:
            problems[name] = "status not of the current generation"
            continue
        # Every Deployment the site owns has its pods Ready (none is fine: a commune served by its district).
        owned = [
            d
            for d in deployments
            if any(ref.get("uid") == site["metadata"]["uid"] for ref in d["metadata"].get("ownerReferences", []))
        ]
        for deployment in owned:
            wrong = _pods_ready(
                district, deployment["spec"]["selector"]["matchLabels"], int(deployment["spec"].get("replicas", 1))
            )
            if wrong:
                problems[name] = f"Deployment {deployment['metadata']['name']}: {wrong}"
        # A site without a dashboard of its own says which site serves it (operators.sites: status.servedBy).
        components = {d["metadata"].get("labels", {}).get("app.kubernetes.io/component") for d in owned}
        if "dashboard" not in components and not status.get("servedBy"):
            problems.setdefault(name, "owns no dashboard and its status names no site serving it (servedBy)")
        # The dashboard its status names (its own or its district's) is a Service whose pods are Ready.
        url = status.get("dashboardUrl")
        if not url:
            problems.setdefault(name, "no dashboardUrl in its status")
            continue
        service_name, _, rest = (urlsplit(url).hostname or "").partition(".")
        service_ns = rest.split(".")[0] or NAMESPACE
        service = json.loads(
            district.kubectl("-n", service_ns, "get", "service", service_name, "-o", "json", check=False) or "{}"
        )
        if not service:
            problems.setdefault(name, f"its dashboard Service {service_ns}/{service_name} does not exist")
            continue
        selector = service["spec"].get("selector") or {}
        serving = [
            d
            for d in deployments
            if selector and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        if not serving:
            problems.setdefault(name, f"no Deployment behind Service {service_name}")
            continue
        for deployment in serving:
            wrong = _pods_ready(
                district, deployment["spec"]["selector"]["matchLabels"], int(deployment["spec"].get("replicas", 1))
            )
            if wrong or int(deployment["spec"].get("replicas", 1)) < 1:
                problems.setdefault(name, f"its dashboard {deployment['metadata']['name']}: {wrong or 'no replicas'}")
    expected = {DISTRICT[0], *(name for name, _ in COMMUNES)}
    for missing in expected - {s["metadata"]["name"] for s in sites}:
        problems[missing] = "not found"
    return problems


def _wait(what: str, check: Callable[[], Any], within: float, describe: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:.0f} s\n{describe()}")
        time.sleep(1)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        return 0, str(exc)


# --- the fixture ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def district(platform_on_node: OnNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[District]:
    tmp = tmp_path_factory.mktemp("district")
    on_node = platform_on_node
    started = time.monotonic()
    client_secret, cookie_secret = secrets.token_urlsafe(24), secrets.token_hex(32)
    with harness.oidc_provider(_provider_config(harness.free_port(), client_secret), tmp / "idp.log") as issuer:
        on_node.kubectl("create", "namespace", NAMESPACE, check=False)
        kafka = on_node.services["kafka"]
        if kafka.get("security_protocol") == "SASL_SSL":  # site dashboards mount the brokers' CA in their namespace
            ca = {"ca.crt": Path(kafka["ca_file"]).read_text(encoding="utf-8")}
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "ioc-kafka-ca", "namespace": NAMESPACE},
            }
            on_node.kubectl("apply", "-f", "-", stdin=json.dumps({**secret, "stringData": ca}))
        manifest = tmp / "di-an.yaml"  # JSON is YAML: `kubectl apply -f` as a platform engineer runs it
        manifest.write_text(
            json.dumps({"apiVersion": "v1", "kind": "List", "items": _manifests(issuer, cookie_secret, client_secret)}),
            encoding="utf-8",
        )
        on_node.kubectl("apply", "-f", str(manifest))
        probe = District(on_node, issuer, "", MqttEndpoint())

        def describe() -> str:
            sites = on_node.kubectl("-n", NAMESPACE, "get", "iocsites,sensorvendors", "-o", "wide", check=False)
            return f"{_site_problems(probe)}\n{sites}\n{on_node.describe_failure(NAMESPACE)}"

        _wait("every site Ready with its dashboard's pods", lambda: not _site_problems(probe), 300, describe)
        served = on_node.kubectl(
            "-n",
            NAMESPACE,
            "get",
            "iocsites",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}<-{.status.servedBy} {end}",
        )
        print(f"sites Ready {time.monotonic() - started:.0f} s after the apply; {served}")

        def vendor_ready() -> bool:
            obj = json.loads(on_node.kubectl("-n", NAMESPACE, "get", "sensorvendor", VENDOR, "-o", "json"))
            return bool(obj.get("status", {}).get("phase") == "Ready")

        _wait(f"SensorVendor {VENDOR} Ready", vendor_ready, 60, describe)
        login = json.loads(on_node.kubectl("-n", NAMESPACE, "get", "secret", f"{VENDOR}-mqtt", "-o", "json"))["data"]
        decoded = {k: base64.b64decode(v).decode() for k, v in login.items()}
        ca_file = tmp / "mqtt-ca.crt"
        ca_file.write_text(decoded["ca.crt"], encoding="utf-8")
        # The broker as pods see it (mosquitto.mosquitto:8883) is this machine's TLS listener on the node IP.
        mqtt = MqttEndpoint(
            host=NODE_IP,
            port=on_node.services["mosquitto"]["node_tls_port"],
            username=decoded["username"],
            password=decoded["password"],
            tls_ca_file=ca_file,
        )
        service = DASHBOARD_HOST.split(".", maxsplit=1)[0]
        cluster_ip = on_node.kubectl(
            "-n", NAMESPACE, "get", "service", service, "-o", "jsonpath={.spec.clusterIP}"
        ).strip()
        yield District(on_node, issuer, cluster_ip, mqtt)
        on_node.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


# --- the tests -----------------------------------------------------------------------------------------------------


def _metric(driver: Any, label: str) -> str | None:
    """The value of the st.metric labelled `label`, as the page shows it."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    for metric in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
        if metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text.strip() == label:
            return str(metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text.strip())
    return None


def _headings(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return [e.text for e in driver.find_elements(By.TAG_NAME, "h1")]


def _browser_wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 60.0) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    ignored = (NoSuchElementException, StaleElementReferenceException)  # Streamlit replaces elements as it runs
    return WebDriverWait(driver, timeout, poll_frequency=0.3, ignored_exceptions=ignored).until(condition, message=what)


def _click(driver: Any, tag: str, text: str) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    def clicked(d: Any) -> bool:
        target = next((e for e in d.find_elements(By.TAG_NAME, tag) if text in e.text and e.is_displayed()), None)
        if target is None:
            return False
        target.click()
        return True

    _browser_wait(driver, clicked, f"a <{tag}> saying {text!r}")


def _shot(driver: Any, name: str) -> None:
    from tests.dashboards.conftest import ARTIFACTS  # noqa: PLC0415

    shots = ARTIFACTS / "node"
    shots.mkdir(parents=True, exist_ok=True)
    time.sleep(1.0)  # let the last elements paint
    driver.save_screenshot(str(shots / f"{name}.png"))


def test_the_district_dashboard_signs_in_and_shows_a_vendors_readings(district: District, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    # The district's Service answers (kube-proxy's rules may trail the endpoints for a moment).
    health = _wait(
        "the dashboard Service's /_stcore/health",
        lambda: (answer := _get(f"http://{district.cluster_ip}/_stcore/health"))[0] == 200 and answer,
        60,
    )
    assert health == (200, "ok")

    # A vendor's station in phường Đông Hòa publishes with the SDK, over TLS, with the login the operator issued.
    device = "aq-dong-hoa-01"
    with VendorClient(district.mqtt, VENDOR) as client:
        station = client.device(device, unit=COMMUNES[0][1], kind=SensorKind.AIR)
        for i in range(5):
            station.reading({"pm25": 41.5 + i, "pm10": 70.0})
        client.flush(timeout=30)
    # Through the in-cluster bridge and workers into the warehouse (where the district's copies are fed from).
    stored = "SELECT count() FROM readings FINAL WHERE vendor = %(v)s AND device = %(d)s AND measure = 'pm25'"
    seen = "SELECT count() FROM device_status FINAL WHERE vendor = %(v)s AND device = %(d)s"
    # What the overview's device count must say: every device the warehouse knows in the district's subtree.
    subtree = "SELECT count() FROM device_status FINAL WHERE path = %(p)s OR startsWith(path, concat(%(p)s, '/'))"
    with district.warehouse() as warehouse:
        _wait(
            "the readings in ClickHouse", lambda: warehouse.execute(stored, {"v": VENDOR, "d": device})[0][0] == 5, 90
        )
        _wait(
            "the station's status in ClickHouse", lambda: warehouse.execute(seen, {"v": VENDOR, "d": device})[0][0], 60
        )
        devices = str(warehouse.execute(subtree, {"p": f"74/{DISTRICT[1]}"})[0][0])
    assert int(devices) >= 1, "the station is not placed in the district's subtree (path 74/724/...)"

    driver = harness.chrome(
        tmp_path / "profile", flags=[f"--host-resolver-rules=MAP {DASHBOARD_HOST} {district.cluster_ip}"]
    )
    try:
        driver.get(f"http://{DASHBOARD_HOST}/")
        _click(driver, "button", "Đăng nhập")  # no anonymous operator: the page asks to sign in
        _browser_wait(driver, lambda d: d.find_elements(By.ID, "login"), "the provider's sign-in form")
        assert driver.current_url.startswith(district.issuer), driver.current_url
        driver.find_element(By.ID, "login").send_keys(OPERATOR_LOGIN)
        driver.find_element(By.ID, "password").send_keys(OPERATOR_PASSWORD)
        driver.find_element(By.ID, "submit").click()
        _browser_wait(driver, lambda d: "Tổng quan" in _headings(d), "the overview after sign-in")
        assert urlsplit(driver.current_url).hostname == DASHBOARD_HOST
        assert f"{OPERATOR_NAME} · Điều hành" in driver.find_element(By.TAG_NAME, "body").text

        refreshed = [time.monotonic()]

        def counted(d: Any) -> bool:
            if _metric(d, "Thiết bị") == devices:
                return True
            if time.monotonic() - refreshed[0] > 5:  # a fresh run, once the query cache's TTL has passed
                d.refresh()
                refreshed[0] = time.monotonic()
            return False

        _browser_wait(driver, counted, f"the overview counting {devices} device(s), the vendor's station too", 90)
        assert WAREHOUSE_ERROR not in driver.find_element(By.TAG_NAME, "body").text  # every section read its data
        _shot(driver, "district-overview")

        _click(driver, "a", "Chất lượng dữ liệu")
        _browser_wait(driver, lambda d: "Chất lượng dữ liệu" in _headings(d), "the data-quality page")
        # The table is drawn on a canvas; its accessible copy in the DOM carries the cells' text.
        _browser_wait(
            driver,
            lambda d: VENDOR in d.execute_script("return document.body.textContent"),
            f"vendor {VENDOR} on the data-quality page",
        )
        _shot(driver, "district-data-quality")
    finally:
        driver.quit()


def _component_pods(district: District, component: str) -> dict[str, str]:
    """Live pods of a release component: name -> uid, Ready ones only."""
    ns = district.on_node.namespace
    label = f"app.kubernetes.io/component={component}"
    pods = json.loads(district.kubectl("-n", ns, "get", "pods", "-l", label, "-o", "json"))["items"]
    return {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    }


def test_killed_bridge_and_worker_pods_are_replaced_and_nothing_is_lost(district: District) -> None:
    ns = district.on_node.namespace
    bridges, workers = _component_pods(district, "bridge"), _component_pods(district, "streams")
    assert bridges and workers, (bridges, workers)
    bridge, worker = sorted(bridges)[0], sorted(workers)[0]
    count, rate = 300, 15.0  # under the bridge's per-device allowance (20/s sustained)
    device = "aq-tan-binh-07"
    failures: list[BaseException] = []

    with VendorClient(district.mqtt, VENDOR) as client:
        station = client.device(device, unit=COMMUNES[1][1], kind=SensorKind.AIR)

        def publish() -> None:
            try:
                for i in range(count):
                    station.reading({"pm25": 20.0 + i % 30, "pm10": 50.0})
                    time.sleep(1 / rate)
            except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
                failures.append(exc)

        publisher = threading.Thread(target=publish, name="vendor-device")
        publisher.start()
        time.sleep(4)
        # The bridge replica is killed outright (no time to hand over what it holds); the worker is deleted as a
        # node drain or a rollout would (it leaves its consumer group).
        district.kubectl("-n", ns, "delete", "pod", bridge, "--grace-period=0", "--force", "--wait=false")
        time.sleep(4)
        district.kubectl("-n", ns, "delete", "pod", worker, "--wait=false")
        publisher.join(timeout=count / rate + 60)
        client.flush(timeout=120)  # raises unless the broker acknowledged every reading
    assert not failures, failures
    acknowledged = station.next_seq
    assert acknowledged == count

    def replaced() -> bool:
        now_bridges, now_workers = _component_pods(district, "bridge"), _component_pods(district, "streams")
        new_bridge = bridge in now_bridges and now_bridges[bridge] != bridges[bridge]  # a StatefulSet keeps the name
        new_worker = worker not in now_workers and len(now_workers) == len(workers)
        return new_bridge and new_worker and len(now_bridges) == len(bridges)

    _wait(
        "the killed bridge and worker pods replaced and Ready",
        replaced,
        180,
        district.on_node.describe_failure,
    )

    key = {"v": VENDOR, "d": device}
    final = (
        "SELECT count(), uniqExact(seq), min(seq), max(seq) FROM readings FINAL "
        "WHERE vendor = %(v)s AND device = %(d)s AND measure = 'pm25'"
    )
    started = time.monotonic()
    with district.warehouse() as warehouse:
        _wait(
            f"{acknowledged} acknowledged readings in ClickHouse",
            lambda: warehouse.execute(final, key)[0][1] >= acknowledged,
            180,
            lambda: f"stored: {warehouse.execute(final, key)}",
        )
        rows, distinct, first, last = warehouse.execute(final, key)[0]
        raw = warehouse.execute(
            "SELECT count() FROM readings WHERE vendor = %(v)s AND device = %(d)s AND measure = 'pm25'", key
        )[0][0]
    print(
        f"{acknowledged} acknowledged; {distinct} distinct sequences stored ({raw} rows before FINAL), complete "
        f"{time.monotonic() - started:.0f} s after the replacements were Ready"
    )
    assert (rows, distinct, first, last) == (acknowledged, acknowledged, 0, acknowledged - 1)
