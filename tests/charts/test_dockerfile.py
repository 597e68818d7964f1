"""The Dockerfile the chart's image comes from, read as text (Docker does not run on these machines).

Multi-stage with the build tools only in the build stage; the final stage on slim Python 3.11 runs as the
numeric non-root user the chart's podSecurityContext names; the build context holds only the packages.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from tests.charts.conftest import ROOT, values_yaml

BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "cmake", "clang", "cargo", "rustc", "git")


def _stages() -> list[dict[str, Any]]:
    """Each stage: its base, its name and its instructions (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        elif word == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append({"base": base, "name": stage, "instructions": []})
        else:
            stages[-1]["instructions"].append((word, rest))
    return stages


def test_multi_stage_with_a_slim_python_311_final_stage() -> None:
    stages = _stages()
    assert len(stages) >= 2
    final = stages[-1]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", final["base"]), final["base"]
    assert all(s["base"] == final["base"] for s in stages), "every stage on the same Python (paths must match)"


def test_the_build_stage_builds_a_wheel_of_the_project() -> None:
    build = _stages()[0]
    runs = " ".join(rest for word, rest in build["instructions"] if word == "RUN")
    assert "pip wheel" in runs or "python -m build" in runs
    copied = {rest.split()[0] for word, rest in build["instructions"] if word == "COPY"}
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    wanted = {name.rstrip("*") for name in packages["find"]["include"]}
    assert wanted <= copied, f"the image misses packages {wanted - copied}"


def test_the_final_stage_installs_wheels_and_has_no_build_tools() -> None:
    final = _stages()[-1]
    runs = " ".join(rest for word, rest in final["instructions"] if word == "RUN")
    assert "--no-index" in runs and "from=build" in runs, "the final stage installs the build stage's wheels only"
    assert "apt-get install" not in runs
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", runs), f"{tool} in the final stage"
    copies = [rest for word, rest in final["instructions"] if word == "COPY"]
    assert not any(" . " in f" {c} " for c in copies), "the final stage copies no source tree"


def test_the_final_stage_runs_as_the_charts_non_root_user() -> None:
    users = [rest for word, rest in _stages()[-1]["instructions"] if word == "USER"]
    assert users, "no USER in the final stage: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), "a numeric user, so runAsNonRoot can verify it"
    assert int(uid) != 0 and (not gid or int(gid) != 0)
    pod = values_yaml()["podSecurityContext"]
    assert int(uid) == pod["runAsUser"]
    assert not gid or int(gid) == pod["runAsGroup"]


def test_the_build_context_is_only_the_packages() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allowlist: everything is ignored unless named"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "iocctl", "ioc", "sensors", "streams", "operators", "dashboards"}
