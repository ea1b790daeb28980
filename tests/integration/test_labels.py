"""DynamoStore as a LabelStore, and labels on prompt versions."""

from __future__ import annotations

import pytest

from core.errors import Conflict, InvalidLabelName, InvalidRequest, LabelNotFound, PromptNotFound, VersionNotFound
from core.models import BUILTIN_LABELS, Kind
from core.references import parse_reference
from infra.dynamodb_store import DynamoStore
from tests.integration.builders import append, create, new_label


def resolved(store: DynamoStore, reference: str) -> int:
    return store.resolve(Kind.PROMPT, parse_reference(reference)).version


def test_builtin_labels_always_exist_and_cannot_change(store: DynamoStore) -> None:
    custom = store.create_label(new_label("canary", created_at="2025-02-01T00:00:00.000Z"))
    older = store.create_label(new_label("beta", created_at="2025-01-01T00:00:00.000Z"))

    labels = store.list_labels()
    assert [label.name for label in labels] == [*BUILTIN_LABELS, "beta", "canary"]
    assert all(label.builtin and label.id == label.name for label in labels[:3])
    assert store.get_label("production").builtin
    assert store.get_label(custom.id) == custom == store.get_label("canary")
    assert store.get_label(older.id).name == "beta"
    with pytest.raises(InvalidRequest):
        store.update_label("production", name="prod", description=None, color_code=None)
    with pytest.raises(InvalidRequest):
        store.delete_label("staging")
    with pytest.raises(LabelNotFound):
        store.get_label("nope")


def test_label_names_are_unique_and_checked(store: DynamoStore) -> None:
    store.create_label(new_label("canary"))
    with pytest.raises(Conflict):
        store.create_label(new_label("canary"))
    with pytest.raises(Conflict):
        store.create_label(new_label("production"))
    with pytest.raises(InvalidLabelName):
        store.create_label(new_label("latest"))
    other = store.create_label(new_label("beta"))
    with pytest.raises(Conflict):
        store.update_label(other.id, name="canary", description=None, color_code=None)


def test_set_label_moves_and_stacks(store: DynamoStore) -> None:
    entity = create(store, string="v1")
    append(store, Kind.PROMPT, entity.id, "v2")
    append(store, Kind.PROMPT, entity.id, "v3")
    store.create_label(new_label("canary"))

    store.set_label(entity.slug, 2, "production")
    store.set_label(entity.id, 2, "canary")
    updated = store.set_label(entity.id, 3, "staging")

    assert updated.labels == {"production": 2, "canary": 2, "staging": 3}
    assert resolved(store, f"{entity.slug}@production") == resolved(store, f"{entity.id}@canary") == 2
    assert resolved(store, f"{entity.id}@staging") == 3

    store.set_label(entity.id, 3, "production")  # a label marks one version per prompt
    assert resolved(store, f"{entity.id}@production") == 3
    assert store.get_entity(Kind.PROMPT, entity.id).labels["production"] == 3


def test_set_label_errors(store: DynamoStore) -> None:
    entity = create(store)
    with pytest.raises(LabelNotFound):
        store.set_label(entity.id, 1, "unknown")
    with pytest.raises(VersionNotFound):
        store.set_label(entity.id, 5, "production")
    with pytest.raises(PromptNotFound):
        store.set_label("pp-missing-000000", 1, "production")
    with pytest.raises(LabelNotFound):
        store.resolve(Kind.PROMPT, parse_reference(f"{entity.id}@unknown"))


def test_rename_keeps_every_prompt_pointer(store: DynamoStore, fresh_store: DynamoStore) -> None:
    first, second = create(store, name="a"), create(store, name="b")
    append(store, Kind.PROMPT, second.id, "v2")
    label = store.create_label(new_label("canary", description="old"))
    store.set_label(first.id, 1, "canary")
    store.set_label(second.slug, 2, "canary")

    renamed = store.update_label(label.id, name="early", description="new", color_code="#00ff00")

    assert (renamed.name, renamed.description, renamed.color_code) == ("early", "new", "#00ff00")
    assert store.get_label("early").id == label.id
    assert resolved(fresh_store, f"{first.slug}@early") == 1
    assert resolved(fresh_store, f"{second.id}@early") == 2
    assert store.get_entity(Kind.PROMPT, second.id).labels == {"early": 2}
    with pytest.raises(LabelNotFound):
        fresh_store.resolve(Kind.PROMPT, parse_reference(f"{first.slug}@canary"))
    with pytest.raises(LabelNotFound):
        store.get_label("canary")
    store.create_label(new_label("canary"))  # the old name is free again


def test_an_interrupted_rename_finishes_on_the_next_update(store: DynamoStore) -> None:
    entity = create(store)
    label = store.create_label(new_label("canary"))
    store.set_label(entity.id, 1, "canary")
    store._rename_label(label.id, "canary", "early", [], {})  # as if the process died before moving pointers

    store.update_label(label.id, name=None, description="resumed", color_code=None)

    assert resolved(store, f"{entity.id}@early") == 1
    assert store.get_entity(Kind.PROMPT, entity.id).labels == {"early": 1}


def test_deleting_an_assigned_label_is_a_conflict(store: DynamoStore) -> None:
    first, second = create(store, name="a"), create(store, name="b")
    label = store.create_label(new_label("canary"))
    store.set_label(first.id, 1, "canary")
    store.set_label(second.id, 1, "canary")

    with pytest.raises(Conflict, match="2 prompt"):
        store.delete_label(label.id)

    store.delete(Kind.PROMPT, first.id)
    with pytest.raises(Conflict, match="1 prompt"):
        store.delete_label(label.id)

    store.delete(Kind.PROMPT, second.id)
    store.delete_label(label.id)
    with pytest.raises(LabelNotFound):
        store.get_label(label.id)
    with pytest.raises(LabelNotFound):
        store.delete_label(label.id)


def test_unused_label_deletes_and_frees_its_name(store: DynamoStore) -> None:
    label = store.create_label(new_label("canary"))
    store.delete_label(label.id)
    assert [item.name for item in store.list_labels()] == list(BUILTIN_LABELS)
    store.create_label(new_label("canary"))
