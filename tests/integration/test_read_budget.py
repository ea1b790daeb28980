"""Resolving any reference costs at most one read; the cache brings warm reads to zero."""

from __future__ import annotations

import pytest

from core.errors import PromptNotFound
from core.models import Kind
from core.references import parse_reference
from infra.cache import CachingTemplateStore
from infra.dynamodb_templates import DynamoTemplateStore
from tests.integration.builders import append, create, draft


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def labelled(templates: DynamoTemplateStore):
    entity = create(templates, string="v1")
    append(templates, Kind.PROMPT, entity.id, "v2")
    append(templates, Kind.PROMPT, entity.id, "v3")
    templates.set_label(entity.id, 2, "production")
    return entity


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{id}", 1),
        ("{slug}", 1),
        ("{id}@3", 3),
        ("{slug}@2", 2),
        ("{id}@latest", 3),
        ("{slug}@latest", 3),
        ("{id}@production", 2),
        ("{slug}@production", 2),
    ],
)
def test_every_reference_costs_at_most_one_read_even_cold(
    labelled, fresh_templates: DynamoTemplateStore, template: str, expected: int
) -> None:
    reference = parse_reference(template.format(id=labelled.id, slug=labelled.slug))
    fresh_templates.calls.reset()
    assert fresh_templates.resolve(Kind.PROMPT, reference).version == expected
    assert fresh_templates.calls.reads <= 1, fresh_templates.calls.by_operation
    assert fresh_templates.calls.writes == 0


def test_an_external_id_costs_two_reads_more_cold_and_one_more_once_seen(
    labelled, templates: DynamoTemplateStore, fresh_templates: DynamoTemplateStore
) -> None:
    """Not in the GSI (it may move between live prompts): the GSI's miss, then its claim and the item, both
    consistent. Once the store has seen the key name a prompt as an external id, it skips the GSI."""
    templates.update_entity(Kind.PROMPT, labelled.id, {"external_ids": ["pmpt_budget"]})
    for text, number, operations in (("pmpt_budget", 1, {"Query": 1, "GetItem": 2}),
                                     ("pmpt_budget@3", 3, {"GetItem": 2}),
                                     ("pmpt_budget@production", 2, {"GetItem": 2})):
        fresh_templates.calls.reset()
        assert fresh_templates.resolve(Kind.PROMPT, parse_reference(text)).version == number
        assert fresh_templates.calls.by_operation == operations, text
    fresh_templates.calls.reset()
    fresh_templates.resolve(Kind.PROMPT, parse_reference(f"{labelled.slug}@2"))  # slugs: as before
    assert fresh_templates.calls.reads <= 1


def test_after_a_slug_lookup_reads_are_consistent_gets_by_id(labelled, fresh_templates: DynamoTemplateStore) -> None:
    fresh_templates.resolve(Kind.PROMPT, parse_reference(labelled.slug))
    fresh_templates.calls.reset()
    fresh_templates.resolve(Kind.PROMPT, parse_reference(f"{labelled.slug}@production"))
    assert fresh_templates.calls.by_operation == {"GetItem": 1}


def test_a_warm_pinned_reference_costs_no_read(labelled, fresh_templates: DynamoTemplateStore) -> None:
    cached = CachingTemplateStore(fresh_templates, ttl=5.0, pinned_size=16)
    cached.resolve(Kind.PROMPT, parse_reference(f"{labelled.slug}@2"))
    fresh_templates.calls.reset()

    for reference in (f"{labelled.slug}@2", f"{labelled.id}@2"):  # cached under the id and the slug
        assert cached.resolve(Kind.PROMPT, parse_reference(reference)).version == 2
    assert cached.get_version(Kind.PROMPT, labelled.id, 2).version == 2
    assert fresh_templates.calls.reads == 0


def test_pointer_references_are_cached_for_the_ttl_only(labelled, fresh_templates: DynamoTemplateStore) -> None:
    clock = FakeClock()
    cached = CachingTemplateStore(fresh_templates, ttl=5.0, pinned_size=16, clock=clock)
    references = [f"{labelled.id}", f"{labelled.slug}@latest", f"{labelled.id}@production"]
    for reference in references:
        cached.resolve(Kind.PROMPT, parse_reference(reference))

    fresh_templates.calls.reset()
    clock.now += 4.9
    for reference in references:
        cached.resolve(Kind.PROMPT, parse_reference(reference))
    assert fresh_templates.calls.reads == 0

    clock.now += 0.2
    for reference in references:
        fresh_templates.calls.reset()
        cached.resolve(Kind.PROMPT, parse_reference(reference))
        assert fresh_templates.calls.reads == 1


def test_ttl_zero_always_reads(labelled, fresh_templates: DynamoTemplateStore) -> None:
    cached = CachingTemplateStore(fresh_templates, ttl=0, pinned_size=16)
    cached.resolve(Kind.PROMPT, parse_reference(f"{labelled.id}@latest"))
    fresh_templates.calls.reset()
    cached.resolve(Kind.PROMPT, parse_reference(f"{labelled.id}@latest"))
    cached.resolve(Kind.PROMPT, parse_reference(labelled.id))
    assert fresh_templates.calls.reads == 2


def test_writes_through_the_cache_are_seen_at_once(labelled, templates: DynamoTemplateStore) -> None:
    cached = CachingTemplateStore(templates, ttl=60.0, pinned_size=16, clock=FakeClock())
    latest, published = parse_reference(f"{labelled.slug}@latest"), parse_reference(labelled.id)
    production = parse_reference(f"{labelled.slug}@production")
    assert (cached.resolve(Kind.PROMPT, latest).version, cached.resolve(Kind.PROMPT, published).version) == (3, 1)
    assert cached.resolve(Kind.PROMPT, production).version == 2

    cached.append_version(Kind.PROMPT, labelled.id, lambda latest: draft("v4"))
    cached.publish(Kind.PROMPT, labelled.slug, 3)
    cached.set_label(labelled.id, 4, "production")

    assert cached.resolve(Kind.PROMPT, latest).version == 4
    assert cached.resolve(Kind.PROMPT, published).version == 3
    assert cached.resolve(Kind.PROMPT, production).version == 4

    pinned = parse_reference(f"{labelled.id}@1")
    cached.resolve(Kind.PROMPT, pinned)
    cached.delete(Kind.PROMPT, labelled.slug)
    for reference in (latest, published, production, pinned):
        with pytest.raises(PromptNotFound):
            cached.resolve(Kind.PROMPT, reference)
