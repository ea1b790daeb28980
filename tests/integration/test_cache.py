"""CachingTemplateStore against a fake inner store: bounds, invalidation and races."""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest

from core.errors import NotFound, PartialNotFound, VersionNotFound
from core.models import Entity, Kind, TemplateVersion, VersionDraft
from core.references import Reference, parse_reference
from infra.cache import CachingTemplateStore


def version(entity_id: str, number: int, string: str = "") -> TemplateVersion:
    return TemplateVersion(kind=Kind.PROMPT, entity_id=entity_id, slug=f"pp-{entity_id}-000000", version=number,
                           version_id=f"v{number}", string=string, created_at="now")


class FakeStore:
    """Every entity has versions 1..latest; published = 1. Counts resolve calls. An entity not in `latest`, or
    a version past its latest, is NotFound."""

    def __init__(self) -> None:
        self.latest: dict[str, int] = {}
        self.resolves = 0
        self.before_answer: Callable[[], None] = lambda: None

    def resolve(self, kind: Kind, ref: Reference) -> TemplateVersion:
        self.resolves += 1
        entity_id = ref.key.split("-")[1] if ref.key.startswith("pp-") else ref.key
        if entity_id not in self.latest:
            self.before_answer()
            raise PartialNotFound(f"partial {ref.key} not found", param="x", code="custom")
        number = {"number": ref.number, "latest": self.latest[entity_id]}.get(ref.selector) or 1
        if number > self.latest[entity_id]:
            raise VersionNotFound(f"no version {number}")
        answer = version(entity_id, number)
        self.before_answer()
        return answer

    def create(self, kind: Kind, entity: Entity, first: VersionDraft) -> TemplateVersion:
        self.latest[entity.id] = 1
        return version(entity.id, 1)

    def append_version(self, kind: Kind, key: str, build: Callable[[TemplateVersion], VersionDraft]) -> TemplateVersion:
        self.latest[key] += 1
        return version(key, self.latest[key])

    def publish(self, kind: Kind, key: str, number: int) -> Entity:
        return entity(key)

    def set_label(self, key: str, number: int, label: str) -> Entity:
        return entity(key)

    def remove_label(self, key: str, label: str) -> Entity:
        return entity(key)

    def get_entity(self, kind: Kind, key: str) -> Entity:
        entity_id = key.split("-")[1] if key.startswith("pp-") else key
        if entity_id not in self.latest:
            raise PartialNotFound(f"partial {key} not found")
        return entity(entity_id)

    def delete(self, kind: Kind, key: str) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call {name}")


def test_pinned_entries_are_bounded_lru() -> None:
    inner = FakeStore()
    inner.latest = {"a": 5}
    cached = CachingTemplateStore(inner, ttl=0, pinned_size=1)  # a version takes 1 slot: its id
    cached.resolve(Kind.PROMPT, parse_reference("a@1"))
    cached.resolve(Kind.PROMPT, parse_reference("a@1"))
    cached.get_version(Kind.PROMPT, "a", 1)
    assert inner.resolves == 1
    cached.resolve(Kind.PROMPT, parse_reference("a@2"))  # evicts version 1
    cached.resolve(Kind.PROMPT, parse_reference("a@1"))
    assert inner.resolves == 3


def test_a_slug_pinned_reference_lives_for_the_ttl_only() -> None:
    """A slug can come to name another entity (delete, then create with that slug, maybe in another process),
    so `slug@N` is kept for the ttl; the version it found stays cached under its id for good."""
    clock = Clock()
    inner = FakeStore()
    inner.latest = {"a": 2}
    cached = CachingTemplateStore(inner, ttl=5, pinned_size=16, clock=clock)
    assert cached.resolve(Kind.PROMPT, parse_reference("pp-a-000000@1")).entity_id == "a"
    cached.resolve(Kind.PROMPT, parse_reference("pp-a-000000@1"))
    cached.resolve(Kind.PROMPT, parse_reference("a@1"))  # cached under the id too
    assert inner.resolves == 1

    clock.now += 5.1
    cached.resolve(Kind.PROMPT, parse_reference("pp-a-000000@1"))  # the slug is asked again
    cached.resolve(Kind.PROMPT, parse_reference("a@1"))  # the id is not
    assert inner.resolves == 2

    ttl_zero = CachingTemplateStore(inner, ttl=0, pinned_size=16)
    for _ in range(2):
        ttl_zero.resolve(Kind.PROMPT, parse_reference("pp-a-000000@1"))
    assert inner.resolves == 4


def test_pinned_size_zero_disables_the_lru() -> None:
    inner = FakeStore()
    inner.latest = {"a": 1}
    cached = CachingTemplateStore(inner, ttl=0, pinned_size=0)
    for _ in range(3):
        cached.resolve(Kind.PROMPT, parse_reference("a@1"))
    assert inner.resolves == 3


