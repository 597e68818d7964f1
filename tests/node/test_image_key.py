"""The image cache key: what the Dockerfile reads changes it, what it does not read leaves it alone."""

from __future__ import annotations

from pathlib import Path

from iocctl.image import REPO_ROOT, _copied_sources, content_key

DOCKERFILE = """ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS build
COPY pyproject.toml README.md ./
COPY pkg pkg
RUN pip wheel --wheel-dir /wheels .
FROM ${PYTHON_IMAGE}
COPY --from=build /wheels /wheels
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \\
    pip install /wheels/*
"""


def _context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    (tmp_path / ".dockerignore").write_text("*\n!pyproject.toml\n!README.md\n!pkg/\n**/__pycache__\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("x\n", encoding="utf-8")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("", encoding="utf-8")
    return tmp_path


def test_copied_sources_are_the_context_paths_not_other_stages() -> None:
    assert _copied_sources(DOCKERFILE) == ["pyproject.toml", "README.md", "pkg"]


def test_the_key_follows_what_the_build_reads(tmp_path: Path) -> None:
    context = _context(tmp_path)
    first = content_key(context, base="base:1")
    assert content_key(context, base="base:1") == first

    (context / "tests" / "test_x.py").write_text("changed = True\n", encoding="utf-8")  # not copied
    (context / "pkg" / "__pycache__").mkdir()
    (context / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")  # ignored
    assert content_key(context, base="base:1") == first

    assert content_key(context, base="base:2") != first  # another base image
    (context / "pkg" / "module.py").write_text("x = 1\n", encoding="utf-8")
    second = content_key(context, base="base:1")
    assert second != first
    (context / "Dockerfile").write_text(DOCKERFILE + "USER 10001\n", encoding="utf-8")
    assert content_key(context, base="base:1") not in (first, second)


def test_the_repository_dockerfile_copies_the_packages() -> None:
    sources = _copied_sources((REPO_ROOT / "Dockerfile").read_text(encoding="utf-8"))
    assert {"pyproject.toml", "iocctl", "ioc", "sensors", "streams", "operators", "dashboards"} <= set(sources)
