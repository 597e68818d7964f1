"""Installing the local stack's prerequisites, idempotently, cached under ~/.cache/ioc by version.

- Mosquitto and ClickHouse come from Debian's packages (apt-get; a `clickhouse` on PATH is used first).
- Kafka and ZooKeeper are sets of jars resolved from Maven Central by `mvn dependency:copy-dependencies`.
- etcd, kube-apiserver, kubectl and helm are built from Go modules (`go build`), never committed.
Each step is skipped when its output exists; a lock makes concurrent callers wait for one build. A
prerequisite that cannot be installed here raises `MissingPrerequisite` saying which and how.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

__all__ = [
    "COREDNS_VERSION",
    "CRICTL_VERSION",
    "ETCD_VERSION",
    "HELM_VERSION",
    "KAFKA_VERSION",
    "KUBERNETES_VERSION",
    "ZOOKEEPER_VERSION",
    "Installer",
    "MissingPrerequisite",
    "Toolchain",
]

KAFKA_VERSION: Final = "3.9.1"
KAFKA_SCALA: Final = "2.13"
# One ZooKeeper node coordinates the local ClickHouse cluster's replicas and its ON CLUSTER DDL queue.
ZOOKEEPER_VERSION: Final = "3.9.5"
ETCD_VERSION: Final = "v3.6.16"
KUBERNETES_VERSION: Final = "v1.34.2"
# Staging modules (k8s.io/api, ...) are versioned v0.<minor>.<patch> alongside v1.<minor>.<patch>.
KUBERNETES_STAGING_VERSION: Final = "v0" + KUBERNETES_VERSION[2:]
# helm 3 (the chart in charts/ioc-platform is apiVersion v2); the module proxy serves helm.sh/helm/v3.
HELM_VERSION: Final = "v3.22.0"
# The node (iocctl.localstack.node): CoreDNS for service names, crictl to remove pods through CRI at shutdown.
COREDNS_VERSION: Final = "v1.15.0"
CRICTL_VERSION: Final = "v1.34.0"

APT_PACKAGES: Final = {
    "mosquitto": ("mosquitto", "mosquitto-clients"),
    "clickhouse": ("clickhouse-server", "clickhouse-client"),
    # A node's container runtime, CNI plugins (/usr/lib/cni), kube-proxy's tools, and the image tools.
    "node": (
        "containerd",
        "runc",
        "containernetworking-plugins",
        "iptables",
        "conntrack",
        "socat",
        "ethtool",
        "buildah",
        "debootstrap",
        "fuse-overlayfs",
        "uidmap",
    ),
}
# What `node_packages` checks for before it calls apt-get.
_NODE_TOOLS: Final = (
    "containerd",
    "containerd-shim-runc-v2",
    "runc",
    "ctr",
    "iptables",
    "conntrack",
    "buildah",
    "debootstrap",
)
CNI_BIN_DIR: Final = Path("/usr/lib/cni")
DYNSEC_PLUGIN: Final = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")


class MissingPrerequisite(RuntimeError):
    """Something the local stack needs is not installed and could not be installed from here."""


@dataclasses.dataclass(frozen=True)
class Toolchain:
    """Where every installed piece is."""

    mosquitto: Path
    mosquitto_ctrl: Path
    dynsec_plugin: Path
    clickhouse: tuple[str, ...]
    kafka_libs: Path
    java: Path
    etcd: Path
    kube_apiserver: Path
    kubectl: Path
    helm: Path
    zookeeper_libs: Path


def _say(message: str) -> None:
    print(f"[ioc deps] {message}", file=sys.stderr, flush=True)


class Installer:
    """Installs into `cache_dir` (default ~/.cache/ioc); every method is safe to call again."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.go_env = {
            **os.environ,
            "GOMODCACHE": str(cache_dir / "go" / "mod"),
            "GOCACHE": str(cache_dir / "go" / "build"),
            "GOFLAGS": "-mod=mod -buildvcs=false",
        }

    # --- helpers ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        lock_dir = self.cache_dir / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with (lock_dir / f"{name}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _run(self, argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, what: str) -> str:
        try:
            done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise MissingPrerequisite(f"{what}: `{argv[0]}` is not installed") from None
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
            raise MissingPrerequisite(f"{what} failed (`{' '.join(argv)}` exited {done.returncode}):\n{tail}")
        return done.stdout

    @staticmethod
    def _require_tool(tool: str, how: str) -> str:
        path = shutil.which(tool)
        if path is None:
            raise MissingPrerequisite(f"`{tool}` is not on PATH; {how}")
        return path

    # --- Debian packages -------------------------------------------------------------------------------

    def _apt_install(self, packages: tuple[str, ...]) -> None:
        prefix: list[str] = []
        if os.geteuid() != 0:
            if shutil.which("sudo") is None:
                listed = " ".join(packages)
                raise MissingPrerequisite(
                    f"{listed} not installed and not root: run `sudo apt-get install -y {listed}`"
                )
            prefix = ["sudo", "-n"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        argv = [*prefix, "apt-get", "install", "-y", "--no-install-recommends", *packages]
        _say(f"installing Debian packages {' '.join(packages)} ...")
        try:
            self._run(argv, env=env, what=f"apt-get install {' '.join(packages)}")
        except MissingPrerequisite:
            self._run([*prefix, "apt-get", "update"], env=env, what="apt-get update")
            self._run(argv, env=env, what=f"apt-get install {' '.join(packages)}")

    def mosquitto(self) -> tuple[Path, Path, Path]:
        """mosquitto, mosquitto_ctrl and the dynamic-security plugin."""
        with self._lock("apt"):
            broker = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
            ctrl = shutil.which("mosquitto_ctrl")
            if not (Path(broker).exists() and ctrl and DYNSEC_PLUGIN.exists()):
                self._apt_install(APT_PACKAGES["mosquitto"])
                ctrl = shutil.which("mosquitto_ctrl")
            if not (Path(broker).exists() and ctrl and DYNSEC_PLUGIN.exists()):
                raise MissingPrerequisite(
                    "mosquitto 2 with mosquitto_ctrl and the dynamic-security plugin is not installed"
                )
            return Path(broker), Path(ctrl), DYNSEC_PLUGIN

    def clickhouse(self) -> tuple[str, ...]:
        """The command that runs a ClickHouse server (`clickhouse server` when on PATH)."""
        with self._lock("apt"):
            found = self._find_clickhouse()
            if found is None:
                self._apt_install(APT_PACKAGES["clickhouse"])
                found = self._find_clickhouse()
            if found is None:
                raise MissingPrerequisite("ClickHouse server not found: `apt-get install clickhouse-server`")
            return found

    @staticmethod
    def _find_clickhouse() -> tuple[str, ...] | None:
        single = shutil.which("clickhouse")
        if single:
            return (single, "server")
        for candidate in (
            shutil.which("clickhouse-server"),
            "/usr/bin/clickhouse-server",
            "/usr/sbin/clickhouse-server",
        ):
            if candidate and Path(candidate).exists():
                return (candidate,)
        return None

    # --- Kafka from Maven Central ----------------------------------------------------------------------

    def kafka(self) -> Path:
        """A directory of Kafka's runtime jars."""
        return self._maven_libs(f"kafka-{KAFKA_VERSION}", _KAFKA_POM, f"Apache Kafka {KAFKA_VERSION}")

    def zookeeper(self) -> Path:
        """A directory of Apache ZooKeeper's runtime jars (the coordination a ClickHouse cluster's replicas need)."""
        return self._maven_libs(
            f"zookeeper-{ZOOKEEPER_VERSION}", _ZOOKEEPER_POM, f"Apache ZooKeeper {ZOOKEEPER_VERSION}"
        )

    def _maven_libs(self, name: str, pom: str, what: str) -> Path:
        """The runtime jars `pom` depends on, copied from Maven Central into `<cache>/<name>/libs` once."""
        libs = self.cache_dir / name / "libs"
        done = libs.parent / ".complete"
        if done.exists():
            return libs
        with self._lock(name.split("-", maxsplit=1)[0]):
            if done.exists():
                return libs
            mvn = self._require_tool("mvn", "install Maven (`apt-get install maven`)")
            self._require_tool("java", "install a JDK 17 (`apt-get install openjdk-17-jre-headless`)")
            work = libs.parent
            work.mkdir(parents=True, exist_ok=True)
            (work / "pom.xml").write_text(pom, encoding="utf-8")
            _say(f"resolving {what} jars from Maven Central (about a minute the first time) ...")
            started = time.monotonic()
            self._run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={libs}",
                    f"-Dmaven.repo.local={self.cache_dir / 'm2'}",
                ],
                cwd=work,
                what=f"resolving {what} with Maven",
            )
            done.write_text(json.dumps({"seconds": round(time.monotonic() - started, 1)}))
            return libs

    # --- Go builds ------------------------------------------------------------------------------------

    def _go_build(
        self,
        name: str,
        module: str,
        packages: dict[str, str],
        *,
        replaces: dict[str, str] | None = None,
        ldflags: str | Callable[[Path], str] = "-s -w",
    ) -> dict[str, Path]:
        """Build `packages` (binary name → import path) of `module` in a wrapper module; cached by version.

        `ldflags` may be a function of the wrapper module's directory, for flags that depend on the
        versions `go get` resolved.
        """
        out_dir = self.cache_dir / "bin" / name
        wanted = {binary: out_dir / binary for binary in packages}
        if all(p.exists() for p in wanted.values()):
            return wanted
        with self._lock(f"go-{name}"):
            if all(p.exists() for p in wanted.values()):
                return wanted
            go = self._require_tool("go", "install Go 1.24 or newer (https://go.dev/doc/install)")
            work = self.cache_dir / "build" / name
            work.mkdir(parents=True, exist_ok=True)
            for stale in ("go.mod", "go.sum"):
                (work / stale).unlink(missing_ok=True)
            env = self.go_env
            self._run(
                [go, "mod", "init", f"ioc.local/build/{name.split('-', maxsplit=1)[0]}"],
                cwd=work,
                env=env,
                what=f"{name}: go mod init",
            )
            for old, new in (replaces or {}).items():
                self._run(
                    [go, "mod", "edit", f"-replace={old}={new}"],
                    cwd=work,
                    env=env,
                    what=f"{name}: go mod edit",
                )
            for path in packages.values():
                self._run(
                    [go, "get", f"{path}@{module.split('@')[1]}"],
                    cwd=work,
                    env=env,
                    what=f"{name}: go get {path}",
                )
            flags = ldflags(work) if callable(ldflags) else ldflags
            out_dir.mkdir(parents=True, exist_ok=True)
            for binary, path in packages.items():
                started = time.monotonic()
                _say(f"building {binary} ({name}) from Go modules; the first build takes minutes ...")
                tmp = out_dir / f".{binary}.tmp"
                self._run(
                    [go, "build", "-trimpath", "-ldflags", flags, "-o", str(tmp), path],
                    cwd=work,
                    env=env,
                    what=f"building {binary}",
                )
                tmp.rename(wanted[binary])
                _say(f"built {binary} in {time.monotonic() - started:.0f} s")
            return wanted

    def go_source(self, name: str, source: Path) -> Path:
        """Build the Go main module in `source` (go.mod, go.sum, *.go: e.g. bench/loadgen) into one binary `name`.

        Cached under bin/ by a hash of the module's files, so an edited source builds again and an unchanged one
        never does; its dependencies come from the Go module proxy, checked against the committed go.sum.
        """
        digest = hashlib.sha256()
        for path in sorted(p for p in source.iterdir() if p.suffix == ".go" or p.name in ("go.mod", "go.sum")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        binary = self.cache_dir / "bin" / f"{name}-{digest.hexdigest()[:16]}" / name
        if binary.exists():
            return binary
        with self._lock(f"go-{name}"):
            if binary.exists():
                return binary
            go = self._require_tool("go", "install Go 1.24 or newer (https://go.dev/doc/install)")
            binary.parent.mkdir(parents=True, exist_ok=True)
            tmp = binary.parent / f".{name}.tmp"
            _say(f"building {name} from {source} (Go modules) ...")
            # -mod=readonly: the build uses exactly the committed go.mod/go.sum and never edits the source tree.
            env = {**self.go_env, "GOFLAGS": "-mod=readonly -buildvcs=false"}
            self._run(
                [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp), "."], cwd=source, env=env, what=name
            )
            tmp.rename(binary)
            return binary

    def etcd(self) -> Path:
        built = self._go_build(
            f"etcd-{ETCD_VERSION}",
            f"go.etcd.io/etcd/server/v3@{ETCD_VERSION}",
            {"etcd": "go.etcd.io/etcd/server/v3"},
        )
        return built["etcd"]

    @staticmethod
    def _kubernetes_ldflags() -> str:
        major, minor = KUBERNETES_VERSION[1:].split(".")[:2]
        return " ".join(
            [
                "-s -w",
                f"-X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION}",
                f"-X k8s.io/component-base/version.gitMajor={major}",
                f"-X k8s.io/component-base/version.gitMinor={minor}",
                "-X k8s.io/component-base/version.gitTreeState=clean",
                f"-X k8s.io/client-go/pkg/version.gitVersion={KUBERNETES_VERSION}",
            ]
        )

    def kubernetes(self) -> tuple[Path, Path]:
        """kube-apiserver and a matching kubectl."""
        name = f"kube-{KUBERNETES_VERSION}"
        out_dir = self.cache_dir / "bin" / name
        if (out_dir / "kube-apiserver").exists() and (out_dir / "kubectl").exists():
            return out_dir / "kube-apiserver", out_dir / "kubectl"
        replaces = self._kubernetes_staging_replaces()
        ldflags = self._kubernetes_ldflags()
        built = self._go_build(
            name,
            f"k8s.io/kubernetes@{KUBERNETES_VERSION}",
            {
                "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
                "kubectl": "k8s.io/kubernetes/cmd/kubectl",
            },
            replaces=replaces,
            ldflags=ldflags,
        )
        return built["kube-apiserver"], built["kubectl"]

    def kube_node(self) -> dict[str, Path]:
        """kubelet, kube-scheduler, kube-controller-manager and kube-proxy, from the apiserver's module and version.

        Built after `kubernetes()` they reuse most of its compiled packages: about 2.5 min more on 2 cores.
        """
        name = f"kube-node-{KUBERNETES_VERSION}"
        wanted = ("kubelet", "kube-scheduler", "kube-controller-manager", "kube-proxy")
        out_dir = self.cache_dir / "bin" / name
        if all((out_dir / binary).exists() for binary in wanted):
            return {binary: out_dir / binary for binary in wanted}
        return self._go_build(
            name,
            f"k8s.io/kubernetes@{KUBERNETES_VERSION}",
            {binary: f"k8s.io/kubernetes/cmd/{binary}" for binary in wanted},
            replaces=self._kubernetes_staging_replaces(),
            ldflags=self._kubernetes_ldflags(),
        )

    def coredns(self) -> Path:
        """CoreDNS (its `kubernetes` plugin serves cluster.local for the node)."""
        built = self._go_build(
            f"coredns-{COREDNS_VERSION}",
            f"github.com/coredns/coredns@{COREDNS_VERSION}",
            {"coredns": "github.com/coredns/coredns"},
        )
        return built["coredns"]

    def crictl(self) -> Path:
        """crictl, which removes a node's pods through CRI (so CNI releases their addresses) when it stops."""
        built = self._go_build(
            f"crictl-{CRICTL_VERSION}",
            f"sigs.k8s.io/cri-tools@{CRICTL_VERSION}",
            {"crictl": "sigs.k8s.io/cri-tools/cmd/crictl"},
            ldflags=f"-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version={CRICTL_VERSION}",
        )
        return built["crictl"]

    def node_packages(self) -> None:
        """containerd, runc, the CNI plugins, iptables and the image tools (buildah, debootstrap) from Debian."""
        with self._lock("apt"):
            if self._missing_node_tools():
                self._apt_install(APT_PACKAGES["node"])
            missing = self._missing_node_tools()
            if missing:
                raise MissingPrerequisite(
                    f"a node needs {', '.join(missing)}: `apt-get install {' '.join(APT_PACKAGES['node'])}`"
                )

    @staticmethod
    def _missing_node_tools() -> list[str]:
        missing = [tool for tool in _NODE_TOOLS if shutil.which(tool) is None]
        missing += [
            f"{CNI_BIN_DIR}/{p}"
            for p in ("bridge", "host-local", "loopback", "portmap")
            if not (CNI_BIN_DIR / p).exists()
        ]
        return missing

    def _kubernetes_staging_replaces(self) -> dict[str, str]:
        # k8s.io/kubernetes replaces its staging modules with ./staging/...; a wrapper module must pin them.
        go = self._require_tool("go", "install Go 1.24 or newer")
        info = json.loads(
            self._run(
                [go, "mod", "download", "-json", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"],
                env=self.go_env,
                what="downloading k8s.io/kubernetes",
            )
        )
        replaces = {}
        for line in Path(info["GoMod"]).read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "=>" and parts[2].startswith("./staging/"):
                replaces[parts[0]] = f"{parts[0]}@{KUBERNETES_STAGING_VERSION}"
        return replaces

    def helm(self) -> Path:
        """helm, for linting, rendering and installing the chart in charts/ioc-platform."""
        built = self._go_build(
            f"helm-{HELM_VERSION}",
            f"helm.sh/helm/v3@{HELM_VERSION}",
            {"helm": "helm.sh/helm/v3/cmd/helm"},
            ldflags=self._helm_ldflags,
        )
        return built["helm"]

    def _helm_ldflags(self, work: Path) -> str:
        # As helm's own Makefile sets them: its version, and the Kubernetes version `helm template` and
        # `helm lint` assume without a cluster (client-go v0.X.Y means Kubernetes 1.X); left unset, that
        # is v1.20 and a chart's kubeVersion constraint fails.
        go = self._require_tool("go", "install Go 1.24 or newer")
        client_go = self._run(
            [go, "list", "-m", "-f", "{{.Version}}", "k8s.io/client-go"],
            cwd=work,
            env=self.go_env,
            what="helm: the version of k8s.io/client-go",
        ).strip()
        major, minor = client_go.removeprefix("v").split(".")[:2]
        kube_major = str(int(major) + 1)
        flags = [
            "-s -w",
            f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
            "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
        ]
        for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
            flags += [f"-X {package}.k8sVersionMajor={kube_major}", f"-X {package}.k8sVersionMinor={minor}"]
        return " ".join(flags)

    # --- everything -------------------------------------------------------------------------------------

    def java(self) -> Path:
        return Path(self._require_tool("java", "install a JDK 17 (`apt-get install openjdk-17-jre-headless`)"))

    def all(self) -> Toolchain:
        broker, ctrl, plugin = self.mosquitto()
        clickhouse = self.clickhouse()
        libs = self.kafka()
        etcd = self.etcd()
        apiserver, kubectl = self.kubernetes()
        helm = self.helm()
        zookeeper = self.zookeeper()
        return Toolchain(broker, ctrl, plugin, clickhouse, libs, self.java(), etcd, apiserver, kubectl, helm, zookeeper)


_KAFKA_POM: Final = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by iocctl.localstack.install: resolves Apache Kafka's broker jars for the local stack. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ioc</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{KAFKA_SCALA}</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <!-- Kafka's core declares log4j compile-only: bring the binding it logs through. -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>1.2.25</version>
    </dependency>
  </dependencies>
</project>
"""

_ZOOKEEPER_POM: Final = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by iocctl.localstack.install: resolves Apache ZooKeeper's server jars for the local stack. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ioc</groupId>
  <artifactId>zookeeper-runtime</artifactId>
  <version>{ZOOKEEPER_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.zookeeper</groupId>
      <artifactId>zookeeper</artifactId>
      <version>{ZOOKEEPER_VERSION}</version>
    </dependency>
    <!-- The server needs these at run time but declares them provided or optional (metrics, snapshot
         compression); slf4j-simple is the log binding (ZooKeeper's logback is optional too). -->
    <dependency>
      <groupId>io.dropwizard.metrics</groupId>
      <artifactId>metrics-core</artifactId>
      <version>4.1.12.1</version>
    </dependency>
    <dependency>
      <groupId>org.xerial.snappy</groupId>
      <artifactId>snappy-java</artifactId>
      <version>1.1.10.5</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>2.0.13</version>
    </dependency>
  </dependencies>
</project>
"""
