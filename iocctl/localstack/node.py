"""A real one-node Kubernetes cluster here: control plane, kubelet, containerd, CNI, kube-proxy, CoreDNS.

Every piece is the real program, started as a process under `<root>/node/` (default: the stack's directory):

- etcd, and a kube-apiserver set up for a node: it listens on the node IP (pods reach it through the
  `kubernetes` Service), authenticates components by client certificate, authorizes with Node,RBAC, mounts
  service-account tokens (ServiceAccount admission on), and reaches kubelets with its kubelet-client certificate;
- kube-controller-manager and kube-scheduler, built from the same k8s.io/kubernetes module as the apiserver;
- containerd (Debian) with runc and Debian's CNI plugins (bridge + host-local + portmap, loopback): its own
  root, state and socket, `restrict_oom_score_adj` (this VM refuses lowering oom_score_adj), cgroupfs;
- a kubelet (cgroup v1, cgroupfs, swap tolerated) whose node IP is NODE_IP on the bridge NODE_BRIDGE (this kernel
  has no dummy interfaces; a bridge with no ports holds a local address just as well); the apiserver refuses
  loopback node addresses for logs and exec, hence a real one;
- kube-proxy in iptables mode, for Services;
- CoreDNS as a process on NODE_IP:53, published in the cluster as kube-system/kube-dns (10.0.0.10) by a
  Service without selector and an EndpointSlice: names resolve before any pod runs.

Pods reach a process of this machine that listens on NODE_IP (routed through the pod bridge's gateway);
`publish_host_service` gives such a process a Service name. Images come from docker-archives
(`load_image`); there is no registry, so pods use imagePullPolicy Never or IfNotPresent.

The node uses fixed machine-wide names (bridges, addresses, the kubelet's port 10250, iptables chains):
one node per machine. `down` removes everything it made: pods through CRI (so CNI releases addresses and
rules), kube-proxy's and the kubelet's iptables chains, mounts, network namespaces, both bridges.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shlex
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from iocctl.localstack import certs, kube
from iocctl.localstack.common import ServiceInfo, http_get, launch
from iocctl.localstack.install import CNI_BIN_DIR, KUBERNETES_VERSION, Installer, MissingPrerequisite
from iocctl.localstack.process import ServiceStartError, free_port, is_alive, stop_process, wait_until

__all__ = [
    "CLUSTER_DNS",
    "HOST_SERVICES",
    "NODE_IP",
    "NODE_NAME",
    "POD_CIDR",
    "Node",
    "NodeBusy",
    "node_ip_here",
]

NODE_NAME: Final = "ioc-node"
NODE_IP: Final = "10.200.0.1"
NODE_BRIDGE: Final = "ioc0"
# Not 10.88.0.0/16: podman's and buildah's default network (bridge cni-podman0) uses it; two routes for one
# range leave the kubelet unable to reach pods ("no route to host" in readiness probes).
POD_CIDR: Final = "10.244.0.0/16"
POD_BRIDGE: Final = "ioccni0"
CNI_NETWORK: Final = "ioc-node"
SERVICE_CIDR: Final = "10.0.0.0/24"  # the local stack's apiserver range
CLUSTER_DNS: Final = "10.0.0.10"
KUBELET_PORT: Final = 10250
SANDBOX_IMAGE: Final = "registry.k8s.io/pause:3.10"
_OWNER: Final = Path("/run/ioc-node/owner")
# The in-cluster names (namespace, Service) under which the local stack's services are published on the node:
# the chart's own defaults (values.yaml), so only the credentials and the Kafka protocol differ from a cluster.
HOST_SERVICES: Final = {
    "mosquitto": ("mosquitto", "mosquitto"),
    "kafka": ("kafka", "kafka-bootstrap"),
    "clickhouse": ("clickhouse", "clickhouse"),
}
# Start order; `down` goes the other way, with the pod clean-up after the kubelet.
COMPONENTS: Final = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "containerd",
    "kubelet",
    "kube-proxy",
    "coredns",
)


def node_ip_here() -> bool:
    """Whether NODE_IP is an address of this machine (the node is up): stack services then listen on it too."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((NODE_IP, 0))
        except OSError:
            return False
    return True


class NodeBusy(RuntimeError):
    """Another stack's node runs on this machine (one node per machine)."""


