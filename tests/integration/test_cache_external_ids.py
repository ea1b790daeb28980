"""CachingTemplateStore with external ids: cached like slugs (for the ttl, as they may move), and a create,
update or delete through the wrapper that moves one is seen at once, hits and misses alike."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import PromptNotFound
from core.models import Kind, TemplateVersion
from core.references import Reference, parse_reference
from infra.cache import CachingTemplateStore
from tests.contract.support import appending, create, draft, new_entity
from tests.unit.fakes import InMemoryStore

PROMPT = Kind.PROMPT
KEY = "pmpt_abc123"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """The in-memory store, counting resolves (the reads the cache saves)."""

    def __init__(self, inner: InMemoryStore) -> None:
        self.inner = inner
        self.resolves = 0

    def resolve(self, kind: Kind, ref: Reference) -> TemplateVersion:
        self.resolves += 1
        return self.inner.resolve(kind, ref)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def world() -> tuple[InMemoryStore, Counting, CachingTemplateStore, Clock]:
    store, clock = InMemoryStore(), Clock()
    counting = Counting(store)
    return store, counting, CachingTemplateStore(counting, ttl=5, pinned_size=64, clock=clock), clock  # type: ignore[arg-type]


def resolved(cached: CachingTemplateStore, text: str) -> str:
    return cached.resolve(PROMPT, parse_reference(text)).entity_id


def test_an_external_id_is_cached_for_the_ttl_like_a_slug(world) -> None:
    store, counting, cached, clock = world
    first = create(store, external_ids=(KEY,))
    second = create(store)
    for text in (KEY, f"{KEY}@1", f"{KEY}@latest"):
        assert resolved(cached, text) == first.id
    counting.resolves = 0
    for text in (KEY, f"{KEY}@1", f"{KEY}@latest"):
        assert resolved(cached, text) == first.id
    assert counting.resolves == 0

    # Moved by another process (the inner store directly): seen when the entries expire, `@1` included.
    store.update_entity(PROMPT, first.id, {"external_ids": []})
    store.update_entity(PROMPT, second.id, {"external_ids": [KEY]})
    assert resolved(cached, f"{KEY}@1") == first.id
    clock.now += 5.1
    for text in (KEY, f"{KEY}@1", f"{KEY}@latest"):
        assert resolved(cached, text) == second.id
    assert resolved(cached, f"{first.id}@1") == first.id  # pinned by id: never moves


def test_moving_an_id_through_the_wrapper_is_seen_at_once(world) -> None:
    store, _, cached, _ = world
    first = create(store, external_ids=(KEY,))
    second = create(store)
    for text in (KEY, f"{KEY}@1", first.slug, first.id):
        resolved(cached, text)

    cached.update_entity(PROMPT, KEY, {"external_ids": []})  # given up here: the entries under it go
    with pytest.raises(PromptNotFound):
        cached.resolve(PROMPT, parse_reference(f"{KEY}@1"))  # and this miss is cached
    cached.update_entity(PROMPT, second.slug, {"external_ids": [KEY]})  # taken here: the miss goes

    for text in (KEY, f"{KEY}@1", f"{KEY}@latest"):
        assert resolved(cached, text) == second.id
    assert resolved(cached, first.slug) == first.id


def test_an_id_given_up_elsewhere_and_taken_here_answers_the_new_holder_at_once(world) -> None:
    store, _, cached, _ = world
    first = create(store, external_ids=(KEY,))
    second = create(store)
    assert resolved(cached, KEY) == first.id
    store.update_entity(PROMPT, first.id, {"external_ids": []})  # another process

    cached.update_entity(PROMPT, second.id, {"external_ids": [KEY]})
    assert resolved(cached, KEY) == second.id

    store.update_entity(PROMPT, second.id, {"external_ids": []})  # another process again
    assert resolved(cached, KEY) == second.id  # within the ttl
    third = new_entity(external_ids=(KEY,))
    cached.create(PROMPT, third, draft())  # a create through the wrapper drops it too
    assert resolved(cached, f"{KEY}@1") == third.id


def test_a_cached_miss_is_dropped_when_a_create_claims_the_id(world) -> None:
    store, counting, cached, _ = world
    for _ in range(3):
        with pytest.raises(PromptNotFound):
            cached.resolve(PROMPT, parse_reference(KEY))
    assert counting.resolves == 1
    made = new_entity(external_ids=(KEY,))
    cached.create(PROMPT, made, draft())
    assert resolved(cached, KEY) == made.id


def test_delete_by_external_id_drops_the_entries_under_the_id_and_the_slug(world) -> None:
    store, _, cached, _ = world
    prompt = create(store, external_ids=(KEY,))
    store.append_version(PROMPT, prompt.id, appending("v2"))
    for text in (prompt.id, f"{prompt.id}@2", prompt.slug, f"{prompt.slug}@latest", KEY):
        resolved(cached, text)

    cached.delete(PROMPT, KEY)

    for text in (prompt.id, f"{prompt.id}@2", prompt.slug, f"{prompt.slug}@latest", KEY, f"{KEY}@2"):
        with pytest.raises(PromptNotFound):
            cached.resolve(PROMPT, parse_reference(text))
    with pytest.raises(PromptNotFound):
        cached.delete(PROMPT, KEY)  # gone: the wrapper's lookup finds nothing, the store says so
