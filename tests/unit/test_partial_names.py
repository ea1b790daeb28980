"""`{{>name}}`: partials resolve by id, then slug, then name within the rendered prompt's collection."""

import json
from itertools import count

import pytest

from core.errors import PartialInUse
from core.service import PromptService
from tests.unit.fakes import InMemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingStore(InMemoryStore):
    """Counts the reads a `{{>name}}` lookup makes."""

    def __init__(self) -> None:
        super().__init__()
        self.entity_reads = 0
        self.listings = 0

    def get_entity(self, kind, key):
        self.entity_reads += 1
        return super().get_entity(kind, key)

    def list_entities(self, kind, *, collection_id=None):
        self.listings += 1
        return super().list_entities(kind, collection_id=collection_id)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store():
    return CountingStore()


def ticking():
    """Creation times a second apart, so "oldest" is well defined."""
    ticks = count()

    def now() -> str:
        tick = next(ticks)
        return f"2025-01-01T{tick // 3600:02d}:{tick // 60 % 60:02d}:{tick % 60:02d}.000Z"

    return now


@pytest.fixture
def service(store, clock):
    return PromptService(store, store, clock=clock, now=ticking())


def chat(content: str) -> str:
    return json.dumps([{"role": "user", "content": content}])


def prompt(service, string: str, collection: str = "default") -> str:
    return service.create_prompt({"name": "P", "string": chat(string), "collection_id": collection})["id"]


def partial(service, name: str, string: str, collection: str = "default", slug: str | None = None) -> dict:
    body = {"name": name, "string": string, "collection_id": collection, **({"slug": slug} if slug else {})}
    return service.create_partial(body)


def rendered(service, reference: str, variables: dict | None = None) -> str:
    return service.render(reference, {"variables": variables or {}}).body["messages"][0]["content"]


def test_a_partial_renders_by_its_name_as_by_its_slug_and_id(service):
    made = partial(service, "glossary", "G")
    assert made["slug"].startswith("pl-glossary-")  # generated: the user never typed it
    for tag in ("glossary", made["slug"], made["id"]):
        assert rendered(service, prompt(service, f"[{{{{>{tag}}}}}]")) == "[G]"


def test_selectors_apply_to_names(service):
    made = partial(service, "glossary", "one")
    service.update_partial(made["id"], {"string": "two"})
    assert rendered(service, prompt(service, "{{>glossary}}/{{>glossary@2}}/{{>glossary@latest}}")) == "one/two/two"


def test_a_name_with_spaces_resolves(service):
    partial(service, "Style guide", "be brief")
    assert rendered(service, prompt(service, "{{>Style guide}}")) == "be brief"


def test_names_resolve_only_in_the_prompts_collection(service):
    partial(service, "glossary", "A", collection="team-a")
    partial(service, "glossary", "B", collection="team-b")
    assert rendered(service, prompt(service, "[{{>glossary}}]", "team-a")) == "[A]"
    assert rendered(service, prompt(service, "[{{>glossary}}]", "team-b")) == "[B]"
    assert rendered(service, prompt(service, "[{{>glossary}}]", "default")) == "[]"  # unknown: empty, as before


def test_nested_partials_resolve_names_in_the_prompts_collection(service):
    partial(service, "outer", "<{{>inner}}>", collection="c")
    partial(service, "inner", "in", collection="c")
    assert rendered(service, prompt(service, "{{>outer}}", "c")) == "<in>"


def test_a_slug_wins_over_a_name(service):
    partial(service, "pl-shared", "by name")
    partial(service, "other", "by slug", slug="pl-shared")
    assert rendered(service, prompt(service, "{{>pl-shared}}")) == "by slug"


def test_of_two_partials_sharing_a_name_the_oldest_wins(service):
    """Stable: creating a second partial of the same name never changes what existing prompts render."""
    first = partial(service, "glossary", "first")
    partial(service, "glossary", "second")
    reference = prompt(service, "{{>glossary}}")
    assert rendered(service, reference) == "first"
    service.delete_partial(first["id"], force=True)
    assert rendered(service, reference) == "second"  # the name now means the one left


def test_a_rename_and_a_prompt_moving_collection_are_seen_at_once(service):
    made = partial(service, "old", "P", collection="c")
    reference = prompt(service, "[{{>new}}]", "c")
    assert rendered(service, reference) == "[]"
    service.update_partial(made["id"], {"name": "new"})
    assert rendered(service, reference) == "[P]"
    service.update_prompt(reference, {"collection_id": "elsewhere"})
    assert rendered(service, reference) == "[]"


def test_name_lookups_and_misses_are_cached_for_the_ttl(service, store, clock):
    partial(service, "glossary", "G")
    reference = prompt(service, "{{>glossary}}{{>nothing}}{{>>dynamic}}")
    rendered(service, reference, {"dynamic": "also-nothing"})
    reads = (store.entity_reads, store.listings)
    for _ in range(5):
        assert rendered(service, reference, {"dynamic": "still-nothing"}) == "G"
    assert (store.entity_reads, store.listings) == reads  # misses and hits alike: no store read
    clock.now += 6
    rendered(service, reference)
    assert store.listings == reads[1] + 1


def test_without_a_cache_names_still_resolve(store):
    service = PromptService(store, store, name_cache_ttl=0, now=ticking())
    partial(service, "glossary", "G")
    assert rendered(service, prompt(service, "{{>glossary}}")) == "G"


def test_delete_counts_name_references_from_the_partials_collection(service):
    made = partial(service, "glossary", "G", collection="c")
    prompt(service, "{{>glossary}}", "d")  # another collection: there the name means nothing
    assert service.delete_partial(made["id"]) == {}
    made = partial(service, "glossary", "G", collection="c")
    user = service.create_prompt({"name": "user", "string": chat("{{>glossary@latest}}"), "collection_id": "c"})
    with pytest.raises(PartialInUse) as caught:
        service.delete_partial(made["id"])
    assert f"prompt {user['slug']} version 1" in caught.value.message


def test_delete_does_not_count_a_name_that_means_another_partial(service):
    older = partial(service, "glossary", "first")
    newer = partial(service, "glossary", "second")
    prompt(service, "{{>glossary}}")
    assert service.delete_partial(newer["id"]) == {}  # the name means the older one
    with pytest.raises(PartialInUse):
        service.delete_partial(older["id"])


def test_delete_counts_names_used_by_partials_of_the_collection(service):
    made = partial(service, "glossary", "G")
    user = partial(service, "wrapper", "<{{>glossary}}>")
    with pytest.raises(PartialInUse) as caught:
        service.delete_partial(made["id"])
    assert f"partial {user['slug']} version 1" in caught.value.message
