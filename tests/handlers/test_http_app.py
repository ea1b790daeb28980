"""The FastAPI app over an in-memory store: routing, auth, errors, headers and body limits."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from core.auth import Authenticator
from core.service import PromptService
from handlers.http_app import create_app
from tests.scoped_keys import key_per_scope
from tests.unit.fakes import InMemoryStore

CHAT = json.dumps([{"role": "user", "content": "Hello {{name}}"}])
ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def keys(store: InMemoryStore) -> dict[str, str]:
    return key_per_scope(store)


@pytest.fixture
def client(store: InMemoryStore) -> TestClient:
    service = PromptService(store, store)
    app = create_app(service, Authenticator(store, ttl=0), max_body_bytes=4096)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def prompt(client: TestClient, keys) -> dict:
    response = client.post("/v1/prompts", headers={"x-portkey-api-key": keys["write"]},
                           json={"name": "Hello", "string": CHAT, "parameters": {"temperature": 0.5}, "model": "m"})
    assert response.status_code == 200, response.text
    return response.json()


def assert_openai_error(response: httpx.Response, status: int, **expected) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-portkey-request-id"]
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    assert "Traceback" not in response.text
    for key, value in expected.items():
        assert error[key] == value
    return error


@pytest.mark.parametrize("prefix", ["/v1", "", "/prod/v1", "/stage-2/v1"])
def test_render_answers_under_every_prefix(client, keys, prompt, prefix) -> None:
    response = client.post(f"{prefix}/prompts/{prompt['slug']}/render", headers={"x-portkey-api-key": keys["render"]},
                           json={"variables": {"name": "Ada"}, "temperature": 1.2})
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "data": {
        "model": "m", "temperature": 1.2, "messages": [{"role": "user", "content": "Hello Ada"}]}}
    assert response.headers["x-cuecard-prompt-id"] == prompt["id"]
    assert response.headers["x-cuecard-prompt-slug"] == prompt["slug"]
    assert response.headers["x-cuecard-prompt-version"] == "1"
    assert len(response.headers["x-portkey-request-id"]) == 32


def test_bearer_auth_works_and_request_ids_differ(client, keys, prompt) -> None:
    first = client.post(f"/v1/prompts/{prompt['id']}/render", headers={"authorization": f"Bearer {keys['render']}"}, json={})
    second = client.post(f"/v1/prompts/{prompt['id']}/render", headers={"authorization": f"Bearer {keys['render']}"}, json={})
    assert first.status_code == second.status_code == 200
    assert first.headers["x-portkey-request-id"] != second.headers["x-portkey-request-id"]


@pytest.mark.parametrize("headers, code", [
    ({}, "missing_api_key"),
    ({"x-portkey-api-key": ""}, "missing_api_key"),
    ({"authorization": "Basic abc"}, "missing_api_key"),
    ({"x-portkey-api-key": "cck_not-a-real-key"}, "invalid_api_key"),
])
def test_missing_or_unknown_key_is_401(client, headers, code) -> None:
    response = client.post("/v1/prompts/anything/render", headers=headers, json={})
    assert_openai_error(response, 401, type="authentication_error", code=code)


def test_missing_scope_is_403(client, keys, prompt) -> None:
    response = client.post("/v1/prompts", headers={"x-portkey-api-key": keys["render"]}, json={"name": "x", "string": "y"})
    assert_openai_error(response, 403, type="permission_error")
    response = client.get("/v1/prompts", headers={"x-portkey-api-key": keys["render"]})
    assert_openai_error(response, 403)
    assert client.get("/v1/prompts", headers={"x-portkey-api-key": keys["admin"]}).status_code == 200


@pytest.mark.parametrize("body, param", [
    (b"{not json", None),
    (b"[1, 2]", None),
    (b'"text"', None),
    (b'{"variables": [1]}', "variables"),
    (b'{"variables": {}, "temperature": "hot"}', "temperature"),
    (b'{"variables": {}, "n": 0}', "n"),
    (b'{"stream": "yes"}', "stream"),
])
def test_bad_render_bodies_are_400(client, keys, prompt, body, param) -> None:
    response = client.post(f"/v1/prompts/{prompt['id']}/render", content=body,
                           headers={"x-portkey-api-key": keys["render"], "content-type": "application/json"})
    assert_openai_error(response, 400, type="invalid_request_error", param=param)


def test_empty_render_body_means_no_variables(client, keys, prompt) -> None:
    response = client.post(f"/v1/prompts/{prompt['id']}/render", headers={"x-portkey-api-key": keys["render"]})
    assert response.status_code == 200
    assert response.json()["data"]["messages"][0]["content"] == "Hello "


@pytest.mark.parametrize("ref, status", [
    ("pp-missing-000000", 404), ("pp-missing-000000@3", 404), ("{id}@9", 404), ("{id}@staging", 404),
    ("{id}@default", 400), ("{id}@", 400), ("has%20space", 400), ("{id}@a%20b", 400),
])
def test_unknown_or_malformed_references(client, keys, prompt, ref, status) -> None:
    ref = ref.replace("{id}", prompt["id"])
    response = client.post(f"/v1/prompts/{ref}/render", headers={"x-portkey-api-key": keys["render"]}, json={})
    assert_openai_error(response, status)


def test_body_over_the_limit_is_413(client, keys, prompt) -> None:
    big = {"variables": {"name": "x" * 5000}}
    response = client.post(f"/v1/prompts/{prompt['id']}/render", headers={"x-portkey-api-key": keys["render"]}, json=big)
    assert_openai_error(response, 413, code="request_too_large")


def test_body_over_the_limit_without_content_length_is_413(client, keys, prompt) -> None:
    def chunks():
        yield b'{"variables": {"name": "'
        yield b"x" * 5000
        yield b'"}}'

    response = client.post(f"/v1/prompts/{prompt['id']}/render", headers={"x-portkey-api-key": keys["render"]},
                           content=chunks())
    assert_openai_error(response, 413)


def test_unknown_route_and_method_use_the_error_shape(client, keys) -> None:
    assert_openai_error(client.get("/v1/nothing-here", headers={"x-portkey-api-key": keys["admin"]}), 404, code="unknown_url")
    assert_openai_error(client.patch("/v1/prompts", headers={"x-portkey-api-key": keys["admin"]}), 405)


def test_an_unexpected_error_is_a_clean_500_with_a_request_id(store, keys) -> None:
    class Exploding(InMemoryStore):
        def resolve(self, kind, ref):
            raise RuntimeError("secret internal detail")

    broken = Exploding()
    broken.keys = store.keys
    app = create_app(PromptService(broken, broken), Authenticator(broken, ttl=0))
    response = TestClient(app, raise_server_exceptions=False).post(
        "/v1/prompts/x/render", headers={"x-portkey-api-key": keys["render"]}, json={})
    error = assert_openai_error(response, 500, type="api_error")
    assert "secret" not in error["message"]


def test_admin_round_trip_over_http(client, keys, prompt) -> None:
    headers = {"x-portkey-api-key": keys["write"]}
    update = client.put(f"/v1/prompts/{prompt['slug']}", headers=headers, json={"patch": True, "parameters": {"temperature": 0.1}})
    assert update.status_code == 200 and update.json()["version"] == 2
    assert client.put(f"/v1/prompts/{prompt['slug']}", headers=headers, json={"model": "only"}).status_code == 400
    assert client.put(f"/v1/prompts/{prompt['slug']}/makeDefault", headers=headers, json={"version": 2}).json() == {}
    detail = client.get(f"/v1/prompts/{prompt['slug']}", headers=headers).json()
    assert detail["prompt_version"] == 2 and detail["parameters"] == {"temperature": 0.1}
    assert client.get(f"/v1/prompts/{prompt['slug']}?version=1", headers=headers).json()["parameters"] == {"temperature": 0.5}
    label = client.post("/v1/labels", headers=headers, json={"name": "canary"}).json()
    assert client.put(f"/v1/prompts/{prompt['slug']}/versions/1", headers=headers, json={"label_id": label["id"]}).json() == {}
    versions = client.get(f"/v1/prompts/{prompt['slug']}/versions", headers=headers).json()
    assert [v["labels"] for v in versions["data"]] == [[], ["canary"]]
    listing = client.get("/v1/prompts?search=hell&page_size=10", headers=headers).json()
    assert listing["object"] == "list" and listing["total"] == 1
    partial = client.post("/v1/prompts/partials", headers=headers, json={"name": "Sig", "string": "-- {{who}}"}).json()
    assert client.get(f"/v1/prompts/partials/{partial['slug']}", headers=headers).json()["string"] == "-- {{who}}"
    assert client.get("/v1/prompts/partials", headers=headers).json()["total"] == 1
    assert client.delete(f"/v1/prompts/{prompt['id']}", headers=headers).json() == {}
    response = client.post(f"/v1/prompts/{prompt['id']}/render", headers=headers, json={})
    assert_openai_error(response, 404, type="not_found_error")


def test_a_trailing_slash_is_an_openai_404_never_a_redirect(client, keys) -> None:
    response = client.get("/v1/prompts/", headers={"x-portkey-api-key": keys["admin"], "host": "evil.example"},
                          follow_redirects=False)
    assert_openai_error(response, 404, code="unknown_url")
    assert "location" not in response.headers


@pytest.mark.parametrize("method, path, allow", [
    ("PATCH", "/v1/prompts", "GET, POST"),
    ("PATCH", "/v1/prompts/some-prompt", "DELETE, GET, PUT"),
    ("PUT", "/v1/prompts/partials", "GET, POST"),  # not an update of a prompt named "partials"
    ("DELETE", "/v1/prompts/partials", "GET, POST"),
    ("POST", "/v1/prompts/partials/render", "DELETE, GET, PUT"),  # not a render of a prompt named "partials"
    ("GET", "/v1/prompts/some-prompt/render", "POST"),
])
def test_405_names_every_method_the_path_serves(client, keys, method, path, allow) -> None:
    response = client.request(method, path, headers={"x-portkey-api-key": keys["admin"]})
    assert_openai_error(response, 405, code="method_not_allowed")
    assert response.headers["allow"] == allow


def test_deleting_a_partial_in_use_needs_force(client, keys) -> None:
    headers = {"x-portkey-api-key": keys["write"]}
    partial = client.post("/v1/prompts/partials", headers=headers, json={"name": "Sig", "string": "-- me"}).json()
    used = client.post("/v1/prompts", headers=headers, json={"name": "Uses", "string": f"Hi {{{{>{partial['slug']}}}}}"})
    assert used.status_code == 200, used.text
    assert_openai_error(client.delete(f"/v1/prompts/partials/{partial['slug']}?force=maybe", headers=headers), 400,
                        param="force")
    assert_openai_error(client.delete(f"/v1/prompts/partials/{partial['slug']}", headers=headers), 409)
    assert client.delete(f"/v1/prompts/partials/{partial['slug']}?force=true", headers=headers).json() == {}


@pytest.mark.parametrize("inline", [True, False])
def test_renders_run_in_a_worker_thread_unless_inline(store, keys, prompt, inline) -> None:
    import threading

    threads = []

    class Recording(PromptService):
        def render(self, reference, body):
            threads.append(threading.current_thread())
            return super().render(reference, body)

    app = create_app(Recording(store, store), Authenticator(store, ttl=0), inline_renders=inline)
    response = TestClient(app).post(f"/v1/prompts/{prompt['id']}/render", headers={"x-portkey-api-key": keys["render"]},
                                    json={"variables": {"name": "Ada"}})
    assert response.status_code == 200
    assert ("AnyIO worker thread" in threads[0].name) == (not inline)  # else on the event loop's thread
