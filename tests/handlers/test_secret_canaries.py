"""Secret canaries (issue 8, point 5): a provider key or custom header value is never in an answer, a
rejected value is never quoted back, and no field of a binding write reaches a DEBUG log line.

The whole app (handlers/container.py's composition) runs on each backend: the unit tests' fakes, SQLite,
and DynamoDB + Secrets Manager on moto with botocore's and urllib3's DEBUG logging on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.auth import mint_key
from core.models import Scope
from handlers.container import Container, build_container
from infra.settings import Settings
from infra.stores import Stores

NOW = "2026-01-01T00:00:00.000Z"
KEY, ROTATED_KEY = "sk-proj-CANARY-key-0123456789abcdefwxyz", "sk-proj-CANARY-rotated-9876543210zyxw"
HEADER, ROTATED_HEADER = "CANARY-header-value-0123456789", "CANARY-rotated-header-value-98765"
SHORT_HEADER = "CANARY-short"  # under 20 characters: masked completely
NAME, NOTE = "CANARY-name sk-proj-0123456789", "CANARY-note sk-proj-0123456789"
REJECTED = "sk-proj-REJECTED-canary-0123456789abcdef"  # in every rejected value
NEVER_ANSWERED = (KEY, ROTATED_KEY, HEADER, ROTATED_HEADER, SHORT_HEADER, REJECTED)
NEVER_LOGGED = (*NEVER_ANSWERED, NAME, NOTE, NAME + " 2", NOTE + " 2")
VALID_KEY = "sk-valid-00000000000000000000"
BINDING = {"name": "Other", "provider": "openai", "key": VALID_KEY}

# A rejected value for every field of a binding, on create (POST) and update (PUT on the openai binding).
BAD_CREATES: list[dict[str, Any]] = [
    {**BINDING, "provider": REJECTED},
    {**BINDING, "provider": [REJECTED]},
    {**BINDING, "key": REJECTED + " with a space"},
    {**BINDING, "key": REJECTED + "\n"},
    {**BINDING, "key": REJECTED * 250},  # too long
    {**BINDING, "key": {"value": REJECTED}},
    {"name": "m", "provider": "mock", "key": REJECTED},  # the mock provider takes no key
    {"name": "b", "provider": "bedrock", "key": REJECTED},
    {**BINDING, "name": REJECTED * 10},  # too long
    {**BINDING, "name": [REJECTED]},
    {**BINDING, "note": REJECTED * 60},
    {**BINDING, "note": {"a": REJECTED}},
    {**BINDING, "slug": REJECTED.upper()},
    {**BINDING, "slug": REJECTED + "!"},
    {**BINDING, "slug": [REJECTED]},
    {**BINDING, "custom_host": REJECTED},
    {**BINDING, "custom_host": f"ftp://{REJECTED}.example"},
    {**BINDING, "custom_host": f"http://user:{REJECTED}@example.com/v1"},
    {**BINDING, "custom_host": f"http://example.com/v1?key={REJECTED}"},
    {**BINDING, "custom_host": f"http://example.com:{REJECTED}/v1"},
    {**BINDING, "custom_host": f"http://example.com/{REJECTED} x"},
    {**BINDING, "custom_host": REJECTED * 60},
    {**BINDING, "headers": REJECTED},
    {**BINDING, "headers": [REJECTED]},
    {**BINDING, "headers": {"Authorization": f"Bearer {REJECTED}"}},
    {**BINDING, "headers": {"X-Api-Key": REJECTED}},
    {**BINDING, "headers": {"Host": REJECTED}},
    {**BINDING, "headers": {"x-a": REJECTED + "\r\nx-b: 1"}},
    {**BINDING, "headers": {"x-a": REJECTED * 120}},
    {**BINDING, "headers": {"x-a": [REJECTED]}},
    {**BINDING, "headers": {"x-a": "*" * 16 + REJECTED}},  # a masked value is not stored
    {**BINDING, "headers": {"x-a": "a", "X-A": REJECTED}},
    {**BINDING, "headers": {f"x-{n}": REJECTED for n in range(40)}},
    {**BINDING, "api_version": REJECTED + "!"},
    {**BINDING, "apiVersion": REJECTED * 3},
    {**BINDING, "api_version": REJECTED, "apiVersion": REJECTED + "x"},
    {**BINDING, "deployment_name": REJECTED + " x"},
    {**BINDING, "resource_name": REJECTED + ".evil.com"},
    {**BINDING, "resourceName": REJECTED + "#"},
    {**BINDING, "region": REJECTED},
    {**BINDING, "awsRegion": [REJECTED]},
    {**BINDING, "anthropic_version": REJECTED + "/"},
    {**BINDING, "deploymentConfig": [{"deploymentName": REJECTED + " x", "apiVersion": "2024-10-21"}]},
    {**BINDING, "deploymentConfig": [{"alias": REJECTED}]},
    {**BINDING, "deploymentConfig": REJECTED},
    {**BINDING, "workspace_id": [REJECTED]},
    {**BINDING, "usage_limits": REJECTED},
    {**BINDING, "rate_limits": {"a": REJECTED}},
    {**BINDING, "expires_at": [REJECTED]},
    {**BINDING, "secret": REJECTED},  # an unknown field: named, its value not quoted
]
BAD_UPDATES: list[dict[str, Any]] = [
    {"provider": REJECTED},
    {"provider": "anthropic", "key": REJECTED},
    *[{field: value for field, value in body.items() if BINDING.get(field) != value}  # only the bad field
      for body in BAD_CREATES if body.get("provider") == "openai" and "slug" not in body],
    {"headers": {"X-Trace-Token": "*" * 16, "X-Other": REJECTED[:4] + "*" * 16 + REJECTED[-4:]}},
]


@dataclasses.dataclass
class App:
    backend: str
    container: Container
    http: TestClient


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    admin = mint_key("admin", frozenset({Scope.ADMIN}), NOW).key
    stores: Stores | None = None
    if request.param == "memory":
        from tests.unit.fakes import InMemoryStore
        from tests.unit.job_fakes import MemoryLedger
        from tests.unit.virtual_key_fakes import (
            InMemorySecretStore,
            InMemoryVirtualKeyStore,
        )

        store = InMemoryStore()
        stores = Stores(templates=store, labels=store, collections=store, api_keys=store, virtual_keys=InMemoryVirtualKeyStore(),
                        secrets=InMemorySecretStore(), jobs=MemoryLedger(lambda: 0.0))
        settings = Settings(admin_key=admin)
    elif request.param == "sqlite":
        settings = Settings(store="sqlite", data_dir=str(tmp_path), admin_key=admin)
    else:  # Secrets Manager is shared by every test on the session's moto server: a prefix of this test's own
        settings = dataclasses.replace(request.getfixturevalue("settings"), admin_key=admin,
                                       secret_prefix=f"canary-{uuid.uuid4().hex}/")
    container = build_container(settings, stores)
    try:
        http = TestClient(container.asgi_app(), raise_server_exceptions=False)
        http.headers["x-portkey-api-key"] = admin
        yield App(request.param, container, http)
    finally:
        container.stores.close()


class Calls:
    """Calls the app, keeping every answer."""

    def __init__(self, http: TestClient) -> None:
        self.http = http
        self.answers: list[tuple[str, Any]] = []

    def __call__(self, method: str, path: str, body: Any = None, *, status: int = 200, content: str | None = None) -> Any:
        response = self.http.request(method, path, json=body, content=content)
        assert response.status_code == status, (method, path, body, response.text)
        self.answers.append((f"{method} {path} {str(body)[:80]}", response.json()))
        return response.json()

    def assert_no_canary(self) -> None:
        """No key, header value or rejected value in any answer; a name or note only as the binding's own."""
        assert self.answers
        for what, payload in self.answers:
            text = json.dumps(_without_names_and_notes(payload)).casefold()
            leaked = [canary for canary in (*NEVER_ANSWERED, NAME, NOTE) if canary.casefold() in text]
            assert not leaked, (what, leaked, payload)
            if "error" in payload:
                assert set(payload["error"]) == {"message", "type", "param", "code"}, payload


