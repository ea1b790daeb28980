"""ApiKeyStore, VirtualKeyStore and SecretStore contracts."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from core.errors import Conflict, CuecardError, InvalidRequest, NotFound, VirtualKeyNotFound
from core.models import Scope
from tests.contract.conftest import Backend
from tests.contract.support import api_key, expect_errors, stamp, virtual_key


def test_api_keys_are_put_read_listed_and_revoked(backend: Backend) -> None:
    keys = backend.stores.api_keys
    ci = api_key("ci", created_at=stamp(1))
    admin = api_key("admin", created_at=stamp(2), scopes=frozenset({Scope.ADMIN}))
    keys.put_key(ci)
    keys.put_key(admin)

    assert keys.get_key(ci.key_hash) == ci
    assert keys.get_key("0" * 64) is None
    assert sorted(keys.list_keys(), key=lambda record: record.name) == [admin, ci]

    keys.revoke_key(ci.key_id)
    keys.revoke_key(ci.key_id)  # again: still revoked
    assert keys.get_key(ci.key_hash) == dataclasses.replace(ci, revoked=True)
    assert keys.get_key(admin.key_hash) == admin
    with pytest.raises(NotFound):
        keys.revoke_key(str(uuid.uuid4()))


def test_virtual_keys_are_created_read_by_id_or_slug_and_listed_oldest_first(backend: Backend) -> None:
    bindings = backend.stores.virtual_keys
    late = virtual_key(created_at=stamp(20))
    early = virtual_key(created_at=stamp(10), note="a note", custom_host="https://llm.example.com/v1")

    assert bindings.create_virtual_key(late) == late
    assert bindings.create_virtual_key(early) == early

    assert bindings.get_virtual_key(late.id) == late == bindings.get_virtual_key(late.slug)
    assert bindings.list_virtual_keys() == [early, late]
    expect_errors([
        ("same slug", Conflict, lambda: bindings.create_virtual_key(virtual_key(slug=late.slug))),
        ("same id", Conflict, lambda: bindings.create_virtual_key(dataclasses.replace(virtual_key(), id=late.id))),
        ("unknown slug", VirtualKeyNotFound, lambda: bindings.get_virtual_key("vk-missing")),
        ("unknown id", VirtualKeyNotFound, lambda: bindings.get_virtual_key(str(uuid.uuid4()))),
    ])
    assert bindings.list_virtual_keys() == [early, late]


def test_virtual_keys_are_updated_and_deleted(backend: Backend) -> None:
    bindings = backend.stores.virtual_keys
    binding = bindings.create_virtual_key(virtual_key(note="old note"))
    other = bindings.create_virtual_key(virtual_key())
    changes = {"name": "Renamed", "note": None, "headers": {"x-team": "b"}, "config": {"api_version": "2025-01-01"},
               "secret_ref": "cuecard/virtual-keys/y", "masked_key": "sk-p****zzzz", "updated_at": stamp(30)}

    updated = bindings.update_virtual_key(binding.slug, changes)

    assert updated == dataclasses.replace(binding, **changes)
    assert bindings.get_virtual_key(binding.id) == updated == bindings.get_virtual_key(binding.slug)
    expect_errors([
        (f"change {field}", InvalidRequest, lambda field=field, value=value: bindings.update_virtual_key(
            binding.id, {field: value}))
        for field, value in (("slug", "vk-other"), ("id", str(uuid.uuid4())), ("provider", "anthropic"),
                             ("created_at", stamp(1)), ("colour", "red"))
    ] + [("update an unknown key", VirtualKeyNotFound,
          lambda: bindings.update_virtual_key("vk-missing", {"name": "x"}))])
    assert bindings.get_virtual_key(binding.id) == updated

    bindings.delete_virtual_key(binding.slug)
    expect_errors([
        ("get by id", VirtualKeyNotFound, lambda: bindings.get_virtual_key(binding.id)),
        ("get by slug", VirtualKeyNotFound, lambda: bindings.get_virtual_key(binding.slug)),
        ("update", VirtualKeyNotFound, lambda: bindings.update_virtual_key(binding.id, {"name": "x"})),
        ("delete again", VirtualKeyNotFound, lambda: bindings.delete_virtual_key(binding.id)),
        ("delete unknown", VirtualKeyNotFound, lambda: bindings.delete_virtual_key("vk-missing")),
    ])
    assert bindings.list_virtual_keys() == [other]
    reused = bindings.create_virtual_key(virtual_key(slug=binding.slug))  # the slug is free again
    assert bindings.get_virtual_key(binding.slug) == reused


def test_secrets_are_stored_replaced_and_deleted(backend: Backend) -> None:
    secrets = backend.stores.secrets
    name = f"virtual-keys/{uuid.uuid4()}"
    ref = secrets.put_secret(name, "sk-one")
    other = secrets.put_secret(f"virtual-keys/{uuid.uuid4()}", "sk-other")

    assert secrets.get_secret(ref) == "sk-one"
    assert secrets.put_secret(name, "sk-two ✓") == ref  # put again replaces, under the same reference
    assert secrets.get_secret(ref) == "sk-two ✓"
    assert other != ref

    secrets.delete_secret(ref)
    with pytest.raises(CuecardError):
        secrets.get_secret(ref)
    secrets.delete_secret(ref)  # deleting again is not an error
    assert secrets.get_secret(other) == "sk-other"
