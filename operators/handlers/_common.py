"""What every handler module does the same way: read Kopf's arguments, post events, map outcomes to Kopf errors."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import kopf

from operators.context import Context
from operators.models import GROUP, VERSION
from operators.sites import Outcome

__all__ = [
    "GROUP",
    "NO_INDEX",
    "VERSION",
    "context",
    "created",
    "deleting",
    "finish",
    "flatten",
    "retry_delay",
    "spread",
]

NO_INDEX: Final[Mapping[str, Any]] = MappingProxyType({})
"""Default of a handler's index argument: Kopf always passes the index; the default keeps the signature
compatible with Kopf's handler protocols, which list only the standard keyword arguments."""


def context(memo: Any) -> Context:
    ctx = memo.get("ctx") if isinstance(memo, Mapping) else getattr(memo, "ctx", None)
    if not isinstance(ctx, Context):
        raise kopf.PermanentError("the operator's context is missing from memo (startup did not run)")
    return ctx


def created(meta: Mapping[str, Any]) -> str:
    return str(meta.get("creationTimestamp") or "")


def deleting(meta: Mapping[str, Any]) -> bool:
    return meta.get("deletionTimestamp") is not None


def flatten(index: Any, key: Any) -> list[Any]:
    """Every value stored under `key` of a Kopf index (an empty list before anything is indexed)."""
    try:
        store: Iterable[Any] = index[key]
    except KeyError:
        return []
    return [value for value in store if value is not None]


def spread(interval: float, first: float = 0.0) -> Callable[..., float]:
    """A timer's first delay, `first` plus a share of `interval` that depends on the object's uid.

    Sites applied together (a whole province) would otherwise all repair in the same second, every
    interval, and a spec change arriving then would queue behind a hundred of them.
    """

    def delay(*, uid: str, **_: Any) -> float:
        return first + interval * (zlib.crc32(uid.encode("utf-8")) % 1000) / 1000

    return delay


def retry_delay(retry: int) -> float:
    """Back off 1, 2, 4 ... up to 60 s: a service that is down is not hammered, one that is back is soon used."""
    return float(min(60, 2 ** min(retry, 6)))


def finish(body: Any, patch: Any, outcome: Outcome, retry: int, *, timer_of: Mapping[str, Any] | None = None) -> None:
    """Write the outcome's status into Kopf's patch, post its events, and raise for a retry or a refusal.

    From a timer (`timer_of` is the current status) the status is written only when it changed, and
    nothing is raised: the next tick is the retry.
    """
    if timer_of is None or _differs(outcome.status, timer_of):
        for key, value in outcome.status.items():
            patch.status[key] = value
    # A timer meeting a refused spec again has nothing new to say: the refusal was posted when it happened.
    if timer_of is None or outcome.permanent is None:
        for event in outcome.events:
            # kopf.event, not kopf.info: Kopf's own INFO postings are turned off (runtime.configure).
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    if timer_of is not None:
        return
    if outcome.permanent is not None:
        raise kopf.PermanentError(outcome.permanent)
    if outcome.retry is not None:
        raise kopf.TemporaryError(outcome.retry, delay=retry_delay(retry))


def _strip_times(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_times(v) for k, v in value.items() if k != "lastTransitionTime"}
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    return value


def _differs(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    # Timers run often: write the status only when something other than a timestamp changed.
    return any(_strip_times(v) != _strip_times(old.get(k)) for k, v in new.items())
