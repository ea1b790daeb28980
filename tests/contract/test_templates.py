"""TemplateStore contract: create, resolve, versions, head updates, publish, labels, delete, immutability."""

from __future__ import annotations

import copy
import dataclasses
import uuid

import pytest

from core.errors import Conflict, InvalidRequest, LabelNotFound, PartialNotFound, PromptNotFound, VersionNotFound
from core.models import Kind, TemplateVersion
from core.references import parse_reference
from tests.contract.conftest import Backend
from tests.contract.support import (
    appending,
    create,
    draft,
    entity_missing,
    expect_errors,
    new_entity,
    new_label,
    rich_draft,
    stamp,
    unique,
)

PROMPT, PARTIAL = Kind.PROMPT, Kind.PARTIAL
kinds = pytest.mark.parametrize("kind", list(Kind), ids=[kind.value for kind in Kind])


def ref(text: str):
    return parse_reference(text)


def ids(entities) -> list[str]:
    return [entity.id for entity in entities]


@kinds
def test_create_stores_version_1_as_latest_and_published(backend: Backend, kind: Kind) -> None:
    templates = backend.stores.templates
    entity = new_entity(kind, name="Greeting", collection_id="c1", workspace_id="ws-1", metadata={"team": "a"})
    first = rich_draft("v1")

    created = templates.create(kind, entity, first)

    assert created == TemplateVersion.from_draft(kind, entity.id, entity.slug, 1, first)
    head = templates.get_entity(kind, entity.slug)
    assert head == dataclasses.replace(entity, latest_version=1, published_version=1, labels={}, deleted=False)
    assert templates.get_entity(kind, entity.id) == head
    for text in (entity.id, entity.slug, f"{entity.slug}@latest", f"{entity.id}@latest", f"{entity.slug}@1"):
        assert templates.resolve(kind, ref(text)) == created, text


def test_ids_are_lower_case_uuids_and_slugs_never_look_like_one(backend: Backend) -> None:
    templates = backend.stores.templates
    entity = new_entity()
    expect_errors([
        (f"create with id {bad!r}", InvalidRequest, lambda bad=bad: templates.create(PROMPT, bad, draft()))
        for bad in (dataclasses.replace(entity, id="greet"),
                    dataclasses.replace(entity, id=entity.id.upper()),
                    dataclasses.replace(entity, slug=str(uuid.uuid4())))
    ])
    assert templates.list_entities(PROMPT) == []


def test_slugs_are_unique_per_kind_among_live_entities(backend: Backend) -> None:
    templates = backend.stores.templates
    taken = create(templates, string="first")
    same_id = dataclasses.replace(new_entity(), id=taken.id)
    expect_errors([
        ("same slug", Conflict, lambda: templates.create(PROMPT, new_entity(slug=taken.slug), draft())),
        ("same id", Conflict, lambda: templates.create(PROMPT, same_id, draft())),
    ])
    templates.create(PROMPT, new_entity(slug=same_id.slug), draft())  # the failed create left nothing behind
    templates.create(PARTIAL, new_entity(PARTIAL, slug=taken.slug), draft("the partial"))  # another kind may use it
    assert templates.resolve(PARTIAL, ref(taken.slug)).string == "the partial"

    templates.delete(PROMPT, taken.id)
    with pytest.raises(Conflict):  # a deleted entity's id is never reused
        templates.create(PROMPT, dataclasses.replace(new_entity(), id=taken.id), draft())
    with pytest.raises(PromptNotFound):
        templates.resolve(PROMPT, ref(taken.slug))


