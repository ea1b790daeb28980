"""In-process read caches in front of store ports, all on core.ttl_cache.TtlCache (thread-safe, bounded,
and a read racing a write through the wrapper never caches the old answer).

- CachingTemplateStore: a pinned version (`<id>@N`) never changes, so it lives in an LRU with no
  expiry, under its entity's id. A slug can come to name another entity (deleted, then a new one
  created with that slug), so `<slug>@N` is kept like a pointer reference (published, `@latest`,
  `@label`): for `ttl` seconds (0: not cached); the version it found is kept under its id for good.
  Writes made through this wrapper drop the entity's pointer entries at once; `delete` drops its
  pinned entries too. Other processes see a write when their pointer entries expire (pinned entries
  of a deleted entity stay until evicted, reachable by its id only). An external id (`pmpt_...@N`
  included) is cached like a slug, for `ttl` seconds, as it may move to another prompt: a create or an
  update through this wrapper that sets external ids drops whatever is cached under them and under
  the prompt's names, so an id given up or taken here answers anew at once.
  Misses (NotFound, e.g. a `{{>partial}}` tag naming nothing) are cached too, for `ttl` seconds, in
  an LRU of their own (`miss_size`), so a flood of unknown references never evicts a hit. A create,
  a new version, a publish or a label move through this wrapper drops the misses under that entity's
  id and slug at once; other processes see it when their misses expire.
- CachingVirtualKeyStore: bindings read by id or slug, for `ttl` seconds; any write through it clears
  it. Misses are not cached, so a binding created anywhere is usable at once.
- CachingSecretStore: secret values for `ttl` seconds, so a warm function reads a key once per ttl;
  a put or delete through it drops that entry at once.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, Mapping, NoReturn

from core.errors import NotFound
from core.models import Entity, Kind, TemplateVersion, VersionDraft, VirtualKey
from core.ports import SecretStore, TemplateStore, VirtualKeyStore
from core.references import Reference, is_entity_id
from core.ttl_cache import TtlCache

_PinnedKey = tuple[Kind, str, int]
_PointerKey = tuple[Kind, str, str, str | int | None]  # kind, key, selector, label or number
_MissKey = tuple[Kind, str, str, str | int | None]  # kind, key, selector, label or number


class _Miss:
    """A cached NotFound: its class and arguments, so each raise is a fresh exception (no traceback grows)."""

    __slots__ = ("code", "error", "message", "param")

    def __init__(self, exc: NotFound) -> None:
        self.error, self.message, self.param, self.code = type(exc), exc.message, exc.param, exc.code

    def raise_again(self) -> NoReturn:
        raise self.error(self.message, param=self.param, code=self.code)


class CachingTemplateStore:
    def __init__(
        self,
        inner: TemplateStore,
        ttl: float,
        pinned_size: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        pointer_size: int = 4096,
        miss_size: int = 4096,
    ) -> None:
        self._inner = inner
        self._pinned: TtlCache[_PinnedKey, TemplateVersion] = TtlCache(math.inf, pinned_size, clock)
        self._pointers: TtlCache[_PointerKey, TemplateVersion] = TtlCache(ttl, pointer_size, clock)
        self._misses: TtlCache[_MissKey, TemplateVersion | _Miss] = TtlCache(ttl, miss_size, clock)
        self._miss_ttl = ttl

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
        number = ref.number or 0
        found = self._pinned.cached((kind, ref.key.lower(), number), None)  # keyed by id (lower case) only
        if found is not None:
            return found
        found = self._pointers.get_or_load(
            (kind, ref.key, "number", number),
            lambda: self._load(kind, ref, number),
            keys=lambda version: [] if _is_id_of(ref.key, version) else [(kind, ref.key, "number", number)],
        )
        return self._pinned.get_or_load((kind, found.entity_id, number), lambda: found)

    def _resolve_pointer(self, kind: Kind, ref: Reference) -> TemplateVersion:
        return self._pointers.get_or_load(
            (kind, ref.key, ref.selector, ref.label),
            lambda: self._load(kind, ref, ref.label),
            keys=lambda version: [(kind, name, ref.selector, ref.label) for name in _names(ref.key, version)],
        )

    def _load(self, kind: Kind, ref: Reference, detail: str | int | None) -> TemplateVersion:
        """The store's answer, behind the miss cache: a NotFound is remembered for `ttl` seconds (a hit is
        kept by the caller's cache, not here)."""
        found = self._misses.get_or_load((kind, ref.key, ref.selector, detail), lambda: _attempt(self._inner, kind, ref),
                                         ttl=self._miss_lifetime)
        if isinstance(found, _Miss):
            found.raise_again()
        return found

    def _miss_lifetime(self, found: TemplateVersion | _Miss) -> float:
        return self._miss_ttl if isinstance(found, _Miss) else 0

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
        try:
            return self._inner.create(kind, entity, first)
        finally:
            # Its external ids may have named another prompt until now (given up in another process).
            self._invalidate(kind, {entity.id, entity.slug, *_external_ids(entity.external_ids)}, pinned=False)

    def update_entity(self, kind: Kind, key: str, changes: Mapping[str, Any]) -> Entity:
        if "external_ids" not in changes:
            return self._inner.update_entity(kind, key, changes)  # other head fields: no cached version changes
        # Those taken here, and the key; those given up are cached under this entity's id and slug.
        return self._head_write(kind, {key, *_external_ids(changes["external_ids"])},
                                lambda: self._inner.update_entity(kind, key, changes))

    def append_version(self, kind: Kind, key: str, build: Callable[[TemplateVersion], VersionDraft]) -> TemplateVersion:
        names = {key}
        try:
            version = self._inner.append_version(kind, key, build)
            names |= {version.entity_id, version.slug}
            return version
        finally:
            self._invalidate(kind, names, pinned=False)

    def publish(self, kind: Kind, key: str, version: int) -> Entity:
        return self._head_write(kind, {key}, lambda: self._inner.publish(kind, key, version))

    def set_label(self, key: str, version: int, label: str) -> Entity:
        return self._head_write(Kind.PROMPT, {key}, lambda: self._inner.set_label(key, version, label))

    def remove_label(self, key: str, label: str) -> Entity:
        return self._head_write(Kind.PROMPT, {key}, lambda: self._inner.remove_label(key, label))

    def _head_write(self, kind: Kind, names: set[str], write: Callable[[], Entity]) -> Entity:
        """Runs a write that answers the entity's head, then drops what is cached under `names` and under the
        entity's id and slug (failed or not: a write may have landed before its answer was lost)."""
        try:
            entity = write()
            names |= {entity.id, entity.slug}
            return entity
        finally:
            self._invalidate(kind, names, pinned=False)

    def delete(self, kind: Kind, key: str) -> None:
        names = {key, key.lower()}
        if not is_entity_id(key):  # an external id: entries under the id and slug do not carry it
            with contextlib.suppress(NotFound):  # then the delete says so
                entity = self._inner.get_entity(kind, key)
                names |= {entity.id, entity.slug}
        try:
            self._inner.delete(kind, key)
        finally:
            self._invalidate(kind, names, pinned=True)

    def _invalidate(self, kind: Kind, names: set[str], *, pinned: bool) -> None:
        """Drops entries cached under any of `names` or holding a version of that entity, and misses
        under those names (a new version, pointer or label may answer them now)."""

        def matches(cache_key: tuple, version: TemplateVersion) -> bool:
            return cache_key[0] is kind and bool(names & _names(cache_key[1], version))

        self._pointers.invalidate(matches)
        if pinned:
            self._pinned.invalidate(matches)
        else:
            self._forget_misses(kind, names)

    def _forget_misses(self, kind: Kind, names: set[str]) -> None:
        """Ids match in any case (stores read them so); slugs too, which may drop more than needed, never less."""
        folded = {name.lower() for name in names}
        self._misses.invalidate(lambda cache_key, _found: cache_key[0] is kind and cache_key[1].lower() in folded)