def _sh(argv: Sequence[str | Path], *, check: bool = True) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise ServiceStartError(f"`{' '.join(map(str, argv))}` exited {done.returncode}: {done.stdout}{done.stderr}")
    return done.stdout


# --- certificates ------------------------------------------------------------------------------------------


class _Certs:
    """One CA for the node's cluster and the certificates each component presents."""

    # name -> (common name, organizations, DNS names, IP addresses, server, client)
    LEAVES: Final = {
        "apiserver": (
            "kube-apiserver",
            (),
            (
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ("127.0.0.1", "10.0.0.1", NODE_IP),
            True,
            False,
        ),
        "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ("system:masters",), (), (), False, True),
        "controller-manager": ("system:kube-controller-manager", (), (), (), False, True),
        "scheduler": ("system:kube-scheduler", (), (), (), False, True),
        "kube-proxy": ("system:kube-proxy", (), (), (), False, True),
        "kubelet": (f"system:node:{NODE_NAME}", ("system:nodes",), (), (), False, True),
        "kubelet-serving": (NODE_NAME, (), (NODE_NAME,), (NODE_IP,), True, False),
        "coredns": ("system:coredns", (), (), (), False, True),
    }

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def path(self, name: str) -> Path:
        return self.dir / name

    def make(self) -> None:
        ca = certs.authority("ioc-node-ca")
        certs.write_private(self.path("ca.crt"), certs.cert_pem(ca.cert))
        certs.write_private(self.path("ca.key"), certs.key_pem(ca.key))
        for name, (common, orgs, dns, ips, server, client) in self.LEAVES.items():
            key, cert = certs.issue(ca, common, dns=dns, ips=ips, organisations=orgs, server=server, client=client)
            certs.write_private(self.path(f"{name}.crt"), certs.cert_pem(cert))
            certs.write_private(self.path(f"{name}.key"), certs.key_pem(key))
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        certs.write_private(self.path("sa.key"), certs.key_pem(sa_key))
        certs.write_private(
            self.path("sa.pub"),
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )

    def kubeconfig(self, name: str, server: str, target: Path) -> Path:
        """A kubeconfig for component `name`, authenticating with its client certificate."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "ioc-node", "cluster": {"server": server, "certificate-authority": str(self.path("ca.crt"))}}
            ],
            "users": [
                {
                    "name": name,
                    "user": {
                        "client-certificate": str(self.path(f"{name}.crt")),
                        "client-key": str(self.path(f"{name}.key")),
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": "ioc-node", "user": name}}],
            "current-context": name,
        }
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(config, indent=2), encoding="utf-8")
        target.chmod(0o600)
        return target


# --- DNS probe ---------------------------------------------------------------------------------------------


def _resolve(name: str, server: str, port: int = 53, timeout: float = 2.0) -> str | None:
    """The first A record of `name` from the DNS server at `server` (a bare UDP query), or None."""
    query = struct.pack(">HHHHHH", 0x10C, 0x0100, 1, 0, 0, 0)
    query += b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    query += struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(query, (server, port))
        answer = sock.recv(1024)
    if answer[3] & 0x0F or struct.unpack(">H", answer[6:8])[0] == 0:
        return None
    return ".".join(str(b) for b in answer[-4:])


# --- the node ----------------------------------------------------------------------------------------------


class Node:
    """The node's processes under `<root>/node`, recorded in `node.json` there."""

    def __init__(self, root: Path, installer: Installer) -> None:
        self.root = root / "node"
        self.installer = installer
        self.state_file = self.root / "node.json"
        self.certs = _Certs(self.root / "certs")
        self.containerd_socket = self.root / "containerd" / "containerd.sock"

    # --- state ----------------------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"services": {}}
        return state

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2, sort_keys=True)
        tmp.replace(self.state_file)

    @contextlib.contextmanager
    def _machine_lock(self) -> Iterator[None]:
        lock_dir = self.installer.cache_dir / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with (lock_dir / "node.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def info(self) -> dict[str, Any]:
        """What clients need: kubeconfig, kubectl, server, the containerd socket, the node's addresses."""
        state = self._read()
        return {key: value for key, value in state.items() if key != "services"}

    def running(self) -> dict[str, ServiceInfo]:
        services: dict[str, ServiceInfo] = self._read()["services"]
        return {name: info for name, info in services.items() if is_alive(int(info["pid"]))}

    # --- up -------------------------------------------------------------------------------------------

    def up(self, images: Sequence[Path] = ()) -> dict[str, Any]:
        """Start every component not already running, load `images` (docker-archives); returns `info()`."""
        if os.geteuid() != 0:
            raise MissingPrerequisite("a node needs root (network namespaces, bridges, iptables, mounts)")
        self.installer.node_packages()
        etcd = self.installer.etcd()
        apiserver, kubectl = self.installer.kubernetes()
        binaries = {**self.installer.kube_node(), "kube-apiserver": apiserver, "etcd": etcd}
        coredns = self.installer.coredns()
        crictl = self.installer.crictl()
        from iocctl import image  # the pause image is built like the platform image  # noqa: PLC0415

        pause = image.pause_image(self.installer.cache_dir)
        with self._machine_lock():
            self._claim()
            self.root.mkdir(parents=True, exist_ok=True)
            state = self._read()
            running = self.running()
            if "kube-apiserver" not in running:  # a new control plane: new certificates and tokens
                if running:  # leftovers of a node whose control plane died: clear pods, rules and mounts first
                    self._teardown()
                    self._claim()
                running = {}
                shutil.rmtree(self.certs.dir, ignore_errors=True)
                self.certs.make()
            self._network()
            state.update(
                {
                    "node_name": NODE_NAME,
                    "node_ip": NODE_IP,
                    "pod_cidr": POD_CIDR,
                    "service_cidr": SERVICE_CIDR,
                    "cluster_dns": CLUSTER_DNS,
                    "kubectl": str(kubectl),
                    "crictl": str(crictl),
                    "containerd_socket": str(self.containerd_socket),
                    "version": KUBERNETES_VERSION,
                }
            )
            starters: dict[str, Callable[[], ServiceInfo]] = {
                "etcd": self._start_etcd,
                "kube-apiserver": lambda: self._start_apiserver(binaries["kube-apiserver"], state, running["etcd"]),
                "kube-controller-manager": lambda: self._start_controller_manager(binaries, state),
                "kube-scheduler": lambda: self._start_scheduler(binaries, state),
                "containerd": lambda: self._start_containerd(pause),
                "kubelet": lambda: self._start_kubelet(binaries, state),
                "kube-proxy": lambda: self._start_kube_proxy(binaries, state),
                "coredns": lambda: self._start_coredns(coredns, state),
            }
            for name in COMPONENTS:
                if name in running:
                    continue
                started = time.monotonic()
                info = starters[name]()
                info["started_in_s"] = round(time.monotonic() - started, 1)
                running[name] = info
                state["services"] = running
                self._save(state)
                if name == "kube-apiserver":  # kube-system appears a moment after /readyz
                    wait_until("cluster add-ons", lambda: self._apply(_cluster_addons(), state), timeout=30)
            self._wait_node_ready(state)
        for archive in images:
            self.load_image(archive)
        return self.info()

    def _claim(self) -> None:
        """One node per machine: refuse when another stack's node still runs."""
        if _OWNER.exists():
            owner = Path(_OWNER.read_text(encoding="utf-8").strip())
            if owner != self.root and Node(owner.parent, self.installer).running():
                raise NodeBusy(f"a node of the stack at {owner.parent} runs on this machine; stop it first")
        _OWNER.parent.mkdir(parents=True, exist_ok=True)
        _OWNER.write_text(str(self.root), encoding="utf-8")

    @staticmethod
    def _network() -> None:
        if not _sh(["ip", "link", "show", NODE_BRIDGE], check=False):
            _sh(["ip", "link", "add", NODE_BRIDGE, "type", "bridge"])
        if f"{NODE_IP}/" not in _sh(["ip", "-4", "addr", "show", NODE_BRIDGE]):
            _sh(["ip", "addr", "add", f"{NODE_IP}/32", "dev", NODE_BRIDGE])
        _sh(["ip", "link", "set", NODE_BRIDGE, "up"])
        for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
            _sh(["sysctl", "-qw", f"{key}=1"])

    def _start_etcd(self) -> ServiceInfo:
        shutil.rmtree(self.root / "etcd", ignore_errors=True)
        return kube.start_etcd(self.root, self.installer)

    def _start_apiserver(self, apiserver: Path, state: dict[str, Any], etcd: ServiceInfo) -> ServiceInfo:
        home = self.root / "kube-apiserver"
        home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        admin_token = secrets.token_hex(24)
        tokens = home / "tokens.csv"
        tokens.write_text(f'{admin_token},ioc-admin,ioc-admin,"system:masters"\n', encoding="utf-8")
        tokens.chmod(0o600)
        c = self.certs.path
        log = home / "kube-apiserver.log"
        process, launched = launch(
            "kube-apiserver",
            [
                apiserver,
                f"--etcd-servers={etcd['endpoint']}",
                f"--bind-address={NODE_IP}",
                f"--advertise-address={NODE_IP}",
                f"--secure-port={port}",
                f"--cert-dir={home}",
                f"--tls-cert-file={c('apiserver.crt')}",
                f"--tls-private-key-file={c('apiserver.key')}",
                f"--client-ca-file={c('ca.crt')}",
                # The controller-manager's and scheduler's delegated authentication look for a request-header CA.
                f"--requestheader-client-ca-file={c('ca.crt')}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--kubelet-client-certificate={c('apiserver-kubelet-client.crt')}",
                f"--kubelet-client-key={c('apiserver-kubelet-client.key')}",
                f"--kubelet-certificate-authority={c('ca.crt')}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={c('sa.pub')}",
                f"--service-account-signing-key-file={c('sa.key')}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--token-auth-file={tokens}",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=1",
            ],
            log,
        )
        server = f"https://{NODE_IP}:{port}"
        ca_file = str(c("ca.crt"))

        def ready() -> bool:
            return http_get(f"{server}/readyz", token=admin_token, ca_file=ca_file)[1].strip() == "ok"

        wait_until("kube-apiserver", ready, timeout=120, process=process, log_path=log, interval=0.5)
        kubeconfig = home / "kubeconfig"
        kube.write_kubeconfig(kubeconfig, server, c("ca.crt"), "ioc-admin", admin_token)
        state.update({"server": server, "kubeconfig": str(kubeconfig), "ca_file": ca_file, "admin_token": admin_token})
        return {"pid": process.pid, **launched, "log": str(log), "port": port, "server": server}

    def _component_kubeconfig(self, name: str, state: dict[str, Any]) -> Path:
        return self.certs.kubeconfig(name, state["server"], self.root / "kubeconfigs" / f"{name}.kubeconfig")

    def _start_controller_manager(self, binaries: dict[str, Path], state: dict[str, Any]) -> ServiceInfo:
        kubeconfig = self._component_kubeconfig("controller-manager", state)
        log = self.root / "kube-controller-manager" / "kube-controller-manager.log"
        port = free_port()
        process, launched = launch(
            "kube-controller-manager",
            [
                binaries["kube-controller-manager"],
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={log.parent}",
                f"--service-account-private-key-file={self.certs.path('sa.key')}",
                f"--root-ca-file={self.certs.path('ca.crt')}",
                "--use-service-account-credentials=true",
                f"--cluster-signing-cert-file={self.certs.path('ca.crt')}",
                f"--cluster-signing-key-file={self.certs.path('ca.key')}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--cluster-name=ioc-node",
                "--leader-elect=false",
                "--controllers=*",
                "--v=1",
            ],
            log,
        )
        wait_until("kube-controller-manager", lambda: _healthz(port), timeout=60, process=process, log_path=log)
        return {"pid": process.pid, **launched, "log": str(log), "port": port}

    def _start_scheduler(self, binaries: dict[str, Path], state: dict[str, Any]) -> ServiceInfo:
        kubeconfig = self._component_kubeconfig("scheduler", state)
        log = self.root / "kube-scheduler" / "kube-scheduler.log"
        port = free_port()
        process, launched = launch(
            "kube-scheduler",
            [
                binaries["kube-scheduler"],
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={log.parent}",
                "--leader-elect=false",
                "--v=1",
            ],
            log,
        )
        wait_until("kube-scheduler", lambda: _healthz(port), timeout=60, process=process, log_path=log)
        return {"pid": process.pid, **launched, "log": str(log), "port": port}

    def _start_containerd(self, pause: Path) -> ServiceInfo:
        home = self.root / "containerd"
        for stale in ("root", "state"):  # a fresh runtime: nothing of an earlier node's containers
            _unmount_under(home / stale)
            shutil.rmtree(home / stale, ignore_errors=True)
        (home / "net.d").mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "1.0.0",
            "name": CNI_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": POD_BRIDGE,
                    "isGateway": True,
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(home / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (home / "net.d" / "10-ioc-node.conflist").write_text(json.dumps(conflist, indent=2), encoding="utf-8")
        config = home / "config.toml"
        config.write_text(
            f"""# Written by iocctl.localstack.node.
version = 2
root = "{home / "root"}"
state = "{home / "state"}"
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{home / "containerd.sock.ttrpc"}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{home / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  # This VM refuses lowering oom_score_adj; without this every sandbox fails
  # ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{home / "net.d"}"
""",
            encoding="utf-8",
        )
        log = home / "containerd.log"
        containerd = shutil.which("containerd") or "containerd"
        process, launched = launch("containerd", [containerd, "--config", config], log)

        def ready() -> bool:
            return self.containerd_socket.exists() and _ok(self._ctr("version"))

        wait_until("containerd", ready, timeout=30, process=process, log_path=log)
        _sh(self._ctr("images", "import", pause))
        return {"pid": process.pid, **launched, "log": str(log), "socket": str(self.containerd_socket)}

    def _ctr(self, *args: str | Path) -> list[str]:
        return ["ctr", "--address", str(self.containerd_socket), "-n", "k8s.io", *map(str, args)]

    def _start_kubelet(self, binaries: dict[str, Path], state: dict[str, Any]) -> ServiceInfo:
        home = self.root / "kubelet"
        (home / "manifests").mkdir(parents=True, exist_ok=True)
        kubeconfig = self._component_kubeconfig("kubelet", state)
        healthz = free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "staticPodPath": str(home / "manifests"),
            "enforceNodeAllocatable": [],
            "localStorageCapacityIsolation": False,
            "address": NODE_IP,
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz,
            "tlsCertFile": str(self.certs.path("kubelet-serving.crt")),
            "tlsPrivateKeyFile": str(self.certs.path("kubelet-serving.key")),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.certs.path("ca.crt"))},
            },
            "authorization": {"mode": "Webhook"},
            "clusterDomain": "cluster.local",
            "clusterDNS": [CLUSTER_DNS],
            "resolvConf": "/etc/resolv.conf",
            # cAdvisor cannot size this VM's root filesystem ("cannot find filesystem info for device"), so
            # disk eviction cannot work anyway; keep memory eviction only, loosely.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "maxPods": 250,
        }
        (home / "config.yaml").write_text(json.dumps(config, indent=2), encoding="utf-8")
        log = home / "kubelet.log"
        process, launched = launch(
            "kubelet",
            [
                binaries["kubelet"],
                f"--config={home / 'config.yaml'}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={home / 'root'}",
                f"--cert-dir={home / 'pki'}",
                f"--node-ip={NODE_IP}",
                f"--hostname-override={NODE_NAME}",
                "--v=1",
            ],
            log,
        )
        wait_until("kubelet", lambda: _healthz(healthz, tls=False), timeout=60, process=process, log_path=log)
        return {"pid": process.pid, **launched, "log": str(log), "healthz_port": healthz}

    def _start_kube_proxy(self, binaries: dict[str, Path], state: dict[str, Any]) -> ServiceInfo:
        home = self.root / "kube-proxy"
        home.mkdir(parents=True, exist_ok=True)
        healthz, metrics = free_port(), free_port()
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self._component_kubeconfig("kube-proxy", state))},
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "hostnameOverride": NODE_NAME,
            "bindAddress": NODE_IP,
            "conntrack": {"maxPerCore": 0},  # leave the machine's nf_conntrack_max alone
            "metricsBindAddress": f"127.0.0.1:{metrics}",
            "healthzBindAddress": f"127.0.0.1:{healthz}",
            "nodePortAddresses": ["primary"],
        }
        (home / "config.yaml").write_text(json.dumps(config, indent=2), encoding="utf-8")
        log = home / "kube-proxy.log"
        process, launched = launch("kube-proxy", [binaries["kube-proxy"], f"--config={home / 'config.yaml'}"], log)

        def ready() -> bool:  # its Service rules are in place
            return _ok(["iptables", "-t", "nat", "-S", "KUBE-SERVICES"]) and "10.0.0.1/32" in _sh(
                ["iptables", "-t", "nat", "-S", "KUBE-SERVICES"], check=False
            )

        wait_until("kube-proxy", ready, timeout=60, process=process, log_path=log)
        return {"pid": process.pid, **launched, "log": str(log), "healthz_port": healthz}

    def _start_coredns(self, coredns: Path, state: dict[str, Any]) -> ServiceInfo:
        home = self.root / "coredns"
        home.mkdir(parents=True, exist_ok=True)
        kubeconfig = self._component_kubeconfig("coredns", state)
        health, ready_port = free_port(), free_port()
        (home / "Corefile").write_text(
            f""".:53 {{
    bind {NODE_IP}
    errors
    health 127.0.0.1:{health}
    ready 127.0.0.1:{ready_port}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} coredns
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    forward . /etc/resolv.conf
    cache 30
    loadbalance
}}
""",
            encoding="utf-8",
        )
        log = home / "coredns.log"
        process, launched = launch("coredns", [coredns, "-conf", home / "Corefile"], log, cwd=home)

        def ready() -> bool:
            return _resolve("kubernetes.default.svc.cluster.local", NODE_IP) == "10.0.0.1"

        wait_until("coredns", ready, timeout=60, process=process, log_path=log)
        return {"pid": process.pid, **launched, "log": str(log)}

    def _wait_node_ready(self, state: dict[str, Any]) -> None:
        def ready() -> bool:
            node = json.loads(self.kubectl("get", "node", NODE_NAME, "-o", "json"))
            return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])

        wait_until(f"node {NODE_NAME}", ready, timeout=90, interval=0.5, log_path=self.root / "kubelet" / "kubelet.log")

    # --- using the node ---------------------------------------------------------------------------------

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        state = self._read()
        done = subprocess.run(
            [state["kubectl"], "--kubeconfig", state["kubeconfig"], *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def _apply(self, objects: list[dict[str, Any]], state: dict[str, Any]) -> bool:
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
        done = subprocess.run(
            [state["kubectl"], "--kubeconfig", state["kubeconfig"], "apply", "-f", "-"],
            input=document,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kubectl apply exited {done.returncode}: {done.stderr.strip()}")
        return True

    def load_image(self, archive: Path, *, tags: Sequence[str] = ()) -> list[str]:
        """Import a docker/OCI archive into the node's containerd; `tags` are extra names for it."""
        out = _sh(self._ctr("images", "import", archive))
        names = [
            line.split()[1] for line in out.splitlines() if line.startswith("unpacking ") and len(line.split()) > 1
        ]
        for tag in tags:
            if names and tag not in names:
                _sh(self._ctr("images", "tag", "--force", names[0], tag))
        return [*names, *tags]

    def publish_host_service(
        self, namespace: str, name: str, port: int, target_port: int, *, more: Sequence[tuple[int, int]] = ()
    ) -> str:
        """A Service `name` in `namespace` (created if missing) for a process of this machine on NODE_IP:`target_port`.

        `more`: further (port, target port) pairs of the same process (ClickHouse's HTTP port beside its native one).
        """
        pairs = [(port, target_port), *more]
        names = ["main", *(f"p{service_port}" for service_port, _ in more)]
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "ports": [{"name": n, "port": p, "targetPort": t} for n, (p, t) in zip(names, pairs, strict=True)]
            },
        }
        slice_ = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-host",
                "namespace": namespace,
                "labels": {
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": "iocctl.localstack.node",
                },
            },
            "addressType": "IPv4",
            "ports": [{"name": n, "port": t, "protocol": "TCP"} for n, (_, t) in zip(names, pairs, strict=True)],
            "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
        }
        self._apply([ns, service, slice_], self._read())
        return f"{name}.{namespace}.svc.cluster.local"

    # --- down -------------------------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop every component and remove what the node made on this machine; returns what was running."""
        with self._machine_lock():
            return self._teardown()

    def _teardown(self) -> list[str]:
        state = self._read()
        running = self.running()
        stopped: list[str] = []

        def stop(name: str) -> None:
            if name in running and stop_process(int(running[name]["pid"])):
                stopped.append(name)

        stop("kubelet")  # first, or it starts again what is removed below
        if "containerd" in running and self.containerd_socket.exists():
            crictl = state.get("crictl")
            if crictl and Path(crictl).exists():  # CNI DEL for every pod: addresses, rules, veths, netns
                _sh(
                    [crictl, "--runtime-endpoint", f"unix://{self.containerd_socket}", "rmp", "--all", "--force"],
                    check=False,
                )
            for task in _sh(self._ctr("tasks", "ls", "-q"), check=False).split():
                _sh(self._ctr("tasks", "kill", "-s", "SIGKILL", task), check=False)
            time.sleep(0.5)
            for task in _sh(self._ctr("tasks", "ls", "-q"), check=False).split():
                _sh(self._ctr("tasks", "rm", "-f", task), check=False)
        stop("kube-proxy")
        proxy = self.installer.cache_dir / "bin" / f"kube-node-{KUBERNETES_VERSION}" / "kube-proxy"
        if proxy.exists():
            _sh([proxy, "--cleanup"], check=False)  # kube-proxy's own chains, nft and legacy
        stop("containerd")
        _unmount_under(self.root)
        for line in _sh(["ip", "netns", "list"], check=False).splitlines():
            if line.startswith("cni-"):  # the CRI plugin's names; a pod's netns outlives a killed sandbox
                _sh(["ip", "netns", "delete", line.split()[0]], check=False)
        _sh(["ip", "link", "delete", POD_BRIDGE], check=False)
        _clean_iptables()
        for name in ("coredns", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            stop(name)
        _sh(["ip", "link", "delete", NODE_BRIDGE], check=False)
        for leftover in ("ipam", "root", "state"):  # unpacked images take ~2 GB; the next up starts afresh anyway
            shutil.rmtree(self.root / "containerd" / leftover, ignore_errors=True)
        if _OWNER.exists() and _OWNER.read_text(encoding="utf-8").strip() == str(self.root):
            _OWNER.unlink()
        state["services"] = {}
        if self.root.exists():
            self._save(state)
        return stopped


def _ok(argv: Sequence[str | Path]) -> bool:
    return subprocess.run([str(a) for a in argv], capture_output=True, check=False).returncode == 0


def _healthz(port: int, *, tls: bool = True) -> bool:
    if not tls:
        return http_get(f"http://127.0.0.1:{port}/healthz")[1].strip() == "ok"
    import ssl  # noqa: PLC0415

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the component's self-signed serving certificate, on loopback
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=2, context=context) as response:
        return bool(response.read().strip() == b"ok")


