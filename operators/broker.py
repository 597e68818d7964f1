"""The operator's side of Mosquitto's dynamic security: a read role per site, a client and ACLs per vendor.

Built on `ioc.clients.dynsec` (which spells vendor ACLs for everyone). A site's role may read the device topics
of its subtree's units; a vendor's client may publish only under its own vendor segment, for the units
(each with its subtree) and kinds its SensorVendor grants. A grant covering a whole tree or every kind
becomes a `+` wildcard rather than hundreds of ACLs. Roles are brought to their wanted ACLs by
difference, so re-running costs one read when nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterable

from ioc import topics, units
from ioc.clients.dynsec import Acl, DynsecAdmin, vendor_acls, vendor_role
from ioc.scope import Scope

__all__ = [
    "delete_role",
    "ensure_role",
    "ensure_vendor",
    "remove_vendor",
    "site_acls",
    "vendor_grants",
]


def site_acls(scope: Scope) -> list[Acl]:
    """Read access to the device topics of every (2024) unit the site sees."""
    tree = units.load_tree("2024")
    covered = sorted(scope.units)
    segments = ["+"] if len(covered) == len(tree) else covered
    acls = []
    for unit in segments:
        pattern = f"{topics.MQTT_PREFIX}/{unit}/#"
        acls += [Acl("subscribePattern", pattern), Acl("publishClientReceive", pattern)]
    return acls


def vendor_grants(granted_units: Iterable[str], kinds: Iterable[str]) -> tuple[list[str], list[str]]:
    """The unit and kind segments a vendor's ACLs list: each granted unit with its subtree, or `+` for all."""
    tree = units.load_tree("2024")
    expanded: set[str] = set()
    for unit in granted_units:
        expanded |= tree.subtree(unit)
    unit_segments = ["+"] if len(expanded) == len(tree) else sorted(expanded)
    kind_list = sorted(set(kinds))
    kind_segments = ["+"] if set(kind_list) == set(topics.MQTT_KINDS) else kind_list
    return unit_segments, kind_segments


def ensure_role(admin: DynsecAdmin, role: str, acls: Iterable[Acl]) -> bool:
    """Bring `role` to exactly `acls`; returns True when anything had to change."""
    wanted = {(a.acltype, a.topic): a for a in acls}
    admin.execute("createRole", rolename=role, ignore=("already exists",))
    current = admin.execute("getRole", rolename=role).get("data", {}).get("role", {}).get("acls", [])
    have = {(a["acltype"], a["topic"]): a for a in current}
    changed = False
    for key, acl in have.items():
        if key not in wanted or bool(acl.get("allow", True)) != wanted[key].allow:
            admin.execute("removeRoleACL", rolename=role, acltype=key[0], topic=key[1], ignore=("not found",))
            changed = True
    for key, acl in wanted.items():
        if key in have and bool(have[key].get("allow", True)) == acl.allow:
            continue
        admin.execute(
            "addRoleACL", rolename=role, acltype=acl.acltype, topic=acl.topic, allow=acl.allow, priority=acl.priority
        )
        changed = True
    return changed


def delete_role(admin: DynsecAdmin, role: str) -> None:
    admin.delete_role(role)


def ensure_vendor(admin: DynsecAdmin, vendor: str, password: str, unit_segments: list[str], kinds: list[str]) -> None:
    """The vendor's role (by difference) and its client with this password and only that role."""
    ensure_role(admin, vendor_role(vendor), vendor_acls(vendor, unit_segments, kinds))
    admin.ensure_client(vendor, password, [vendor_role(vendor)])


def remove_vendor(admin: DynsecAdmin, vendor: str) -> None:
    admin.remove_vendor(vendor)
