"""External ids contract: a prompt's other names (OpenAI's `pmpt_...`), set on create, replaced on update, found
wherever a key is, unique among live prompts (and apart from their slugs) under races, freed on delete and
when an update drops them."""

from __future__ import annotations

import secrets

import pytest

from core.errors import Conflict, ExternalIdTaken, InvalidRequest, PartialNotFound, PromptNotFound, VersionNotFound
from core.models import Kind
from core.references import MAX_EXTERNAL_IDS, parse_reference
from tests.contract.conftest import Backend
from tests.contract.support import appending, create, draft, expect_errors, new_entity, new_label, run_threads

PROMPT, PARTIAL = Kind.PROMPT, Kind.PARTIAL


def pmpt() -> str:
    """An id as OpenAI's stored prompts have them."""
    return f"pmpt_{secrets.token_hex(24)}"


def ref(text: str):
    return parse_reference(text)


def holder(templates, key: str) -> str:
    return templates.get_entity(PROMPT, key).id


def test_external_ids_are_set_on_create_and_name_the_prompt_as_its_id_and_slug_do(backend: Backend) -> None:
    templates = backend.stores.templates
    first, second = pmpt(), "legacy:summarize.v2"
    prompt = create(templates, string="v1", external_ids=(first, second))
    templates.append_version(PROMPT, prompt.id, appending("v2"))
    templates.set_label(prompt.id, 1, "production")

    head = templates.get_entity(PROMPT, prompt.id)
    assert head.external_ids == (first, second)  # in the order given
    assert [entity.external_ids for entity in templates.list_entities(PROMPT)] == [(first, second)]
    for key in (first, second):
        assert templates.get_entity(PROMPT, key) == head
        for suffix, number in {"": 1, "@latest": 2, "@1": 1, "@2": 2, "@production": 1}.items():
            found = templates.resolve(PROMPT, ref(key + suffix))
            assert (found.entity_id, found.slug, found.version) == (prompt.id, prompt.slug, number), key + suffix
        assert templates.get_version(PROMPT, key, 2).string == "v2"
        assert [version.version for version in templates.list_versions(PROMPT, key)] == [2, 1]
    expect_errors([
        ("ext@3", VersionNotFound, lambda: templates.resolve(PROMPT, ref(f"{first}@3"))),
        ("ext@staging", VersionNotFound, lambda: templates.resolve(PROMPT, ref(f"{first}@staging"))),
        ("unknown ext", PromptNotFound, lambda: templates.resolve(PROMPT, ref(pmpt()))),
        ("not a partial's", PartialNotFound, lambda: templates.resolve(PARTIAL, ref(first))),
    ])
    assert create(templates).external_ids == ()  # none unless given
    assert templates.get_entity(PROMPT, prompt.slug).external_ids == (first, second)


def test_writes_take_an_external_id_as_the_key(backend: Backend) -> None:
    templates = backend.stores.templates
    key = pmpt()
    prompt = create(templates, string="v1", external_ids=(key,))

    assert templates.append_version(PROMPT, key, appending("v2")).entity_id == prompt.id
    assert templates.publish(PROMPT, key, 2).published_version == 2
    assert templates.set_label(key, 1, "staging").labels == {"staging": 1}
    assert templates.remove_label(key, "staging").labels == {}
    assert templates.update_entity(PROMPT, key, {"name": "renamed"}).name == "renamed"
    assert templates.get_version_by_id(PROMPT, key, templates.get_version(PROMPT, prompt.id, 1).version_id).version == 1
    assert templates.get_entity(PROMPT, prompt.id).external_ids == (key,)  # other head fields leave them be
    templates.delete(PROMPT, key)
    with pytest.raises(PromptNotFound):
        templates.get_entity(PROMPT, prompt.id)


def test_an_update_replaces_the_list_and_never_makes_a_version(backend: Backend) -> None:
    templates = backend.stores.templates
    kept, dropped, added = pmpt(), pmpt(), pmpt()
    prompt = create(templates, external_ids=(dropped, kept))
    before = templates.get_entity(PROMPT, prompt.id)

    after = templates.update_entity(PROMPT, dropped, {"external_ids": [added, kept], "name": "renamed"})

    assert (after.external_ids, after.name) == ((added, kept), "renamed")
    assert templates.get_entity(PROMPT, added) == after
    assert (after.latest_version, after.published_version) == (before.latest_version, before.published_version)
    assert len(templates.list_versions(PROMPT, prompt.id)) == 1
    with pytest.raises(PromptNotFound):
        templates.resolve(PROMPT, ref(dropped))
    assert templates.update_entity(PROMPT, kept, {"external_ids": (kept,)}).external_ids == (kept,)
    cleared = templates.update_entity(PROMPT, prompt.slug, {"external_ids": []})
    assert cleared.external_ids == () == templates.get_entity(PROMPT, prompt.id).external_ids
    with pytest.raises(PromptNotFound):
        templates.get_entity(PROMPT, kept)


