"""RFC 9457 problem details: the one error body every HTTP service of the platform answers with.

The portal gateway (`sensors.gateways`) and the citizen API (`dashboards.api`) both send it as
`application/problem+json`; NGSI-LD's ProblemDetails have the same shape.
"""

from __future__ import annotations

from typing import Final

import pydantic

__all__ = ["PROBLEM_JSON", "Problem", "problem_body"]

PROBLEM_JSON: Final = "application/problem+json"
ERROR_BASE: Final = "https://ioc-platform.github.io/errors/"


class Problem(pydantic.BaseModel):
    """An RFC 9457 problem."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    type: str = pydantic.Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    field: str | None = pydantic.Field(None, description="The request field at fault, when one is.")


def problem_body(status: int, title: str, detail: str, *, field: str | None = None, kind: str | None = None) -> bytes:
    """The JSON body of a problem answer; `kind` defaults to the platform's URI for `status`."""
    problem = Problem(type=kind or f"{ERROR_BASE}{status}", title=title, status=status, detail=detail, field=field)
    return problem.model_dump_json(exclude_none=True).encode()
