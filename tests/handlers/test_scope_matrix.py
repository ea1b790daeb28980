"""The scope matrix: every route of the app, called by every kind of caller, is refused or let through
exactly as README's table says.

The routes are read from the app itself, so a route added without a row in MATRIX fails here. "Let
through" means the handler ran: any answer but 401, 403, a routing error or a 5xx (the ids in the paths
do not exist, so most answers are 404 or 400).
"""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from core.auth import Authenticator, mint_key
from core.collections import CollectionService
from core.completions import CompletionService
from core.models import Scope
from core.service import PromptService
from core.virtual_keys import VirtualKeyService
from handlers.http_app import create_app
from tests.unit.fakes import InMemoryStore
from tests.unit.test_completions import MockProvider, Providers
from tests.unit.virtual_key_fakes import InMemorySecretStore, InMemoryVirtualKeyStore

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI before included routers were kept nested: app.router.routes is flat
    def iter_route_contexts(routes):  # type: ignore[no-redef]
        return iter(routes)

PUBLIC = None  # no key needed
# Each route (without its /v1 prefix; both are served) and the scope it needs.
MATRIX: dict[tuple[str, str], Scope | None] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("POST", "/prompts/{prompt_id}/render"): Scope.RENDER,
    ("POST", "/prompts/{prompt_id}/completions"): Scope.COMPLETE,
    ("POST", "/prompts/{prompt_id}/generate"): Scope.COMPLETE,
    ("POST", "/responses"): Scope.COMPLETE,
    ("POST", "/prompts"): Scope.WRITE,
    ("GET", "/prompts"): Scope.WRITE,
    ("GET", "/prompts/{prompt_id}"): Scope.WRITE,
    ("PUT", "/prompts/{prompt_id}"): Scope.WRITE,
    ("DELETE", "/prompts/{prompt_id}"): Scope.WRITE,
    ("PUT", "/prompts/{prompt_id}/makeDefault"): Scope.WRITE,
    ("GET", "/prompts/{prompt_id}/versions"): Scope.WRITE,
    ("GET", "/prompts/{prompt_id}/diff"): Scope.WRITE,
    ("GET", "/prompts/{prompt_id}/versions/{version_id}"): Scope.WRITE,
    ("PUT", "/prompts/{prompt_id}/versions/{version_id}"): Scope.WRITE,
    ("POST", "/prompts/partials"): Scope.WRITE,
    ("GET", "/prompts/partials"): Scope.WRITE,
    ("GET", "/prompts/partials/{partial_id}"): Scope.WRITE,
    ("PUT", "/prompts/partials/{partial_id}"): Scope.WRITE,
    ("DELETE", "/prompts/partials/{partial_id}"): Scope.WRITE,
    ("GET", "/prompts/partials/{partial_id}/versions"): Scope.WRITE,
    ("PUT", "/prompts/partials/{partial_id}/makeDefault"): Scope.WRITE,
    ("POST", "/labels"): Scope.WRITE,
    ("GET", "/labels"): Scope.WRITE,
    ("GET", "/labels/{label_id}"): Scope.WRITE,
    ("PUT", "/labels/{label_id}"): Scope.WRITE,
    ("DELETE", "/labels/{label_id}"): Scope.WRITE,
    ("POST", "/collections"): Scope.WRITE,
    ("GET", "/collections"): Scope.WRITE,
    ("GET", "/collections/{collection_id}"): Scope.WRITE,
    ("PUT", "/collections/{collection_id}"): Scope.WRITE,
    ("DELETE", "/collections/{collection_id}"): Scope.WRITE,
    ("POST", "/virtual-keys"): Scope.ADMIN,
    ("GET", "/virtual-keys"): Scope.ADMIN,
    ("GET", "/virtual-keys/{key}"): Scope.ADMIN,
    ("PUT", "/virtual-keys/{key}"): Scope.ADMIN,
    ("DELETE", "/virtual-keys/{key}"): Scope.ADMIN,
}
# What a key of each scope may do, written out (README): admin everything; write and complete each add
# their own to render; write does not spend provider money.
HOLDS: dict[str, frozenset[Scope]] = {
    "render": frozenset({Scope.RENDER}),
    "complete": frozenset({Scope.RENDER, Scope.COMPLETE}),
    "write": frozenset({Scope.RENDER, Scope.WRITE}),
    "admin": frozenset({Scope.RENDER, Scope.COMPLETE, Scope.WRITE, Scope.ADMIN}),
}
NO_KEY = ("none", "malformed", "unknown", "revoked")  # all 401 wherever a key is needed
CALLERS = (*NO_KEY, *HOLDS)
PATH_VALUES = {"prompt_id": "no-such-prompt", "version_id": "no-such-version", "partial_id": "no-such-partial",
               "label_id": "no-such-label", "key": "no-such-binding", "collection_id": "no-such-collection"}
