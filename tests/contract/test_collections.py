"""CollectionStore contract: `default` always exists and stays; others by id or slug, slugs unique."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from core.errors import Conflict, NotFound
from core.models import DEFAULT_COLLECTION, Collection, default_collection
from tests.contract.conftest import Backend
from tests.contract.support import expect_errors, stamp, unique


def new_collection(*, created_at: str = stamp(0), **fields: object) -> Collection:
    values: dict[str, object] = {"id": str(uuid.uuid4()), "slug": unique("col"), "name": "Team A",
                                 "created_at": created_at, "updated_at": created_at, **fields}
    return Collection(**values)  # type: ignore[arg-type]


def test_default_comes_first_then_the_others_oldest_first(backend: Backend) -> None:
    collections = backend.stores.collections
    late = collections.create_collection(new_collection(created_at=stamp(20), workspace_id="ws-1"))
    early = collections.create_collection(new_collection(created_at=stamp(10), parent_collection_id=late.id))

    listed = collections.list_collections()

    assert listed == [default_collection(), early, late]
    assert listed[0].is_default and not any(c.is_default for c in listed[1:])
    assert collections.get_collection(DEFAULT_COLLECTION) == default_collection()
    assert collections.get_collection(late.id) == late == collections.get_collection(late.slug)
    assert backend.open().collections.get_collection(early.slug) == early  # read back cold
    expect_errors([
        ("unknown slug", NotFound, lambda: collections.get_collection("no-such-collection")),
        ("unknown id", NotFound, lambda: collections.get_collection(str(uuid.uuid4()))),
    ])


def test_ids_and_slugs_are_unique_and_default_is_built_in(backend: Backend) -> None:
    collections = backend.stores.collections
    first = collections.create_collection(new_collection())
    expect_errors([
        ("same slug", Conflict, lambda: collections.create_collection(new_collection(slug=first.slug))),
        ("same id", Conflict, lambda: collections.create_collection(dataclasses.replace(new_collection(), id=first.id))),
        ("slug default", Conflict, lambda: collections.create_collection(new_collection(slug=DEFAULT_COLLECTION))),
        ("rename default", Conflict,
         lambda: collections.update_collection(DEFAULT_COLLECTION, name="x", updated_at=stamp(1))),
        ("delete default", Conflict, lambda: collections.delete_collection(DEFAULT_COLLECTION)),
    ])
    assert collections.list_collections() == [default_collection(), first]


def test_a_rename_changes_the_name_and_time_only(backend: Backend) -> None:
    collections = backend.stores.collections
    made = collections.create_collection(new_collection())

    renamed = collections.update_collection(made.slug, name="Team B", updated_at=stamp(30))

    assert renamed == dataclasses.replace(made, name="Team B", updated_at=stamp(30))
    assert collections.get_collection(made.id) == renamed == collections.get_collection(made.slug)
    with pytest.raises(NotFound):
        collections.update_collection("no-such-collection", name="x", updated_at=stamp(1))


def test_a_deleted_collection_is_gone_and_its_slug_free(backend: Backend) -> None:
    collections = backend.stores.collections
    gone, kept = collections.create_collection(new_collection()), collections.create_collection(new_collection())

    collections.delete_collection(gone.slug)

    expect_errors([
        ("get by id", NotFound, lambda: collections.get_collection(gone.id)),
        ("get by slug", NotFound, lambda: collections.get_collection(gone.slug)),
        ("delete again", NotFound, lambda: collections.delete_collection(gone.id)),
    ])
    assert collections.list_collections() == [default_collection(), kept]
    again = collections.create_collection(new_collection(slug=gone.slug))
    assert collections.get_collection(gone.slug) == again