def test_delete_drops_only_that_entitys_entries() -> None:
    inner = FakeStore()
    inner.latest = {"a": 1, "b": 1}
    cached = CachingTemplateStore(inner, ttl=60, pinned_size=16)
    for reference in ("a@1", "pp-a-000000@latest", "b@1", "b"):
        cached.resolve(Kind.PROMPT, parse_reference(reference))
    cached.delete(Kind.PROMPT, "pp-a-000000")  # by slug: entries cached under the id go too
    inner.resolves = 0

    cached.resolve(Kind.PROMPT, parse_reference("b@1"))
    cached.resolve(Kind.PROMPT, parse_reference("b"))
    assert inner.resolves == 0
    cached.resolve(Kind.PROMPT, parse_reference("a@1"))
    cached.resolve(Kind.PROMPT, parse_reference("a@latest"))
    assert inner.resolves == 2


def test_removing_a_label_drops_that_prompts_pointer_entries() -> None:
    inner = FakeStore()
    inner.latest = {"a": 1, "b": 1}
    cached = CachingTemplateStore(inner, ttl=60, pinned_size=16)
    for reference in ("a@production", "pp-a-000000@production", "b@production", "a@1"):
        cached.resolve(Kind.PROMPT, parse_reference(reference))
    inner.resolves = 0

    assert cached.remove_label("a", "production").id == "a"

    cached.resolve(Kind.PROMPT, parse_reference("b@production"))
    cached.resolve(Kind.PROMPT, parse_reference("a@1"))  # pinned: unchanged by a label
    assert inner.resolves == 0
    cached.resolve(Kind.PROMPT, parse_reference("pp-a-000000@production"))  # read again, then cached by id too
    cached.resolve(Kind.PROMPT, parse_reference("a@production"))
    assert inner.resolves == 1


def race(inner: FakeStore, read: Callable[[], object], write: Callable[[], object]) -> None:
    """Runs `read` in a thread and `write` while the store is answering that read."""
    reading, written = threading.Event(), threading.Event()

    def write_meanwhile() -> None:
        reading.set()
        written.wait(5)

    inner.before_answer = write_meanwhile
    reader = threading.Thread(target=read)
    reader.start()
    reading.wait(5)
    inner.before_answer = lambda: None
    write()
    written.set()
    reader.join(5)


def test_a_read_racing_a_write_does_not_cache_the_old_answer() -> None:
    inner = FakeStore()
    inner.latest = {"a": 1}
    cached = CachingTemplateStore(inner, ttl=60, pinned_size=16)
    race(inner, lambda: cached.resolve(Kind.PROMPT, parse_reference("a@latest")),
         lambda: cached.append_version(Kind.PROMPT, "a", lambda latest: None))  # type: ignore[arg-type,return-value]
    assert cached.resolve(Kind.PROMPT, parse_reference("a@latest")).version == 2


def test_concurrent_readers_share_the_cache_safely() -> None:
    inner = FakeStore()
    inner.latest = {str(i): 3 for i in range(50)}
    cached = CachingTemplateStore(inner, ttl=60, pinned_size=64)
    errors: list[BaseException] = []

    def reader(offset: int) -> None:
        try:
            for step in range(300):
                key = str((offset + step) % 50)
                got = cached.resolve(Kind.PROMPT, parse_reference(f"{key}@{step % 3 + 1}"))
                assert got.entity_id == key and got.version == step % 3 + 1
                assert cached.resolve(Kind.PROMPT, parse_reference(f"{key}@latest")).version == 3
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []



# --- misses ----------------------------------------------------------------------------------------


def entity(entity_id: str) -> Entity:
    return Entity(kind=Kind.PROMPT, id=entity_id, slug=f"pp-{entity_id}-000000", name=entity_id, created_at="now",
                  updated_at="now", latest_version=1, published_version=1)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def missing(cached: CachingTemplateStore, reference: str) -> NotFound:
    with pytest.raises(NotFound) as caught:
        cached.resolve(Kind.PROMPT, parse_reference(reference))
    return caught.value


@pytest.mark.parametrize("reference", ["ghost", "ghost@latest", "ghost@production", "ghost@3", "a@7"])
def test_misses_are_cached_for_the_pointer_ttl(reference: str) -> None:
    inner, clock = FakeStore(), Clock()
    inner.latest = {"a": 1}
    cached = CachingTemplateStore(inner, ttl=5, pinned_size=16, clock=clock)
    first = missing(cached, reference)
    for _ in range(100):
        again = missing(cached, reference)
        assert (type(again), again.message, again.param, again.code) == (
            type(first), first.message, first.param, first.code)
        assert again is not first and again.__traceback__ is not None  # a fresh error each time
    assert inner.resolves == 1
    clock.now = 5.1
    missing(cached, reference)
    assert inner.resolves == 2


