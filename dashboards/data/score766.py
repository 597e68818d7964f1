"""Decision 766 scores as the dashboards show them: re-based on the points measured, with coverage, fair ranks.

Pure: `SiteData` feeds it the `score_ranking` and `scorecard` rows (dashboards/data/queries.py); pages show what
it returns. The policy behind the rows is docs/decision-766.md; the rows say which indicators were measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

__all__ = ["MAX_POINTS", "UnitScore", "from_ranking_rows", "merged", "ranking", "scorecard_score"]

MAX_POINTS: Final = 100.0


@dataclasses.dataclass(frozen=True, slots=True)
class UnitScore:
    """One unit's points earned on the indicators measured, the points those indicators are worth, and which."""

    earned: float
    coverage: float
    measured: frozenset[str]
    groups: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @property
    def score(self) -> float | None:
        """Out of 100, re-based on `coverage`; None when nothing was measured (never a score of 0 or 100)."""
        return None if self.coverage <= 0 else self.earned * MAX_POINTS / self.coverage


def scorecard_score(rows: Iterable[Mapping[str, Any]]) -> UnitScore:
    """A unit's score from its `scorecard` rows (one per indicator)."""
    rows = list(rows)
    counted = [r for r in rows if r["measured"]]
    groups: dict[str, float] = {}
    for row in counted:
        groups[row["group_code"]] = groups.get(row["group_code"], 0.0) + float(row["points"])
    return UnitScore(
        earned=sum(float(r["points"]) for r in counted),
        coverage=sum(float(r["max_points"]) for r in counted),
        measured=frozenset(str(r["code"]) for r in counted),
        groups=groups,
    )


def from_ranking_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, UnitScore]:
    """Per unit, from `score_ranking` rows (unit × group: earned `points`, `coverage`, `measured_codes`)."""
    parts: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        parts.setdefault(str(row["unit"]), []).append(row)
    return {
        unit: UnitScore(
            earned=sum(float(r["points"]) for r in found),
            coverage=sum(float(r["coverage"]) for r in found),
            measured=frozenset(code for r in found for code in r["measured_codes"]),
            groups={str(r["group_code"]): float(r["points"]) for r in found},
        )
        for unit, found in parts.items()
    }


def merged(parts: Iterable[UnitScore]) -> UnitScore | None:
    """Several units scored as one (a 2025 unit from the 2024 communes it absorbed): their points pooled.

    Pooled, so the result is the units' scores weighted by coverage; what any of them measured counts as measured,
    so a merged unit ranks only if some part measured every indicator its rivals did.
    """
    parts = list(parts)
    if not parts:
        return None
    groups: dict[str, float] = {}
    for part in parts:
        for code, points in part.groups.items():
            groups[code] = groups.get(code, 0.0) + points
    return UnitScore(
        earned=sum(p.earned for p in parts),
        coverage=sum(p.coverage for p in parts),
        measured=frozenset().union(*(p.measured for p in parts)),
        groups=groups,
    )


def ranking(scores: Mapping[str, UnitScore], name_of: Callable[[str], str]) -> list[dict[str, Any]]:
    """Units ranked by re-based score, but only against units measured on the same indicators.

    The comparison set is every indicator any of the units was measured on. A unit measured on all of them is
    ranked (`rank` 1, 2, ...); the others, units with some indicators unmeasured or none, are listed after them
    with `rank` None and `standing` "insufficient" or "no_data": a unit never goes above another because it had
    less data. Rows: rank, standing, unit, place, score (None with no data), coverage, earned, group_<code>.
    """
    reference = frozenset().union(*(s.measured for s in scores.values() if s.coverage > 0))
    ranked = [(code, s) for code, s in scores.items() if s.coverage > 0 and s.measured >= reference]
    others = [(code, s) for code, s in scores.items() if (code, s) not in ranked]
    ranked.sort(key=lambda item: (-(item[1].score or 0.0), item[0]))
    others.sort(key=lambda item: (-item[1].coverage, -(item[1].score or 0.0), item[0]))
    rows = []
    for position, (code, entry) in enumerate([*ranked, *others], start=1):
        is_ranked = position <= len(ranked)
        score = entry.score
        rows.append(
            {
                "rank": position if is_ranked else None,
                "standing": "ranked" if is_ranked else ("insufficient" if entry.coverage > 0 else "no_data"),
                "unit": code,
                "place": name_of(code),
                "score": None if score is None else round(score, 2),
                "coverage": round(entry.coverage, 2),
                "earned": round(entry.earned, 2),
                **{f"group_{group}": round(points, 2) for group, points in sorted(entry.groups.items())},
            }
        )
    return rows
