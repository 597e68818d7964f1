"""The one strict YAML loader: a mapping at the root, no duplicate keys, errors that name the file.

The reference model, the working calendar, the Decision 766 scheme and the dashboards' words are all
read through `load_yaml`; PyYAML's `safe_load` alone would keep the last of two equal keys silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
import yaml.constructor
import yaml.nodes
import yaml.resolver

__all__ = ["YamlFileError", "load_yaml"]


class YamlFileError(ValueError):
    """A YAML file that cannot be used: `source` names it, the message says why."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""


def _mapping(loader: _StrictLoader, node: yaml.nodes.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            continue  # an unhashable key; construct_mapping below refuses it with its own message
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, f"found the key {key!r} twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(source: str | Path, what: str | None = None) -> dict[str, Any]:
    """The mapping in a YAML file (a `Path`) or text (a `str`), named `what` (default: the path) in errors.

    Raises `YamlFileError` for text that is not YAML, a key given twice, or a root that is not a mapping.
    """
    if isinstance(source, Path):
        name = what or str(source)
        text = source.read_text(encoding="utf-8")
    else:
        name = what or "(text)"
        text = source
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise YamlFileError(name, f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise YamlFileError(name, f"the root must be a mapping, not {type(data).__name__}")
    return data
