"""Who may do what where: `role@unit` grants, and the one verdict on an incident command. Pure.

The dashboard asks it before sending a command and the stream worker asks it again where the command is
carried out, so a forged or stale command is judged by the same rules as one sent from the page.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable
from typing import Final, Protocol

from ioc.events import IncidentAction
from ioc.fields import UNIT_CODE_BODY

__all__ = [
    "CommandRefusal",
    "CommandVerdict",
    "Grant",
    "Hierarchy",
    "Role",
    "authorise_command",
    "format_grants",
    "operator_units",
    "parse_grants",
]


class Hierarchy(Protocol):
    """Which codes are units and which lie within which: a `UnitTree`, or a deployment edition's view of the
    units (`ioc.editions.hierarchy`: on a 2025 deployment, 2025 units over the 2024 places rows carry)."""

    def __contains__(self, code: object, /) -> bool: ...

    def is_within(self, code: str, ancestor: str) -> bool: ...


_GRANT: Final = re.compile(rf"^(?P<role>[a-z]+)[@:](?P<unit>{UNIT_CODE_BODY})$")
MAX_GRANTS: Final = 64
"""Most grants read from one claim or command: a person holds a handful; more is an attempt to inflate work."""


class Role(enum.StrEnum):
    """`viewer` reads (personal data masked); `operator` also acts on incidents and may reveal, audited."""

    VIEWER = "viewer"
    OPERATOR = "operator"

    @property
    def rank(self) -> int:
        return 2 if self is Role.OPERATOR else 1


_ROLES: Final = frozenset(r.value for r in Role)


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    """A role on a unit and everything under it."""

    role: Role
    unit: str

    def __str__(self) -> str:
        return f"{self.role.value}@{self.unit}"


def parse_grants(value: object) -> tuple[Grant, ...]:
    """Grants from a claim value: a list of `role@unit` strings, or one string of them separated by spaces
    or commas. Entries that are not grants (unknown roles, malformed codes) are ignored, never widened."""
    if isinstance(value, str):
        items: list[object] = [part for part in re.split(r"[\s,]+", value) if part]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return ()
    grants: list[Grant] = []
    for item in items[:MAX_GRANTS]:
        match = _GRANT.match(item.strip()) if isinstance(item, str) else None
        if match is None or match["role"] not in _ROLES:
            continue
        grants.append(Grant(Role(match["role"]), match["unit"]))
    return tuple(grants)


def format_grants(grants: Iterable[Grant]) -> tuple[str, ...]:
    """Grants as the `role@unit` strings an `IncidentCommand` carries, sorted."""
    return tuple(sorted(str(g) for g in grants))


class CommandRefusal(enum.StrEnum):
    """Why an incident command was not carried out: the stable code on the refusal record and the label key."""

    UNKNOWN_SITE = "unknown-site"
    """The command names a site unit the worker's tree does not know."""
    OUTSIDE_SITE = "outside-site"
    """The incident's place and responsible unit both lie outside the commanding site."""
    NOT_OPERATOR = "not-operator"
    """The actor holds no operator grant (within the site) covering the incident."""
    TARGET_OUTSIDE_SCOPE = "target-outside-scope"
    """A dispatch target the actor may not act on (outside their operator grants, or outside the site)."""
    STALE = "stale"
    """The incident is not the current one of its episode (closed and reopened as another, or unknown)."""
    WRONG_STATE = "wrong-state"
    """The action does not apply to the incident's state."""
    NOTE_REQUIRED = "note-required"
    """Resolving needs a note saying what was done."""
    ASSIGNEE_REQUIRED = "assignee-required"
    """An assignment naming nobody."""


@dataclasses.dataclass(frozen=True, slots=True)
class CommandVerdict:
    """Accepted, or refused with a code and a sentence naming what was refused."""

    reason: CommandRefusal | None = None
    detail: str = ""

    @property
    def allowed(self) -> bool:
        return self.reason is None


ALLOWED: Final = CommandVerdict()


def operator_units(grants: Iterable[Grant], site_unit: str, tree: Hierarchy) -> tuple[str, ...]:
    """The units where the grants make someone an operator, cut to the site (a grant above it counts as it).

    A site can never hand out more than its own subtree: a grant outside the site gives nothing here.
    """
    units: set[str] = set()
    for grant in grants:
        if grant.role is not Role.OPERATOR or grant.unit not in tree:
            continue
        if tree.is_within(site_unit, grant.unit):
            units.add(site_unit)
        elif tree.is_within(grant.unit, site_unit):
            units.add(grant.unit)
    return tuple(sorted(units))


def authorise_command(
    *,
    grants: Iterable[Grant],
    site_unit: str,
    action: IncidentAction,
    incident_unit: str,
    responsible_unit: str | None,
    target_unit: str | None,
    tree: Hierarchy,
) -> CommandVerdict:
    """Whether an actor with `grants`, acting through the site for `site_unit`, may carry out `action`.

    The incident must lie within the site (its place or its responsible unit), the actor must be an
    operator of one of those, and a dispatch target must lie within the actor's operator scope (which is
    inside the site). State rules (which action applies when) are the lifecycle's; this is who and where.
    """
    if site_unit not in tree:
        return CommandVerdict(CommandRefusal.UNKNOWN_SITE, f"site {site_unit} is not a known unit")
    places = [code for code in (incident_unit, responsible_unit) if code and code in tree]
    if not any(tree.is_within(code, site_unit) for code in places):
        return CommandVerdict(
            CommandRefusal.OUTSIDE_SITE, f"the incident ({', '.join(places) or '?'}) is outside site {site_unit}"
        )
    scope = operator_units(grants, site_unit, tree)
    if not any(tree.is_within(code, unit) for code in places for unit in scope):
        return CommandVerdict(
            CommandRefusal.NOT_OPERATOR,
            f"no operator grant covers the incident's units ({', '.join(places)}); operator at: "
            f"{', '.join(scope) or 'nowhere'}",
        )
    if action is IncidentAction.DISPATCH:
        target = target_unit or ""
        if target not in tree or not any(tree.is_within(target, unit) for unit in scope):
            return CommandVerdict(
                CommandRefusal.TARGET_OUTSIDE_SCOPE,
                f"dispatch target {target or '?'} is outside the actor's operator scope ({', '.join(scope)})",
            )
    return ALLOWED
