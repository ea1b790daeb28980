"""DynamoTemplateStore: create, versions, publish, delete, numbers and the item limit."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from core.errors import Conflict, InvalidRequest, PartialNotFound, PayloadTooLarge, PromptNotFound, VersionNotFound
from core.models import Kind, Label
from core.references import parse_reference
from infra import dynamo_items as items
from infra.dynamodb_labels import DynamoLabelStore
from infra.dynamodb_templates import DynamoTemplateStore
from tests.integration.builders import append, create, draft, new_entity


def test_create_returns_version_1_and_publishes_it(templates: DynamoTemplateStore) -> None:
    entity = new_entity(metadata={"team": "growth"}, workspace_id="ws-1", collection_id="c-1")
    first = templates.create(Kind.PROMPT, entity, draft("Hi {{name}}", variables=("name",), model="gpt-4o"))

    assert (first.version, first.entity_id, first.slug, first.variables) == (1, entity.id, entity.slug, ("name",))
    stored = templates.get_entity(Kind.PROMPT, entity.slug)
    assert stored == entity  # latest 1, published 1, no labels
    assert templates.resolve(Kind.PROMPT, parse_reference(entity.id)) == first


def test_a_version_round_trips_every_field(templates: DynamoTemplateStore) -> None:
    entity = new_entity()
    fields = dict(
        variables=("q", "history"),
        description="first cut",
        model="claude-3-5-sonnet",
        parameters={"temperature": 1, "presence_penalty": 0.5, "max_tokens": 256, "stop": ["\n"], "top_p": 0.125},
        virtual_key="vk-openai",
        is_raw_template=True,
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
        tool_choice="auto",
        functions=None,
        template_metadata={"owner": "ana", "nested": {"empty": {}, "list": [], "flag": False, "none": None}},
    )
    created = templates.create(Kind.PROMPT, entity, draft('[{"role":"user","content":"{{q}}"}]', **fields))

    read = templates.get_version(Kind.PROMPT, entity.id, 1)
    assert read == created
    assert read.parameters["presence_penalty"] == 0.5 and isinstance(read.parameters["presence_penalty"], float)
    assert read.parameters["temperature"] == 1 and isinstance(read.parameters["temperature"], int)


def test_integral_floats_come_back_as_ints(templates: DynamoTemplateStore) -> None:
    """DynamoDB normalises numbers, so 1.0 is stored as 1 and read back as int 1 (equal in JSON)."""
    entity = new_entity()
    templates.create(Kind.PROMPT, entity, draft(parameters={"temperature": 1.0, "big": 1e20, "tiny": 1e-7}))

    parameters = templates.get_version(Kind.PROMPT, entity.id, 1).parameters
    assert parameters == {"temperature": 1, "big": 10**20, "tiny": 1e-7}
    assert type(parameters["temperature"]) is int


def test_numbers_dynamodb_cannot_store_are_rejected_before_writing(templates: DynamoTemplateStore) -> None:
    for bad in (float("nan"), float("inf"), 1e200):
        with pytest.raises(InvalidRequest):
            templates.create(Kind.PROMPT, new_entity(), draft(parameters={"temperature": bad}))


def test_create_rejects_a_duplicate_slug_or_a_non_uuid_id(templates: DynamoTemplateStore) -> None:
    entity = create(templates)
    twin = replace(new_entity(), slug=entity.slug)
    with pytest.raises(Conflict, match="slug"):
        templates.create(Kind.PROMPT, twin, draft())
    with pytest.raises(PromptNotFound):  # the cancelled transaction left nothing behind
        templates.get_entity(Kind.PROMPT, twin.id)
    bad_id = replace(twin, id="not-a-uuid", slug="pp-x-000000")
    with pytest.raises(InvalidRequest):
        templates.create(Kind.PROMPT, bad_id, draft())


def test_list_entities_is_oldest_first_filters_collections_and_hides_deleted(templates: DynamoTemplateStore) -> None:
    a = new_entity(name="a", created_at="2025-01-01T00:00:01.000Z", collection_id="c1")
    b = new_entity(name="b", created_at="2025-01-01T00:00:02.000Z", collection_id="c2")
    c = new_entity(name="c", created_at="2025-01-01T00:00:03.000Z", collection_id="c1")
    for entity in (c, a, b):
        templates.create(Kind.PROMPT, entity, draft())
    templates.create(Kind.PARTIAL, new_entity(Kind.PARTIAL, "p"), draft())

    assert [e.name for e in templates.list_entities(Kind.PROMPT)] == ["a", "b", "c"]
    assert [e.name for e in templates.list_entities(Kind.PROMPT, collection_id="c1")] == ["a", "c"]
    assert [e.name for e in templates.list_entities(Kind.PARTIAL)] == ["p"]

    templates.delete(Kind.PROMPT, b.slug)
    assert [e.name for e in templates.list_entities(Kind.PROMPT)] == ["a", "c"]


def test_append_get_and_list_versions_newest_first(templates: DynamoTemplateStore) -> None:
    entity = create(templates, string="v1")
    seen = []

    def build(latest):
        seen.append(latest.version)
        return draft(f"v{latest.version + 1}", model=latest.model)

    second = templates.append_version(Kind.PROMPT, entity.slug, build)
    third = append(templates, Kind.PROMPT, entity.id, "v3")

    assert (second.version, third.version, seen) == (2, 3, [1])
    assert [v.version for v in templates.list_versions(Kind.PROMPT, entity.slug)] == [3, 2, 1]
    assert templates.get_version_by_id(Kind.PROMPT, entity.id, second.version_id) == second
    assert templates.resolve(Kind.PROMPT, parse_reference(f"{entity.slug}@latest")) == third
    assert templates.resolve(Kind.PROMPT, parse_reference(entity.slug)).version == 1  # appending does not publish
    head = templates.get_entity(Kind.PROMPT, entity.id)
    assert (head.latest_version, head.published_version, head.updated_at) == (3, 1, third.created_at)


def test_append_refuses_a_reused_version_id(templates: DynamoTemplateStore) -> None:
    entity = create(templates)
    first_id = templates.get_version(Kind.PROMPT, entity.id, 1).version_id
    with pytest.raises(Conflict, match="version with id"):
        append(templates, Kind.PROMPT, entity.id, "again", version_id=first_id)
    assert templates.get_entity(Kind.PROMPT, entity.id).latest_version == 1  # the head update was rolled back
    assert [v.version for v in templates.list_versions(Kind.PROMPT, entity.id)] == [1]


def test_publish_moves_the_published_pointer(templates: DynamoTemplateStore) -> None:
    entity = create(templates, string="v1")
    append(templates, Kind.PROMPT, entity.id, "v2")

    updated = templates.publish(Kind.PROMPT, entity.slug, 2)

    assert updated.published_version == 2
    assert templates.resolve(Kind.PROMPT, parse_reference(entity.slug)).string == "v2"
    with pytest.raises(VersionNotFound):
        templates.publish(Kind.PROMPT, entity.id, 9)


def test_not_found_errors_say_what_is_missing(templates: DynamoTemplateStore) -> None:
    entity = create(templates)
    partial = create(templates, Kind.PARTIAL, "footer")

    with pytest.raises(PromptNotFound):
        templates.resolve(Kind.PROMPT, parse_reference("pp-nothing-000000"))
    with pytest.raises(PromptNotFound):
        templates.resolve(Kind.PROMPT, parse_reference(str(uuid.uuid4())))
    with pytest.raises(PromptNotFound):
        templates.resolve(Kind.PROMPT, parse_reference(partial.id))  # a partial's id is no prompt
    with pytest.raises(PartialNotFound):
        templates.get_entity(Kind.PARTIAL, entity.slug)
    with pytest.raises(VersionNotFound, match="has no version 7"):
        templates.resolve(Kind.PROMPT, parse_reference(f"{entity.id}@7"))
    with pytest.raises(VersionNotFound, match=f"prompt {entity.slug} has no version labelled production"):
        templates.resolve(Kind.PROMPT, parse_reference(f"{entity.slug}@production"))
    with pytest.raises(VersionNotFound):
        templates.get_version_by_id(Kind.PROMPT, entity.id, "no-such-version")


def test_delete_hides_everything_but_keeps_the_versions(
    templates: DynamoTemplateStore, fresh_templates: DynamoTemplateStore
) -> None:
    entity = create(templates)
    append(templates, Kind.PROMPT, entity.id, "v2")
    templates.set_label(entity.id, 2, "staging")

    templates.delete(Kind.PROMPT, entity.slug)

    for key in (entity.id, entity.slug):
        for suffix in ("", "@1", "@2", "@latest", "@staging"):
            for reader in (templates, fresh_templates):
                with pytest.raises(PromptNotFound):
                    reader.resolve(Kind.PROMPT, parse_reference(key + suffix))
        with pytest.raises(PromptNotFound):
            templates.get_entity(Kind.PROMPT, key)
        with pytest.raises(PromptNotFound):
            templates.list_versions(Kind.PROMPT, key)
        with pytest.raises(PromptNotFound):
            append(templates, Kind.PROMPT, key, "v3")
        with pytest.raises(PromptNotFound):
            templates.delete(Kind.PROMPT, key)
    raw = templates.table.client.get_item(
        TableName=templates.table.name, Key=items.key(items.entity_pk(Kind.PROMPT, entity.id), items.version_sk(2))
    )["Item"]
    assert raw["string"] == {"S": "v2"} and raw["deleted"] == {"BOOL": True}
    pointers = templates.table.client.query(
        TableName=templates.table.name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :ptr)",
        ExpressionAttributeValues={":pk": {"S": f"prompt#{entity.id}"}, ":ptr": {"S": "PTR#"}},
    )["Items"]
    assert pointers == []


def test_a_version_over_the_item_limit_is_payload_too_large(templates: DynamoTemplateStore) -> None:
    entity = create(templates)
    with pytest.raises(PayloadTooLarge, match="400 KB"):
        templates.create(Kind.PROMPT, new_entity(), draft("x" * 410_000))
    with pytest.raises(PayloadTooLarge, match="400 KB"):
        append(templates, Kind.PROMPT, entity.id, "y" * 200_000, template_metadata={"blob": "z" * 200_000})
    assert templates.get_entity(Kind.PROMPT, entity.id).latest_version == 1
    big = append(templates, Kind.PROMPT, entity.id, "w" * 390_000)  # under the limit fits, pointers included
    assert templates.resolve(Kind.PROMPT, parse_reference(f"{entity.id}@latest")) == big


def test_update_entity_changes_head_fields_only(templates: DynamoTemplateStore) -> None:
    entity = new_entity(workspace_id="ws-1", metadata={"a": 1})
    templates.create(Kind.PROMPT, entity, draft("v1"))

    updated = templates.update_entity(
        Kind.PROMPT, entity.slug, {"name": "renamed", "collection_id": "c-9", "workspace_id": None, "metadata": {"b": 0.5}}
    )

    assert (updated.name, updated.collection_id, updated.workspace_id, updated.metadata) == ("renamed", "c-9", None, {"b": 0.5})
    assert updated.slug == entity.slug and updated.latest_version == 1
    assert templates.get_entity(Kind.PROMPT, entity.id) == updated
    assert [e.name for e in templates.list_entities(Kind.PROMPT, collection_id="c-9")] == ["renamed"]
    with pytest.raises(InvalidRequest):
        templates.update_entity(Kind.PROMPT, entity.id, {"slug": "pp-other-000000"})
    templates.delete(Kind.PROMPT, entity.id)
    with pytest.raises(PromptNotFound):
        templates.update_entity(Kind.PROMPT, entity.id, {"name": "ghost"})


def test_delete_removes_the_slug_guard_in_its_transaction(templates: DynamoTemplateStore) -> None:
    entity = create(templates)
    guard = items.slug_guard_key(Kind.PROMPT, entity.slug)
    assert templates.table.get(guard) == {**guard, "entity_id": {"S": entity.id}}

    templates.delete(Kind.PROMPT, entity.slug)

    assert templates.table.get(guard) is None
    head = templates.table.get(items.key(items.entity_pk(Kind.PROMPT, entity.id), items.HEAD_SK))
    assert head is not None and items.is_deleted(head) and head["slug"] == {"S": entity.slug}


def test_a_guard_kept_by_an_older_delete_does_not_block_the_slug(templates: DynamoTemplateStore) -> None:
    """Entities deleted before guards went with them left their guard behind; create clears such a guard."""
    old = create(templates)
    templates.delete(Kind.PROMPT, old.id)
    templates.table.run(templates.table.put({**items.slug_guard_key(Kind.PROMPT, old.slug), "entity_id": {"S": old.id}}))
    with pytest.raises(PromptNotFound):  # the stale guard names a deleted prompt
        templates.get_entity(Kind.PROMPT, old.slug)

    new = templates.create(Kind.PROMPT, replace(new_entity(), slug=old.slug), draft("new"))

    assert templates.resolve(Kind.PROMPT, parse_reference(old.slug)) == new
    guard = templates.table.get(items.slug_guard_key(Kind.PROMPT, old.slug))
    assert guard is not None and guard["entity_id"] == {"S": new.entity_id}


def test_a_slug_lookup_skips_the_deleted_entitys_items(
    templates: DynamoTemplateStore, fresh_templates: DynamoTemplateStore
) -> None:
    """by_alias holds the deleted entity's HEAD and V# items too (same alias): they are never the answer."""
    old = create(templates)
    append(templates, Kind.PROMPT, old.id, "old v2")
    templates.delete(Kind.PROMPT, old.id)
    new = templates.create(Kind.PROMPT, replace(new_entity(), slug=old.slug), draft("new v1"))

    for reference in (old.slug, f"{old.slug}@1", f"{old.slug}@latest"):
        cold = DynamoTemplateStore(templates.table)
        assert cold.resolve(Kind.PROMPT, parse_reference(reference)) == new, reference
    with pytest.raises(VersionNotFound):
        DynamoTemplateStore(templates.table).resolve(Kind.PROMPT, parse_reference(f"{old.slug}@2"))
    assert DynamoTemplateStore(templates.table).get_entity(Kind.PROMPT, old.slug).id == new.entity_id


def test_remove_label_deletes_the_pointer_and_the_head_entry_and_frees_the_label(
    templates: DynamoTemplateStore, labels: DynamoLabelStore
) -> None:
    label = labels.create_label(Label(id=str(uuid.uuid4()), name=f"canary-{uuid.uuid4().hex[:6]}",
                                      created_at="2025-01-01T00:00:00.000Z"))
    entity = create(templates)
    templates.set_label(entity.id, 1, label.name)
    templates.set_label(entity.id, 1, "staging")
    pk = items.entity_pk(Kind.PROMPT, entity.id)
    assert items.string_set(templates.table.get(items.label_key(label.id)) or {}, "used_by") == {pk}

    head = templates.remove_label(entity.slug, label.name)

    assert head.labels == {"staging": 1}
    assert templates.table.get(items.key(pk, items.label_pointer_sk(label.name))) is None
    assert templates.table.get(items.key(pk, items.label_pointer_sk("staging"))) is not None
    assert items.string_set(templates.table.get(items.label_key(label.id)) or {}, "used_by") == set()
    templates.remove_label(entity.id, "staging")
    assert templates.get_entity(Kind.PROMPT, entity.id).labels == {}
    labels.delete_label(label.id)
