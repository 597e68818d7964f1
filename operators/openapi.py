"""Turning a pydantic model's JSON Schema into a Kubernetes structural schema (OpenAPI v3 for a CRD).

Pure and framework-free: `operators.crds` feeds it the models of `operators.models` and
`ioc.reference`. Structural schemas forbid `$ref`, `oneOf` with differing types, `propertyNames`,
`patternProperties`, `uniqueItems` and numeric `exclusiveMinimum`; each is rewritten here into what the
API server accepts, and what cannot be said structurally becomes a CEL rule (`x-kubernetes-validations`)
so the API server still refuses it with a message naming the field. A construct this module does not
know raises `SchemaError` rather than being dropped silently.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["SchemaError", "structural"]

Schema = dict[str, Any]

_KEPT: Final = frozenset(
    {
        "type",
        "description",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "format",
        "default",
    }
)
_DROPPED: Final = frozenset({"title", "discriminator", "$defs"})


class SchemaError(ValueError):
    """A JSON Schema construct with no structural equivalent; the message says where."""


def _cel_string(value: str) -> str:
    # JSON string literals are valid CEL string literals (same escapes), and they quote safely.
    return json.dumps(value)


def _cel_list(values: list[str]) -> str:
    return "[" + ", ".join(_cel_string(v) for v in values) + "]"


def structural(schema: Schema, *, max_items: int | None = None) -> Schema:
    """The structural equivalent of a pydantic JSON Schema (`model_json_schema()`), `$defs` resolved.

    `max_items` bounds every list and map that has no bound of its own: the API server estimates a CEL
    rule's cost from these bounds and refuses a CRD whose rules could cost too much.
    """
    out = _Converter(schema.get("$defs", {})).convert(schema, "(root)")
    if max_items is not None:
        _bound(out, max_items)
    return out


def _bound(node: Schema, max_items: int) -> None:
    if node.get("type") == "array":
        node.setdefault("maxItems", max_items)
    if node.get("type") == "object" and "additionalProperties" in node:
        node.setdefault("maxProperties", max_items)
    for sub in node.get("properties", {}).values():
        _bound(sub, max_items)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _bound(node[key], max_items)


class _Converter:
    def __init__(self, defs: dict[str, Schema]) -> None:
        self._defs = defs

    def _resolve(self, node: Schema, where: str) -> Schema:
        ref = node.get("$ref")
        if ref is None:
            return node
        name = ref.removeprefix("#/$defs/")
        if name not in self._defs:
            raise SchemaError(f"{where}: unresolvable $ref {ref}")
        # Keys beside a $ref (a field's description or default) win over the definition's.
        merged = {**self._resolve(self._defs[name], where), **{k: v for k, v in node.items() if k != "$ref"}}
        return merged

    def convert(self, node: Schema, where: str) -> Schema:  # noqa: PLR0912 - one branch per keyword, as a table
        node = self._resolve(node, where)
        if "anyOf" in node:
            return self._any_of(node, where)
        if "oneOf" in node:
            return self._one_of(node, where)
        out: Schema = {}
        rules: list[Schema] = []
        for key, value in node.items():
            if key in _DROPPED:
                continue
            if key == "const":
                out["enum"] = [value]
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                out[bound] = value
                out[key] = True
            elif key == "properties":
                out["properties"] = {name: self.convert(sub, f"{where}.{name}") for name, sub in value.items()}
            elif key == "items":
                out["items"] = self.convert(value, f"{where}[]")
            elif key == "additionalProperties":
                if isinstance(value, dict):
                    out["additionalProperties"] = self.convert(value, f"{where}.*")
                elif value is True:
                    out["x-kubernetes-preserve-unknown-fields"] = True
                # False is what a structural schema does anyway: unknown fields are pruned.
            elif key == "patternProperties":
                if len(value) != 1:
                    raise SchemaError(f"{where}: only one patternProperties pattern is supported")
                ((pattern, sub),) = value.items()
                out["additionalProperties"] = self.convert(sub, f"{where}.*")
                rules.append(
                    {
                        "rule": f"self.all(k, k.matches({_cel_string(pattern)}))",
                        "message": f"keys must match {pattern}",
                    }
                )
            elif key == "propertyNames":
                rules.append(self._key_rule(self._resolve(value, where), where))
            elif key == "required":
                out["required"] = list(value)
            elif key == "uniqueItems":
                if value:
                    out["x-kubernetes-list-type"] = "set"
            elif key in _KEPT:
                if key == "default" and value is None:
                    continue
                out[key] = value
            else:
                raise SchemaError(f"{where}: unsupported JSON Schema keyword {key!r}")
        if "type" not in out:
            if "enum" in out and all(isinstance(v, str) for v in out["enum"]):
                out["type"] = "string"
            else:
                raise SchemaError(f"{where}: no type (structural schemas need one on every node)")
        if rules:
            out["x-kubernetes-validations"] = rules
        return out

    def _key_rule(self, names: Schema, where: str) -> Schema:
        if "enum" in names:
            allowed = [str(v) for v in names["enum"]]
            return {"rule": f"self.all(k, k in {_cel_list(allowed)})", "message": f"keys must be one of {allowed}"}
        if "pattern" in names:
            pattern = names["pattern"]
            return {"rule": f"self.all(k, k.matches({_cel_string(pattern)}))", "message": f"keys must match {pattern}"}
        raise SchemaError(f"{where}: propertyNames without enum or pattern")

    def _any_of(self, node: Schema, where: str) -> Schema:
        parts = [self._resolve(p, where) for p in node["anyOf"]]
        nullable = any(p.get("type") == "null" for p in parts)
        parts = [p for p in parts if p.get("type") != "null"]
        converted = [self.convert(p, where) for p in parts]
        if len(converted) == 1:
            out = converted[0]
        elif all(c.get("type") == "string" and "enum" in c for c in converted):
            # A union of string enums (a StrEnum or a literal) is one enum of every value.
            out = {"type": "string", "enum": [v for c in converted for v in c["enum"]]}
        else:
            raise SchemaError(f"{where}: anyOf of differing types cannot be structural")
        for key in ("description", "default"):
            if key in node and node[key] is not None:
                out[key] = node[key]
        if nullable:
            out["nullable"] = True
            if "enum" in out:
                # The API server checks null against the enum too: it must be listed.
                out["enum"] = [*out["enum"], None]
        return out

    def _one_of(self, node: Schema, where: str) -> Schema:
        discriminator = node.get("discriminator", {}).get("propertyName")
        if discriminator is None:
            raise SchemaError(f"{where}: oneOf without a discriminator cannot be structural")
        variants = [self.convert(v, where) for v in node["oneOf"]]
        return _merge_variants(variants, discriminator, where)


def _merge_variants(variants: list[Schema], discriminator: str, where: str) -> Schema:
    """One object schema holding every variant's fields, with a CEL rule per variant for its own shape."""
    names: list[str] = []
    for variant in variants:
        for name in variant.get("properties", {}):
            if name not in names:
                names.append(name)
    properties: Schema = {}
    for name in names:
        schemas = [v["properties"][name] for v in variants if name in v.get("properties", {})]
        properties[name] = _merge_property(schemas, f"{where}.{name}")
    tags: list[str] = []
    for variant in variants:
        enum = variant.get("properties", {}).get(discriminator, {}).get("enum")
        if not enum or len(enum) != 1:
            raise SchemaError(f"{where}: a variant has no single {discriminator!r} value")
        tags.append(enum[0])
    properties[discriminator] = {"type": "string", "enum": tags}
    required = [n for n in names if all(n in v.get("required", []) for v in variants)]
    rules = []
    for tag, variant in zip(tags, variants, strict=True):
        own = set(variant.get("properties", {}))
        needs = [n for n in variant.get("required", []) if n not in required]
        foreign = [n for n in names if n not in own]
        checks = [f"has(self.{n})" for n in needs] + [f"!has(self.{n})" for n in foreign]
        if not checks:
            continue
        parts = []
        if needs:
            parts.append(f"needs {', '.join(needs)}")
        if foreign:
            parts.append(f"takes none of {', '.join(foreign)}")
        rules.append(
            {
                "rule": f"self.{discriminator} != {_cel_string(tag)} || ({' && '.join(checks)})",
                "message": f"a {tag} entry {' and '.join(parts)}",
            }
        )
    out: Schema = {"type": "object", "properties": properties, "required": required}
    if rules:
        out["x-kubernetes-validations"] = rules
    return out


def _merge_property(schemas: list[Schema], where: str) -> Schema:
    first = schemas[0]
    if all(s == first for s in schemas):
        return first
    types = {s.get("type") for s in schemas}
    if types <= {"integer", "number"}:
        merged: Schema = {"type": "number" if "number" in types else "integer"}
    elif types == {"string"}:
        merged = {"type": "string"}
        if all("enum" in s for s in schemas):
            merged["enum"] = list(dict.fromkeys(v for s in schemas for v in s["enum"] if v is not None))
    else:
        raise SchemaError(f"{where}: variants disagree on its type ({sorted(str(t) for t in types)})")
    # Constraints and defaults differ per variant: keep only those all variants share (the operator
    # validates each entry against its own variant with the typed model).
    for key in ("description", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"):
        values = [s.get(key) for s in schemas]
        if values[0] is not None and all(v == values[0] for v in values):
            merged[key] = values[0]
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if exclusive in merged and bound not in merged:
            del merged[exclusive]
    if any(s.get("nullable") for s in schemas):
        merged["nullable"] = True
        if "enum" in merged and None not in merged["enum"]:
            merged["enum"].append(None)
    return merged
