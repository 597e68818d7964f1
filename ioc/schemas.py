"""JSON Schemas of the event contracts, generated from `ioc.events` for vendors and API clients.

`ioc schema export DIR` writes them; the copies committed under `schemas/` are compared with a fresh
export by a test, so a contract change that forgets to re-export fails the suite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import msgspec

from ioc import events

__all__ = ["EXPORTED", "diff", "export", "json_schema", "render"]

SCHEMA_BASE_URL: Final = "https://ioc-platform.github.io/schemas/"

EXPORTED: Final[tuple[type[Any], ...]] = (
    events.SensorReading,
    events.CameraEvent,
    events.CitizenReport,
    events.ServiceRecord,
    events.Incident,
    events.IncidentCommand,
    events.IngestBatch,
    events.DeadLetter,
)


def _tag(type_: type[Any]) -> str:
    tag: str = type_.__struct_config__.tag
    return tag


def json_schema(type_: type[Any]) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one event type, self-contained."""
    schema: dict[str, Any] = msgspec.json.schema(type_)
    name = type_.__name__
    body = schema["$defs"][name]
    # The decoder accepts a payload without its `schema` tag (and checks it when present): say so.
    body["required"] = [f for f in body["required"] if f != "schema"]
    body["properties"]["schema"] = {
        "const": _tag(type_),
        "description": "Contract name and version; optional, checked when present.",
    }
    doc = (type_.__doc__ or "").strip()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE_URL}{_tag(type_)}.json",
        "title": name,
        "description": doc,
        **{k: v for k, v in body.items() if k not in ("title", "description")},
        "$defs": {k: v for k, v in schema["$defs"].items() if k != name},
    }


def render(type_: type[Any]) -> str:
    return json.dumps(json_schema(type_), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def export(directory: Path) -> list[Path]:
    """Write every contract's schema as `<tag>.json` under `directory`; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for type_ in EXPORTED:
        path = directory / f"{_tag(type_)}.json"
        path.write_text(render(type_), encoding="utf-8")
        written.append(path)
    return written


def diff(directory: Path) -> list[str]:
    """Names of schema files under `directory` that are missing, stale or not from a contract."""
    expected = {f"{_tag(t)}.json": render(t) for t in EXPORTED}
    problems = []
    for name, text in expected.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name}: differs from the contract")
    for path in sorted(directory.glob("*.json")):
        if path.name not in expected:
            problems.append(f"{path.name}: no contract produces it")
    return problems