def write_bindings(call: Calls) -> dict[str, Any]:
    """A binding with every field a canary, read back every way, then updated with new canaries."""
    created = call("POST", "/v1/virtual-keys", {
        "name": NAME, "note": NOTE, "slug": "canary", "provider": "openai", "key": KEY,
        "headers": {"X-Trace-Token": HEADER, "X-Short": SHORT_HEADER}})
    views = [call("GET", "/v1/virtual-keys/canary"), call("GET", f"/v1/virtual-keys/{created['id']}"),
             *call("GET", "/v1/virtual-keys")["data"]]
    call("PUT", "/v1/virtual-keys/canary", {"key": ROTATED_KEY, "name": NAME + " 2", "note": NOTE + " 2",
                                            "headers": {"X-Trace-Token": ROTATED_HEADER, "X-Short": SHORT_HEADER}})
    return {"created": created, "views": views}


def reject_bad_values(call: Calls) -> None:
    """Every rejected value, on every route that takes one of a binding's fields or a prompt's virtual_key."""
    for body in BAD_CREATES:
        call("POST", "/v1/virtual-keys", body, status=400)
    call("POST", "/v1/virtual-keys", {"name": "Mock", "slug": "mock", "provider": "mock"})
    call("PUT", "/v1/virtual-keys/mock", {"key": REJECTED}, status=400)
    for body in BAD_UPDATES:
        call("PUT", "/v1/virtual-keys/canary", body, status=400)
    for method in ("GET", "PUT", "DELETE"):
        call(method, f"/v1/virtual-keys/{REJECTED}", {"name": "x"} if method == "PUT" else None, status=404)
    call("GET", f"/v1/virtual-keys?page_size={REJECTED}", status=400)
    call("GET", f"/v1/virtual-keys?current_page={REJECTED}", status=400)
    call("POST", "/v1/virtual-keys", content='{"name": "x", "provider": "openai", "key": "' + REJECTED, status=400)
    call("POST", "/v1/virtual-keys", [REJECTED], status=400)
    prompt = {"name": "P", "string": "Hi {{name}}", "parameters": {}}
    call("POST", "/v1/prompts", {**prompt, "virtual_key": REJECTED}, status=400)
    call("POST", "/v1/prompts", {**prompt, "virtual_key": [REJECTED]}, status=400)
    created = call("POST", "/v1/prompts", {**prompt, "virtual_key": "canary"})
    call("PUT", f"/v1/prompts/{created['id']}", {"patch": True, "virtual_key": REJECTED}, status=400)
    call("PUT", f"/v1/prompts/{created['id']}", {"patch": True, "virtual_key": {"k": REJECTED}}, status=400)


