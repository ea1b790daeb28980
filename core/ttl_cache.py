"""TtlCache: the one in-process read cache (API keys here; templates, bindings and secrets in infra/cache.py).

Thread-safe. Entries live `ttl` seconds (`math.inf`: until evicted; 0: nothing is cached) and at most
`max_size` of them are kept, the least recently used evicted first. Every invalidation bumps a
generation, and a load that began before one does not store its result: a read racing a write (a
revoke, an update) can return the old value once, but never caches it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl: float, max_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max_size = max_size
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._generation = 0

    @property
    def enabled(self) -> bool:
        return self._ttl > 0 and self._max_size > 0

    def cached(self, key: K, default: D) -> V | D:
        """The live entry under `key`, else `default`; loads nothing."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self._clock():
                return default
            self._entries.move_to_end(key)
            return entry[1]

    def get_or_load(
        self,
        key: K,
        load: Callable[[], V],
        *,
        keys: Callable[[V], Iterable[K]] | None = None,
        ttl: Callable[[V], float] | None = None,
    ) -> V:
        """The live entry under `key`, else `load()`, kept under `keys(value)` (default: `key`) for
        `ttl(value)` seconds (default: the cache's ttl; 0: not kept). A load that raises keeps nothing."""
        if not self.enabled:
            return load()
        with self._lock:
            started = self._clock()
            entry = self._entries.get(key)
            if entry is not None:
                if entry[0] > started:
                    self._entries.move_to_end(key)
                    return entry[1]
                del self._entries[key]
            generation = self._generation
        value = load()
        lifetime = self._ttl if ttl is None else ttl(value)
        if lifetime > 0:
            self._keep(generation, started + lifetime, [key] if keys is None else list(keys(value)), value)
        return value

    def _keep(self, generation: int, expires_at: float, names: list[K], value: V) -> None:
        with self._lock:
            if generation != self._generation:  # invalidated while loading: the value may be stale
                return
            for name in names:
                self._entries[name] = (expires_at, value)
                self._entries.move_to_end(name)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)

    def invalidate(self, match: Callable[[K, V], bool] | None = None) -> None:
        """Drops the entries `match(key, value)` picks (all of them by default); loads in flight keep nothing."""
        with self._lock:
            self._generation += 1
            if match is None:
                self._entries.clear()
                return
            for name in [name for name, (_, value) in self._entries.items() if match(name, value)]:
                del self._entries[name]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
