"""Virtual keys on the moto server: DynamoDB bindings, Secrets Manager secrets, caches, and the
three secret guarantees (never in the table, never in an answer, never in a log)."""

from __future__ import annotations

import json
import logging
import threading
import uuid

import pytest
from botocore.exceptions import ClientError
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from portkey_ai import Portkey

from core.auth import Authenticator, mint_key
from core.errors import Conflict, InvalidRequest, StoreUnavailable, VirtualKeyNotFound
from core.models import Scope, VirtualKey
from core.service import PromptService
from handlers.http_app import _api_key, _install_error_handlers
from handlers.virtual_key_routes import add_virtual_key_routes
from handlers.virtual_key_wiring import build_virtual_keys
from infra import aws_clients
from infra.aws_errors import translate
from infra.cache import CachingSecretStore, CachingVirtualKeyStore
from infra.call_counter import CallCounter
from infra.dynamodb_client import dynamodb_client
from infra.dynamodb_stores import dynamodb_stores
from infra.dynamodb_table import DynamoTable
from infra.dynamodb_virtual_keys import DynamoVirtualKeyStore
from infra.secrets import SecretsManagerStore
from infra.settings import Settings
from tests.moto_server import MotoServer
from tests.sdk_transport import in_process_client

REGION = "us-east-1"
NOW = "2026-01-01T00:00:00.000Z"


def binding(slug: str = "openai-prod", **fields) -> VirtualKey:
    values = dict(id=str(uuid.uuid4()), slug=slug, name="OpenAI prod", provider="openai", created_at=NOW,
                  updated_at=NOW, secret_ref="cuecard/virtual-keys/x", masked_key="sk-p****************a1b2",
                  headers={"x-team": "a"}, config={"api_version": "2024-10-21"}, note="n")
    values.update(fields)
    return VirtualKey(**values)


class SecretsCalls:
    """The Secrets Manager operations one client makes."""

    def __init__(self, client) -> None:
        self.operations: list[str] = []
        client.meta.events.register("before-call.secrets-manager", self._on_call)

    def _on_call(self, model, **_) -> None:
        self.operations.append(model.name)


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}/"


@pytest.fixture
def sm_client(local_dynamodb: MotoServer):
    return aws_clients.client("secretsmanager", REGION, local_dynamodb.endpoint_url)


@pytest.fixture
def secret_store(sm_client, prefix) -> SecretsManagerStore:
    return SecretsManagerStore(sm_client, prefix)


@pytest.fixture
def client_and_store(settings: Settings):
    table = DynamoTable(dynamodb_client(REGION, settings.dynamodb_endpoint), settings.table_name)
    return table.client, DynamoVirtualKeyStore(table)


