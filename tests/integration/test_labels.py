"""DynamoLabelStore, and labels on prompt versions (DynamoTemplateStore.set_label)."""

from __future__ import annotations

import pytest

from core.errors import Conflict, InvalidLabelName, InvalidRequest, LabelNotFound, PromptNotFound, VersionNotFound
from core.models import BUILTIN_LABELS, Kind, builtin_label
from core.references import parse_reference
from infra.dynamodb_labels import DynamoLabelStore
from infra.dynamodb_templates import DynamoTemplateStore
from tests.integration.builders import append, create, new_label


def resolved(templates: DynamoTemplateStore, reference: str) -> int:
    return templates.resolve(Kind.PROMPT, parse_reference(reference)).version


def test_builtin_labels_always_exist_and_cannot_change(labels: DynamoLabelStore) -> None:
    custom = labels.create_label(new_label("canary", created_at="2025-02-01T00:00:00.000Z"))
    older = labels.create_label(new_label("beta", created_at="2025-01-01T00:00:00.000Z"))

    listed = labels.list_labels()
    assert [label.name for label in listed] == [*BUILTIN_LABELS, "beta", "canary"]
    assert all(label.builtin and label.id == builtin_label(label.name).id for label in listed[:3])
    assert labels.get_label("production").builtin
    assert labels.get_label(custom.id) == custom == labels.get_label("canary")
    assert labels.get_label(older.id).name == "beta"
    with pytest.raises(InvalidRequest):
        labels.update_label("production", name="prod", description=None, color_code=None)
    with pytest.raises(InvalidRequest):
        labels.delete_label("staging")
    with pytest.raises(LabelNotFound):
        labels.get_label("nope")


def test_label_names_are_unique_and_checked(labels: DynamoLabelStore) -> None:
    labels.create_label(new_label("canary"))
    with pytest.raises(Conflict):
        labels.create_label(new_label("canary"))
    with pytest.raises(Conflict):
        labels.create_label(new_label("production"))
    with pytest.raises(InvalidLabelName):
        labels.create_label(new_label("latest"))
    other = labels.create_label(new_label("beta"))
    with pytest.raises(Conflict):
        labels.update_label(other.id, name="canary", description=None, color_code=None)


def test_set_label_moves_and_stacks(templates: DynamoTemplateStore, labels: DynamoLabelStore) -> None:
    entity = create(templates, string="v1")
    append(templates, Kind.PROMPT, entity.id, "v2")
    append(templates, Kind.PROMPT, entity.id, "v3")
    labels.create_label(new_label("canary"))

    templates.set_label(entity.slug, 2, "production")
    templates.set_label(entity.id, 2, "canary")
    updated = templates.set_label(entity.id, 3, "staging")

    assert updated.labels == {"production": 2, "canary": 2, "staging": 3}
    assert resolved(templates, f"{entity.slug}@production") == resolved(templates, f"{entity.id}@canary") == 2
    assert resolved(templates, f"{entity.id}@staging") == 3

    templates.set_label(entity.id, 3, "production")  # a label marks one version per prompt
    assert resolved(templates, f"{entity.id}@production") == 3
    assert templates.get_entity(Kind.PROMPT, entity.id).labels["production"] == 3


def test_set_label_errors(templates: DynamoTemplateStore) -> None:
    entity = create(templates)
    with pytest.raises(LabelNotFound):
        templates.set_label(entity.id, 1, "unknown")
    with pytest.raises(VersionNotFound):
        templates.set_label(entity.id, 5, "production")
    with pytest.raises(PromptNotFound):
        templates.set_label("pp-missing-000000", 1, "production")
    with pytest.raises(LabelNotFound):
        templates.resolve(Kind.PROMPT, parse_reference(f"{entity.id}@unknown"))


def test_rename_keeps_every_prompt_pointer(
    templates: DynamoTemplateStore, fresh_templates: DynamoTemplateStore, labels: DynamoLabelStore
) -> None:
    first, second = create(templates, name="a"), create(templates, name="b")
    append(templates, Kind.PROMPT, second.id, "v2")
    label = labels.create_label(new_label("canary", description="old"))
    templates.set_label(first.id, 1, "canary")
    templates.set_label(second.slug, 2, "canary")

    renamed = labels.update_label(label.id, name="early", description="new", color_code="#00ff00")

    assert (renamed.name, renamed.description, renamed.color_code) == ("early", "new", "#00ff00")
    assert labels.get_label("early").id == label.id
    assert resolved(fresh_templates, f"{first.slug}@early") == 1
    assert resolved(fresh_templates, f"{second.id}@early") == 2
    assert templates.get_entity(Kind.PROMPT, second.id).labels == {"early": 2}
    with pytest.raises(LabelNotFound):
        fresh_templates.resolve(Kind.PROMPT, parse_reference(f"{first.slug}@canary"))
    with pytest.raises(LabelNotFound):
        labels.get_label("canary")
    labels.create_label(new_label("canary"))  # the old name is free again


def test_an_interrupted_rename_finishes_on_the_next_update(
    templates: DynamoTemplateStore, labels: DynamoLabelStore
) -> None:
    entity = create(templates)
    label = labels.create_label(new_label("canary"))
    templates.set_label(entity.id, 1, "canary")
    labels._rename_label(label.id, "canary", "early", [], {})  # as if the process died before moving pointers

    labels.update_label(label.id, name=None, description="resumed", color_code=None)

    assert resolved(templates, f"{entity.id}@early") == 1
    assert templates.get_entity(Kind.PROMPT, entity.id).labels == {"early": 1}


def test_deleting_an_assigned_label_is_a_conflict(templates: DynamoTemplateStore, labels: DynamoLabelStore) -> None:
    first, second = create(templates, name="a"), create(templates, name="b")
    label = labels.create_label(new_label("canary"))
    templates.set_label(first.id, 1, "canary")
    templates.set_label(second.id, 1, "canary")

    with pytest.raises(Conflict, match="2 prompt"):
        labels.delete_label(label.id)

    templates.delete(Kind.PROMPT, first.id)
    with pytest.raises(Conflict, match="1 prompt"):
        labels.delete_label(label.id)

    templates.delete(Kind.PROMPT, second.id)
    labels.delete_label(label.id)
    with pytest.raises(LabelNotFound):
        labels.get_label(label.id)
    with pytest.raises(LabelNotFound):
        labels.delete_label(label.id)


def test_unused_label_deletes_and_frees_its_name(labels: DynamoLabelStore) -> None:
    label = labels.create_label(new_label("canary"))
    labels.delete_label(label.id)
    assert [item.name for item in labels.list_labels()] == list(BUILTIN_LABELS)
    labels.create_label(new_label("canary"))