@kinds
def test_a_deleted_entitys_slug_can_be_reused(backend: Backend, kind: Kind) -> None:
    templates = backend.stores.templates
    old = create(templates, kind, string="old v1")
    templates.append_version(kind, old.slug, appending("old v2"))
    assert templates.resolve(kind, ref(old.slug)).string == "old v1"  # remembered slug -> id, where a store does
    templates.delete(kind, old.slug)

    new = create(templates, kind, string="new v1", slug=old.slug)

    for text in (old.slug, f"{old.slug}@latest", f"{old.slug}@1", new.id):
        found = templates.resolve(kind, ref(text))
        assert (found.entity_id, found.string) == (new.id, "new v1"), text
    expect_errors([("old @2", VersionNotFound, lambda: templates.resolve(kind, ref(f"{old.slug}@2"))),
                   ("old id", entity_missing(kind), lambda: templates.resolve(kind, ref(old.id)))])
    assert templates.get_entity(kind, old.slug).id == new.id
    assert [version.string for version in templates.list_versions(kind, old.slug)] == ["new v1"]
    templates.append_version(kind, old.slug, appending("new v2"))
    assert templates.get_entity(kind, new.id).latest_version == 2
    assert ids(e for e in templates.list_entities(kind) if e.slug == old.slug) == [new.id]
    assert backend.versions_kept(kind, old.id) == {1: "old v1", 2: "old v2"}  # the old one is still stored

    with pytest.raises(Conflict):  # the slug is taken again, by the new entity
        templates.create(kind, new_entity(kind, slug=old.slug), draft())
    templates.delete(kind, new.id)
    third = create(templates, kind, string="third", slug=old.slug)  # and again
    assert templates.resolve(kind, ref(old.slug)).entity_id == third.id


@kinds
def test_another_process_sees_the_slug_reused(backend: Backend, kind: Kind) -> None:
    """A second opening (another process, a warm container) that remembered the old entity finds the new one."""
    here, there = backend.stores.templates, backend.open().templates
    old = create(here, kind, string="old")
    assert there.resolve(kind, ref(old.slug)).entity_id == old.id
    assert there.get_entity(kind, old.slug).id == old.id

    here.delete(kind, old.slug)
    new = create(here, kind, string="new", slug=old.slug)

    assert there.resolve(kind, ref(old.slug)).entity_id == new.id
    assert there.resolve(kind, ref(f"{old.slug}@1")).string == "new"
    assert there.get_entity(kind, old.slug).id == new.id
    assert there.update_entity(kind, old.slug, {"name": "renamed"}).id == new.id
    there.delete(kind, old.slug)
    with pytest.raises(entity_missing(kind)):
        here.resolve(kind, ref(old.slug))
    assert backend.versions_kept(kind, new.id) == {1: "new"}


def test_resolve_follows_every_selector_by_id_and_by_slug(backend: Backend) -> None:
    templates = backend.stores.templates
    canary = backend.stores.labels.create_label(new_label()).name
    prompt = create(templates, string="v1")
    for number in (2, 3):
        templates.append_version(PROMPT, prompt.slug, appending(f"v{number}"))
    templates.publish(PROMPT, prompt.slug, 2)
    templates.set_label(prompt.id, 3, "production")
    templates.set_label(prompt.slug, 1, canary)
    partial = create(templates, PARTIAL, string="v1")
    templates.append_version(PARTIAL, partial.id, appending("v2"))

    expected = {"": 2, "@latest": 3, "@1": 1, "@2": 2, "@3": 3, "@production": 3, f"@{canary}": 1}
    for key in (prompt.id, prompt.slug):
        for suffix, number in expected.items():
            found = templates.resolve(PROMPT, ref(key + suffix))
            assert (found.kind, found.entity_id, found.slug, found.version, found.string) == (
                PROMPT, prompt.id, prompt.slug, number, f"v{number}"), key + suffix
    for suffix, number in {"": 1, "@latest": 2, "@2": 2}.items():
        found = templates.resolve(PARTIAL, ref(partial.slug + suffix))
        assert (found.kind, found.version, found.string) == (PARTIAL, number, f"v{number}")


