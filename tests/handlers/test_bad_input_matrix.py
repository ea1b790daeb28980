"""Bad input on every JSON route of the whole app, on SQLite: each is a 4xx in the OpenAI error shape.

Never a 5xx, never plain text, never a traceback, and never "retry" for the caller's own mistake. The
app is the one `cuecard serve` runs (`build_container` on `open_sqlite_stores`), driven in-process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.auth import mint_key
from core.models import Scope
from handlers.container import build_container
from infra.settings import Settings
from infra.sqlite import open_sqlite_stores

LIMIT = 262_144  # the app's body limit here; virtual-key routes have their own 64 KiB
ERROR_KEYS = {"message", "type", "param", "code"}
NOW = "2026-01-01T00:00:00.000Z"
CHAT = json.dumps([{"role": "user", "content": "Hello {{name}}"}])
# A raw template whose rendered JSON nests as deep as the `a` list is long: the request itself is shallow.
RAW_DEEP = '[{"role": "user", "content": "x", "deep": {{#a}}[{{/a}}1{{#a}}]{{/a}} }]'
# A raw template that splices a variable where a JSON value goes: `"NaN"` renders to `"n": NaN`.
RAW_VALUE = '[{"role": "user", "content": "x", "n": {{v}} }]'
BAD = "@@BAD@@"  # where a bad token goes in a route's body


@dataclass
class World:
    client: TestClient
    keys: dict[str, str]
    ids: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("matrix")
    admin = mint_key("admin", frozenset({Scope.ADMIN}), NOW).key
    settings = Settings(store="sqlite", data_dir=str(root), admin_key=admin, max_body_bytes=LIMIT)
    stores = open_sqlite_stores(root / "db")
    render = mint_key("render", frozenset({Scope.RENDER}), NOW)
    stores.api_keys.put_key(render.record)
    client = TestClient(build_container(settings, stores).asgi_app(), raise_server_exceptions=False)
    headers = {"x-portkey-api-key": admin}

    def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(path, headers=headers, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    vk = made("/v1/virtual-keys", {"name": "Mock", "slug": "matrix-mock", "provider": "mock"})
    prompt = made("/v1/prompts", {"name": "Matrix", "string": CHAT, "model": "m", "virtual_key": vk["slug"],
                                  "parameters": {"temperature": 0.5}})
    raw = made("/v1/prompts", {"name": "Raw deep", "string": RAW_DEEP, "model": "m", "is_raw_template": True})
    raw_value = made("/v1/prompts", {"name": "Raw value", "string": RAW_VALUE, "model": "m", "virtual_key": vk["slug"],
                                     "is_raw_template": True})
    partial = made("/v1/prompts/partials", {"name": "Signature", "string": "-- {{who}}"})
    label = made("/v1/labels", {"name": "matrix"})
    try:
        yield World(client, {"admin": admin, "render": render.key},
                    {"prompt": prompt["slug"], "raw": raw["slug"], "raw_value": raw_value["slug"], "partial": partial["slug"], "label": label["id"],
                     "vk": vk["slug"]})
    finally:
        stores.close()


def assert_clean_4xx(response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    assert response.headers.get("content-type", "").startswith("application/json"), response.text[:300]
    assert "Traceback" not in response.text and 'File "' not in response.text
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"].endswith("_error")
    assert "retry" not in error["message"].lower(), error["message"]
    return error


def send(world: World, method: str, path: str, *, body: Any = None, key: str = "admin",
         headers: dict[str, str] | None = None) -> Any:
    """`body`: bytes as they are, a generator as a chunked stream, None for no body, else JSON."""
    path = path.format(**world.ids)
    sent = {"x-portkey-api-key": world.keys[key], "content-type": "application/json", **(headers or {})}
    if body is None:
        return world.client.request(method, path, headers=sent, follow_redirects=False)
    content = body if isinstance(body, bytes) or hasattr(body, "__next__") else json.dumps(body).encode()
    return world.client.request(method, path, headers=sent, content=content, follow_redirects=False)


# --- every JSON route, every kind of bad body --------------------------------------------------------------

# name: (method, path, key, body with a bad string slot, body with a bad number slot)
ROUTES: dict[str, tuple[str, str, str, dict[str, Any], dict[str, Any]]] = {
    "render": ("POST", "/v1/prompts/{prompt}/render", "render",
               {"variables": {"name": BAD}}, {"variables": {"name": "Ada"}, "temperature": BAD}),
    "completions": ("POST", "/v1/prompts/{prompt}/completions", "admin",
                    {"variables": {"name": BAD}}, {"variables": {"name": "Ada"}, "max_tokens": BAD}),
    "create-prompt": ("POST", "/v1/prompts", "admin",
                      {"name": "Other", "string": BAD, "model": "m"},
                      {"name": "Other", "string": CHAT, "parameters": {"temperature": BAD}}),
    "update-prompt": ("PUT", "/v1/prompts/{prompt}", "admin",
                      {"patch": True, "version_description": BAD}, {"patch": True, "parameters": {"max_tokens": BAD}}),
    "publish-prompt": ("PUT", "/v1/prompts/{prompt}/makeDefault", "admin", {"version": BAD}, {"version": BAD}),
    "label-version": ("PUT", "/v1/prompts/{prompt}/versions/1", "admin", {"label_id": BAD}, {"label_id": BAD}),
    "create-partial": ("POST", "/v1/prompts/partials", "admin",
                       {"name": "Other", "string": BAD}, {"name": "Other", "string": "x", "version_description": BAD}),
    "update-partial": ("PUT", "/v1/prompts/partials/{partial}", "admin",
                       {"string": BAD}, {"string": "x", "description": BAD}),
    "publish-partial": ("PUT", "/v1/prompts/partials/{partial}/makeDefault", "admin", {"version": BAD}, {"version": BAD}),
    "create-label": ("POST", "/v1/labels", "admin", {"name": "other", "description": BAD}, {"name": BAD}),
    "update-label": ("PUT", "/v1/labels/{label}", "admin", {"description": BAD}, {"color_code": BAD}),
    "create-virtual-key": ("POST", "/v1/virtual-keys", "admin",
                           {"name": "Other", "provider": "mock", "note": BAD},
                           {"name": "Other", "provider": "mock", "usage_limits": {"credit_limit": BAD}}),
    "update-virtual-key": ("PUT", "/v1/virtual-keys/{vk}", "admin",
                           {"note": BAD}, {"usage_limits": {"credit_limit": BAD}}),
}


def with_token(body: dict[str, Any], token: str) -> bytes:
    return json.dumps(body).replace(json.dumps(BAD), token).encode()


def oversized_chunks() -> Iterator[bytes]:
    yield b'{"variables": {"name": "'
    for _ in range(2 * LIMIT // 65536):
        yield b"x" * 65536
    yield b'"}}'


# kind: (slot, token) or a whole body
NUMBER_TOKENS = {
    "nan": "NaN",
    "infinity": "Infinity",
    "minus-infinity": "-Infinity",
    "float-overflow": "1e400",
    "5000-digit-integer": "9" * 5000,
    "1000-deep-array": "[" * 1000 + "]" * 1000,
}
STRING_TOKENS = {
    "lone-surrogate": '"\\ud800"',
    "lone-low-surrogate": '"ok \\udfff"',
    "surrogate-key": '{"\\udc00": "v"}',
}
WHOLE_BODIES: dict[str, Any] = {
    "undecodable-utf8": b'{"x": "\xff\xfe"}',
    "encoded-surrogate-bytes": b'{"x": "\xed\xa0\x80"}',
    "truncated-json": b'{"variables": {',
    "array-body": b"[1, 2]",
    "string-body": b'"text"',
    "over-the-limit": json.dumps({"variables": {"name": "x" * (LIMIT + 1)}}).encode(),
}
GENERIC = ([(route, kind, "number", token) for route in ROUTES for kind, token in NUMBER_TOKENS.items()]
           + [(route, kind, "string", token) for route in ROUTES for kind, token in STRING_TOKENS.items()]
           + [(route, kind, "whole", kind) for route in ROUTES for kind in WHOLE_BODIES]
           + [(route, "chunked-over-the-limit", "whole", "chunked") for route in ROUTES])


@pytest.mark.parametrize("route, kind, slot, token", GENERIC, ids=[f"{route}-{kind}" for route, kind, _, _ in GENERIC])
def test_every_json_route_refuses_bad_bodies_with_a_clean_4xx(world, route, kind, slot, token) -> None:
    method, path, key, string_body, number_body = ROUTES[route]
    if slot == "number":
        body: Any = with_token(number_body, token)
    elif slot == "string":
        body = with_token(string_body, token)
    elif token == "chunked":
        body = oversized_chunks()
    else:
        body = WHOLE_BODIES[token]
    error = assert_clean_4xx(send(world, method, path, body=body, key=key))
    if kind in ("over-the-limit", "chunked-over-the-limit"):
        assert error["code"] == "request_too_large"


# --- route by route: the fields that reach the stores, templates and providers --------------------------------

SURROGATE = "\ud800"
CASES: list[tuple[str, str, str, Any, str]] = [
    # render and completions: variables, pass-through parameters, messages
    ("render-nan-in-a-variable-list", "POST", "/v1/prompts/{prompt}/render", b'{"variables": {"name": [1, NaN]}}', "render"),
    ("render-infinity-temperature", "POST", "/v1/prompts/{prompt}/render",
     b'{"variables": {}, "temperature": Infinity}', "render"),
    ("render-nan-in-a-nested-parameter", "POST", "/v1/prompts/{prompt}/render",
     b'{"variables": {}, "response_format": {"type": "json_object", "x": NaN}}', "render"),
    ("render-400-digit-max-tokens", "POST", "/v1/prompts/{prompt}/render",
     b'{"variables": {}, "max_tokens": ' + b"9" * 400 + b"}", "render"),
    ("render-400-digit-seed", "POST", "/v1/prompts/{prompt}/render", b'{"variables": {}, "seed": ' + b"9" * 400 + b"}",
     "render"),
    ("render-surrogate-in-messages", "POST", "/v1/prompts/{prompt}/render",
     b'{"messages": [{"role": "user", "content": "\\ud800"}]}', "render"),
    ("render-surrogate-variable-name", "POST", "/v1/prompts/{prompt}/render", b'{"variables": {"\\ud800": "x"}}', "render"),
    ("render-1000-deep-variable", "POST", "/v1/prompts/{prompt}/render",
     b'{"variables": {"name": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1000 + b"}}", "render"),
    ("render-variables-not-an-object", "POST", "/v1/prompts/{prompt}/render", {"variables": [1]}, "render"),
    ("render-stream-not-a-boolean", "POST", "/v1/prompts/{prompt}/render", {"stream": "yes"}, "render"),
    ("render-temperature-not-a-number", "POST", "/v1/prompts/{prompt}/render", {"temperature": "hot"}, "render"),
    ("render-null-body", "POST", "/v1/prompts/{prompt}/render", b"null", "render"),
    ("render-number-body", "POST", "/v1/prompts/{prompt}/render", b"42", "render"),
    ("render-raw-template-renders-2000-deep", "POST", "/v1/prompts/{raw}/render", {"variables": {"a": [1] * 2000}},
     "render"),
    ("completions-nan-temperature-streaming", "POST", "/v1/prompts/{prompt}/completions",
     b'{"variables": {"name": "Ada"}, "stream": true, "temperature": NaN}', "admin"),
    ("completions-surrogate-variable-streaming", "POST", "/v1/prompts/{prompt}/completions",
     b'{"variables": {"name": "\\ud800"}, "stream": true}', "admin"),
    ("completions-raw-template-renders-2000-deep", "POST", "/v1/prompts/{raw}/completions",
     {"variables": {"a": [1] * 2000}}, "admin"),
    ("completions-messages-not-a-list", "POST", "/v1/prompts/{prompt}/completions", {"messages": "hi"}, "admin"),
    ("render-raw-template-variable-renders-nan", "POST", "/v1/prompts/{raw_value}/render", {"variables": {"v": "NaN"}},
     "render"),
    ("render-raw-template-variable-renders-minus-infinity", "POST", "/v1/prompts/{raw_value}/render",
     {"variables": {"v": "-Infinity"}}, "render"),
    ("render-raw-template-variable-renders-1e400", "POST", "/v1/prompts/{raw_value}/render",
     {"variables": {"v": "1e400"}}, "render"),
    ("render-raw-template-variable-renders-5000-digits", "POST", "/v1/prompts/{raw_value}/render",
     {"variables": {"v": "9" * 5000}}, "render"),
    ("completions-raw-template-variable-renders-nan", "POST", "/v1/prompts/{raw_value}/completions",
     {"variables": {"v": "NaN"}}, "admin"),
    ("completions-raw-template-variable-renders-5000-digits", "POST", "/v1/prompts/{raw_value}/completions",
     {"variables": {"v": "9" * 5000}, "stream": True}, "admin"),
    # stored prompts: templates, stored parameters, collection, metadata
    ("create-prompt-stored-infinity-parameter", "POST", "/v1/prompts",
     b'{"name": "Inf", "string": "hi", "parameters": {"top_p": -Infinity}}', "admin"),
    ("create-prompt-stored-400-digit-parameter", "POST", "/v1/prompts",
     b'{"name": "Big", "string": "hi", "parameters": {"seed": ' + b"9" * 400 + b"}}", "admin"),
    ("create-prompt-surrogate-template", "POST", "/v1/prompts", b'{"name": "S", "string": "Hi \\ud800 {{x}}"}', "admin"),
    ("create-prompt-surrogate-collection-id", "POST", "/v1/prompts",
     b'{"name": "C", "string": "hi", "collection_id": "\\ud800"}', "admin"),
    ("create-prompt-surrogate-metadata-value", "POST", "/v1/prompts",
     b'{"name": "M", "string": "hi", "prompt_metadata": {"team": "\\ud800"}}', "admin"),
    ("create-prompt-surrogate-metadata-key", "POST", "/v1/prompts",
     b'{"name": "M", "string": "hi", "prompt_metadata": {"\\ud800": 1}}', "admin"),
    ("create-prompt-surrogate-template-metadata", "POST", "/v1/prompts",
     b'{"name": "T", "string": "hi", "template_metadata": {"a": ["\\udfff"]}}', "admin"),
    ("create-prompt-surrogate-name", "POST", "/v1/prompts", b'{"name": "\\ud800", "string": "hi"}', "admin"),
    ("create-prompt-surrogate-parameter", "POST", "/v1/prompts",
     b'{"name": "P", "string": "hi", "parameters": {"stop": ["\\ud800"]}}', "admin"),
    ("create-prompt-nan-in-tools", "POST", "/v1/prompts",
     b'{"name": "Tools", "string": "hi", "tools": [{"type": "function", "x": NaN}]}', "admin"),
    ("create-prompt-name-not-a-string", "POST", "/v1/prompts", {"name": 5, "string": "hi"}, "admin"),
    ("create-prompt-raw-flag-not-a-boolean", "POST", "/v1/prompts",
     {"name": "R", "string": "[]", "is_raw_template": "yes"}, "admin"),
    ("update-prompt-surrogate-collection-id", "PUT", "/v1/prompts/{prompt}",
     b'{"patch": true, "collection_id": "\\ud800"}', "admin"),
    ("update-prompt-surrogate-metadata", "PUT", "/v1/prompts/{prompt}",
     b'{"patch": true, "prompt_metadata": {"k": "\\ud800"}}', "admin"),
    ("update-prompt-stored-nan-parameter", "PUT", "/v1/prompts/{prompt}",
     b'{"patch": true, "parameters": {"temperature": NaN}}', "admin"),
    ("update-prompt-patch-not-a-boolean", "PUT", "/v1/prompts/{prompt}", {"patch": "yes"}, "admin"),
    ("create-prompt-surrogate-external-id", "POST", "/v1/prompts",
     b'{"name": "E", "string": "hi", "external_ids": ["pmpt_\\ud800"]}', "admin"),
    ("update-prompt-surrogate-external-id", "PUT", "/v1/prompts/{prompt}", b'{"external_ids": ["\\udfff"]}', "admin"),
    ("create-prompt-external-ids-nested", "POST", "/v1/prompts",
     {"name": "E", "string": "hi", "external_ids": [["pmpt_a"]]}, "admin"),
    ("update-prompt-external-ids-object", "PUT", "/v1/prompts/{prompt}", {"external_ids": {"a": "pmpt_a"}}, "admin"),
    ("render-strict-not-a-boolean", "POST", "/v1/prompts/{prompt}/render", {"strict": "yes"}, "render"),
    ("render-strict-missing-variable", "POST", "/v1/prompts/{prompt}/render", {"strict": True}, "render"),
    ("completions-strict-unknown-variable-streaming", "POST", "/v1/prompts/{prompt}/completions",
     {"variables": {"name": "Ada", "x": [1]}, "strict": True, "stream": True}, "admin"),
    ("create-prompt-variables-schema-not-an-object-schema", "POST", "/v1/prompts",
     {"name": "V", "string": "hi", "variables_schema": {"type": "string"}}, "admin"),
    ("create-prompt-variables-schema-not-a-schema", "POST", "/v1/prompts",
     {"name": "V", "string": "hi", "variables_schema": {"type": "object", "properties": []}}, "admin"),
    ("create-prompt-variables-schema-ref-loop", "POST", "/v1/prompts",
     {"name": "V", "string": "hi", "variables_schema": {"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}}},
     "admin"),
    ("create-prompt-variables-schema-remote-ref", "POST", "/v1/prompts",
     {"name": "V", "string": "hi", "variables_schema": {"type": "object", "$ref": "http://127.0.0.1:9/s.json"}}, "admin"),
    ("create-prompt-variables-schema-bad-default", "POST", "/v1/prompts",
     {"name": "V", "string": "hi", "variables_schema": {"type": "object", "properties": {"a": {"type": "integer",
                                                                                          "default": 1.5}}}}, "admin"),
    ("create-prompt-variables-schema-bad-regex", "POST", "/v1/prompts",
     {"name": "V", "string": "hi", "variables_schema": {"type": "object", "patternProperties": {"(": {}}}}, "admin"),
    ("create-prompt-variables-schema-surrogate", "POST", "/v1/prompts",
     b'{"name": "V", "string": "hi", "variables_schema": {"type": "object", "properties": {"\\ud800": {}}}}', "admin"),
    ("update-prompt-strict-variables-not-a-boolean", "PUT", "/v1/prompts/{prompt}",
     {"patch": True, "strict_variables": 1}, "admin"),
    ("publish-prompt-force-not-a-boolean", "PUT", "/v1/prompts/{prompt}/makeDefault", {"version": 1, "force": 1},
     "admin"),
    ("label-version-force-not-a-boolean", "PUT", "/v1/prompts/{prompt}/versions/1", {"label_id": "staging",
                                                                                     "force": "true"}, "admin"),
    ("publish-prompt-version-zero", "PUT", "/v1/prompts/{prompt}/makeDefault", {"version": 0}, "admin"),
    ("publish-prompt-version-text", "PUT", "/v1/prompts/{prompt}/makeDefault", {"version": "1"}, "admin"),
    # partials and labels
    ("create-partial-surrogate-name", "POST", "/v1/prompts/partials", b'{"name": "\\ud800", "string": "x"}', "admin"),
    ("create-partial-surrogate-collection-id", "POST", "/v1/prompts/partials",
     b'{"name": "P", "string": "x", "collection_id": "\\udc00"}', "admin"),
    ("update-partial-surrogate-version-description", "PUT", "/v1/prompts/partials/{partial}",
     b'{"string": "x", "version_description": "\\ud800"}', "admin"),
    ("create-label-surrogate-name", "POST", "/v1/labels", b'{"name": "\\ud800"}', "admin"),
    ("create-label-surrogate-color", "POST", "/v1/labels", b'{"name": "colour", "color_code": "\\ud800"}', "admin"),
    ("update-label-surrogate-name", "PUT", "/v1/labels/{label}", b'{"name": "a\\udfff"}', "admin"),
    ("label-version-unknown-field", "PUT", "/v1/prompts/{prompt}/versions/1", {"label": "x"}, "admin"),
    # virtual keys: every field that reaches the binding store or the secret store
    ("create-virtual-key-surrogate-name", "POST", "/v1/virtual-keys", b'{"name": "\\ud800", "provider": "mock"}', "admin"),
    ("create-virtual-key-surrogate-secret", "POST", "/v1/virtual-keys",
     b'{"name": "K", "provider": "openai", "key": "sk-\\ud800"}', "admin"),
    ("create-virtual-key-surrogate-provider", "POST", "/v1/virtual-keys", b'{"name": "K", "provider": "\\ud800"}', "admin"),
    ("create-virtual-key-surrogate-slug", "POST", "/v1/virtual-keys",
     b'{"name": "K", "provider": "mock", "slug": "\\ud800"}', "admin"),
    ("create-virtual-key-surrogate-custom-host", "POST", "/v1/virtual-keys",
     b'{"name": "K", "provider": "mock", "custom_host": "http://\\ud800.example"}', "admin"),
    ("create-virtual-key-surrogate-header-value", "POST", "/v1/virtual-keys",
     b'{"name": "K", "provider": "mock", "headers": {"x-team": "\\ud800"}}', "admin"),
    ("create-virtual-key-surrogate-header-name", "POST", "/v1/virtual-keys",
     b'{"name": "K", "provider": "mock", "headers": {"x-\\ud800": "a"}}', "admin"),
    ("create-virtual-key-surrogate-deployment", "POST", "/v1/virtual-keys",
     b'{"name": "K", "provider": "azure-openai", "deploymentConfig": [{"apiVersion": "\\ud800"}]}', "admin"),
    ("create-virtual-key-headers-not-strings", "POST", "/v1/virtual-keys",
     {"name": "K", "provider": "mock", "headers": {"x-team": 5}}, "admin"),
    ("update-virtual-key-surrogate-api-version", "PUT", "/v1/virtual-keys/{vk}", b'{"api_version": "\\ud800"}', "admin"),
    ("update-virtual-key-surrogate-secret", "PUT", "/v1/virtual-keys/{vk}", b'{"key": "\\udfff"}', "admin"),
    ("update-virtual-key-nan-rate-limit", "PUT", "/v1/virtual-keys/{vk}", b'{"rate_limits": [{"value": NaN}]}', "admin"),
]


@pytest.mark.parametrize("name, method, path, body, key", CASES, ids=[case[0] for case in CASES])
def test_each_field_refuses_bad_values_with_a_clean_4xx(world, name, method, path, body, key) -> None:
    assert_clean_4xx(send(world, method, path, body=body, key=key))


# --- external ids: each rule a 400 naming the field, a taken one a 409 naming its holder ----------------------

EXTERNAL_IDS = {
    "not-a-list": "pmpt_a", "a-number": [5], "null-inside": [None], "empty": [""], "129-characters": ["p" * 129],
    "an-at": ["pmpt_a@2"], "a-slash": ["pmpt/a"], "a-space": ["pmpt a"], "a-leading-dot": [".."],
    "a-uuid": ["0b9d4a1e-4d0c-4b8a-9b1e-2f3c4d5e6f70"], "twice": ["pmpt_a", "pmpt_b", "pmpt_a"],
    "21-of-them": [f"pmpt_{n}" for n in range(21)], "reserved": ["partials"], "a-newline": ["pmpt_a\n"],
}


@pytest.mark.parametrize("value", list(EXTERNAL_IDS.values()), ids=list(EXTERNAL_IDS))
@pytest.mark.parametrize("route", ["create", "update"])
def test_bad_external_ids_are_a_400_naming_the_field(world, route, value) -> None:
    if route == "create":
        response = send(world, "POST", "/v1/prompts", body={"name": "E", "string": "hi", "external_ids": value})
    else:
        response = send(world, "PUT", "/v1/prompts/{prompt}", body={"external_ids": value})
    error = assert_clean_4xx(response)
    assert (response.status_code, error["param"]) == (400, "external_ids"), error


def test_a_taken_external_id_is_a_409_naming_the_prompt_that_holds_it(world) -> None:
    held = send(world, "POST", "/v1/prompts", body={"name": "Holder", "string": "hi", "external_ids": ["pmpt_matrix"]})
    assert held.status_code == 200, held.text
    for method, path, body in (("POST", "/v1/prompts", {"name": "Other", "string": "hi", "external_ids": ["pmpt_matrix"]}),
                               ("PUT", "/v1/prompts/{prompt}", {"external_ids": ["pmpt_matrix"]})):
        response = send(world, method, path, body=body)
        error = assert_clean_4xx(response)
        assert (response.status_code, error["code"], error["param"]) == (409, "external_id_taken", "external_ids")
        assert held.json()["slug"] in error["message"]
    own_slug = send(world, "PUT", "/v1/prompts/{prompt}", body={"external_ids": [world.ids["prompt"]]})
    error = assert_clean_4xx(own_slug)
    assert (own_slug.status_code, error["code"], error["param"]) == (400, "invalid_external_id", "external_ids")
    assert send(world, "DELETE", "/v1/prompts/pmpt_matrix").status_code == 200


# --- stored templates that hold what a body may not -----------------------------------------------------------

STORED_TEMPLATES = [
    ("chat-template-holding-nan", '[{"role": "user", "content": "hi", "x": NaN}]'),
    ("chat-template-holding-infinity", '[{"role": "user", "content": "hi", "x": [Infinity]}]'),
    ("chat-template-holding-1e400", '[{"role": "user", "content": "hi", "x": 1e400}]'),
    ("chat-template-holding-5000-digits", '[{"role": "user", "content": "hi", "x": ' + "9" * 5000 + "}]"),
    ("chat-template-holding-a-lone-surrogate-escape", '[{"role": "user", "content": "hi \\ud800"}]'),
    ("chat-template-nested-1000-deep", '[{"role": "user", "content": "hi", "x": ' + "[" * 1000 + "]" * 1000 + "}]"),
]


@pytest.mark.parametrize("name, template", STORED_TEMPLATES, ids=[case[0] for case in STORED_TEMPLATES])
def test_a_template_that_cannot_render_is_refused_when_saved_or_when_rendered(world, name, template) -> None:
    """The body is valid; the JSON text inside the template is not. A 4xx on save, or else on render."""
    response = send(world, "POST", "/v1/prompts", body={"name": f"Stored {name}", "string": template, "model": "m"})
    if response.status_code == 200:
        response = send(world, "POST", f"/v1/prompts/{response.json()['id']}/render", body={}, key="render")
    assert_clean_4xx(response)


# --- path and query values ------------------------------------------------------------------------------------

DIGITS = "9" * 5000
URL_CASES = [
    ("get-version-5000-digits", "GET", "/v1/prompts/{prompt}/versions/" + DIGITS, None),
    ("label-version-5000-digits", "PUT", "/v1/prompts/{prompt}/versions/" + DIGITS, {"label_id": "{label}"}),
    ("get-prompt-version-query-5000-digits", "GET", "/v1/prompts/{prompt}?version=" + DIGITS, None),
    ("get-partial-version-query-5000-digits", "GET", "/v1/prompts/partials/{partial}?version=" + DIGITS, None),
    ("list-prompts-page-size-5000-digits", "GET", "/v1/prompts?page_size=" + DIGITS, None),
    ("list-labels-current-page-5000-digits", "GET", "/v1/labels?current_page=" + DIGITS, None),
    ("list-prompts-page-size-nan", "GET", "/v1/prompts?page_size=NaN", None),
    ("list-virtual-keys-page-size-infinity", "GET", "/v1/virtual-keys?page_size=Infinity", None),
    ("get-prompt-5000-char-id", "GET", "/v1/prompts/" + DIGITS, None),
    ("render-5000-char-reference", "POST", "/v1/prompts/" + "a" * 5000 + "/render", {}),
    ("get-virtual-key-5000-char-id", "GET", "/v1/virtual-keys/" + "k" * 5000, None),
    ("get-prompt-undecodable-id", "GET", "/v1/prompts/%ff%fe", None),
    ("render-encoded-surrogate-id", "POST", "/v1/prompts/%ed%a0%80/render", {}),
    ("list-prompts-undecodable-search", "GET", "/v1/prompts?search=%ff", None),
    ("list-labels-undecodable-query-name", "GET", "/v1/labels?%c3=1", None),
    ("url-over-8-kib", "GET", "/v1/prompts?search=" + "a" * 9000, None),
    ("url-of-60-kb", "POST", "/v1/prompts/{prompt}/render?x=" + "a" * 60_000, {}),
]


@pytest.mark.parametrize("name, method, path, body", URL_CASES, ids=[case[0] for case in URL_CASES])
def test_bad_path_and_query_values_are_a_clean_4xx(world, name, method, path, body) -> None:
    if isinstance(body, dict):
        body = {field: value.format(**world.ids) for field, value in body.items()}
    key = "render" if path.endswith("/render") or "/render?" in path else "admin"
    assert_clean_4xx(send(world, method, path, body=body, key=key))


# --- the Content-Length header -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "12, 13"])
@pytest.mark.parametrize("route", ["render", "create-prompt", "create-virtual-key"])
def test_a_malformed_content_length_is_a_clean_400(world, route, value) -> None:
    method, path, key, _, _ = ROUTES[route]
    error = assert_clean_4xx(send(world, method, path, body=b"{}", key=key, headers={"content-length": value}))
    assert error["code"] == "invalid_content_length"


# --- point 6: no redirect built from the Host header ----------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/prompts/", "/v1/labels/", "/v1/virtual-keys/", "/v1/prompts/partials/",
                                  "/prompts/"])
def test_a_trailing_slash_never_redirects_to_the_callers_host(world, path) -> None:
    response = send(world, "GET", path, headers={"host": "evil.example"})
    assert "evil.example" not in response.headers.get("location", "")
    assert not 300 <= response.status_code < 400, response.headers
    assert_clean_4xx(response)
