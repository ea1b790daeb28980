"""API keys: minting, hashing, and checking a presented key against a required scope.

Keys are stored only as SHA-256 hashes. A key is 32 random bytes, so a fast hash is safe: there is
nothing to brute-force. Lookups are cached briefly (core.ttl_cache) so a warm process does not read the
store per call; a key revoked through the Authenticator is dropped from its cache at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from core.errors import InvalidRequest, PermissionDenied, Unauthenticated
from core.models import ApiKeyRecord, Scope
from core.ports import ApiKeyStore
from core.ttl_cache import TtlCache

KEY_PREFIX = "cck_"
# What each scope also grants: admin > write > render.
_IMPLIED = {Scope.ADMIN: {Scope.ADMIN, Scope.WRITE, Scope.RENDER}, Scope.WRITE: {Scope.WRITE, Scope.RENDER}, Scope.RENDER: {Scope.RENDER}}
_NEGATIVE_TTL = 5.0
_MAX_CACHED = 10_000


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    scopes = set()
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                scopes.add(Scope(part))
            except ValueError:
                names = ", ".join(scope.value for scope in Scope)
                raise InvalidRequest(f"Unknown scope {part!r}; use {names}.", param="scopes") from None
    if not scopes:
        raise InvalidRequest("A key needs at least one scope.", param="scopes")
    return frozenset(scopes)


@dataclass(frozen=True, slots=True)
class MintedKey:
    key: str  # shown once, never stored
    record: ApiKeyRecord


def mint_key(name: str, scopes: frozenset[Scope], created_at: str, key: str | None = None) -> MintedKey:
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        key_hash=hash_key(key),
        key_id=secrets.token_hex(8),
        name=name,
        scopes=scopes,
        created_at=created_at,
        prefix=key[:8],
    )
    return MintedKey(key, record)


def grants(record: ApiKeyRecord, scope: Scope) -> bool:
    return not record.revoked and any(scope in _IMPLIED[held] for held in record.scopes)


class Authenticator:
    def __init__(
        self,
        keys: ApiKeyStore,
        *,
        ttl: float = 60.0,
        static_keys: Iterable[ApiKeyRecord] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._ttl = ttl
        self._static = {record.key_hash: record for record in static_keys}
        self._cache: TtlCache[str, ApiKeyRecord | None] = TtlCache(ttl, _MAX_CACHED, clock)

    def check(self, presented: str | None, scope: Scope) -> ApiKeyRecord:
        """The key's record if it exists and grants `scope`; 401 or 403 otherwise."""
        if not presented:
            raise Unauthenticated(
                "No API key. Send it as 'x-portkey-api-key: <key>' or 'Authorization: Bearer <key>'.",
                code="missing_api_key",
            )
        record = self._lookup(hash_key(presented))
        if record is None or record.revoked:
            raise Unauthenticated("The API key is not valid.")
        if not grants(record, scope):
            raise PermissionDenied(f"This API key lacks the '{scope.value}' scope.")
        return record

    def revoke_key(self, key_id: str) -> None:
        """Revokes in the store; this process stops accepting the key at once (others within the ttl)."""
        try:
            self._keys.revoke_key(key_id)
        finally:
            self.invalidate()

    def invalidate(self) -> None:
        """Forgets every cached lookup; a lookup in flight does not cache what it read."""
        self._cache.invalidate()

    def _lookup(self, key_hash: str) -> ApiKeyRecord | None:
        for known, record in self._static.items():
            if hmac.compare_digest(known, key_hash):
                return record
        return self._cache.get_or_load(key_hash, lambda: self._keys.get_key(key_hash), ttl=self._lifetime)

    def _lifetime(self, record: ApiKeyRecord | None) -> float:
        """A miss is remembered briefly: a key created elsewhere soon works here."""
        return self._ttl if record is not None else min(self._ttl, _NEGATIVE_TTL)
