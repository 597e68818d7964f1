"""The operator's side of Mosquitto's dynamic security: a read role per site, a client and ACLs per vendor.

Built on `ioc.clients.dynsec` (which spells vendor ACLs for everyone). A site's role may read the device topics
of its subtree's units; a vendor's client may publish only under its own vendor segment, for the units
(each with its subtree) and kinds its SensorVendor grants. A grant covering a whole tree or every kind
becomes a `+` wildcard rather than hundreds of ACLs. Roles are brought to their wanted ACLs by
difference, so re-running costs one read when nothing changed.

Vendor and device clients are in the tenants' namespace (`vendor.<id>`, `vendor.<id>.<device>`), and a
client is reset or deleted only when it carries the platform's tenant mark: the operator never touches a
client it did not create (`ForeignClient`, which the vendor's Acl condition reports).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ioc import topics, units
from ioc.clients.dynsec import (
    BRIDGE_ROLE,
    PLATFORM_MARK,
    TENANT_MARK,
    Acl,
    DynsecAdmin,
    ForeignClient,
    bridge_acls,
    device_acls,
    device_username,
    is_tenant,
    vendor_acls,
    vendor_role,
    vendor_username,
)
from ioc.scope import Scope

__all__ = [
    "delete_role",
    "ensure_bridge",
    "ensure_devices",
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


def vendor_grants(
    granted_units: Iterable[str], kinds: Iterable[str], edition: units.Edition = "2024"
) -> tuple[list[str], list[str]]:
    """The unit and kind segments a vendor's ACLs list: each granted unit with its subtree, or `+` for all.

    On a 2025 deployment a granted commune's 2025 successor codes are listed too: its devices publish under the new
    unit's code (the bridge stamps their rows with the 2024 commune again; ioc.editions). Never on a 2024 one: the
    reform reused 2024 codes for new units, so a successor's code is often another 2024 commune's (Đông Hòa 25957
    went into the new 25951, which on the 2024 tree is Bình An), and listing it would let the vendor speak for it.
    """
    tree = units.load_tree("2024")
    expanded: set[str] = set()
    for unit in granted_units:
        expanded |= tree.subtree(unit)
    renamed = {link.new_code for code in expanded for link in units.successors(code)} if edition == "2025" else set()
    unit_segments = ["+"] if len(expanded) == len(tree) else sorted(expanded | renamed)
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


def _ours(admin: DynsecAdmin, username: str) -> bool:
    """Whether `username` is free or a client the platform issued (else: ForeignClient)."""
    existing = admin.get_client(username)
    if existing is not None and existing.get("textdescription") != TENANT_MARK:
        raise ForeignClient(f"MQTT client {username} exists and was not created by the operator: left untouched")
    return existing is not None


def ensure_vendor(admin: DynsecAdmin, vendor: str, password: str, unit_segments: list[str], kinds: list[str]) -> str:
    """The vendor's role (by difference) and its client with this password and only that role; its username."""
    username = vendor_username(vendor)
    _ours(admin, username)  # before the role changes: a foreign client keeps its rights as they are
    ensure_role(admin, vendor_role(vendor), vendor_acls(vendor, unit_segments, kinds))
    admin.ensure_client(username, password, [vendor_role(vendor)], mark=TENANT_MARK)
    return username


def _device_clients(admin: DynsecAdmin, vendor: str) -> list[str]:
    prefix = f"{vendor_username(vendor)}."
    return [c for c in admin.list_clients() if c.startswith(prefix)]


def ensure_devices(
    admin: DynsecAdmin, vendor: str, passwords: Mapping[str, str], unit_segments: list[str], kinds: list[str]
) -> dict[str, str]:
    """One client and role per device (its own topic only); withdraws devices no longer listed. Usernames by device."""
    issued: dict[str, str] = {}
    for device, password in sorted(passwords.items()):
        username = device_username(vendor, device)
        _ours(admin, username)
        ensure_role(admin, username, device_acls(vendor, device, unit_segments, kinds))
        admin.ensure_client(username, password, [username], mark=TENANT_MARK)
        issued[device] = username
    wanted = set(issued.values())
    for username in _device_clients(admin, vendor):
        if username not in wanted:
            admin.delete_client(username, mark=TENANT_MARK)
            admin.delete_role(username)
    return issued


def remove_vendor(admin: DynsecAdmin, vendor: str) -> None:
    """Withdraw the vendor's client, its devices' clients and their roles (only clients the platform issued)."""
    ensure_devices(admin, vendor, {}, [], [])
    admin.remove_vendor(vendor)


def ensure_bridge(admin: DynsecAdmin, username: str, password: str) -> None:
    """The bridge's own login: role ioc-bridge (the device topics' share group, nothing else), never the admin."""
    if is_tenant(username) or username == admin.username:
        raise ForeignClient(f"{username!r} cannot be the bridge's login: it is a tenant's or the admin's")
    ensure_role(admin, BRIDGE_ROLE, bridge_acls())
    admin.ensure_client(username, password, [BRIDGE_ROLE], mark=PLATFORM_MARK)