def test_answers_show_header_names_and_masked_values_and_the_store_keeps_the_values(app: App) -> None:
    call = Calls(app.http)
    written = write_bindings(call)
    for view in written["views"]:  # names shown, values masked like the key, whatever the header's name
        assert view["headers"] == {"X-Trace-Token": "CANA****************6789", "X-Short": "*" * 16}
        assert view["masked_key"] == "sk-p****************wxyz" and (view["name"], view["note"]) == (NAME, NOTE)
    # What a client read, sent back with one more header: the masked values keep the stored ones.
    shown = call("GET", "/v1/virtual-keys/canary")["headers"]
    call("PUT", "/v1/virtual-keys/canary", {"headers": {**shown, "X-Team": "a"}})
    view = call("GET", "/v1/virtual-keys/canary")
    assert view["headers"] == {"X-Trace-Token": "CANA****************8765", "X-Short": "*" * 16, "X-Team": "*" * 16}
    assert view["masked_key"] == "sk-p****************zyxw"
    # Stored unchanged, so sent to the provider as the user set them.
    stored = app.container.virtual_keys.bindings.get_virtual_key("canary")
    assert dict(stored.headers) == {"X-Trace-Token": ROTATED_HEADER, "X-Short": SHORT_HEADER, "X-Team": "a"}
    assert app.container.virtual_keys.secrets.get_secret(stored.secret_ref) == ROTATED_KEY
    call("DELETE", "/v1/virtual-keys/canary")
    call.assert_no_canary()


def test_rejected_values_are_never_quoted_back(app: App) -> None:
    call = Calls(app.http)
    call("POST", "/v1/virtual-keys", {**BINDING, "name": "Canary", "slug": "canary", "headers": {"X-Trace-Token": "t"}})
    before = app.container.virtual_keys.bindings.get_virtual_key("canary")
    call.answers.clear()
    reject_bad_values(call)
    assert app.container.virtual_keys.bindings.get_virtual_key("canary") == before  # nothing changed
    taken = "sk-taken-0123456789abcdef"  # a valid slug; the conflict does not quote it
    call("POST", "/v1/virtual-keys", {**BINDING, "slug": taken})
    conflict = call("POST", "/v1/virtual-keys", {**BINDING, "slug": taken}, status=409)
    assert taken not in json.dumps(conflict) and conflict["error"]["param"] == "slug"
    call("DELETE", "/v1/virtual-keys/canary")
    call("DELETE", "/v1/virtual-keys/canary", status=404)
    call.assert_no_canary()


def test_no_field_of_a_binding_write_reaches_a_debug_log(app: App, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger, botocore's and urllib3's included
    call = Calls(app.http)
    write_bindings(call)
    reject_bad_values(call)
    call("DELETE", "/v1/virtual-keys/canary")
    # Every record but the test client's own (httpx logs the URLs it calls, REJECTED in some).
    records = [record for record in caplog.records if not record.name.startswith("httpx")]
    logged = "\n".join(f"{record.getMessage()}\n{record.exc_text or ''}\n{record.stack_info or ''}" for record in records)
    assert not [canary for canary in NEVER_LOGGED if canary.casefold() in logged.casefold()]
    if app.backend == "dynamodb":  # botocore did log the calls, bodies redacted
        messages = [record.getMessage() for record in records if record.name.startswith("botocore")]
        assert any("TransactWriteItems" in message for message in messages)
        assert any(message.startswith("[redacted by cuecard") for message in messages)


def _without_names_and_notes(payload: Any) -> Any:
    """An answer without the `name` and `note` of the bindings it shows: those are shown as stored."""
    if isinstance(payload, dict):
        view = payload.get("object") == "virtual-key"
        return {key: _without_names_and_notes(value) for key, value in payload.items()
                if not (view and key in ("name", "note"))}
    if isinstance(payload, list):
        return [_without_names_and_notes(item) for item in payload]
    return payload
