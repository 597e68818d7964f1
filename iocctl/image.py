"""The platform image without Docker: the repository's Dockerfile built with buildah, cached by content hash.

On these machines there is no Docker and no registry, only Debian's packages. So:

1. The base image (the Dockerfile's `PYTHON_IMAGE`) is a Debian bookworm root filesystem made with
   `debootstrap` from the machine's Debian mirror, with python3 (3.11, like python:3.11-slim-bookworm),
   venv and pip, and the CA certificates this machine trusts (a TLS-intercepting proxy's CA, if any, so
   pip inside the build reaches PyPI). It is imported into buildah's storage as `localhost/ioc-python`.
2. `buildah bud --isolation chroot --network host` builds the Dockerfile unchanged (the same file
   `docker build` uses) with that base, and the result is saved as a docker-archive tar under
   ~/.cache/ioc/images/, named by a hash of the Dockerfile, .dockerignore, every file its COPY lines
   take and the base image's recipe: an unchanged tree is never built twice.
3. A node imports the archive into containerd (`iocctl.localstack.node.Node.load_image`).

`pause_image` builds the pod sandbox image containerd needs (a static Go program from scratch).
Run `python -m iocctl.image` to build (and print) the image.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from iocctl.localstack.install import Installer, MissingPrerequisite
from iocctl.localstack.stack import default_cache_dir

__all__ = [
    "CHART_IMAGE",
    "PAUSE_IMAGE",
    "Image",
    "base_image",
    "build",
    "content_key",
    "pause_image",
]

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
# The name the chart runs (values.yaml image.repository, tag = appVersion): a node loads the image under it too.
CHART_IMAGE: Final = "ghcr.io/ioc-platform/ioc"
# containerd's sandbox image as iocctl.localstack.node configures it.
PAUSE_IMAGE: Final = "registry.k8s.io/pause:3.10"
LOCAL_IMAGE: Final = "localhost/ioc-platform"
BASE_SUITE: Final = "bookworm"
BASE_PACKAGES: Final = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
# Bump to rebuild every base image (the recipe below changed).
_BASE_RECIPE_VERSION: Final = 1
_KEEP_ARCHIVES: Final = 2
_IGNORED_PARTS: Final = ("__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache")
_PEM: Final = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_PAUSE_SOURCE: Final = """// pause: holds a pod sandbox's namespaces, exits on SIGINT/SIGTERM, reaps orphans.
package main

import (
\t"os"
\t"os/signal"
\t"syscall"
)

func main() {
\tsigs := make(chan os.Signal, 8)
\tsignal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
\tfor s := range sigs {
\t\tif s == syscall.SIGCHLD {
\t\t\tfor {
\t\t\t\tvar ws syscall.WaitStatus
\t\t\t\tpid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
\t\t\t\tif pid <= 0 || err != nil {
\t\t\t\t\tbreak
\t\t\t\t}
\t\t\t}
\t\t\tcontinue
\t\t}
\t\tos.Exit(0)
\t}
}
"""


@dataclasses.dataclass(frozen=True)
class Image:
    """A built image: its local tag, the chart's name for it, and the docker-archive a node imports."""

    tag: str
    chart_tag: str
    archive: Path
    key: str
    built_in_s: float | None  # None when it came from the cache


def _say(message: str) -> None:
    print(f"[ioc image] {message}", file=sys.stderr, flush=True)