def test_missing_things_raise_not_found_errors_of_their_type(backend: Backend) -> None:
    templates = backend.stores.templates
    known_label = backend.stores.labels.create_label(new_label()).name
    prompt = create(templates)
    partial = create(templates, PARTIAL)
    before = templates.get_entity(PROMPT, prompt.id)
    nobody = str(uuid.uuid4())

    expect_errors([
        ("unknown prompt slug", PromptNotFound, lambda: templates.resolve(PROMPT, ref("pp-missing"))),
        ("unknown prompt id", PromptNotFound, lambda: templates.resolve(PROMPT, ref(nobody))),
        ("a partial is no prompt", PromptNotFound, lambda: templates.resolve(PROMPT, ref(partial.slug))),
        ("unknown partial", PartialNotFound, lambda: templates.resolve(PARTIAL, ref("pl-missing"))),
        ("a prompt is no partial", PartialNotFound, lambda: templates.get_entity(PARTIAL, prompt.slug)),
        ("get_entity", PromptNotFound, lambda: templates.get_entity(PROMPT, "pp-missing")),
        ("list_versions", PartialNotFound, lambda: templates.list_versions(PARTIAL, "pl-missing")),
        ("get_version of no prompt", PromptNotFound, lambda: templates.get_version(PROMPT, nobody, 1)),
        ("get_version_by_id of no prompt", PromptNotFound,
         lambda: templates.get_version_by_id(PROMPT, "pp-missing", nobody)),
        ("append_version", PromptNotFound, lambda: templates.append_version(PROMPT, "pp-missing", appending("x"))),
        ("update_entity", PromptNotFound, lambda: templates.update_entity(PROMPT, "pp-missing", {"name": "x"})),
        ("publish", PromptNotFound, lambda: templates.publish(PROMPT, "pp-missing", 1)),
        ("set_label", PromptNotFound, lambda: templates.set_label("pp-missing", 1, "production")),
        ("delete prompt", PromptNotFound, lambda: templates.delete(PROMPT, "pp-missing")),
        ("delete partial", PartialNotFound, lambda: templates.delete(PARTIAL, nobody)),
        ("@2", VersionNotFound, lambda: templates.resolve(PROMPT, ref(f"{prompt.slug}@2"))),
        ("unset built-in label", VersionNotFound, lambda: templates.resolve(PROMPT, ref(f"{prompt.slug}@staging"))),
        ("unset custom label", VersionNotFound, lambda: templates.resolve(PROMPT, ref(f"{prompt.id}@{known_label}"))),
        ("get_version 2", VersionNotFound, lambda: templates.get_version(PROMPT, prompt.id, 2)),
        ("get_version_by_id", VersionNotFound, lambda: templates.get_version_by_id(PROMPT, prompt.slug, nobody)),
        ("publish 2", VersionNotFound, lambda: templates.publish(PROMPT, prompt.id, 2)),
        ("label version 2", VersionNotFound, lambda: templates.set_label(prompt.id, 2, "production")),
        ("unknown label", LabelNotFound, lambda: templates.resolve(PROMPT, ref(f"{prompt.slug}@no-such-label"))),
        ("set unknown label", LabelNotFound, lambda: templates.set_label(prompt.slug, 1, "no-such-label")),
    ])
    assert templates.get_entity(PROMPT, prompt.id) == before


@kinds
def test_append_version_adds_latest_plus_one_built_from_the_latest(backend: Backend, kind: Kind) -> None:
    templates = backend.stores.templates
    entity = new_entity(kind)
    first = templates.create(kind, entity, draft("v1"))
    given: list[TemplateVersion] = []

    def build(latest: TemplateVersion):
        given.append(latest)
        return draft(latest.string + "+", created_at=stamp(latest.version))

    second = templates.append_version(kind, entity.slug, build)
    assert given[-1] == first
    assert (second.kind, second.entity_id, second.slug, second.version, second.string) == (
        kind, entity.id, entity.slug, 2, "v1+")
    third = templates.append_version(kind, entity.id, build)
    assert given[-1] == second
    assert (third.version, third.string) == (3, "v1++")

    head = templates.get_entity(kind, entity.id)
    assert (head.latest_version, head.published_version) == (3, 1)
    assert templates.resolve(kind, ref(entity.slug)) == first
    assert templates.resolve(kind, ref(f"{entity.slug}@latest")) == third
    assert templates.get_version_by_id(kind, entity.slug, second.version_id) == second
    assert templates.list_versions(kind, entity.slug) == [third, second, first]