def scan_all(settings: Settings) -> list[dict]:
    client = dynamodb_client(REGION, settings.dynamodb_endpoint)
    items, request = [], {"TableName": settings.table_name, "ConsistentRead": True}
    while True:
        page = client.scan(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- DynamoVirtualKeyStore -----------------------------------------------------------------------


def test_a_binding_resolves_by_id_or_slug_in_one_read(client_and_store) -> None:
    client, store = client_and_store
    created = store.create_virtual_key(binding())
    counter = CallCounter().attach(client)
    assert store.get_virtual_key(created.id) == created
    assert counter.reads == 1
    assert store.get_virtual_key("openai-prod") == created
    assert counter.reads == 2 and counter.writes == 0
    assert store.get_virtual_key(created.id.upper()) == created
    with pytest.raises(VirtualKeyNotFound):
        store.get_virtual_key("nope")
    with pytest.raises(VirtualKeyNotFound):
        store.get_virtual_key(str(uuid.uuid4()))


def test_update_keeps_both_copies_and_delete_removes_both(client_and_store, settings) -> None:
    _, store = client_and_store
    created = store.create_virtual_key(binding())
    other = store.create_virtual_key(binding("other", created_at="2026-01-02T00:00:00.000Z"))
    assert [b.slug for b in store.list_virtual_keys()] == ["openai-prod", "other"]

    updated = store.update_virtual_key("openai-prod", {"name": "Renamed", "note": None, "config": {"region": "x"},
                                                       "updated_at": "2026-02-01T00:00:00.000Z"})
    assert (updated.name, updated.note, updated.config, updated.headers) == ("Renamed", None, {"region": "x"}, {"x-team": "a"})
    assert store.get_virtual_key(created.id) == store.get_virtual_key("openai-prod") == updated
    with pytest.raises(InvalidRequest):
        store.update_virtual_key(created.id, {"slug": "new"})

    store.delete_virtual_key("openai-prod")
    assert not [item for item in scan_all(settings) if item.get("binding_id", {}).get("S") == created.id]
    with pytest.raises(VirtualKeyNotFound):
        store.get_virtual_key(created.id)
    with pytest.raises(VirtualKeyNotFound):
        store.delete_virtual_key(created.id)
    with pytest.raises(VirtualKeyNotFound):
        store.update_virtual_key("openai-prod", {"name": "x"})
    assert [b.slug for b in store.list_virtual_keys()] == ["other"] and other.slug == "other"
    store.create_virtual_key(binding())  # a freed slug may be used again


def test_slugs_are_unique_and_ids_are_uuids(client_and_store) -> None:
    _, store = client_and_store
    store.create_virtual_key(binding())
    with pytest.raises(Conflict) as raised:
        store.create_virtual_key(binding())
    assert raised.value.status == 409 and raised.value.param == "slug"
    with pytest.raises(InvalidRequest):
        store.create_virtual_key(binding("fine", id="not-a-uuid"))
    with pytest.raises(InvalidRequest):
        store.create_virtual_key(binding(str(uuid.uuid4())))


def test_concurrent_updates_all_land_and_the_copies_agree(client_and_store, settings) -> None:
    _, store = client_and_store
    created = store.create_virtual_key(binding())
    stores = [DynamoVirtualKeyStore(DynamoTable.from_settings(settings)) for _ in range(6)]

    def work(worker: int) -> None:
        for round_ in range(3):
            stores[worker].update_virtual_key(created.id, {"note": f"{worker}-{round_}"})

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    items = [item for item in scan_all(settings) if item.get("binding_id", {}).get("S") == created.id]
    assert len(items) == 2 and {item["revision"]["N"] for item in items} == {str(1 + 6 * 3)}
    assert store.get_virtual_key(created.id) == store.get_virtual_key(created.slug)


# --- SecretsManagerStore -------------------------------------------------------------------------


def test_secrets_are_created_replaced_and_deleted_with_a_recovery_window(secret_store, sm_client, prefix) -> None:
    ref = secret_store.put_secret("virtual-keys/a", "value-1")
    assert ref == f"{prefix}virtual-keys/a"
    assert secret_store.get_secret(ref) == "value-1"
    assert secret_store.put_secret("virtual-keys/a", "value-2") == ref
    assert secret_store.get_secret(ref) == "value-2"
    tags = sm_client.describe_secret(SecretId=ref)["Tags"]
    assert {"Key": "managed-by", "Value": "cuecard"} in tags
    secret_store.delete_secret(ref)
    assert sm_client.describe_secret(SecretId=ref).get("DeletedDate")  # scheduled, recoverable
    with pytest.raises(Conflict):
        secret_store.get_secret(ref)
    secret_store.delete_secret(ref)  # deleting again is not an error


def test_force_delete_removes_at_once(sm_client, prefix) -> None:
    store = SecretsManagerStore(sm_client, prefix, force_delete=True)
    ref = store.put_secret("virtual-keys/b", "value")
    store.delete_secret(ref)
    with pytest.raises(ClientError):
        sm_client.describe_secret(SecretId=ref)
    with pytest.raises(StoreUnavailable, match="no provider key"):
        store.get_secret(ref)
    store.delete_secret(ref)


@pytest.mark.parametrize(
    "code, error, text",
    [
        ("ResourceNotFoundException", StoreUnavailable, "secret store"),
        ("ThrottlingException", StoreUnavailable, "secret store is throttling"),
        ("AccessDeniedException", StoreUnavailable, "IAM"),
        ("DecryptionFailure", StoreUnavailable, "decrypt"),
        ("InvalidRequestException", Conflict, "scheduled for deletion"),
        ("SomethingNew", StoreUnavailable, "secret store is unavailable"),
    ],
)
def test_secrets_manager_errors_map_through_the_one_table(code, error, text) -> None:
    exc = ClientError({"Error": {"Code": code, "Message": "sk-must-not-leak"}}, "GetSecretValue")
    translated = translate(exc, "secretsmanager")
    assert type(translated) is error and text in translated.message and "sk-must-not-leak" not in translated.message
    assert type(translate(ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "GetItem"))) is StoreUnavailable