def _run(argv: list[str], *, what: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise MissingPrerequisite(f"{what}: `{argv[0]}` is not installed") from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise MissingPrerequisite(f"{what} failed (`{' '.join(argv[:4])} ...` exited {done.returncode}):\n{tail}")
    return done.stdout


def _image_exists(name: str) -> bool:
    return (
        subprocess.run(["buildah", "inspect", "--type", "image", name], capture_output=True, check=False).returncode
        == 0
    )


# --- the content key ---------------------------------------------------------------------------------------


def _dockerignore(context: Path) -> list[tuple[bool, str]]:
    """The .dockerignore patterns in order, as (negated, pattern)."""
    try:
        lines = (context / ".dockerignore").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    patterns = []
    for raw in lines:
        line = raw.strip()
        if line and not line.startswith("#"):
            patterns.append((line.startswith("!"), line.lstrip("!").rstrip("/")))
    return patterns


def _ignored(relative: str, patterns: list[tuple[bool, str]]) -> bool:
    if any(part in _IGNORED_PARTS for part in relative.split("/")) or relative.endswith(".pyc"):
        return True
    ignored = False
    for negated, pattern in patterns:
        bare = pattern.removeprefix("**/")
        matches = (
            fnmatch.fnmatch(relative, pattern)
            or relative.startswith(pattern + "/")
            or any(fnmatch.fnmatch(part, bare) for part in relative.split("/"))
        )
        if matches:
            ignored = not negated
    return ignored


def _copied_sources(dockerfile: str) -> list[str]:
    """The context paths the Dockerfile's COPY/ADD instructions take (not those copied from another stage)."""
    sources: list[str] = []
    for line in dockerfile.replace("\\\n", " ").splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        arguments = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources.extend(arguments[:-1])
    return sources


def content_key(context: Path = REPO_ROOT, dockerfile: str = "Dockerfile", *, base: str = "") -> str:
    """A hash of everything the build reads: the Dockerfile, .dockerignore, the files COPY takes, the base."""
    digest = hashlib.sha256()
    text = (context / dockerfile).read_text(encoding="utf-8")
    digest.update(text.encode())
    digest.update(base.encode())
    if (context / ".dockerignore").exists():
        digest.update((context / ".dockerignore").read_bytes())
    patterns = _dockerignore(context)
    files: set[Path] = set()
    for source in _copied_sources(text):
        path = context / source
        if path.is_dir():
            files.update(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files.add(path)
    for path in sorted(files):
        relative = path.relative_to(context).as_posix()
        if _ignored(relative, patterns):
            continue
        digest.update(relative.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# --- the base image ----------------------------------------------------------------------------------------


def _debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 or one-line sources), else deb.debian.org."""
    candidates = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
    candidates += sorted(Path("/etc/apt/sources.list.d").glob("*"))
    for source in candidates:
        try:
            text = source.read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        if BASE_SUITE not in text or "security" in source.name:
            continue
        for match in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.MULTILINE):
            uri = match.group(1)
            if "debian" in uri and "security" not in uri:
                return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def _host_extra_cas(rootfs: Path) -> list[str]:
    """The CA certificates this machine trusts that a fresh Debian root filesystem does not."""
    host_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if not host_bundle.exists():
        return []
    host = set(_PEM.findall(host_bundle.read_text(encoding="utf-8", errors="replace")))
    theirs_file = rootfs / "etc/ssl/certs/ca-certificates.crt"
    theirs = (
        set(_PEM.findall(theirs_file.read_text(encoding="utf-8", errors="replace"))) if theirs_file.exists() else set()
    )
    return sorted(host - theirs)


def base_image(cache_dir: Path | None = None) -> str:
    """The Dockerfile's PYTHON_IMAGE: Debian bookworm + python3 made with debootstrap, in buildah's storage."""
    cache_dir = cache_dir or default_cache_dir()
    mirror = _debian_mirror()
    recipe = json.dumps([_BASE_RECIPE_VERSION, BASE_SUITE, BASE_PACKAGES, mirror])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    tag = f"localhost/ioc-python:3.11-{BASE_SUITE}-{key}"
    installer = Installer(cache_dir)
    installer.node_packages()
    with installer._lock(f"image-base-{key}"):
        if _image_exists(tag):
            return tag
        rootfs = cache_dir / "image" / f"base-{key}" / "rootfs"
        done = rootfs.parent / ".complete"
        if not done.exists():
            shutil.rmtree(rootfs, ignore_errors=True)
            rootfs.parent.mkdir(parents=True, exist_ok=True)
            _say(f"debootstrap {BASE_SUITE} + python3 from {mirror} (about 2 min) ...")
            started = time.monotonic()
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    BASE_SUITE,
                    str(rootfs),
                    mirror,
                ],
                what="debootstrap",
            )
            extra = _host_extra_cas(rootfs)
            if extra:
                target = rootfs / "usr/local/share/ca-certificates"
                target.mkdir(parents=True, exist_ok=True)
                for index, cert in enumerate(extra):
                    (target / f"build-host-{index}.crt").write_text(cert + "\n", encoding="utf-8")
                _run(["chroot", str(rootfs), "update-ca-certificates"], what="update-ca-certificates in the base")
            for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for item in (rootfs / cache).glob("*"):
                    if item.is_file():
                        item.unlink()
            done.write_text(json.dumps({"seconds": round(time.monotonic() - started, 1), "extra_cas": len(extra)}))
        container = _run(["buildah", "from", "scratch"], what="buildah from scratch").strip()
        try:
            mount = _run(["buildah", "mount", container], what="buildah mount").strip()
            _run(["cp", "-a", f"{rootfs}/.", mount], what="copying the base root filesystem")
            _run(["buildah", "umount", container], what="buildah umount")
            _run(
                [
                    "buildah",
                    "config",
                    "--env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--env",
                    "LANG=C.UTF-8",
                    "--cmd",
                    "python3",
                    container,
                ],
                what="buildah config",
            )
            _run(["buildah", "commit", "-q", container, tag], what="buildah commit of the base")
        finally:
            subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
        return tag


# --- the platform image ------------------------------------------------------------------------------------


def _project_version(context: Path) -> str:
    match = re.search(r'^version\s*=\s*"([^"]+)"', (context / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    return match.group(1) if match else "0.0.0"


def build(context: Path = REPO_ROOT, cache_dir: Path | None = None) -> Image:
    """The platform image of `context`'s Dockerfile as a docker-archive, built only if its content changed."""
    cache_dir = cache_dir or default_cache_dir()
    base = base_image(cache_dir)
    key = content_key(context, base=base)
    version = _project_version(context)
    tag = f"{LOCAL_IMAGE}:{version}-{key[:12]}"
    chart_tag = f"{CHART_IMAGE}:{version}"
    images = cache_dir / "images"
    archive = images / f"ioc-platform-{key[:16]}.tar"
    if archive.exists():
        return Image(tag, chart_tag, archive, key, None)
    installer = Installer(cache_dir)
    with installer._lock(f"image-{key[:16]}"):
        if archive.exists():
            return Image(tag, chart_tag, archive, key, None)
        images.mkdir(parents=True, exist_ok=True)
        _say(f"building {tag} with buildah (a few minutes the first time) ...")
        started = time.monotonic()
        _run(
            [
                "buildah",
                "bud",
                "--isolation",
                "chroot",
                "--network",
                "host",
                "--layers",
                "--build-arg",
                f"PYTHON_IMAGE={base}",
                "--build-arg",  # the runtime stage's layer is reused only for the same sources (see Dockerfile)
                f"SOURCE_KEY={key}",
                "-t",
                tag,
                "-f",
                str(context / "Dockerfile"),
                str(context),
            ],
            what="buildah bud",
        )
        tmp = archive.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        _run(["buildah", "push", "-q", tag, f"docker-archive:{tmp}:{tag}"], what="buildah push to a docker-archive")
        tmp.rename(archive)
        seconds = round(time.monotonic() - started, 1)
        _say(f"built {tag} in {seconds} s -> {archive}")
        _prune(images, keep=archive)
        return Image(tag, chart_tag, archive, key, seconds)


def _prune(images: Path, *, keep: Path) -> None:
    """Keep the newest archives only (each is about 1 GB), and buildah's tags of the images they hold."""
    archives = sorted(images.glob("ioc-platform-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    kept = [keep, *[a for a in archives if a != keep][: _KEEP_ARCHIVES - 1]]
    for old in archives:
        if old not in kept:
            old.unlink(missing_ok=True)
    kept_keys = {a.stem.removeprefix("ioc-platform-")[:12] for a in kept}
    listed = subprocess.run(
        ["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"], capture_output=True, text=True, check=False
    ).stdout.split()
    for name in listed:
        if name.startswith(f"{LOCAL_IMAGE}:") and name.rsplit("-", 1)[-1] not in kept_keys:
            subprocess.run(["buildah", "rmi", name], capture_output=True, check=False)


def pause_image(cache_dir: Path | None = None) -> Path:
    """The pod sandbox image (PAUSE_IMAGE) as a docker-archive: a static Go `pause` on an empty filesystem."""
    cache_dir = cache_dir or default_cache_dir()
    installer = Installer(cache_dir)
    archive = cache_dir / "images" / "pause-3.10.tar"
    if archive.exists():
        return archive
    with installer._lock("image-pause"):
        if archive.exists():
            return archive
        go = shutil.which("go")
        if go is None:
            raise MissingPrerequisite("`go` is not on PATH; install Go 1.24 or newer")
        work = cache_dir / "build" / "pause"
        work.mkdir(parents=True, exist_ok=True)
        (work / "main.go").write_text(_PAUSE_SOURCE, encoding="utf-8")
        (work / "go.mod").write_text("module ioc.local/build/pause\n\ngo 1.22\n", encoding="utf-8")
        env = {**installer.go_env, "CGO_ENABLED": "0"}
        _run(
            [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", "pause", "."],
            cwd=work,
            env=env,
            what="go build pause",
        )
        container = _run(["buildah", "from", "scratch"], what="buildah from scratch").strip()
        try:
            _run(["buildah", "copy", container, str(work / "pause"), "/pause"], what="buildah copy pause")
            _run(
                ["buildah", "config", "--entrypoint", '["/pause"]', "--user", "65535:65535", container],
                what="buildah config pause",
            )
            _run(["buildah", "commit", "-q", container, PAUSE_IMAGE], what="buildah commit pause")
        finally:
            subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
        archive.parent.mkdir(parents=True, exist_ok=True)
        tmp = archive.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        _run(["buildah", "push", "-q", PAUSE_IMAGE, f"docker-archive:{tmp}:{PAUSE_IMAGE}"], what="buildah push pause")
        tmp.rename(archive)
        return archive


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("building the image needs root (buildah, debootstrap, chroot)")
    image = build()
    print(json.dumps(dataclasses.asdict(image), default=str, indent=2))


if __name__ == "__main__":
    main()
