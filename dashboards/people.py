"""Whom an operator may assign an incident to: the site's roster, the signed-in person's own, and the teams.

The roster comes from the site's effective configuration (`spec.roster`, the operator's ConfigMap file
`site.json`, `DashboardSettings.site_config`) and from the identity provider: a person whose token
carries roster roles (`ioc.people.roster_from_claims`) is on it too. Pure, but for reading that file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import pydantic

from ioc.people import Person
from ioc.units import UnitTree

__all__ = ["assignee_label", "assignment_options", "load_roster"]

log = logging.getLogger(__name__)


def load_roster(path: Path | None) -> tuple[Person, ...]:
    """The `roster` of a site's configuration file; none when there is no file or it cannot be read (logged)."""
    if path is None:
        return ()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return tuple(Person.model_validate(p) for p in document.get("roster") or [])
    except (OSError, ValueError, AttributeError, pydantic.ValidationError) as exc:
        log.warning(
            "site configuration %s: roster not readable (%s); assignment offers the signed-in person", path, exc
        )
        return ()


def assignment_options(
    roster: Iterable[Person], own: Iterable[Person], tree: UnitTree, places: Sequence[str]
) -> dict[str, str]:
    """Assignee value → label: people serving the incident's places or a unit above them first, then the rest,
    then their teams (`team:<name>`). Everyone once, by e-mail."""
    people: dict[str, Person] = {}
    for person in [*own, *roster]:
        people.setdefault(person.email, person)

    def near(person: Person) -> bool:
        unit = person.unit
        return unit is None or any(code in tree and unit in tree and tree.is_within(code, unit) for code in places)

    ordered = sorted(people.values(), key=lambda p: (not near(p), p.name))
    options = {p.email: _label(p) for p in ordered}
    for team in sorted({p.team for p in ordered if p.team}):
        options[f"team:{team}"] = f"Tổ / Team {team}"
    return options


def _label(person: Person) -> str:
    roles = ", ".join(r.value for r in person.roles)
    return f"{person.name} <{person.email}>" + (f" ({roles})" if roles else "")


def assignee_label(value: str | None, roster: Iterable[Person]) -> str:
    """How the page names an incident's assignee: the roster person's name, a team, or the value as stored."""
    if not value:
        return ""
    if value.startswith("team:"):
        return f"Tổ / Team {value.removeprefix('team:')}"
    person = next((p for p in roster if p.email == value), None)
    return f"{person.name} <{value}>" if person is not None else value
