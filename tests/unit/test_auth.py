import dataclasses
import secrets

import pytest

from core.auth import (
    KEY_PREFIX,
    Authenticator,
    grants,
    hash_key,
    mint_key,
    parse_scopes,
    well_formed,
)
from core.errors import InvalidRequest, PermissionDenied, Unauthenticated
from core.models import Scope
from tests.unit.fakes import InMemoryStore

NOW = "2025-01-01T00:00:00.000Z"


def random_key() -> str:
    """A well-formed key nobody minted."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class CountingStore(InMemoryStore):
    def __init__(self):
        super().__init__()
        self.get_key_calls = 0

    def get_key(self, key_hash):
        self.get_key_calls += 1
        return super().get_key(key_hash)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def store():
    return CountingStore()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def auth(store, clock):
    return Authenticator(store, ttl=60.0, clock=clock)


def add_key(store, *scopes, name="k"):
    minted = mint_key(name, frozenset(scopes), NOW)
    store.put_key(minted.record)
    return minted


# --- minting and hashing -----------------------------------------------------------------------


def test_minted_key_is_stored_only_as_its_hash():
    minted = mint_key("ci", frozenset({Scope.RENDER}), NOW)
    assert minted.key.startswith(KEY_PREFIX)
    assert len(minted.key) > 40
    record = minted.record
    assert record.key_hash == hash_key(minted.key)
    assert len(record.key_hash) == 64
    assert record.prefix == minted.key[:8]
    assert record.name == "ci" and record.created_at == NOW and not record.revoked
    for value in dataclasses.asdict(record).values():
        assert minted.key not in str(value)


def test_minted_keys_differ():
    a = mint_key("a", frozenset({Scope.RENDER}), NOW)
    b = mint_key("a", frozenset({Scope.RENDER}), NOW)
    assert a.key != b.key
    assert a.record.key_hash != b.record.key_hash
    assert a.record.key_id != b.record.key_id


def test_mint_with_a_given_key():
    minted = mint_key("env", frozenset({Scope.ADMIN}), NOW, key="my-secret-admin-key")
    assert minted.key == "my-secret-admin-key"
    assert minted.record.key_hash == hash_key("my-secret-admin-key")


def test_hash_is_deterministic_sha256_hex():
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# --- scopes ------------------------------------------------------------------------------------


# What each held scope grants, row by row, in the order render, complete, write, admin.
IMPLIED = {
    Scope.RENDER: (True, False, False, False),
    Scope.COMPLETE: (True, True, False, False),
    Scope.WRITE: (True, False, True, False),
    Scope.ADMIN: (True, True, True, True),
}
REQUIRED = (Scope.RENDER, Scope.COMPLETE, Scope.WRITE, Scope.ADMIN)


def test_the_implication_table_covers_every_scope():
    assert set(IMPLIED) == set(Scope) == set(REQUIRED)


@pytest.mark.parametrize(
    "held, required, allowed",
    [(held, required, allowed) for held, row in IMPLIED.items() for required, allowed in zip(REQUIRED, row, strict=True)],
)
def test_scope_implication(held, required, allowed):
    record = mint_key("k", frozenset({held}), NOW).record
    assert grants(record, required) is allowed


def test_revoked_record_grants_nothing():
    record = dataclasses.replace(mint_key("k", frozenset({Scope.ADMIN}), NOW).record, revoked=True)
    assert not any(grants(record, scope) for scope in Scope)


@pytest.mark.parametrize(
    "values, expected",
    [
        (["render"], {Scope.RENDER}),
        (["complete"], {Scope.COMPLETE}),
        (["render,complete", "write"], {Scope.RENDER, Scope.COMPLETE, Scope.WRITE}),
        (["render,write"], {Scope.RENDER, Scope.WRITE}),
        ([" admin , render "], {Scope.ADMIN, Scope.RENDER}),
        (["write", "write"], {Scope.WRITE}),
        (["render,", "admin"], {Scope.RENDER, Scope.ADMIN}),
    ],
)
def test_parse_scopes(values, expected):
    assert parse_scopes(values) == frozenset(expected)


@pytest.mark.parametrize("values", [[], [""], [" , "], ["owner"], ["render,Admin"], ["read"]])
def test_parse_scopes_errors(values):
    with pytest.raises(InvalidRequest) as caught:
        parse_scopes(values)
    assert caught.value.status == 400
    assert caught.value.param == "scopes"


def test_parse_scopes_names_the_valid_scopes():
    with pytest.raises(InvalidRequest) as caught:
        parse_scopes(["owner"])
    assert "'owner'" in caught.value.message
    assert all(scope.value in caught.value.message for scope in Scope)


# --- checking ----------------------------------------------------------------------------------


@pytest.mark.parametrize("presented", [None, ""])
def test_missing_key_is_401(auth, store, presented):
    with pytest.raises(Unauthenticated) as caught:
        auth.check(presented, Scope.RENDER)
    assert caught.value.status == 401
    assert caught.value.code == "missing_api_key"
    assert caught.value.type == "authentication_error"
    assert store.get_key_calls == 0


def test_unknown_key_is_401(auth, store):
    with pytest.raises(Unauthenticated) as caught:
        auth.check(random_key(), Scope.RENDER)
    assert caught.value.status == 401
    assert caught.value.code == "invalid_api_key"
    assert store.get_key_calls == 1


def test_minted_keys_are_well_formed():
    assert all(well_formed(mint_key("k", frozenset({Scope.RENDER}), NOW).key) for _ in range(200))


@pytest.mark.parametrize(
    "presented",
    [
        "cck_nope",
        "sk-" + "a" * 48,  # another vendor's key pasted by mistake
        "cck_" + "a" * 42,
        "cck_" + "a" * 44,
        "CCK_" + "a" * 43,
        "cck-" + "a" * 43,
        "cck_" + "a" * 42 + "+",  # standard base64, not urlsafe
        "cck_" + "a" * 42 + "=",
        "cck_" + "a" * 42 + "é",
        "cck_" + "a" * 43 + "\n",
        " cck_" + "a" * 43,
        "x" * 100_000,
    ],
)
def test_a_malformed_key_is_401_without_a_lookup(auth, store, presented):
    assert not well_formed(presented)
    with pytest.raises(Unauthenticated) as caught:
        auth.check(presented, Scope.RENDER)
    assert caught.value.status == 401
    assert caught.value.code == "invalid_api_key"
    assert caught.value.type == "authentication_error"
    assert presented not in caught.value.message
    assert store.get_key_calls == 0


def test_a_stored_key_of_another_shape_is_never_looked_up(auth, store):
    """`mint_key(key=...)` takes any string, for static keys; from the store only the minted shape works."""
    odd = mint_key("odd", frozenset({Scope.ADMIN}), NOW, key="my-own-admin-key")
    store.put_key(odd.record)
    with pytest.raises(Unauthenticated):
        auth.check(odd.key, Scope.RENDER)
    assert store.get_key_calls == 0


def test_valid_key_returns_its_record(auth, store):
    minted = add_key(store, Scope.WRITE)
    assert auth.check(minted.key, Scope.RENDER) == minted.record
    assert auth.check(minted.key, Scope.WRITE) == minted.record


def test_revoked_key_is_401(store, clock):
    minted = add_key(store, Scope.ADMIN)
    store.revoke_key(minted.record.key_id)
    with pytest.raises(Unauthenticated):
        Authenticator(store, clock=clock).check(minted.key, Scope.RENDER)


@pytest.mark.parametrize("held, required", [(Scope.RENDER, Scope.WRITE), (Scope.RENDER, Scope.ADMIN), (Scope.WRITE, Scope.ADMIN)])
def test_missing_scope_is_403(auth, store, held, required):
    minted = add_key(store, held)
    with pytest.raises(PermissionDenied) as caught:
        auth.check(minted.key, required)
    assert caught.value.status == 403
    assert caught.value.type == "permission_error"
    assert required.value in caught.value.message


@pytest.mark.parametrize("static", ["env-admin-key", "cck_short", "a key with spaces", "ключ", "k" * 5000])
def test_a_static_key_of_any_shape_needs_no_store(store, clock, static):
    admin = mint_key("CUECARD_ADMIN_KEY", frozenset({Scope.ADMIN}), NOW, key=static)
    auth = Authenticator(store, static_keys=[admin.record], clock=clock)
    for scope in Scope:
        assert auth.check(static, scope) == admin.record
    assert store.get_key_calls == 0


def test_a_near_miss_of_a_static_key_is_401(store, clock):
    admin = mint_key("CUECARD_ADMIN_KEY", frozenset({Scope.ADMIN}), NOW, key="env-admin-key")
    auth = Authenticator(store, static_keys=[admin.record], clock=clock)
    with pytest.raises(Unauthenticated):
        auth.check("env-admin-key-2", Scope.RENDER)


def test_stored_keys_still_work_next_to_static_keys(store, clock):
    admin = mint_key("env", frozenset({Scope.ADMIN}), NOW, key="env-admin-key")
    auth = Authenticator(store, static_keys=[admin.record], clock=clock)
    minted = add_key(store, Scope.RENDER)
    assert auth.check(minted.key, Scope.RENDER) == minted.record


# --- cache -------------------------------------------------------------------------------------


def test_lookup_is_cached_for_the_ttl(auth, store, clock):
    minted = add_key(store, Scope.RENDER)
    auth.check(minted.key, Scope.RENDER)
    assert store.get_key_calls == 1
    clock.now += 59
    auth.check(minted.key, Scope.RENDER)
    assert store.get_key_calls == 1
    clock.now += 2
    auth.check(minted.key, Scope.RENDER)
    assert store.get_key_calls == 2


def test_revocation_takes_effect_after_the_ttl(auth, store, clock):
    minted = add_key(store, Scope.RENDER)
    auth.check(minted.key, Scope.RENDER)
    store.revoke_key(minted.record.key_id)
    auth.check(minted.key, Scope.RENDER)  # still cached
    clock.now += 61
    with pytest.raises(Unauthenticated):
        auth.check(minted.key, Scope.RENDER)


def test_unknown_key_is_cached_briefly(auth, store, clock):
    later = random_key()
    with pytest.raises(Unauthenticated):
        auth.check(later, Scope.RENDER)
    minted = mint_key("later", frozenset({Scope.RENDER}), NOW, key=later)
    store.put_key(minted.record)
    with pytest.raises(Unauthenticated):
        auth.check(later, Scope.RENDER)
    assert store.get_key_calls == 1
    clock.now += 6  # well under the 60 s TTL: a miss is not remembered as long as a hit
    assert auth.check(later, Scope.RENDER) == minted.record
    assert store.get_key_calls == 2


@pytest.mark.parametrize("ttl, negative_ttl", [(60.0, 5.0), (2.0, 2.0)])  # never longer than the ttl
def test_a_repeated_unknown_key_costs_one_read_per_negative_ttl(store, clock, ttl, negative_ttl):
    auth = Authenticator(store, ttl=ttl, clock=clock)
    unknown = random_key()
    for _ in range(100):
        with pytest.raises(Unauthenticated):
            auth.check(unknown, Scope.RENDER)
    assert store.get_key_calls == 1
    clock.now += negative_ttl - 0.1
    with pytest.raises(Unauthenticated):
        auth.check(unknown, Scope.RENDER)
    assert store.get_key_calls == 1
    clock.now += 0.2
    with pytest.raises(Unauthenticated):
        auth.check(unknown, Scope.RENDER)
    assert store.get_key_calls == 2


def test_the_negative_cache_is_bounded(store, clock):
    auth = Authenticator(store, ttl=60.0, clock=clock, max_unknown=2)
    a, b, c = random_key(), random_key(), random_key()
    for key in (a, b, c, c, a):  # c pushed a out: a is read again
        with pytest.raises(Unauthenticated):
            auth.check(key, Scope.RENDER)
    assert store.get_key_calls == 4


def test_a_flood_of_unknown_keys_never_evicts_a_valid_key(store, clock):
    auth = Authenticator(store, ttl=60.0, clock=clock, max_known=2, max_unknown=8)
    minted = [add_key(store, Scope.RENDER, name=f"k{n}") for n in range(2)]
    for key in minted:
        auth.check(key.key, Scope.RENDER)
    reads = store.get_key_calls
    for _ in range(1_000):  # far more unknown keys than both caches hold together
        with pytest.raises(Unauthenticated):
            auth.check(random_key(), Scope.RENDER)
    assert store.get_key_calls == reads + 1_000  # each distinct unknown key is read once...
    for key in minted:
        assert auth.check(key.key, Scope.RENDER) == key.record
    assert store.get_key_calls == reads + 1_000  # ...and the valid keys were never pushed out


def test_zero_ttl_disables_the_cache(store, clock):
    auth = Authenticator(store, ttl=0, clock=clock)
    minted = add_key(store, Scope.RENDER)
    auth.check(minted.key, Scope.RENDER)
    auth.check(minted.key, Scope.RENDER)
    assert store.get_key_calls == 2


def test_scope_failure_is_not_a_second_store_read(auth, store):
    minted = add_key(store, Scope.RENDER)
    auth.check(minted.key, Scope.RENDER)
    with pytest.raises(PermissionDenied):
        auth.check(minted.key, Scope.ADMIN)
    assert store.get_key_calls == 1


def test_a_key_revoked_through_the_authenticator_is_refused_at_once(auth, store):
    minted = add_key(store, Scope.RENDER)
    auth.check(minted.key, Scope.RENDER)
    auth.revoke_key(minted.record.key_id)
    with pytest.raises(Unauthenticated):
        auth.check(minted.key, Scope.RENDER)


def test_a_lookup_racing_a_revoke_does_not_cache_the_old_record(store, clock):
    minted = add_key(store, Scope.RENDER)
    auth = Authenticator(store, ttl=60.0, clock=clock)
    read = store.get_key

    def read_then_revoked(key_hash):
        record = read(key_hash)  # the lookup has read the live record...
        store.get_key = read
        auth.revoke_key(minted.record.key_id)  # ...when the revoke lands
        return record

    store.get_key = read_then_revoked
    assert auth.check(minted.key, Scope.RENDER) == minted.record  # the racing lookup itself may still pass
    with pytest.raises(Unauthenticated):
        auth.check(minted.key, Scope.RENDER)  # but it cached nothing: the next check reads the revoked record


# --- answering without the store (for an event loop) --------------------------------------------


def test_check_cached_answers_only_what_needs_no_store_read(auth, store):
    minted = add_key(store, Scope.RENDER)
    assert auth.check_cached(minted.key, Scope.RENDER) is None  # not cached yet: only the store can tell
    assert store.get_key_calls == 0
    auth.check(minted.key, Scope.RENDER)
    assert auth.check_cached(minted.key, Scope.RENDER) == minted.record
    with pytest.raises(PermissionDenied):
        auth.check_cached(minted.key, Scope.COMPLETE)
    assert store.get_key_calls == 1


@pytest.mark.parametrize("presented, error", [(None, "missing_api_key"), ("", "missing_api_key"),
                                              ("sk-pasted-by-mistake", "invalid_api_key")])
def test_check_cached_refuses_a_missing_or_malformed_key(auth, store, presented, error):
    with pytest.raises(Unauthenticated) as caught:
        auth.check_cached(presented, Scope.RENDER)
    assert caught.value.code == error
    assert store.get_key_calls == 0


def test_check_cached_refuses_a_key_known_to_be_unknown(auth, store):
    unknown = random_key()
    assert auth.check_cached(unknown, Scope.RENDER) is None
    with pytest.raises(Unauthenticated):
        auth.check(unknown, Scope.RENDER)
    with pytest.raises(Unauthenticated):
        auth.check_cached(unknown, Scope.RENDER)
    assert store.get_key_calls == 1


def test_check_cached_knows_static_keys(store, clock):
    admin = mint_key("CUECARD_ADMIN_KEY", frozenset({Scope.ADMIN}), NOW, key="env-admin-key")
    auth = Authenticator(store, static_keys=[admin.record], clock=clock)
    assert auth.check_cached("env-admin-key", Scope.COMPLETE) == admin.record
    assert store.get_key_calls == 0
