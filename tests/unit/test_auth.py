import dataclasses

import pytest

from core.auth import KEY_PREFIX, Authenticator, grants, hash_key, mint_key, parse_scopes
from core.errors import InvalidRequest, PermissionDenied, Unauthenticated
from core.models import Scope
from tests.unit.fakes import InMemoryStore

NOW = "2025-01-01T00:00:00.000Z"


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


@pytest.mark.parametrize(
    "held, required, allowed",
    [
        (Scope.ADMIN, Scope.ADMIN, True),
        (Scope.ADMIN, Scope.WRITE, True),
        (Scope.ADMIN, Scope.RENDER, True),
        (Scope.WRITE, Scope.ADMIN, False),
        (Scope.WRITE, Scope.WRITE, True),
        (Scope.WRITE, Scope.RENDER, True),
        (Scope.RENDER, Scope.ADMIN, False),
        (Scope.RENDER, Scope.WRITE, False),
        (Scope.RENDER, Scope.RENDER, True),
    ],
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


def test_unknown_key_is_401(auth):
    with pytest.raises(Unauthenticated) as caught:
        auth.check("cck_nope", Scope.RENDER)
    assert caught.value.status == 401
    assert caught.value.code == "invalid_api_key"


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


def test_static_key_needs_no_store(store, clock):
    admin = mint_key("CUECARD_ADMIN_KEY", frozenset({Scope.ADMIN}), NOW, key="env-admin-key")
    auth = Authenticator(store, static_keys=[admin.record], clock=clock)
    for scope in Scope:
        assert auth.check("env-admin-key", scope) == admin.record
    assert store.get_key_calls == 0
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
    with pytest.raises(Unauthenticated):
        auth.check("cck_later", Scope.RENDER)
    minted = mint_key("later", frozenset({Scope.RENDER}), NOW, key="cck_later")
    store.put_key(minted.record)
    with pytest.raises(Unauthenticated):
        auth.check("cck_later", Scope.RENDER)
    assert store.get_key_calls == 1
    clock.now += 6  # well under the 60 s TTL: a miss is not remembered as long as a hit
    assert auth.check("cck_later", Scope.RENDER) == minted.record
    assert store.get_key_calls == 2


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