def test_update_entity_changes_head_fields_only(backend: Backend) -> None:
    templates = backend.stores.templates
    prompt = create(templates, workspace_id="ws-1")
    templates.append_version(PROMPT, prompt.id, appending("v2"))
    versions = templates.list_versions(PROMPT, prompt.id)

    metadata = {"a": [1, "x"], "b": {"c": True}}
    updated = templates.update_entity(PROMPT, prompt.slug, {
        "name": "Renamed", "collection_id": "c2", "workspace_id": "ws-2", "metadata": metadata})

    assert (updated.name, updated.collection_id, updated.workspace_id, updated.metadata) == (
        "Renamed", "c2", "ws-2", metadata)
    assert (updated.id, updated.slug, updated.created_at, updated.latest_version, updated.published_version) == (
        prompt.id, prompt.slug, prompt.created_at, 2, 1)
    assert templates.get_entity(PROMPT, prompt.id) == updated
    assert templates.update_entity(PROMPT, prompt.id, {"workspace_id": None}).workspace_id is None
    current = templates.get_entity(PROMPT, prompt.id)

    expect_errors([
        (f"update_entity({changes})", InvalidRequest, lambda changes=changes: templates.update_entity(
            PROMPT, prompt.id, changes))
        for changes in ({"slug": "pp-other"}, {"latest_version": 7}, {"published_version": 2},
                        {"labels": {"production": 2}}, {"deleted": True}, {"name": "ok", "id": str(uuid.uuid4())},
                        {"colour": "red"})
    ])
    assert templates.get_entity(PROMPT, prompt.id) == current
    assert templates.list_versions(PROMPT, prompt.id) == versions


def test_list_entities_is_oldest_first_by_collection_without_deleted_ones(backend: Backend) -> None:
    templates = backend.stores.templates
    b = create(templates, created_at=stamp(20), collection_id="blue")
    a = create(templates, created_at=stamp(10))
    c = create(templates, created_at=stamp(30), collection_id="blue")
    gone = create(templates, created_at=stamp(5))
    templates.delete(PROMPT, gone.id)
    partial = create(templates, PARTIAL, created_at=stamp(1))

    assert ids(templates.list_entities(PROMPT)) == [a.id, b.id, c.id]
    assert ids(templates.list_entities(PROMPT, collection_id="blue")) == [b.id, c.id]
    assert ids(templates.list_entities(PROMPT, collection_id="default")) == [a.id]
    assert templates.list_entities(PROMPT, collection_id="none-such") == []
    assert ids(templates.list_entities(PARTIAL)) == [partial.id]
    assert templates.list_entities(PROMPT)[0] == templates.get_entity(PROMPT, a.id)


@kinds
def test_publish_moves_the_published_pointer(backend: Backend, kind: Kind) -> None:
    templates = backend.stores.templates
    entity = create(templates, kind, string="v1")
    for number in (2, 3):
        templates.append_version(kind, entity.id, appending(f"v{number}"))

    head = templates.publish(kind, entity.slug, 3)
    assert head.published_version == 3 and head == templates.get_entity(kind, entity.id)
    assert templates.resolve(kind, ref(entity.slug)) == templates.get_version(kind, entity.id, 3)
    assert templates.publish(kind, entity.id, 1).published_version == 1  # back to an older one
    with pytest.raises(VersionNotFound):
        templates.publish(kind, entity.id, 4)
    assert templates.resolve(kind, ref(entity.id)).string == "v1"
    assert templates.get_entity(kind, entity.id).latest_version == 3


