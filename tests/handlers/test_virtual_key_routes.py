"""The /virtual-keys routes over in-memory ports: the SDK's calls, the admin scope, and error shapes."""

from __future__ import annotations

import json

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from portkey_ai import Portkey
from portkey_ai.api_resources.exceptions import BadRequestError, NotFoundError

from core.auth import Authenticator
from core.models import Scope
from core.service import PromptService
from core.virtual_keys import VirtualKeyService
from handlers.http_app import _api_key, _install_error_handlers, create_app
from handlers.virtual_key_routes import add_virtual_key_routes
from tests.scoped_keys import key_per_scope
from tests.sdk_transport import in_process_client
from tests.unit.fakes import InMemoryStore
from tests.unit.virtual_key_fakes import InMemorySecretStore, InMemoryVirtualKeyStore

SECRET = "sk-ant-ROUTES-secret-0123456789abcd"
ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture
def stores() -> tuple[InMemoryStore, InMemoryVirtualKeyStore, InMemorySecretStore]:
    return InMemoryStore(), InMemoryVirtualKeyStore(), InMemorySecretStore()


@pytest.fixture
def keys(stores) -> dict[str, str]:
    return key_per_scope(stores[0])


@pytest.fixture
def app(stores) -> FastAPI:
    """A small app: the virtual-key router under /v1 and at the root, with http_app's error handlers."""
    templates, bindings, secrets = stores
    auth = Authenticator(templates, ttl=0)
    app = FastAPI()
    router = APIRouter()

    async def allow(request: Request, scope: Scope) -> None:
        auth.check(_api_key(request), scope)

    add_virtual_key_routes(router, VirtualKeyService(bindings, secrets), allow)
    app.include_router(router, prefix="/v1")
    app.include_router(router)
    _install_error_handlers(app)
    return app


@pytest.fixture
def http(app) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def sdk(app, keys) -> Portkey:
    """The SDK, unchanged, over the app in-process: it sends paths relative to its HTTP client's base URL."""
    return Portkey(api_key=keys["admin"], base_url="http://testserver/v1",
                   http_client=in_process_client(app, "http://testserver/v1"))


def assert_error(response, status: int, **expected) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    for name, value in expected.items():
        assert error[name] == value
    return error


def test_the_sdk_creates_lists_retrieves_updates_and_deletes(sdk, stores) -> None:
    _, bindings, secrets = stores
    created = sdk.virtual_keys.create(name="Anthropic", provider="anthropic", key=SECRET, note="team a",
                                      usage_limits={"credit_limit": 10})
    assert created.id and created.slug.startswith("vk-anthropic-") and created.object == "virtual-key"

    listed = sdk.virtual_keys.list()
    assert (listed.object, listed.total) == ("list", 1)
    assert listed.data[0]["slug"] == created.slug and listed.data[0]["masked_key"] == "sk-a****************abcd"

    retrieved = sdk.virtual_keys.retrieve(slug=created.slug)
    assert retrieved.name == "Anthropic" and retrieved.provider == "anthropic"

    updated = sdk.virtual_keys.update(slug=created.slug, name="Anthropic B", key="sk-ant-rotated-0000000000wxyz",
                                      rate_limits=[{"type": "requests", "unit": "rpm", "value": 5}])
    assert updated.slug == created.slug
    assert sdk.virtual_keys.retrieve(slug=created.id).masked_key == "sk-a****************wxyz"
    assert list(secrets.values.values()) == ["sk-ant-rotated-0000000000wxyz"]

    sdk.virtual_keys.delete(slug=created.slug)
    assert sdk.virtual_keys.list().total == 0 and bindings.bindings == {} and secrets.values == {}
    with pytest.raises(NotFoundError):
        sdk.virtual_keys.retrieve(slug=created.slug)


