"""API keys: minting, hashing, and checking a presented key against a required scope.

Keys are stored only as SHA-256 hashes. A key is 32 random bytes, so a fast hash is safe: there is
nothing to brute-force. Lookups are cached briefly so a warm process does not read the store per call.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from core.errors import InvalidRequest, PermissionDenied, Unauthenticated
from core.models import ApiKeyRecord, Scope
from core.ports import ApiKeyStore

KEY_PREFIX = "cck_"
# What each scope also grants: admin > write > render.
_IMPLIED = {Scope.ADMIN: {Scope.ADMIN, Scope.WRITE, Scope.RENDER}, Scope.WRITE: {Scope.WRITE, Scope.RENDER}, Scope.RENDER: {Scope.RENDER}}
_NEGATIVE_TTL = 5.0


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
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiKeyRecord | None]] = {}
        self._lock = threading.Lock()

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

    def _lookup(self, key_hash: str) -> ApiKeyRecord | None:
        for known, record in self._static.items():
            if hmac.compare_digest(known, key_hash):
                return record
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = self._keys.get_key(key_hash)
        ttl = self._ttl if record is not None else min(self._ttl, _NEGATIVE_TTL)
        if ttl > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key_hash] = (now + ttl, record)
        return record