# --- caches --------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_second_secret_read_within_the_ttl_makes_no_secrets_manager_call(secret_store, sm_client) -> None:
    calls = SecretsCalls(sm_client)
    clock = Clock()
    cache = CachingSecretStore(secret_store, ttl=300, clock=clock)
    ref = cache.put_secret("virtual-keys/c", "value-1")
    calls.operations.clear()
    assert cache.get_secret(ref) == "value-1"
    assert cache.get_secret(ref) == "value-1"
    clock.now += 299
    assert cache.get_secret(ref) == "value-1"
    assert calls.operations == ["GetSecretValue"]
    cache.put_secret("virtual-keys/c", "value-2")  # a put drops the entry at once
    assert cache.get_secret(ref) == "value-2"
    clock.now += 301
    assert cache.get_secret(ref) == "value-2"
    assert calls.operations.count("GetSecretValue") == 3
    cache.delete_secret(ref)
    with pytest.raises(Conflict):
        cache.get_secret(ref)
    assert CachingSecretStore(secret_store, ttl=0).inner is secret_store


def test_bindings_are_cached_by_id_and_slug_and_dropped_on_writes(client_and_store) -> None:
    client, store = client_and_store
    clock = Clock()
    cache = CachingVirtualKeyStore(store, ttl=30, clock=clock)
    created = cache.create_virtual_key(binding())
    counter = CallCounter().attach(client)
    assert cache.get_virtual_key("openai-prod") == created
    assert cache.get_virtual_key(created.id) == created  # cached under both names by the first read
    assert counter.reads == 1
    cache.update_virtual_key(created.id, {"name": "New"})
    assert cache.get_virtual_key("openai-prod").name == "New"
    clock.now += 31
    cache.get_virtual_key("openai-prod")
    assert counter.reads == 4  # the update's own read, then one read per expiry or invalidation
    cache.delete_virtual_key(created.id)
    with pytest.raises(VirtualKeyNotFound):
        cache.get_virtual_key(created.id)


# --- the whole stack, and the three guarantees ----------------------------------------------------


@pytest.fixture
def stack(settings: Settings, local_dynamodb: MotoServer, prefix: str):
    """Settings from the environment as a deployment reads them, Secrets Manager at CUECARD_SECRETS_ENDPOINT."""
    configured = Settings.from_env({
        "CUECARD_TABLE": settings.table_name,
        "CUECARD_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
        "CUECARD_SECRETS_ENDPOINT": local_dynamodb.endpoint_url,
        "CUECARD_SECRET_PREFIX": prefix,
        "AWS_REGION": REGION,
    })
    stores = dynamodb_stores(configured)
    parts = build_virtual_keys(configured, stores)
    admin = mint_key("admin", frozenset({Scope.ADMIN}), NOW)
    auth = Authenticator(stores.api_keys, ttl=0, static_keys=[admin.record])
    app = FastAPI()
    router = APIRouter()

    async def allow(request: Request, scope: Scope) -> None:
        auth.check(_api_key(request), scope)

    add_virtual_key_routes(router, parts.service, allow)
    app.include_router(router, prefix="/v1")
    _install_error_handlers(app)
    http = TestClient(app, raise_server_exceptions=False)
    http.headers["x-portkey-api-key"] = admin.key
    sdk = Portkey(api_key=admin.key, base_url="http://testserver/v1",
                  http_client=in_process_client(app, "http://testserver/v1"))
    return configured, stores, parts, http, sdk