def test_the_sdk_passes_custom_host_and_headers_through_kwargs(sdk) -> None:
    created = sdk.virtual_keys.create(name="Ollama", provider="openai", custom_host="http://127.0.0.1:11434/v1",
                                      headers={"x-team": "a"})
    view = sdk.virtual_keys.retrieve(slug=created.slug)
    assert view.custom_host == "http://127.0.0.1:11434/v1" and view.headers == {"x-team": "*" * 16}  # masked
    assert view.masked_key is None


def test_validation_errors_reach_the_sdk_as_400(sdk) -> None:
    with pytest.raises(BadRequestError) as raised:
        sdk.virtual_keys.create(name="x", provider="openai", key=SECRET, headers={"Authorization": f"Bearer {SECRET}"})
    assert raised.value.status_code == 400 and "authorization" in str(raised.value)
    assert SECRET not in str(raised.value)


@pytest.mark.parametrize("scope", ["render", "write"])
def test_managing_bindings_takes_the_admin_scope(http, keys, scope) -> None:
    headers = {"x-portkey-api-key": keys[scope]}
    assert_error(http.get("/v1/virtual-keys", headers=headers), 403, type="permission_error")
    assert_error(http.post("/v1/virtual-keys", headers=headers, json={"name": "m", "provider": "mock"}), 403)
    assert_error(http.get("/v1/virtual-keys", headers={"x-portkey-api-key": ""}), 401)


def test_every_route_answers_with_and_without_v1(http, keys) -> None:
    headers = {"authorization": f"Bearer {keys['admin']}"}
    created = http.post("/virtual-keys", headers=headers, json={"name": "Mock", "slug": "mock", "provider": "mock"})
    assert created.status_code == 200, created.text
    assert http.get("/v1/virtual-keys/mock", headers=headers).json()["id"] == created.json()["id"]
    assert http.put("/virtual-keys/mock", headers=headers, json={"note": "hi"}).status_code == 200
    assert http.get("/virtual-keys", headers=headers).json()["data"][0]["note"] == "hi"
    assert http.delete("/v1/virtual-keys/mock", headers=headers).json() == {}
    assert_error(http.delete("/v1/virtual-keys/mock", headers=headers), 404, code="virtual_key_not_found")


def test_bad_bodies_are_openai_shaped_400s_that_quote_nothing(http, keys) -> None:
    headers = {"x-portkey-api-key": keys["admin"], "content-type": "application/json"}
    broken = '{"name": "x", "provider": "openai", "key": "' + SECRET + '"'
    error = assert_error(http.post("/v1/virtual-keys", headers=headers, content=broken), 400, code="invalid_json")
    assert SECRET not in error["message"]
    assert_error(http.post("/v1/virtual-keys", headers=headers, content=""), 400)
    assert_error(http.post("/v1/virtual-keys", headers=headers, json=[1]), 400)
    assert_error(http.post("/v1/virtual-keys", headers=headers, json={"name": "x", "provider": "mock", "x": 1}), 400,
                 param="x", code="unknown_parameter")
    assert_error(http.post("/v1/virtual-keys", headers=headers, content=json.dumps({"note": "x" * 70_000})), 413)


def test_prompts_through_the_app_check_their_virtual_key(stores, keys) -> None:
    templates, bindings, secrets = stores
    VirtualKeyService(bindings, secrets).create({"name": "Mock", "slug": "mock", "provider": "mock"})
    app = create_app(PromptService(templates, templates, virtual_keys=bindings), Authenticator(templates, ttl=0))
    client = TestClient(app, raise_server_exceptions=False)
    headers = {"x-portkey-api-key": keys["write"]}
    body = {"name": "P", "string": "Hi {{name}}", "parameters": {}}
    assert_error(client.post("/v1/prompts", headers=headers, json={**body, "virtual_key": "missing"}), 400,
                 param="virtual_key", type="invalid_request_error", code="virtual_key_not_found")
    created = client.post("/v1/prompts", headers=headers, json={**body, "virtual_key": "mock"})
    assert created.status_code == 200, created.text
    assert_error(client.put(f"/v1/prompts/{created.json()['id']}", headers=headers,
                            json={"patch": True, "virtual_key": "missing"}), 400, param="virtual_key")
