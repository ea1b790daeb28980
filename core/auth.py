"""API keys: minting, hashing, and checking a presented key against a required scope.

Keys are stored only as SHA-256 hashes. A key is 32 random bytes, so a fast hash is safe: there is
nothing to brute-force.

What a presented key costs, cheapest first:
- A static key (CUECARD_ADMIN_KEY: any string the operator chose) is compared first, in memory.
- Any other key must be well-formed, the shape `mint_key` gives: `cck_` and 43 characters of
  `A-Z a-z 0-9 - _` (`secrets.token_urlsafe(32)`). Anything else is a 401 before any lookup. A key minted
  with an explicit `key=` of another shape works only as a static key, never from the store.
- A well-formed key is looked up in the store, through two bounded caches (core.ttl_cache): found keys
  for `ttl` seconds (at most `max_known`: 10,000), unknown ones for min(ttl, 5) seconds (at most
  `max_unknown`: 4,096). They are apart, so a flood of random keys costs one store read per distinct key
  per 5 s and can only push out other unknown keys, never a valid one. A key revoked through the
  Authenticator is dropped at once. `check_cached` answers whatever needs no store read, so an event
  loop can send only the rest (`check`) to a worker thread.

Scopes and what each grants (`grants`):

| held | render | complete | write | admin |
|---|---|---|---|---|
| render | yes | no | no | no |
| complete | yes | yes | no | no |
| write | yes | no | yes | no |
| admin | yes | yes | yes | yes |

`write` does not grant `complete`: editing prompts is not a licence to spend provider money.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from core.errors import InvalidRequest, PermissionDenied, Unauthenticated
from core.models import ApiKeyRecord, Scope
from core.ports import ApiKeyStore
from core.ttl_cache import TtlCache

KEY_PREFIX = "cck_"
_WELL_FORMED = re.compile(r"cck_[A-Za-z0-9_-]{43}")  # KEY_PREFIX + secrets.token_urlsafe(32)
# What each scope grants (the table in the module docstring).
_IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.RENDER: frozenset({Scope.RENDER}),
    Scope.COMPLETE: frozenset({Scope.COMPLETE, Scope.RENDER}),
    Scope.WRITE: frozenset({Scope.WRITE, Scope.RENDER}),
    Scope.ADMIN: frozenset(Scope),
}
_NEGATIVE_TTL = 5.0


class _Unread(Enum):
    UNREAD = "only the store can tell"


_UNREAD = _Unread.UNREAD


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def well_formed(key: str) -> bool:
    """True if `key` has the shape `mint_key` gives (static keys need not)."""
    return _WELL_FORMED.fullmatch(key) is not None


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
        max_known: int = 10_000,
        max_unknown: int = 4_096,
    ) -> None:
        self._keys = keys
        self._ttl = ttl
        self._static = {record.key_hash: record for record in static_keys}
        self._negative_ttl = min(ttl, _NEGATIVE_TTL)
        self._known: TtlCache[str, ApiKeyRecord | None] = TtlCache(ttl, max_known, clock)
        self._unknown: TtlCache[str, ApiKeyRecord | None] = TtlCache(self._negative_ttl, max_unknown, clock)

    def check(self, presented: str | None, scope: Scope) -> ApiKeyRecord:
        """The key's record if it exists and grants `scope`; 401 or 403 otherwise. May read the store."""
        key = _required(presented)
        found = self._cached(key)
        return _verdict(self._read(key) if found is _UNREAD else found, scope)

    def check_cached(self, presented: str | None, scope: Scope) -> ApiKeyRecord | None:
        """What `check` answers when that needs no store read (no key, a static, malformed or cached key);
        None when it does: then call `check` where blocking is fine, so unknown keys never stall an event loop."""
        found = self._cached(_required(presented))
        return None if found is _UNREAD else _verdict(found, scope)

    def revoke_key(self, key_id: str) -> None:
        """Revokes in the store; this process stops accepting the key at once (others within the ttl)."""
        try:
            self._keys.revoke_key(key_id)
        finally:
            self.invalidate()

    def invalidate(self) -> None:
        """Forgets every cached lookup; a lookup in flight does not cache what it read."""
        self._known.invalidate()
        self._unknown.invalidate()

    def _cached(self, presented: str) -> ApiKeyRecord | None | _Unread:
        """The key's record or None (unknown) if known without the store; _UNREAD otherwise."""
        key_hash = hash_key(presented)
        for known, record in self._static.items():
            if hmac.compare_digest(known, key_hash):
                return record
        if not well_formed(presented):
            return None
        found = self._known.cached(key_hash, _UNREAD)
        if found is _UNREAD and self._unknown.cached(key_hash, _UNREAD) is not _UNREAD:
            return None
        return found

    def _read(self, presented: str) -> ApiKeyRecord | None:
        key_hash = hash_key(presented)
        # A found key is kept in `_known` only, a miss in `_unknown` only (briefly: a key created elsewhere
        # soon works here); each cache's ttl of the other kind of answer is 0, "do not keep".
        return self._known.get_or_load(
            key_hash,
            lambda: self._unknown.get_or_load(key_hash, lambda: self._keys.get_key(key_hash),
                                              ttl=lambda record: 0 if record is not None else self._negative_ttl),
            ttl=lambda record: self._ttl if record is not None else 0,
        )


def _required(presented: str | None) -> str:
    if not presented:
        raise Unauthenticated(
            "No API key. Send it as 'x-portkey-api-key: <key>' or 'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    return presented


def _verdict(record: ApiKeyRecord | None, scope: Scope) -> ApiKeyRecord:
    if record is None or record.revoked:
        raise Unauthenticated("The API key is not valid.")
    if not grants(record, scope):
        raise PermissionDenied(f"This API key lacks the '{scope.value}' scope.")
    return record
