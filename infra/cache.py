"""CachingTemplateStore: an in-process read cache in front of a TemplateStore.

Pinned references (`key@N`) never change, so they live in an LRU with no expiry. Pointer references
(published, `@latest`, `@label`) live for `ttl` seconds (0: not cached). Writes made through this
wrapper drop the entity's pointer entries at once; `delete` drops its pinned entries too. Other
processes see a write when their pointer entries expire (pinned entries of a deleted entity stay
until evicted).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable, Mapping

from core.models import Entity, Kind, TemplateVersion, VersionDraft
from core.ports import TemplateStore
from core.references import Reference

_PinnedKey = tuple[Kind, str, int]
_PointerKey = tuple[Kind, str, str, str | None]


class CachingTemplateStore:
    def __init__(
        self,
        inner: TemplateStore,
        ttl: float,
        pinned_size: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        pointer_size: int = 4096,
    ) -> None:
        self._inner = inner
        self._ttl = ttl
        self._pinned_size = pinned_size
        self._pointer_size = pointer_size
        self._clock = clock
        self._lock = threading.Lock()
        self._pinned: OrderedDict[_PinnedKey, TemplateVersion] = OrderedDict()
        self._pointers: OrderedDict[_PointerKey, tuple[float, TemplateVersion]] = OrderedDict()
        self._generation = 0  # bumped by every invalidation; a read begun before one is not cached

    @property
    def inner(self) -> TemplateStore:
        return self._inner

    # --- cached reads ---------------------------------------------------------------------------

    def resolve(self, kind: Kind, ref: Reference) -> TemplateVersion:
        if ref.pinned:
            return self._resolve_pinned(kind, ref)
        return self._resolve_pointer(kind, ref)

    def get_version(self, kind: Kind, key: str, version: int) -> TemplateVersion:
        return self._resolve_pinned(kind, Reference(key, "number", number=version))

    def _resolve_pinned(self, kind: Kind, ref: Reference) -> TemplateVersion:
        if self._pinned_size <= 0:
            return self._inner.resolve(kind, ref)
        number = ref.number or 0
        with self._lock:
            hit = self._pinned.get((kind, ref.key, number))
            if hit is not None:
                self._pinned.move_to_end((kind, ref.key, number))
                return hit
            generation = self._generation
        version = self._inner.resolve(kind, ref)
        with self._lock:
            if generation == self._generation:
                for name in {ref.key, version.entity_id, version.slug}:
                    _put_bounded(self._pinned, (kind, name, number), version, self._pinned_size)
        return version

    def _resolve_pointer(self, kind: Kind, ref: Reference) -> TemplateVersion:
        if self._ttl <= 0 or self._pointer_size <= 0:
            return self._inner.resolve(kind, ref)
        cache_key = (kind, ref.key, ref.selector, ref.label)
        with self._lock:
            entry = self._pointers.get(cache_key)
            if entry is not None:
                if entry[0] > self._clock():
                    self._pointers.move_to_end(cache_key)
                    return entry[1]
                del self._pointers[cache_key]
            generation = self._generation
        version = self._inner.resolve(kind, ref)
        expires_at = self._clock() + self._ttl
        with self._lock:
            if generation == self._generation:
                for name in {ref.key, version.entity_id, version.slug}:
                    entry_key = (kind, name, ref.selector, ref.label)
                    _put_bounded(self._pointers, entry_key, (expires_at, version), self._pointer_size)
        return version

    # --- uncached reads -------------------------------------------------------------------------

    def get_entity(self, kind: Kind, key: str) -> Entity:
        return self._inner.get_entity(kind, key)

    def list_entities(self, kind: Kind, *, collection_id: str | None = None) -> list[Entity]:
        return self._inner.list_entities(kind, collection_id=collection_id)

    def get_version_by_id(self, kind: Kind, key: str, version_id: str) -> TemplateVersion:
        return self._inner.get_version_by_id(kind, key, version_id)

    def list_versions(self, kind: Kind, key: str) -> list[TemplateVersion]:
        return self._inner.list_versions(kind, key)

    # --- writes ---------------------------------------------------------------------------------

    def create(self, kind: Kind, entity: Entity, first: VersionDraft) -> TemplateVersion:
        return self._inner.create(kind, entity, first)

    def update_entity(self, kind: Kind, key: str, changes: Mapping[str, Any]) -> Entity:
        return self._inner.update_entity(kind, key, changes)  # head fields only: no cached version changes

    def append_version(self, kind: Kind, key: str, build: Callable[[TemplateVersion], VersionDraft]) -> TemplateVersion:
        names = {key}
        try:
            version = self._inner.append_version(kind, key, build)
            names |= {version.entity_id, version.slug}
            return version
        finally:
            self._invalidate(kind, names, pinned=False)

    def publish(self, kind: Kind, key: str, version: int) -> Entity:
        names = {key}
        try:
            entity = self._inner.publish(kind, key, version)
            names |= {entity.id, entity.slug}
            return entity
        finally:
            self._invalidate(kind, names, pinned=False)

    def set_label(self, key: str, version: int, label: str) -> Entity:
        names = {key}
        try:
            entity = self._inner.set_label(key, version, label)
            names |= {entity.id, entity.slug}
            return entity
        finally:
            self._invalidate(Kind.PROMPT, names, pinned=False)

    def delete(self, kind: Kind, key: str) -> None:
        try:
            self._inner.delete(kind, key)
        finally:
            self._invalidate(kind, {key, key.lower()}, pinned=True)

    def _invalidate(self, kind: Kind, names: set[str], *, pinned: bool) -> None:
        """Drops entries cached under any of `names` or holding a version of that entity."""
        with self._lock:
            self._generation += 1
            caches: list[OrderedDict] = [self._pointers, self._pinned] if pinned else [self._pointers]
            for cache in caches:
                for cache_key in [k for k, v in cache.items() if _matches(kind, names, k, v)]:
                    del cache[cache_key]


def _matches(kind: Kind, names: set[str], cache_key: tuple, value: object) -> bool:
    if cache_key[0] is not kind:
        return False
    version: TemplateVersion = value[1] if isinstance(value, tuple) else value  # type: ignore[assignment]
    return cache_key[1] in names or version.entity_id in names or version.slug in names


def _put_bounded(cache: OrderedDict, key: Hashable, value: object, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
