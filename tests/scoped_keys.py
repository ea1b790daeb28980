"""One API key per scope, stored in an ApiKeyStore, for tests that call routes as each kind of caller."""

from __future__ import annotations

from core.auth import mint_key
from core.models import Scope
from core.ports import ApiKeyStore


def key_per_scope(store: ApiKeyStore) -> dict[str, str]:
    """Scope name -> a key holding just that scope, already stored."""
    minted = {}
    for scope in Scope:
        key = mint_key(f"{scope.value}-key", frozenset({scope}), "2026-01-01T00:00:00.000Z")
        store.put_key(key.record)
        minted[scope.value] = key.key
    return minted