def test_an_external_id_names_one_live_prompt_and_is_no_live_slug(backend: Backend) -> None:
    templates = backend.stores.templates
    taken = pmpt()
    owner = create(templates, external_ids=(taken,))
    other = create(templates)
    partial = create(templates, PARTIAL)

    for attempt in (lambda: templates.create(PROMPT, new_entity(external_ids=(pmpt(), taken)), draft()),
                    lambda: templates.update_entity(PROMPT, other.id, {"external_ids": [taken]})):
        with pytest.raises(ExternalIdTaken) as caught:
            attempt()
        assert (caught.value.status, caught.value.code, caught.value.param) == (409, "external_id_taken", "external_ids")
        assert owner.slug in caught.value.message
    with pytest.raises(ExternalIdTaken, match=other.slug):  # another prompt's slug names it already
        templates.update_entity(PROMPT, owner.id, {"external_ids": [other.slug]})
    with pytest.raises(Conflict):  # nor may a new prompt's slug be a live external id
        templates.create(PROMPT, new_entity(slug=taken), draft())

    assert holder(templates, taken) == owner.id  # the refused writes left nothing behind
    assert templates.get_entity(PROMPT, other.id).external_ids == ()
    assert {entity.id for entity in templates.list_entities(PROMPT)} == {owner.id, other.id}
    # A partial's slug is another kind's key: a prompt may take it as an external id.
    templates.update_entity(PROMPT, other.id, {"external_ids": [partial.slug]})
    assert holder(templates, partial.slug) == other.id
    assert templates.get_entity(PARTIAL, partial.slug).id == partial.id


def test_delete_frees_the_external_ids_and_an_update_frees_those_it_drops(backend: Backend) -> None:
    templates = backend.stores.templates
    first, second = pmpt(), pmpt()
    gone = create(templates, external_ids=(first, second))
    mover = create(templates, external_ids=(pmpt(),))

    templates.delete(PROMPT, first)
    for key in (first, second):
        with pytest.raises(PromptNotFound):
            templates.resolve(PROMPT, ref(key))
    created = create(templates, external_ids=(first,))
    assert holder(templates, first) == created.id
    templates.update_entity(PROMPT, mover.id, {"external_ids": [second]})
    assert holder(templates, second) == mover.id

    templates.update_entity(PROMPT, mover.id, {"external_ids": []})
    templates.update_entity(PROMPT, created.id, {"external_ids": [first, second]})
    assert holder(templates, second) == created.id
    with pytest.raises(PromptNotFound):
        templates.get_entity(PROMPT, gone.id)  # the deleted prompt stays deleted; its versions stay stored
    assert backend.versions_kept(PROMPT, gone.id) == {1: "v1"}


def test_a_deleted_prompts_slug_may_become_an_external_id_and_the_other_way_round(backend: Backend) -> None:
    templates = backend.stores.templates
    old = create(templates, string="old")
    assert templates.resolve(PROMPT, ref(old.slug)).entity_id == old.id  # remembered where a store does
    templates.delete(PROMPT, old.slug)
    claimer = create(templates, string="claimer", external_ids=(old.slug,))
    assert templates.resolve(PROMPT, ref(f"{old.slug}@1")).entity_id == claimer.id

    templates.update_entity(PROMPT, claimer.id, {"external_ids": []})
    with pytest.raises(PromptNotFound):
        templates.resolve(PROMPT, ref(old.slug))
    slugged = create(templates, string="slugged", slug=old.slug)
    assert templates.resolve(PROMPT, ref(old.slug)).entity_id == slugged.id


def test_another_process_sees_an_external_id_move_at_once(backend: Backend) -> None:
    here, there = backend.stores.templates, backend.open().templates
    key = pmpt()
    first = create(here, string="first", external_ids=(key,))
    second = create(here, string="second")
    assert there.resolve(PROMPT, ref(key)).entity_id == first.id
    assert there.get_entity(PROMPT, key).id == first.id

    here.update_entity(PROMPT, first.id, {"external_ids": []})
    here.update_entity(PROMPT, second.id, {"external_ids": [key]})

    assert there.resolve(PROMPT, ref(key)).string == "second"
    assert there.resolve(PROMPT, ref(f"{key}@1")).entity_id == second.id
    assert there.get_entity(PROMPT, key).id == second.id
    there.delete(PROMPT, key)
    with pytest.raises(PromptNotFound):
        here.resolve(PROMPT, ref(key))
    assert here.get_entity(PROMPT, first.id).external_ids == ()


