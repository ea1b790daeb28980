"""POST /prompts/{id}/completions over HTTP: JSON, SSE framing, errors before and after the first byte."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import pytest
from fastapi.testclient import TestClient
from mangum import Mangum

from core.auth import Authenticator, mint_key
from core.completions import CompletionService
from core.errors import BadGateway, UpstreamError
from core.models import Scope
from core.providers import ProviderCall
from core.service import PromptService
from handlers.http_app import create_app
from tests.unit.fakes import InMemoryStore
from tests.unit.test_completions import Bindings, Secrets, binding

CHAT = json.dumps([{"role": "user", "content": "{{q}}"}])


class Scripted:
    """A provider whose stream fails after `fail_after` chunks, or whose first chunk is an error."""

    def __init__(self, fail_after: int | None = None, error: Exception | None = None) -> None:
        self.fail_after, self.error, self.hits = fail_after, error, 0

    async def complete(self, call: ProviderCall) -> dict[str, Any]:
        self.hits += 1
        if self.error:
            raise self.error
        return {"id": "c", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        self.hits += 1
        if self.error:
            raise self.error
        for index in range(4):
            if self.fail_after is not None and index == self.fail_after:
                raise BadGateway("The provider cut the stream.")
            yield {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": f"t{index}"}}]}


class OneProvider:
    def __init__(self, provider: Any) -> None:
        self.instance = provider

    def provider(self, name: str) -> Any:
        return self.instance


def app_with(provider: Any):
    store = InMemoryStore()
    prompts = PromptService(store, store)
    key = mint_key("k", frozenset({Scope.COMPLETE}), "t")
    store.put_key(key.record)
    prompt = prompts.create_prompt({"name": "P", "string": CHAT, "model": "m", "virtual_key": "vk"})
    completions = CompletionService(prompts, Bindings(binding("vk", "openai", "ref")), Secrets(ref="sk"), OneProvider(provider))
    app = create_app(prompts, Authenticator(store, ttl=0), completions=completions)
    return app, prompt, {"x-portkey-api-key": key.key}


def frames(text: str) -> list[str]:
    return [frame for frame in text.split("\n\n") if frame]


def test_json_completion_carries_provider_and_version_headers() -> None:
    app, prompt, headers = app_with(Scripted())
    response = TestClient(app).post(f"/v1/prompts/{prompt['slug']}/completions", headers=headers, json={"variables": {"q": "hi"}})
    assert response.status_code == 200
    assert response.json()["provider"] == "openai" and response.json()["object"] == "chat.completion"
    assert response.headers["x-cuecard-prompt-version"] == "1" and response.headers["x-portkey-request-id"]


def test_stream_is_sse_data_frames_ending_in_done() -> None:
    app, prompt, headers = app_with(Scripted())
    response = TestClient(app).post(f"/v1/prompts/{prompt['id']}/completions", headers=headers, json={"stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-portkey-request-id"]
    parts = frames(response.text)
    assert parts[-1] == "data: [DONE]"
    chunks = [json.loads(part.removeprefix("data: ")) for part in parts[:-1]]
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["t0", "t1", "t2", "t3"]
    assert {c["provider"] for c in chunks} == {"openai"}


def test_failure_after_the_first_chunk_is_an_error_event_and_the_stream_ends() -> None:
    app, prompt, headers = app_with(Scripted(fail_after=2))
    response = TestClient(app).post(f"/v1/prompts/{prompt['id']}/completions", headers=headers, json={"stream": True})
    assert response.status_code == 200
    parts = frames(response.text)
    assert parts[-1].startswith("event: error\ndata: ")
    error = json.loads(parts[-1].split("data: ", 1)[1])["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == "bad_gateway"
    assert "data: [DONE]" not in parts


@pytest.mark.parametrize("error, status", [
    (UpstreamError("Invalid model.", status=404), 404),
    (UpstreamError("Rate limited.", status=429), 429),
    (BadGateway("Upstream 503."), 502),
])
@pytest.mark.parametrize("stream", [False, True])
def test_failure_before_the_first_byte_keeps_its_status(error, status, stream) -> None:
    provider = Scripted(error=error)
    app, prompt, headers = app_with(provider)
    response = TestClient(app).post(f"/v1/prompts/{prompt['id']}/completions", headers=headers, json={"stream": stream})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-portkey-request-id"]
    assert response.json()["error"]["message"] == error.message
    assert provider.hits == 1


def test_buffered_api_gateway_route_answers_a_complete_sse_body() -> None:
    app, prompt, headers = app_with(Scripted())
    event = json.loads(open("events/http-api-render.json").read())
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/v1/prompts/{prompt['id']}/completions"
    event["headers"].update(headers)
    event["body"] = json.dumps({"stream": True})
    response = Mangum(app, lifespan="off")(event, None)
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("text/event-stream")
    parts = frames(response["body"])
    assert len(parts) == 5 and parts[-1] == "data: [DONE]"
