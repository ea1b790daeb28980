"""DynamoStore as an ApiKeyStore: only hashes are stored."""

from __future__ import annotations

import hashlib

import pytest

from core.errors import NotFound
from core.models import ApiKeyRecord, Scope
from infra.dynamodb_store import DynamoStore


def record(secret: str, key_id: str, scopes: frozenset[Scope], created_at: str) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_hash=hashlib.sha256(secret.encode()).hexdigest(),
        key_id=key_id,
        name=f"key {key_id}",
        scopes=scopes,
        created_at=created_at,
        prefix=secret[:8],
    )


def test_api_keys_round_trip_and_revoke(store: DynamoStore) -> None:
    render = record("ck-render-secret", "k1", frozenset({Scope.RENDER}), "2025-01-01T00:00:00.000Z")
    admin = record("ck-admin-secret", "k2", frozenset({Scope.ADMIN, Scope.WRITE}), "2025-01-02T00:00:00.000Z")
    store.put_key(render)
    store.put_key(admin)

    store.calls.reset()
    assert store.get_key(render.key_hash) == render
    assert store.calls.reads == 1
    assert store.get_key(hashlib.sha256(b"other").hexdigest()) is None
    assert list(store.list_keys()) == [render, admin]

    store.revoke_key("k1")
    revoked = store.get_key(render.key_hash)
    assert revoked is not None and revoked.revoked and revoked.scopes == render.scopes
    with pytest.raises(NotFound):
        store.revoke_key("k9")


def test_the_key_itself_is_never_stored(store: DynamoStore) -> None:
    store.put_key(record("ck-very-secret-value", "k1", frozenset({Scope.RENDER}), "2025-01-01T00:00:00.000Z"))
    dump = str(store.client.scan(TableName=store.table_name)["Items"])
    assert "ck-very-secret-value" not in dump
