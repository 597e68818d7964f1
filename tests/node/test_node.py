"""A pod of the project's image runs on a real node and serves through a Service (issue 12).

The node is real: kube-scheduler, kube-controller-manager and a kubelet from the API server's own
k8s.io/kubernetes module, containerd + runc + Debian's CNI plugins, kube-proxy (iptables) and CoreDNS. The
image is the repository's Dockerfile built with buildah on a debootstrapped bookworm base (`iocctl.image`),
loaded into containerd from its archive. Needs root; the first run builds for several minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from iocctl import image as images
from iocctl.localstack.install import Installer
from iocctl.localstack.node import NODE_IP, Node
from iocctl.localstack.process import free_port, stop_process
from iocctl.localstack.stack import default_cache_dir

pytestmark = [
    pytest.mark.kube_node,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="a node needs root (namespaces, bridges, iptables, mounts)"),
    pytest.mark.timeout(1800),
]

NAMESPACE = "node-test"


@pytest.fixture(scope="module")
def platform_image() -> images.Image:
    return images.build(cache_dir=default_cache_dir())


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, platform_image: images.Image) -> Iterator[Node]:
    node = Node(tmp_path_factory.mktemp("node-stack"), Installer(default_cache_dir()))
    try:
        node.up()
        node.load_image(platform_image.archive, tags=[platform_image.chart_tag])
        node.kubectl("create", "namespace", NAMESPACE)
        node.kubectl("apply", "-f", "-", stdin=json.dumps(_client_pod(platform_image.chart_tag)))
        yield node
    finally:
        node.down()


_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
_POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def _client_pod(image: str) -> dict[str, object]:
    """A pod to call Services from."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client", "namespace": NAMESPACE},
        "spec": {
            "securityContext": _POD_SECURITY,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "client",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "infinity"],
                    "securityContext": _SECURITY,
                }
            ],
        },
    }


def _manifest(image: str) -> str:
    # The page the pods serve is the image's own `ioc --help`: proof the platform is installed in it.
    serve = "ioc --help > /tmp/index.html && exec python -m http.server 8080 --directory /tmp"
    pod_spec = {
        "securityContext": _POD_SECURITY,
        "terminationGracePeriodSeconds": 2,
        "containers": [
            {
                "name": "web",
                "image": image,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", serve],
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1},
                "securityContext": _SECURITY,
            }
        ],
    }
    objects = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NAMESPACE},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": NAMESPACE},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})


def _fetch(node: Node, url: str, *, within: float = 30.0) -> str:
    """GET `url` from the client pod; retried while kube-proxy catches up with new endpoints (refused meanwhile)."""
    code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    deadline = time.monotonic() + within
    while True:
        try:
            return node.kubectl("-n", NAMESPACE, "exec", "client", "--", "python", "-c", code)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _ready_web_pods(node: Node) -> set[str]:
    pods = json.loads(node.kubectl("-n", NAMESPACE, "get", "pods", "-l", "app=web", "-o", "json"))["items"]
    return {
        p["metadata"]["name"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    }


def test_a_pod_of_our_image_serves_through_a_service(node: Node, platform_image: images.Image) -> None:
    node.kubectl("apply", "-f", "-", stdin=_manifest(platform_image.chart_tag))
    node.kubectl("-n", NAMESPACE, "wait", "--for=condition=Available", "deployment/web", "--timeout=180s")
    node.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", "pod/client", "--timeout=120s")
    nodes = json.loads(node.kubectl("get", "pods", "-n", NAMESPACE, "-o", "json"))["items"]
    assert {p["spec"]["nodeName"] for p in nodes} == {"ioc-node"}  # placed by the scheduler on the real node

    cluster_ip = node.kubectl("-n", NAMESPACE, "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
    for url in (f"http://{cluster_ip}/index.html", f"http://web.{NAMESPACE}.svc.cluster.local/index.html"):
        assert "IOC Platform" in _fetch(node, url), url  # kube-proxy's ClusterIP, CoreDNS's name

    logs = node.kubectl("-n", NAMESPACE, "logs", "deployment/web")
    assert "GET /index.html" in logs  # the kubelet serves logs to the apiserver
    assert node.kubectl("-n", NAMESPACE, "exec", "deployment/web", "--", "id", "-u").strip() == "10001"

    # A deleted pod is replaced by its ReplicaSet, and the Service keeps answering.
    before = _ready_web_pods(node)
    victim = sorted(before)[0]
    node.kubectl("-n", NAMESPACE, "delete", "pod", victim, "--wait=false")
    deadline = time.monotonic() + 120
    while True:
        now = _ready_web_pods(node)
        if len(now) == 2 and victim not in now:
            break
        assert time.monotonic() < deadline, f"no replacement for {victim}: {now}"
        time.sleep(0.5)
    assert "IOC Platform" in _fetch(node, f"http://web.{NAMESPACE}.svc.cluster.local/index.html")


def test_a_pod_reaches_a_service_of_this_machine_by_name(node: Node, tmp_path: Path) -> None:
    # How pods reach the local stack: a process listening on the node IP, published as a Service.
    (tmp_path / "hello.txt").write_text("from the machine\n", encoding="utf-8")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", NODE_IP, "--directory", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        name = node.publish_host_service(NAMESPACE, "machine", 8000, port)
        node.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", "pod/client", "--timeout=120s")
        assert _fetch(node, f"http://{name}:8000/hello.txt").strip() == "from the machine"
    finally:
        stop_process(server.pid)
        server.wait(timeout=10)