def test_a_thousand_missing_references_cost_one_read_each_per_ttl() -> None:
    inner = FakeStore()
    cached = CachingTemplateStore(inner, ttl=5, pinned_size=16)
    for _ in range(3):
        for i in range(1000):
            missing(cached, f"pl-missing-{i}")
    assert inner.resolves == 1000


def test_misses_never_evict_hits() -> None:
    inner = FakeStore()
    inner.latest = {"a": 1}
    cached = CachingTemplateStore(inner, ttl=60, pinned_size=16, pointer_size=4, miss_size=8)
    cached.resolve(Kind.PROMPT, parse_reference("a"))
    for i in range(100):
        missing(cached, f"ghost-{i}")
    inner.resolves = 0
    cached.resolve(Kind.PROMPT, parse_reference("a"))
    assert inner.resolves == 0
    missing(cached, "ghost-0")  # evicted from the bounded miss cache: read again
    assert inner.resolves == 1


def test_ttl_zero_caches_no_misses() -> None:
    inner = FakeStore()
    cached = CachingTemplateStore(inner, ttl=0, pinned_size=16)
    for _ in range(3):
        missing(cached, "ghost")
    assert inner.resolves == 3


def test_creating_the_missing_entity_makes_it_resolvable_at_once() -> None:
    inner = FakeStore()
    cached = CachingTemplateStore(inner, ttl=60, pinned_size=16)
    for reference in ("b", "pp-b-000000", "b@latest", "b@1"):
        missing(cached, reference)
    cached.create(Kind.PROMPT, entity("b"), None)  # type: ignore[arg-type]
    for reference in ("b", "pp-b-000000", "b@latest", "b@1"):
        assert cached.resolve(Kind.PROMPT, parse_reference(reference)).entity_id == "b"


@pytest.mark.parametrize("write", ["append", "publish", "label"])
def test_writes_drop_that_entitys_misses_only(write: str) -> None:
    inner = FakeStore()
    inner.latest = {"a": 1}
    cached = CachingTemplateStore(inner, ttl=60, pinned_size=16)
    missing(cached, "a@2")
    missing(cached, "ghost")
    if write == "append":
        cached.append_version(Kind.PROMPT, "a", lambda latest: None)  # type: ignore[arg-type,return-value]
    elif write == "publish":
        inner.latest["a"] = 2  # written by another process; published here
        cached.publish(Kind.PROMPT, "a", 2)
    else:
        inner.latest["a"] = 2
        cached.set_label("a", 2, "production")
    inner.resolves = 0
    assert cached.resolve(Kind.PROMPT, parse_reference("a@2")).version == 2
    missing(cached, "ghost")
    assert inner.resolves == 1


def test_a_miss_racing_a_create_is_not_cached() -> None:
    inner = FakeStore()
    cached = CachingTemplateStore(inner, ttl=60, pinned_size=16)
    race(inner, lambda: missing(cached, "c"), lambda: cached.create(Kind.PROMPT, entity("c"), None))  # type: ignore[arg-type]
    assert cached.resolve(Kind.PROMPT, parse_reference("c")).entity_id == "c"


def test_on_sqlite_unknown_partials_cost_no_reads_once_missed_and_a_new_one_renders_at_once(tmp_path) -> None:
    from core.service import PromptService
    from infra.sqlite import open_sqlite_stores

    stores = open_sqlite_stores(tmp_path / "cuecard.db")
    reads = []
    inner = stores.templates

    class Counting:
        def resolve(self, kind: Kind, ref: Reference) -> TemplateVersion:
            reads.append(str(ref))
            return inner.resolve(kind, ref)

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

    service = PromptService(CachingTemplateStore(Counting(), ttl=60, pinned_size=64), stores.labels)  # type: ignore[arg-type]
    tags = "".join(f"{{{{>pl-missing-{i}}}}}" for i in range(200))
    service.create_prompt({"name": "p", "slug": "many-missing", "string": tags + "[{{>pl-later}}]", "parameters": {}})
    assert service.render("many-missing", {}).body["prompt"] == "[]"
    first = len(reads)
    assert first == 202  # the prompt and each partial tag once
    for _ in range(3):
        service.render("many-missing", {})
    assert len(reads) == first  # hits and misses alike come from memory

    service.create_partial({"name": "later", "slug": "pl-later", "string": "now"})
    assert service.render("many-missing", {}).body["prompt"] == "[now]"
