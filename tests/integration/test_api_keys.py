"""DynamoApiKeyStore: only hashes are stored."""

from __future__ import annotations

import hashlib

import pytest

from core.errors import NotFound
from core.models import ApiKeyRecord, Scope
from infra.dynamodb_api_keys import DynamoApiKeyStore


def record(secret: str, key_id: str, scopes: frozenset[Scope], created_at: str) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_hash=hashlib.sha256(secret.encode()).hexdigest(),
        key_id=key_id,
        name=f"key {key_id}",
        scopes=scopes,
        created_at=created_at,
        prefix=secret[:8],
    )


def test_api_keys_round_trip_and_revoke(api_keys: DynamoApiKeyStore) -> None:
    render = record("ck-render-secret", "k1", frozenset({Scope.RENDER}), "2025-01-01T00:00:00.000Z")
    admin = record("ck-admin-secret", "k2", frozenset({Scope.ADMIN, Scope.WRITE}), "2025-01-02T00:00:00.000Z")
    api_keys.put_key(render)
    api_keys.put_key(admin)

    api_keys.table.calls.reset()
    assert api_keys.get_key(render.key_hash) == render
    assert api_keys.table.calls.reads == 1
    assert api_keys.get_key(hashlib.sha256(b"other").hexdigest()) is None
    assert list(api_keys.list_keys()) == [render, admin]

    api_keys.revoke_key("k1")
    revoked = api_keys.get_key(render.key_hash)
    assert revoked is not None and revoked.revoked and revoked.scopes == render.scopes
    with pytest.raises(NotFound):
        api_keys.revoke_key("k9")


def test_the_key_itself_is_never_stored(api_keys: DynamoApiKeyStore) -> None:
    api_keys.put_key(record("ck-very-secret-value", "k1", frozenset({Scope.RENDER}), "2025-01-01T00:00:00.000Z"))
    dump = str(api_keys.table.client.scan(TableName=api_keys.table.name)["Items"])
    assert "ck-very-secret-value" not in dump
