"""The whole province as code: IOCSite manifests for every unit of a units tree, ready for `kubectl apply -f`.

The 2024 edition renders Bình Dương's 101 sites (1 province, 9 districts, 91 communes); the 2025
edition renders the two-tier layout (Hồ Chí Minh City and the communes that absorbed Bình Dương's).
Parents come before their children, each site's tier comes from the reference model's tier for its
unit's level, and names are readable and unique: `<ascii name>-<code>`, plus `-2025` for that edition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import yaml

from ioc import units
from ioc.reference import ReferenceModel, default_reference_model
from operators.models import API_VERSION

__all__ = ["province_sites", "render", "site_name"]

_LEVEL_ORDER: Final = {units.Level.PROVINCE: 0, units.Level.DISTRICT: 1, units.Level.COMMUNE: 2}


def site_name(unit: units.Unit, edition: str) -> str:
    """A DNS-label name for the unit's site: "di-an-724", "thu-dau-mot-25747-2025"."""
    slug = re.sub(r"[^a-z0-9]+", "-", units.ascii_fold(unit.name_ascii)).strip("-")
    suffix = f"-{unit.code}" + ("" if edition == "2024" else f"-{edition}")
    return f"{slug[: 40 - len(suffix)].rstrip('-')}{suffix}"


def province_sites(
    edition: units.Edition = "2024",
    namespace: str = "ioc-sites",
    model: ReferenceModel | None = None,
    overlays: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One IOCSite per unit of the edition's tree, parents first; `overlays` adds spec fields by unit code (the
    demo's rosters and notification rules)."""
    model = model or default_reference_model()
    tree = units.load_tree(edition)
    ordered = sorted(tree, key=lambda u: (_LEVEL_ORDER[u.level], u.code))
    sites = []
    for unit in ordered:
        spec: dict[str, Any] = {"unit": unit.code, "edition": edition, "tier": model.tier_for_level(unit.level).name}
        if unit.parent is not None:
            parent = tree.get(unit.parent)
            spec["parentRef"] = {"name": site_name(parent, edition), "tier": model.tier_for_level(parent.level).name}
        spec.update((overlays or {}).get(unit.code, {}))
        sites.append(
            {
                "apiVersion": API_VERSION,
                "kind": "IOCSite",
                "metadata": {
                    "name": site_name(unit, edition),
                    "namespace": namespace,
                    "labels": {
                        "app.kubernetes.io/part-of": "ioc-platform",
                        "ioc.platform/edition": edition,
                        "ioc.platform/level": unit.level.value,
                    },
                    "annotations": {"ioc.platform/unit-name": unit.full_name},
                },
                "spec": spec,
            }
        )
    return sites


def render(
    edition: units.Edition = "2024",
    namespace: str = "ioc-sites",
    *,
    with_namespace: bool = True,
    overlays: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """Multi-document YAML: the Namespace (unless asked not to) and every site."""
    documents: list[dict[str, Any]] = []
    if with_namespace:
        documents.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {"app.kubernetes.io/part-of": "ioc-platform"}},
            }
        )
    sites = province_sites(edition, namespace, overlays=overlays)
    documents += sites
    header = (
        f"# IOC sites for the {edition} units tree: {len(sites)} IOCSites in namespace {namespace}.\n"
        "# Rendered by `ioc sites render`; apply with `kubectl apply -f`. Units data: ioc/data/SOURCES.md.\n"
    )
    return header + yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True, width=4096)
