"""The one TTL cache of the dashboards and the citizen API: values by key, each kept for its caller's lifetime."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, TypeVar

# Streamlit sessions share it for query rows (`get_or_load`, from any thread); the citizen API keeps its
# finished response bodies in it (`get_or_build`, on the event loop: one build per key at a time, and an
# expired value served for one more lifetime while a single background build replaces it).

__all__ = ["TtlCache"]

T = TypeVar("T")


class TtlCache:
    """Values by key, each kept for the lifetime its caller gives; safe to share between sessions and threads."""

    MAX_ENTRIES: Final = 2000
    """Default bound: past it, expired entries go on the next store, then the oldest (keys vary, they pile up)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_ENTRIES) -> None:
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, float, Any]] = {}
        self._building: dict[Hashable, asyncio.Future[Any]] = {}
        self._refreshing: set[Hashable] = set()
        self._tasks: set[asyncio.Future[Any]] = set()

    def now(self) -> float:
        """The cache's clock: lifetimes are measured on it."""
        return self._clock()

    def get_or_load(self, key: Hashable, ttl_s: float, load: Callable[[], T]) -> T:
        """The cached value for `key` if younger than `ttl_s`, otherwise `load()` (stored unless ttl_s is 0)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry[0] < ttl_s:
            value: T = entry[2]
            return value
        # Loaded outside the lock: two sessions may both load an expired entry, which is cheaper than
        # making every session wait for one slow query.
        loaded = load()
        self._store(key, now, ttl_s, loaded)
        return loaded

    async def get_or_build(self, key: Hashable, ttl_s: float, build: Callable[[], Awaitable[T]]) -> T:
        """The cached value for `key`, or the one `build` makes (shared with every concurrent caller).

        An expired value is still served, for up to its own lifetime again, while one background build
        replaces it (stale-while-revalidate): under load, an expiry costs no caller a warehouse query.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None:
            age = now - entry[0]
            if age < entry[1]:
                found: T = entry[2]
                return found
            if age < 2 * entry[1]:
                if key not in self._building and key not in self._refreshing:
                    self._refreshing.add(key)
                    task = asyncio.ensure_future(self._build(key, ttl_s, build))
                    self._tasks.add(task)
                    task.add_done_callback(functools.partial(self._refreshed, key))
                stale: T = entry[2]
                return stale
        pending = self._building.get(key)
        if pending is not None:
            shared: T = await asyncio.shield(pending)
            return shared
        return await self._build(key, ttl_s, build)

    async def _build(self, key: Hashable, ttl_s: float, build: Callable[[], Awaitable[T]]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        started = self._clock()
        try:
            made = await build()
        except BaseException as exc:
            future.set_exception(exc)
            # Nobody else may be waiting: retrieve the exception so asyncio does not log it as unhandled.
            future.exception()
            raise
        finally:
            self._building.pop(key, None)
        future.set_result(made)
        self._store(key, started, ttl_s, made)
        return made

    def _refreshed(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        self._refreshing.discard(key)
        self._tasks.discard(done)
        if not done.cancelled():
            # Retrieve a failure so asyncio does not log it: the stale value keeps being served until it is
            # too old, and then a caller builds it again itself.
            done.exception()

    def _store(self, key: Hashable, at: float, ttl_s: float, value: Any) -> None:
        if ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= self._max:
                now = self._clock()
                for stale in [k for k, (t, ttl, _) in self._entries.items() if now - t >= 2 * ttl]:
                    del self._entries[stale]
                while len(self._entries) >= self._max:
                    del self._entries[next(iter(self._entries))]
            self._entries.pop(key, None)
            self._entries[key] = (at, ttl_s, value)

    def invalidate(self, match: Callable[[Hashable], bool] | None = None) -> int:
        """Drop the entries whose key matches (all when no matcher); returns how many went."""
        with self._lock:
            gone = [k for k in self._entries if match is None or match(k)]
            for k in gone:
                del self._entries[k]
        return len(gone)

    def clear(self) -> None:
        self.invalidate()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