def test_a_label_marks_one_version_per_prompt(backend: Backend) -> None:
    templates = backend.stores.templates
    custom = backend.stores.labels.create_label(new_label()).name
    prompt = create(templates, string="v1")
    other = create(templates, string="other v1")
    for number in (2, 3):
        templates.append_version(PROMPT, prompt.id, appending(f"v{number}"))

    head = templates.set_label(prompt.slug, 2, "production")
    assert head.labels == {"production": 2} and head == templates.get_entity(PROMPT, prompt.id)
    templates.set_label(prompt.id, 2, custom)  # two labels on one version
    templates.set_label(prompt.id, 3, "production")  # moves the label
    templates.set_label(other.slug, 1, "production")  # the same label on another prompt

    assert templates.get_entity(PROMPT, prompt.id).labels == {"production": 3, custom: 2}
    assert templates.get_entity(PROMPT, other.id).labels == {"production": 1}
    assert templates.resolve(PROMPT, ref(f"{prompt.slug}@production")).string == "v3"
    assert templates.resolve(PROMPT, ref(f"{prompt.slug}@{custom}")).string == "v2"
    assert templates.resolve(PROMPT, ref(f"{other.id}@production")).string == "other v1"
    assert templates.get_entity(PROMPT, prompt.id).published_version == 1


def test_a_label_can_be_removed(backend: Backend) -> None:
    templates = backend.stores.templates
    custom = backend.stores.labels.create_label(new_label()).name
    prompt = create(templates, string="v1")
    other = create(templates, string="other v1")
    templates.append_version(PROMPT, prompt.id, appending("v2"))
    templates.set_label(prompt.id, 2, "production")
    templates.set_label(prompt.id, 2, custom)
    templates.set_label(other.id, 1, custom)

    head = templates.remove_label(prompt.slug, "production")

    assert head.labels == {custom: 2} and head == templates.get_entity(PROMPT, prompt.id)
    assert (head.latest_version, head.published_version) == (2, 1)
    with pytest.raises(VersionNotFound):
        templates.resolve(PROMPT, ref(f"{prompt.slug}@production"))
    assert templates.resolve(PROMPT, ref(f"{prompt.slug}@{custom}")).string == "v2"
    assert templates.remove_label(prompt.id, custom).labels == {}
    assert templates.get_entity(PROMPT, other.id).labels == {custom: 1}  # other prompts keep theirs
    assert [v.string for v in templates.list_versions(PROMPT, prompt.id)] == ["v2", "v1"]  # no version changes

    # Removing a label the prompt does not carry (or that does not exist) is a no-op.
    assert templates.remove_label(prompt.id, "staging").labels == {}
    assert templates.remove_label(prompt.id, "no-such-label").labels == {}
    templates.set_label(prompt.id, 1, custom)  # and it can be set again
    assert templates.resolve(PROMPT, ref(f"{prompt.id}@{custom}")).string == "v1"
    expect_errors([("unknown prompt", PromptNotFound, lambda: templates.remove_label("pp-missing", custom))])
    templates.delete(PROMPT, prompt.id)
    expect_errors([("deleted prompt", PromptNotFound, lambda: templates.remove_label(prompt.id, custom))])


@kinds
def test_delete_hides_the_entity_but_keeps_its_versions(backend: Backend, kind: Kind) -> None:
    templates = backend.stores.templates
    entity = create(templates, kind, string="v1")
    second = templates.append_version(kind, entity.id, appending("v2"))
    if kind is PROMPT:
        templates.set_label(entity.id, 2, "production")
    kept = create(templates, kind, string="kept")

    templates.delete(kind, entity.slug)

    missing = entity_missing(kind)
    calls = {
        "resolve by id": lambda: templates.resolve(kind, ref(entity.id)),
        "resolve by slug": lambda: templates.resolve(kind, ref(entity.slug)),
        "resolve @latest": lambda: templates.resolve(kind, ref(f"{entity.slug}@latest")),
        "resolve @1": lambda: templates.resolve(kind, ref(f"{entity.id}@1")),
        "resolve @production": lambda: templates.resolve(kind, ref(f"{entity.id}@production")),
        "get_entity": lambda: templates.get_entity(kind, entity.id),
        "get_version": lambda: templates.get_version(kind, entity.slug, 1),
        "get_version_by_id": lambda: templates.get_version_by_id(kind, entity.id, second.version_id),
        "list_versions": lambda: templates.list_versions(kind, entity.id),
        "append_version": lambda: templates.append_version(kind, entity.id, appending("v3")),
        "update_entity": lambda: templates.update_entity(kind, entity.id, {"name": "x"}),
        "publish": lambda: templates.publish(kind, entity.id, 2),
        "delete again": lambda: templates.delete(kind, entity.id),
    }
    if kind is PROMPT:
        calls["set_label"] = lambda: templates.set_label(entity.id, 1, "staging")
    expect_errors([(name, missing, call) for name, call in calls.items()])
    assert ids(templates.list_entities(kind)) == [kept.id]
    assert templates.resolve(kind, ref(kept.slug)).string == "kept"
    assert backend.versions_kept(kind, entity.id) == {1: "v1", 2: "v2"}  # hidden, not erased