NOW = "2026-01-01T00:00:00.000Z"


def build() -> tuple[object, dict[str, str | None]]:
    """The app as `cuecard serve` builds it (completions and virtual keys on), and a key for each caller."""
    store, bindings, secrets = InMemoryStore(), InMemoryVirtualKeyStore(), InMemorySecretStore()
    prompts = PromptService(store, store, virtual_keys=bindings)
    completions = CompletionService(prompts, bindings, secrets, Providers(MockProvider()))
    app = create_app(prompts, Authenticator(store, ttl=0), completions=completions,
                     virtual_keys=VirtualKeyService(bindings, secrets),
                     collections=CollectionService(store, store, now=lambda: NOW))
    keys: dict[str, str | None] = {"none": None, "malformed": "sk-not-a-cuecard-key",
                                   "unknown": mint_key("never-stored", frozenset({Scope.ADMIN}), NOW).key}
    revoked = mint_key("revoked", frozenset({Scope.ADMIN}), NOW)
    store.put_key(dataclasses.replace(revoked.record, revoked=True))
    keys["revoked"] = revoked.key
    for caller in HOLDS:
        minted = mint_key(caller, frozenset({Scope(caller)}), NOW)
        store.put_key(minted.record)
        keys[caller] = minted.key
    return app, keys


def served_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route; HEAD, which Starlette adds to GET routes, is the GET route's."""
    found = set()
    for route in iter_route_contexts(app.app.router.routes):  # app.app: the FastAPI app inside the edge middleware
        for method in route.methods or ():
            if method != "HEAD" or "GET" not in route.methods:
                found.add((method, route.path))
    return sorted(found)


ROUTES = served_routes(build()[0])


@pytest.fixture(scope="module")
def served():
    app, keys = build()
    return TestClient(app, raise_server_exceptions=False), keys


def without_prefix(path: str) -> str:
    return path.removeprefix("/v1") or "/"


def test_every_route_has_a_row_and_every_row_a_route() -> None:
    routes = {(method, without_prefix(path)) for method, path in ROUTES}
    assert routes - set(MATRIX) == set(), "new routes: add them to MATRIX here and to README's scope matrix"
    assert set(MATRIX) - routes == set(), "rows for routes the app no longer serves"


def test_every_api_route_is_served_with_and_without_v1() -> None:
    paths = set(ROUTES)
    for method, path in paths:
        if MATRIX.get((method, without_prefix(path))) is not PUBLIC:
            assert (method, f"/v1{without_prefix(path)}") in paths and (method, without_prefix(path)) in paths


def test_the_matrix_knows_every_scope() -> None:
    assert set(HOLDS) == {scope.value for scope in Scope}
    assert set(MATRIX.values()) - {PUBLIC} == set(Scope)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method, path", ROUTES)
def test_scope_matrix(served, method: str, path: str, caller: str) -> None:
    client, keys = served
    required = MATRIX.get((method, without_prefix(path)), "missing")
    assert required != "missing", f"{method} {path} has no row in MATRIX"
    headers = {} if keys[caller] is None else {"x-portkey-api-key": keys[caller]}
    response = client.request(method, path.format(**PATH_VALUES), headers=headers,
                              json={} if method in ("POST", "PUT") else None)
    if required is PUBLIC or (caller in HOLDS and required in HOLDS[caller]):
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text
        if response.status_code in (404, 405):
            assert response.json()["error"]["code"] not in ("unknown_url", "method_not_allowed"), response.text
        return
    expected = 401 if caller in NO_KEY else 403
    assert response.status_code == expected, response.text
    error = response.json()["error"]
    assert error["type"] == ("authentication_error" if expected == 401 else "permission_error")
    assert set(error) == {"message", "type", "param", "code"}
    if keys[caller]:
        assert keys[caller] not in response.text