def _unmount_under(directory: Path) -> None:
    """Lazily unmount every mount below `directory`, deepest first (overlay rootfs, shm, token tmpfs)."""
    prefix = str(directory)
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()]
    for mount in sorted((m for m in mounts if m == prefix or m.startswith(prefix + "/")), key=len, reverse=True):
        _sh(["umount", "-l", mount], check=False)


def _clean_iptables() -> None:
    """Remove the node's rules: KUBE-* chains (kubelet, kube-proxy) and the CNI network's CNI-* chains."""
    for table in ("filter", "nat", "mangle"):
        listing = _sh(["iptables", "-t", table, "-S"], check=False).splitlines()
        ours: set[str] = set()
        for rule in listing:
            words = rule.split()
            if rule.startswith("-N ") and words[1].startswith("KUBE-"):
                ours.add(words[1])
            if rule.startswith("-A ") and f'name: \\"{CNI_NETWORK}\\"' in rule and "-j" in words:
                ours.add(words[words.index("-j") + 1])
        for rule in listing:
            words = rule.split()
            jumps_to_ours = rule.startswith("-A ") and "-j" in words and words[words.index("-j") + 1] in ours
            if jumps_to_ours and words[1] not in ours:
                _sh(["iptables", "-t", table, *shlex.split(rule.replace("-A", "-D", 1))], check=False)
        for chain in ours:
            _sh(["iptables", "-t", table, "-F", chain], check=False)
        for chain in ours:
            _sh(["iptables", "-t", table, "-X", chain], check=False)


def _cluster_addons() -> list[dict[str, Any]]:
    """CoreDNS's read access and its Service: kube-system/kube-dns at CLUSTER_DNS, served by NODE_IP:53."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:coredns"}],
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {
                "clusterIP": CLUSTER_DNS,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kube-dns-host",
                "namespace": "kube-system",
                "labels": {
                    "kubernetes.io/service-name": "kube-dns",
                    "endpointslice.kubernetes.io/managed-by": "iocctl.localstack.node",
                },
            },
            "addressType": "IPv4",
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            ],
            "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
        },
    ]