def test_stores_refuse_external_ids_no_reference_could_carry(backend: Backend) -> None:
    templates = backend.stores.templates
    prompt = create(templates)
    partial = create(templates, PARTIAL)
    bad_lists = {
        "an @": ["pmpt_a@3"], "empty": [""], "too long": ["p" * 129], "a space": ["pmpt a"], "a slash": ["a/b"],
        "a UUID": ["6f0d7c1e-3b0a-4c59-9a57-2f3c1c0e7d41"], "an upper-case UUID": ["6F0D7C1E-3B0A-4C59-9A57-2F3C1C0E7D41"],
        "a leading dash": ["-pmpt"], "a newline": ["pmpt_a\n"], "twice": ["pmpt_a", "pmpt_b", "pmpt_a"],
        "too many": [f"pmpt_{n}" for n in range(MAX_EXTERNAL_IDS + 1)], "not a string": [5], "reserved": ["partials"],
        "its own slug": [prompt.slug], "not a list": "pmpt_a",
    }
    cases = []
    for name, values in bad_lists.items():
        cases.append((f"update: {name}", InvalidRequest,
                      lambda values=values: templates.update_entity(PROMPT, prompt.id, {"external_ids": values})))
        if name != "its own slug":
            cases.append((f"create: {name}", InvalidRequest, lambda values=values: templates.create(
                PROMPT, new_entity(external_ids=values), draft())))
    cases.append(("a partial's", InvalidRequest, lambda: templates.create(
        PARTIAL, new_entity(PARTIAL, external_ids=(pmpt(),)), draft())))
    cases.append(("a partial's update", InvalidRequest,
                  lambda: templates.update_entity(PARTIAL, partial.id, {"external_ids": [pmpt()]})))
    expect_errors(cases)
    assert [entity.id for entity in templates.list_entities(PROMPT)] == [prompt.id]
    assert templates.get_entity(PROMPT, prompt.id).external_ids == ()
    longest = ["p" * 128, "A0.b:c-d_e", *(f"pmpt_{n}" for n in range(MAX_EXTERNAL_IDS - 2))]
    assert templates.update_entity(PROMPT, prompt.id, {"external_ids": longest}).external_ids == tuple(longest)
    assert holder(templates, "p" * 128) == holder(templates, "A0.b:c-d_e") == prompt.id


def test_concurrent_creates_claiming_one_external_id_admit_exactly_one(backend: Backend) -> None:
    templates = backend.stores.templates
    key = pmpt()

    errors = run_threads(8, lambda number: templates.create(
        PROMPT, new_entity(external_ids=(pmpt(), key)), draft(f"creator {number}")))

    assert len(errors) == 7 and all(isinstance(error, Conflict) for error in errors), errors
    [winner] = templates.list_entities(PROMPT)
    assert holder(templates, key) == winner.id and key in winner.external_ids


def test_concurrent_updates_claiming_one_external_id_admit_exactly_one(backend: Backend) -> None:
    templates = backend.stores.templates
    key = pmpt()
    prompts = [create(templates, string=f"prompt {n}") for n in range(8)]

    errors = run_threads(8, lambda number: templates.update_entity(PROMPT, prompts[number].id, {"external_ids": [key]}))

    assert len(errors) == 7 and all(isinstance(error, Conflict) for error in errors), errors
    holders = [entity for entity in templates.list_entities(PROMPT) if entity.external_ids]
    assert len(holders) == 1 and holders[0].external_ids == (key,)
    assert holder(templates, key) == holders[0].id
    assert templates.resolve(PROMPT, ref(f"{key}@1")).entity_id == holders[0].id


def test_an_external_id_moving_between_prompts_under_concurrent_writes_stays_on_one(backend: Backend) -> None:
    """Two prompts hand one id back and forth while a third keeps claiming it: at every end, one holds it."""
    templates = backend.stores.templates
    key = pmpt()
    canary = backend.stores.labels.create_label(new_label()).name
    prompts = [create(templates, string=f"prompt {n}") for n in range(3)]
    templates.update_entity(PROMPT, prompts[0].id, {"external_ids": [key]})

    def write(number: int) -> None:
        for round_ in range(4):
            try:
                if number == 0:
                    templates.update_entity(PROMPT, prompts[round_ % 2].id, {"external_ids": []})
                elif number == 1:
                    templates.update_entity(PROMPT, prompts[(round_ + 1) % 2].id, {"external_ids": [key]})
                elif number == 2:
                    templates.update_entity(PROMPT, prompts[2].id, {"external_ids": [key, pmpt()]})
                else:
                    templates.set_label(prompts[round_ % 3].id, 1, canary)  # other HEAD writes interleave
            except Conflict:
                pass

    assert run_threads(4, write) == []
    holders = [entity for entity in templates.list_entities(PROMPT) if key in entity.external_ids]
    assert len(holders) <= 1
    if holders:
        assert holder(templates, key) == holders[0].id
    else:
        with pytest.raises(PromptNotFound):
            templates.get_entity(PROMPT, key)