def _attempt(inner: TemplateStore, kind: Kind, ref: Reference) -> TemplateVersion | _Miss:
    try:
        return inner.resolve(kind, ref)
    except NotFound as exc:
        return _Miss(exc)


def _external_ids(value: Any) -> set[str]:
    """The external ids a write sets, as far as they are strings (the store refuses anything else)."""
    return {item for item in value if isinstance(item, str)} if isinstance(value, (list, tuple)) else set()


def _is_id_of(key: str, version: TemplateVersion) -> bool:
    return key.lower() == version.entity_id.lower()


def _names(key: str, version: TemplateVersion) -> set[str]:
    """Every name a version is cached under: the key asked for, its entity's id and its slug."""
    return {key, version.entity_id, version.slug}


class CachingVirtualKeyStore:
    """A VirtualKeyStore in front of any other; `ttl` 0: no cache."""

    def __init__(self, inner: VirtualKeyStore, ttl: float, clock: Callable[[], float] = time.monotonic,
                 *, max_entries: int = 1024) -> None:
        self._inner = inner
        self._cache: TtlCache[str, VirtualKey] = TtlCache(ttl, max_entries, clock)

    @property
    def inner(self) -> VirtualKeyStore:
        return self._inner

    def get_virtual_key(self, key_: str) -> VirtualKey:
        return self._cache.get_or_load(
            key_, lambda: self._inner.get_virtual_key(key_), keys=lambda binding: {key_, binding.id, binding.slug})

    def list_virtual_keys(self) -> list[VirtualKey]:
        return self._inner.list_virtual_keys()

    def create_virtual_key(self, binding: VirtualKey) -> VirtualKey:
        try:
            return self._inner.create_virtual_key(binding)
        finally:
            self.invalidate()

    def update_virtual_key(self, key_: str, changes: Mapping[str, Any]) -> VirtualKey:
        try:
            return self._inner.update_virtual_key(key_, changes)
        finally:
            self.invalidate()

    def delete_virtual_key(self, key_: str) -> None:
        try:
            self._inner.delete_virtual_key(key_)
        finally:
            self.invalidate()

    def invalidate(self) -> None:
        """Forgets every cached binding (writes are rare; a binding is cached under its id and its slug)."""
        self._cache.invalidate()


class CachingSecretStore:
    """A SecretStore in front of any other; `ttl` 0: no cache. Other processes see a new value when their
    entry expires."""

    def __init__(self, inner: SecretStore, ttl: float, clock: Callable[[], float] = time.monotonic,
                 *, max_entries: int = 1024) -> None:
        self._inner = inner
        self._cache: TtlCache[str, str] = TtlCache(ttl, max_entries, clock)

    @property
    def inner(self) -> SecretStore:
        return self._inner

    def get_secret(self, ref: str) -> str:
        return self._cache.get_or_load(ref, lambda: self._inner.get_secret(ref))

    def put_secret(self, name: str, value: str) -> str:
        ref = None
        try:
            ref = self._inner.put_secret(name, value)
        finally:
            self._forget(ref)
        return ref

    def delete_secret(self, ref: str) -> None:
        try:
            self._inner.delete_secret(ref)
        finally:
            self._forget(ref)

    def _forget(self, ref: str | None) -> None:
        """Drops `ref`'s entry (every entry if unknown); reads begun before cache nothing."""
        self._cache.invalidate(None if ref is None else lambda cached, _value: cached == ref)
