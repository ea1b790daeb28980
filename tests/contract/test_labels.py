"""LabelStore contract: built-ins first, unique names, renames move every prompt's pointer, in-use labels stay."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from core.errors import Conflict, InvalidLabelName, InvalidRequest, LabelNotFound
from core.models import BUILTIN_LABELS, Kind, builtin_label
from core.references import parse_reference
from tests.contract.conftest import Backend
from tests.contract.support import appending, create, expect_errors, new_label, stamp, unique

PROMPT = Kind.PROMPT


def rename(labels, label_id: str, name: str):
    return labels.update_label(label_id, name=name, description=None, color_code=None)


def test_built_in_labels_come_first_then_custom_ones_oldest_first(backend: Backend) -> None:
    labels = backend.stores.labels
    late = labels.create_label(new_label(created_at=stamp(20), description="later", color_code="#ff0000"))
    early = labels.create_label(new_label(created_at=stamp(10)))

    listed = labels.list_labels()

    assert [label.name for label in listed] == [*BUILTIN_LABELS, early.name, late.name]
    assert all(label.builtin and label.id == builtin_label(label.name).id for label in listed[:3])
    assert not any(label.builtin for label in listed[3:])
    assert listed[4] == late == labels.get_label(late.id) == labels.get_label(late.name)
    assert labels.get_label("staging") == listed[1]
    expect_errors([
        ("unknown name", LabelNotFound, lambda: labels.get_label("no-such-label")),
        ("unknown id", LabelNotFound, lambda: labels.get_label(str(uuid.uuid4()))),
    ])


def test_label_names_are_unique_and_valid(backend: Backend) -> None:
    labels = backend.stores.labels
    first = labels.create_label(new_label())
    second = labels.create_label(new_label())
    expect_errors([
        ("same name", Conflict, lambda: labels.create_label(new_label(first.name))),
        ("a built-in name", Conflict, lambda: labels.create_label(new_label("production"))),
        ("same id", Conflict, lambda: labels.create_label(dataclasses.replace(new_label(), id=first.id))),
        ("rename to a taken name", Conflict, lambda: rename(labels, second.id, first.name)),
        ("rename to a built-in name", Conflict, lambda: rename(labels, second.id, "staging")),
        ("a reserved name", InvalidLabelName, lambda: labels.create_label(new_label("latest"))),
        ("an all-digit name", InvalidLabelName, lambda: labels.create_label(new_label("12"))),
        ("a name with a space", InvalidLabelName, lambda: labels.create_label(new_label("a b"))),
        ("rename to a reserved name", InvalidLabelName, lambda: rename(labels, second.id, "published")),
        ("rename a built-in", InvalidRequest, lambda: rename(labels, "production", "prod")),
        ("delete a built-in", InvalidRequest, lambda: labels.delete_label("staging")),
    ])
    assert sorted(label.id for label in labels.list_labels()[3:]) == sorted([first.id, second.id])
    assert labels.get_label(second.id) == second


def test_a_rename_moves_every_prompts_pointer_to_the_new_name(backend: Backend) -> None:
    labels, templates = backend.stores.labels, backend.stores.templates
    label = labels.create_label(new_label(description="before", color_code="#000000"))
    a = create(templates)
    b = create(templates)
    templates.append_version(PROMPT, b.id, appending("v2"))
    templates.set_label(a.id, 1, label.name)
    templates.set_label(b.slug, 2, label.name)
    new_name = unique("renamed")

    updated = labels.update_label(label.id, name=new_name, description="after", color_code="#00ff00")

    assert updated == dataclasses.replace(label, name=new_name, description="after", color_code="#00ff00",
                                          updated_at=updated.updated_at)
    assert updated.last_updated_at > label.last_updated_at == label.created_at  # the update's time, stored
    assert labels.get_label(label.id) == updated == labels.get_label(new_name)
    assert templates.resolve(PROMPT, parse_reference(f"{a.slug}@{new_name}")).version == 1
    assert templates.resolve(PROMPT, parse_reference(f"{b.id}@{new_name}")).version == 2
    assert templates.get_entity(PROMPT, b.id).labels == {new_name: 2}
    expect_errors([
        ("get the old name", LabelNotFound, lambda: labels.get_label(label.name)),
        ("resolve the old name", LabelNotFound,
         lambda: templates.resolve(PROMPT, parse_reference(f"{a.slug}@{label.name}"))),
        ("set the old name", LabelNotFound, lambda: templates.set_label(a.id, 1, label.name)),
        ("update an unknown label", LabelNotFound, lambda: rename(labels, str(uuid.uuid4()), unique("x"))),
    ])
    # Only the fields given change.
    again = labels.update_label(label.id, name=None, description="only this", color_code=None)
    assert (again.name, again.description, again.color_code) == (new_name, "only this", "#00ff00")
    assert labels.create_label(new_label(label.name)).name == label.name  # the old name is free


def test_a_label_a_prompt_carries_cannot_be_deleted(backend: Backend) -> None:
    labels, templates = backend.stores.labels, backend.stores.templates
    used = labels.create_label(new_label())
    unused = labels.create_label(new_label())
    prompt = create(templates)
    templates.set_label(prompt.id, 1, used.name)

    with pytest.raises(Conflict):
        labels.delete_label(used.id)
    assert labels.get_label(used.id) == used
    assert templates.resolve(PROMPT, parse_reference(f"{prompt.id}@{used.name}")).version == 1

    labels.delete_label(unused.id)
    expect_errors([
        ("get by id", LabelNotFound, lambda: labels.get_label(unused.id)),
        ("get by name", LabelNotFound, lambda: labels.get_label(unused.name)),
        ("delete again", LabelNotFound, lambda: labels.delete_label(unused.id)),
        ("set it", LabelNotFound, lambda: templates.set_label(prompt.id, 1, unused.name)),
    ])
    assert [label.id for label in labels.list_labels()[3:]] == [used.id]
    assert labels.create_label(new_label(unused.name)).name == unused.name  # its name is free again

    templates.delete(PROMPT, prompt.id)  # a deleted prompt holds no label
    labels.delete_label(used.id)
    with pytest.raises(LabelNotFound):
        labels.get_label(used.id)


def test_a_label_taken_off_every_prompt_can_be_deleted(backend: Backend) -> None:
    labels, templates = backend.stores.labels, backend.stores.templates
    label = labels.create_label(new_label())
    first, second = create(templates), create(templates)
    templates.set_label(first.id, 1, label.name)
    templates.set_label(second.slug, 1, label.name)

    templates.remove_label(first.slug, label.name)
    with pytest.raises(Conflict):  # the second prompt still carries it
        labels.delete_label(label.id)
    templates.remove_label(second.id, label.name)
    labels.delete_label(label.id)
    with pytest.raises(LabelNotFound):
        labels.get_label(label.id)
    assert templates.get_entity(PROMPT, first.id).labels == {}


def test_a_label_keeps_its_organisation_and_update_time(backend: Backend) -> None:
    labels = backend.stores.labels
    organisation = str(uuid.uuid4())
    label = labels.create_label(new_label(created_at=stamp(5), organisation_id=organisation))

    assert (label.organisation_id, label.last_updated_at) == (organisation, stamp(5))
    assert labels.get_label(label.id) == label == labels.list_labels()[-1]
    assert backend.open().labels.get_label(label.name) == label  # what was stored, read back cold

    updated = labels.update_label(label.id, name=None, description="changed", color_code=None)
    assert updated.organisation_id == organisation and updated.created_at == stamp(5)
    assert updated.last_updated_at > stamp(5)
    assert labels.get_label(label.id) == updated
    assert labels.get_label("production").last_updated_at == labels.get_label("production").created_at