def test_versions_never_change(backend: Backend) -> None:
    templates, labels = backend.stores.templates, backend.stores.labels
    custom = labels.create_label(new_label())
    prompt = new_entity()
    drafts = {number: rich_draft(f"v{number}") for number in (1, 2, 3)}
    expected = {number: TemplateVersion.from_draft(PROMPT, prompt.id, prompt.slug, number, drafts[number])
                for number in drafts}

    written = {1: templates.create(PROMPT, prompt, drafts[1])}
    read = {1: templates.get_version(PROMPT, prompt.id, 1)}
    written[2] = templates.append_version(PROMPT, prompt.slug, lambda latest: drafts[2])
    read[2] = templates.get_version(PROMPT, prompt.id, 2)
    templates.publish(PROMPT, prompt.id, 2)
    templates.set_label(prompt.id, 2, "production")
    templates.set_label(prompt.id, 1, custom.name)
    templates.set_label(prompt.id, 2, custom.name)
    templates.update_entity(PROMPT, prompt.id, {"name": "Renamed", "metadata": {"x": 1}})
    written[3] = templates.append_version(PROMPT, prompt.id, lambda latest: drafts[3])
    read[3] = templates.get_version(PROMPT, prompt.id, 3)
    templates.publish(PROMPT, prompt.slug, 3)
    templates.set_label(prompt.slug, 3, "production")
    renamed = labels.update_label(custom.id, name=unique("renamed"), description="moved", color_code=None).name

    assert written == read == expected  # stored exactly as written, every field
    later = backend.open().templates  # and read again through another store on the same data
    for store in (templates, later):
        for number, version in expected.items():
            assert store.get_version(PROMPT, prompt.slug, number) == version
            assert store.get_version_by_id(PROMPT, prompt.id, version.version_id) == version
            assert store.resolve(PROMPT, ref(f"{prompt.id}@{number}")) == version
        assert store.list_versions(PROMPT, prompt.id) == [expected[3], expected[2], expected[1]]
        assert store.resolve(PROMPT, ref(prompt.slug)) == expected[3]
        assert store.resolve(PROMPT, ref(f"{prompt.slug}@production")) == expected[3]
        assert store.resolve(PROMPT, ref(f"{prompt.slug}@{renamed}")) == expected[2]
    with pytest.raises(dataclasses.FrozenInstanceError):
        read[1].string = "changed"  # type: ignore[misc]


def test_the_store_keeps_its_own_copy_of_what_is_written_and_read(backend: Backend) -> None:
    templates = backend.stores.templates
    prompt = new_entity(metadata={"team": "a"})
    first = rich_draft("v1")
    expected = TemplateVersion.from_draft(PROMPT, prompt.id, prompt.slug, 1, copy.deepcopy(first))
    templates.create(PROMPT, prompt, first)

    first.parameters["temperature"] = 2.0  # type: ignore[index]
    first.template_metadata["tags"].append("z")  # type: ignore[index]
    prompt.metadata["team"] = "b"  # type: ignore[index]
    read = templates.get_version(PROMPT, prompt.id, 1)
    read.parameters["max_tokens"] = 1  # type: ignore[index]
    read.tools[0]["type"] = "changed"
    templates.get_entity(PROMPT, prompt.id).metadata["team"] = "c"  # type: ignore[index]

    assert templates.get_version(PROMPT, prompt.id, 1) == expected
    assert templates.resolve(PROMPT, ref(prompt.slug)) == expected
    assert templates.get_entity(PROMPT, prompt.id).metadata == {"team": "a"}
