"""CachingTemplateStore against a fake inner store: bounds, invalidation and races."""

from __future__ import annotations

import threading
from typing import Any, Callable

from core.models import Kind, TemplateVersion, VersionDraft
from core.references import Reference, parse_reference
from infra.cache import CachingTemplateStore


def version(entity_id: str, number: int, string: str = "") -> TemplateVersion:
    return TemplateVersion(kind=Kind.PROMPT, entity_id=entity_id, slug=f"pp-{entity_id}-000000", version=number,
                           version_id=f"v{number}", string=string, created_at="now")


class FakeStore:
    """Every entity has versions 1..latest; published = 1. Counts resolve calls."""

    def __init__(self) -> None:
        self.latest: dict[str, int] = {}
        self.resolves = 0
        self.before_answer: Callable[[], None] = lambda: None

    def resolve(self, kind: Kind, ref: Reference) -> TemplateVersion:
        self.resolves += 1
        entity_id = ref.key.split("-")[1] if ref.key.startswith("pp-") else ref.key
        number = {"number": ref.number, "latest": self.latest[entity_id]}.get(ref.selector) or 1
        answer = version(entity_id, number)
        self.before_answer()
        return answer

    def append_version(self, kind: Kind, key: str, build: Callable[[TemplateVersion], VersionDraft]) -> TemplateVersion:
        self.latest[key] += 1
        return version(key, self.latest[key])

    def delete(self, kind: Kind, key: str) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call {name}")


def test_pinned_entries_are_bounded_lru() -> None:
    inner = FakeStore()
    inner.latest = {"a": 5}
    cached = CachingTemplateStore(inner, ttl=0, pinned_size=2)  # a version takes 2 slots: id and slug
    cached.resolve(Kind.PROMPT, parse_reference("a@1"))
    cached.resolve(Kind.PROMPT, parse_reference("pp-a-000000@1"))
    assert inner.resolves == 1
    cached.resolve(Kind.PROMPT, parse_reference("a@2"))  # evicts version 1
    cached.resolve(Kind.PROMPT, parse_reference("a@1"))
    assert inner.resolves == 3


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


def test_a_read_racing_a_write_does_not_cache_the_old_answer() -> None:
    inner = FakeStore()
    inner.latest = {"a": 1}
    cached = CachingTemplateStore(inner, ttl=60, pinned_size=16)
    reading, written = threading.Event(), threading.Event()

    def write_meanwhile() -> None:
        reading.set()
        written.wait(5)

    inner.before_answer = write_meanwhile
    reader = threading.Thread(target=cached.resolve, args=(Kind.PROMPT, parse_reference("a@latest")))
    reader.start()
    reading.wait(5)
    inner.before_answer = lambda: None
    cached.append_version(Kind.PROMPT, "a", lambda latest: None)  # type: ignore[arg-type,return-value]
    written.set()
    reader.join(5)

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

