"""The vendor SDK as its own small distribution: the modules `sensors.sdk` imports, and only their dependencies.

A vendor publishes with `pip install ioc-sensor-sdk-….whl`, never the platform (Faust, Kafka, ClickHouse,
Kopf, Streamlit). The wheel is built from this repository's own source, so the SDK and the platform share
one definition of every contract: the first-party modules are found by following `sensors.sdk`'s imports
(nothing is listed by hand, so nothing drifts), and each third-party import becomes a requirement with the
range the platform itself declares in pyproject.toml.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

__all__ = ["DISTRIBUTION", "ROOT_PACKAGE", "SdkBuildError", "SdkContents", "build_wheel", "contents"]

DISTRIBUTION: Final = "ioc-sensor-sdk"
ROOT_PACKAGE: Final = "sensors.sdk"
# The packages whose modules are this repository's own; every other import is a dependency.
_FIRST_PARTY: Final = frozenset({"ioc", "sensors"})
_PLATFORM: Final = "ioc-platform"


class SdkBuildError(RuntimeError):
    """The SDK's wheel could not be built; the message says which step failed and how."""


@dataclasses.dataclass(frozen=True)
class SdkContents:
    """What goes into the wheel: first-party module files and the requirements of their third-party imports."""

    modules: tuple[str, ...]
    requirements: tuple[str, ...]


def _module_file(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin) if spec is not None and spec.origin not in (None, "built-in", "frozen") else None


def _is_first_party(name: str) -> bool:
    return name.split(".", maxsplit=1)[0] in _FIRST_PARTY


def _imports(name: str, path: Path) -> set[str]:
    """The absolute module names `path` imports (a `from pkg import mod` counts as pkg.mod when mod is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            package = importlib.util.find_spec(node.module) if _is_first_party(node.module) else None
            if package is not None and package.submodule_search_locations is not None:
                found.update(
                    f"{node.module}.{alias.name}"
                    for alias in node.names
                    if _module_file(f"{node.module}.{alias.name}") is not None
                )
    return found


def _requirement_ranges() -> dict[str, str]:
    """The platform's declared requirements by normalised distribution name ("paho-mqtt" → "paho-mqtt>=2.1")."""
    ranges: dict[str, str] = {}
    for requirement in importlib.metadata.requires(_PLATFORM) or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
        ranges[_normalise(name)] = requirement.split(";")[0].strip()
    return ranges


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def contents() -> SdkContents:
    """Follow `sensors.sdk`'s imports through the repository; name the third-party distributions they need."""
    sdk_init = _module_file(ROOT_PACKAGE)
    if sdk_init is None:
        raise SdkBuildError(f"{ROOT_PACKAGE} is not importable: run from the repository's virtualenv")
    submodules = [f"{ROOT_PACKAGE}.{p.stem}" for p in sdk_init.parent.glob("*.py") if p.stem != "__init__"]
    pending = [ROOT_PACKAGE, *submodules]
    modules: set[str] = set()
    third_party: set[str] = set()
    while pending:
        name = pending.pop()
        if name in modules:
            continue
        path = _module_file(name)
        if path is None:
            raise SdkBuildError(f"the SDK imports {name}, which is not a module of this repository")
        modules.add(name)
        # Every enclosing package's __init__ runs on import, so it ships too.
        parts = name.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        for imported in _imports(name, path):
            if _is_first_party(imported):
                pending.append(imported)
            elif imported.split(".", maxsplit=1)[0] not in sys.stdlib_module_names and imported != "__future__":
                third_party.add(imported.split(".", maxsplit=1)[0])
    return SdkContents(tuple(sorted(modules)), _requirements(third_party))


def _requirements(top_level: set[str]) -> tuple[str, ...]:
    owners = importlib.metadata.packages_distributions()
    ranges = _requirement_ranges()
    requirements: set[str] = set()
    for name in top_level:
        for distribution in owners.get(name, []):
            key = _normalise(distribution)
            if key not in ranges:
                raise SdkBuildError(
                    f"the SDK imports {name} (distribution {distribution}), which {_PLATFORM} does not declare: "
                    "add it to pyproject.toml's dependencies first"
                )
            requirements.add(ranges[key])
    return tuple(sorted(requirements))


def _pyproject(version: str, requirements: tuple[str, ...]) -> str:
    dependencies = "".join(f'    "{requirement}",\n' for requirement in requirements)
    return (
        '[build-system]\nrequires = ["setuptools>=69"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{DISTRIBUTION}"\nversion = "{version}"\n'
        'description = "Publish readings and camera events to an IOC Platform over MQTT, with issued credentials."\n'
        'readme = "README.md"\nlicense = { text = "Apache-2.0" }\nrequires-python = ">=3.11"\n'
        f"dependencies = [\n{dependencies}]\n\n"
        '[tool.setuptools.packages.find]\ninclude = ["ioc*", "sensors*"]\n\n'
        '[tool.setuptools.package-data]\n"*" = ["py.typed"]\n'
    )


def build_wheel(out_dir: Path, *, uv: Path) -> Path:
    """Stage the SDK's modules with a generated pyproject.toml and README, build the wheel with `uv build`."""
    sdk = contents()
    version = importlib.metadata.version(_PLATFORM)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ioc-sdk-") as staging_name:
        staging = Path(staging_name)
        for name in sdk.modules:
            source = _module_file(name)
            assert source is not None
            target = staging.joinpath(*name.split("."))
            target = target / "__init__.py" if source.name == "__init__.py" else target.with_suffix(".py")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            typed = source.parent / "py.typed"
            if typed.exists():
                shutil.copyfile(typed, target.parent / "py.typed")
        readme = _module_file(ROOT_PACKAGE)
        assert readme is not None
        shutil.copyfile(readme.parent / "README.md", staging / "README.md")
        (staging / "pyproject.toml").write_text(_pyproject(version, sdk.requirements), encoding="utf-8")
        before = set(out_dir.glob("*.whl"))
        result = subprocess.run(
            [str(uv), "build", "--wheel", "--out-dir", str(out_dir), str(staging)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SdkBuildError(f"`uv build` failed building {DISTRIBUTION}:\n{result.stderr.strip()[-2000:]}")
    wheel = out_dir / f"{DISTRIBUTION.replace('-', '_')}-{version}-py3-none-any.whl"
    if not wheel.exists():
        made = sorted(set(out_dir.glob("*.whl")) - before)
        raise SdkBuildError(f"`uv build` succeeded but {wheel.name} is not in {out_dir} (made: {made})")
    return wheel