def test_the_provider_key_is_never_in_the_table_an_answer_or_a_log(stack, settings, caplog) -> None:
    configured, _, parts, http, sdk = stack
    first, rotated = "sk-proj-GUARANTEE-first-0123456789abcd", "sk-proj-GUARANTEE-rotated-9876543210wxyz"
    answers: list[str] = []
    caplog.set_level(logging.DEBUG)  # every logger, botocore's and urllib3's included

    def call(method: str, path: str, body: dict | None = None) -> dict:
        response = http.request(method, path, json=body)
        assert response.status_code == 200, response.text
        answers.append(response.text)
        return response.json()

    created = call("POST", "/v1/virtual-keys", {"name": "OpenAI", "slug": "openai-main", "provider": "openai",
                                                "key": first, "headers": {"OpenAI-Organization": "org-1"}})
    views = [call("GET", "/v1/virtual-keys/openai-main"), call("GET", f"/v1/virtual-keys/{created['id']}")]
    views.append(call("GET", "/v1/virtual-keys")["data"][0])
    call("PUT", "/v1/virtual-keys/openai-main", {"key": rotated, "note": "rotated"})
    views.append(call("GET", "/v1/virtual-keys/openai-main"))
    views.append(dict(sdk.virtual_keys.retrieve(slug="openai-main")))
    answers.append(json.dumps(views[-1]))

    ref = parts.bindings.get_virtual_key("openai-main").secret_ref
    assert parts.secrets.get_secret(ref) == rotated  # what a completion would read: the rotated key
    assert views[0]["masked_key"] == "sk-p****************abcd" and views[-1]["masked_key"] == "sk-p****************wxyz"

    # (a) never stored in plain text in DynamoDB
    table = json.dumps(scan_all(settings))
    assert "openai-main" in table and first not in table and rotated not in table
    # (b) never returned by an endpoint, nor is the secret reference
    for text in answers:
        assert first not in text and rotated not in text and ref not in text and "secret_ref" not in text

    call("DELETE", "/v1/virtual-keys/openai-main")
    with pytest.raises(Conflict):  # scheduled for deletion
        parts.secrets.inner.get_secret(ref)

    # (c) never written to a log, at DEBUG, botocore's request and response logging included
    assert any(record.name.startswith("botocore") for record in caplog.records)
    assert any("GetSecretValue" in record.getMessage() for record in caplog.records)
    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert first not in logged and rotated not in logged and first not in caplog.text and rotated not in caplog.text


def test_prompts_check_virtual_keys_in_the_table(stack) -> None:
    _, stores, parts, http, _ = stack
    parts.service.create({"name": "Mock", "slug": "mock", "provider": "mock"})
    prompts = PromptService(stores.templates, stores.labels, virtual_keys=parts.bindings)
    body = {"name": "P", "string": "Hi", "parameters": {}}
    with pytest.raises(InvalidRequest) as raised:
        prompts.create_prompt({**body, "virtual_key": "no-such-key"})
    assert raised.value.param == "virtual_key"
    assert prompts.create_prompt({**body, "virtual_key": "mock"})["id"]


def test_settings_for_secrets() -> None:
    defaults = Settings.from_env({})
    assert (defaults.secrets_endpoint_url, defaults.secret_prefix, defaults.secret_cache_ttl) == (None, "cuecard/", 300.0)
    assert (defaults.secret_force_delete, defaults.secret_recovery_days, defaults.virtual_key_cache_ttl) == (False, 7, 30.0)
    local = Settings.from_env({"CUECARD_DYNAMODB_ENDPOINT": "http://127.0.0.1:9/"})
    assert local.secrets_endpoint_url == "http://127.0.0.1:9"  # a local endpoint (moto) serves both
    explicit = Settings.from_env({"CUECARD_DYNAMODB_ENDPOINT": "http://127.0.0.1:9", "CUECARD_SECRETS_ENDPOINT":
                                  "http://127.0.0.1:10", "CUECARD_SECRET_PREFIX": "cuecard/prod/",
                                  "CUECARD_SECRET_CACHE_TTL": "0", "CUECARD_SECRET_FORCE_DELETE": "true",
                                  "CUECARD_SECRET_RECOVERY_DAYS": "30"})
    assert (explicit.secrets_endpoint_url, explicit.secret_prefix, explicit.secret_cache_ttl) == (
        "http://127.0.0.1:10", "cuecard/prod/", 0.0)
    assert (explicit.secret_force_delete, explicit.secret_recovery_days) == (True, 30)
    for name, value in (("CUECARD_SECRET_PREFIX", "bad prefix"), ("CUECARD_SECRET_RECOVERY_DAYS", "3"),
                        ("CUECARD_SECRET_FORCE_DELETE", "maybe"), ("CUECARD_SECRETS_ENDPOINT", "localhost"),
                        ("CUECARD_SECRET_CACHE_TTL", "-1")):
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: value})
