"""POST /v1/responses over HTTP, in process: the JSON answer and its headers, the event stream's framing, keep-alive
comments, errors before and after the first event, the buffered Lambda path, and the `openai` SDK (async, through
an ASGI transport) reading what the route streams."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import httpx2
import openai
import pytest
from fastapi.testclient import TestClient
from mangum import Mangum

from core.errors import BadGateway, UpstreamError
from core.providers import ProviderCall
from handlers import responses_routes
from tests.handlers.test_completions_http import app_with

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["Hello", " there", "!"]


class Slow:
    """Streams WORDS after `delay` seconds; `error` before the first chunk, or after `fail_after` chunks."""

    def __init__(self, delay: float = 0.0, error: Exception | None = None, fail_after: int | None = None) -> None:
        self.delay, self.error, self.fail_after = delay, error, fail_after
        self.calls: list[ProviderCall] = []

    async def complete(self, call: ProviderCall) -> dict[str, Any]:
        self.calls.append(call)
        if self.error:
            raise self.error
        return {"id": "c", "object": "chat.completion", "model": "gpt-x",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(WORDS)},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        self.calls.append(call)
        await asyncio.sleep(self.delay)
        if self.error and self.fail_after is None:
            raise self.error
        for index, word in enumerate(WORDS):
            if self.fail_after is not None and index == self.fail_after:
                raise self.error or BadGateway("cut")
            yield {"id": "c", "object": "chat.completion.chunk", "model": "gpt-x",
                   "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
        yield {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield {"id": "c", "object": "chat.completion.chunk", "choices": [],
               "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}


def body(prompt: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"prompt": {"id": prompt["slug"], "variables": {"q": "hi"}}, **extra}


def frames(text: str) -> list[str]:
    return [frame for frame in text.split("\n\n") if frame]


def events_of(text: str) -> list[dict[str, Any]]:
    """The events of an SSE body, checking each frame's `event:` line names its data's type."""
    events = []
    for frame in frames(text):
        if frame.startswith(":"):
            continue
        event_line, data_line = frame.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {event['type']}"
        events.append(event)
    return events


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(responses_routes, "FIRST_CHUNK_GRACE", 0.05)
    monkeypatch.setattr(responses_routes, "KEEPALIVE_SECONDS", 0.05)


def test_a_json_response_carries_the_version_headers_and_the_request_id() -> None:
    app, prompt, headers = app_with(Slow())
    for path in ("/v1/responses", "/responses", "/prod/v1/responses"):
        response = TestClient(app).post(path, headers=headers, json=body(prompt))
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["object"] == "response" and answer["status"] == "completed"
        assert answer["output"][0]["content"][0]["text"] == "Hello there!"
        assert answer["id"] == "resp_" + response.headers["x-portkey-request-id"]
        assert response.headers["x-cuecard-prompt-id"] == prompt["id"]
        assert response.headers["x-cuecard-prompt-slug"] == prompt["slug"]
        assert response.headers["x-cuecard-prompt-version"] == "1"


def test_a_stream_is_event_frames_without_done() -> None:
    app, prompt, headers = app_with(Slow())
    response = TestClient(app).post("/v1/responses", headers=headers, json=body(prompt, stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-cuecard-prompt-version"] == "1" and response.headers["cache-control"] == "no-cache"
    assert "[DONE]" not in response.text
    events = events_of(response.text)
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert events[-1]["response"]["usage"]["total_tokens"] == 6


def test_a_slow_first_token_starts_the_stream_and_sends_keep_alives(quick) -> None:
    app, prompt, headers = app_with(Slow(delay=0.3))
    response = TestClient(app).post("/v1/responses", headers=headers, json=body(prompt, stream=True))
    assert response.status_code == 200
    parts = frames(response.text)
    assert [part.split("\n")[0] for part in parts[:2]] == ["event: response.created", "event: response.in_progress"]
    first_item = next(index for index, part in enumerate(parts) if "response.output_item.added" in part)
    assert ": keep-alive" in parts[2:first_item]
    assert events_of(response.text)[-1]["type"] == "response.completed"


def test_a_failure_before_the_first_chunk_keeps_its_status() -> None:
    for error, status in ((UpstreamError("Rate limited.", status=429), 429), (BadGateway("Upstream 503."), 502)):
        app, prompt, headers = app_with(Slow(error=error))
        for stream in (False, True):
            response = TestClient(app).post("/v1/responses", headers=headers, json=body(prompt, stream=stream))
            assert response.status_code == status
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"]["message"] == error.message


def test_a_failure_after_a_slow_start_is_response_failed(quick) -> None:
    app, prompt, headers = app_with(Slow(delay=0.2, error=UpstreamError("Rate limited.", status=429)))
    response = TestClient(app).post("/v1/responses", headers=headers, json=body(prompt, stream=True))
    assert response.status_code == 200
    events = events_of(response.text)
    assert [event["type"] for event in events] == ["response.created", "response.in_progress", "response.failed"]
    assert events[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "Rate limited."}


def test_a_failure_mid_stream_is_response_failed_with_the_same_id() -> None:
    app, prompt, headers = app_with(Slow(error=BadGateway("The provider cut the stream."), fail_after=2))
    response = TestClient(app).post("/v1/responses", headers=headers, json=body(prompt, stream=True))
    events = events_of(response.text)
    assert events[-1]["type"] == "response.failed"
    assert {event["response"]["id"] for event in events if "response" in event} == {events[0]["response"]["id"]}
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Hello there"


@pytest.mark.parametrize("payload, status, error_type, param, code", [
    ({"prompt": {"id": "no-such-prompt"}}, 404, "not_found_error", "prompt.id", "prompt_not_found"),
    ({"prompt": {"id": "SLUG", "version": "7"}}, 404, "not_found_error", "prompt.version", "version_not_found"),
    ({"prompt": {"id": "SLUG@1", "version": "1"}}, 400, "invalid_request_error", "prompt.version",
     "invalid_prompt_reference"),
    ({"prompt": {"id": "SLUG"}, "store": True}, 400, "invalid_request_error", "store", "unsupported_parameter"),
    ({"prompt": {"id": "SLUG"}, "previous_response_id": "resp_1"}, 400, "invalid_request_error",
     "previous_response_id", "unsupported_parameter"),
    ({"prompt": {"id": "SLUG"}, "background": True}, 400, "invalid_request_error", "background",
     "unsupported_parameter"),
    ({"prompt": {"id": "SLUG", "variables": {"q": None}}}, 400, "invalid_request_error", "prompt.variables.q",
     "invalid_request"),
    ({"prompt": {"id": "SLUG"}, "frequency_penalty": 1}, 400, "invalid_request_error", "frequency_penalty",
     "unknown_parameter"),
    ({"input": "no prompt"}, 400, "invalid_request_error", "prompt", "invalid_request"),
])
def test_errors_are_openai_envelopes(payload, status, error_type, param, code) -> None:
    provider = Slow()
    app, prompt, headers = app_with(provider)
    text = json.dumps(payload).replace("SLUG", prompt["slug"])
    response = TestClient(app).post("/v1/responses", headers={**headers, "content-type": "application/json"},
                                    content=text)
    assert response.status_code == status
    assert response.json()["error"] == {**response.json()["error"], "type": error_type, "param": param, "code": code}
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert provider.calls == []


def test_an_empty_or_malformed_body_is_a_400() -> None:
    app, _, headers = app_with(Slow())
    client = TestClient(app)
    assert client.post("/v1/responses", headers=headers).status_code == 400
    assert client.post("/v1/responses", headers={**headers, "content-type": "application/json"},
                       content="{").json()["error"]["code"] == "invalid_json"


def test_the_buffered_api_gateway_route_answers_the_whole_stream() -> None:
    app, prompt, headers = app_with(Slow())
    event = json.loads(open("events/http-api-render.json").read())
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/v1/responses"
    event["headers"].update(headers)
    event["body"] = json.dumps(body(prompt, stream=True))
    response = Mangum(app, lifespan="off")(event, None)
    assert response["statusCode"] == 200 and response["headers"]["content-type"].startswith("text/event-stream")
    assert events_of(response["body"])[-1]["response"]["output"][0]["content"][0]["text"] == "Hello there!"


# --- the SDK reading the stream ----------------------------------------------------------------------


def sdk(app: Any, key: str) -> openai.AsyncOpenAI:
    transport = httpx2.ASGITransport(app=app)
    return openai.AsyncOpenAI(base_url="http://cuecard.test/v1", api_key=key,
                              http_client=httpx2.AsyncClient(transport=transport, base_url="http://cuecard.test"),
                              max_retries=0)


def test_the_sdk_reads_keep_alives_and_a_failed_stream(quick) -> None:
    async def run() -> None:
        app, prompt, headers = app_with(Slow(delay=0.2))
        client = sdk(app, headers["x-portkey-api-key"])
        async with client.responses.stream(model="gpt-x", input="hi", prompt=body(prompt)["prompt"]) as stream:
            final = await stream.get_final_response()
        assert final.output_text == "Hello there!" and final.prompt.version == "1"

        app, prompt, headers = app_with(Slow(error=BadGateway("cut"), fail_after=1))
        client = sdk(app, headers["x-portkey-api-key"])
        events = [event async for event in await client.responses.create(stream=True, prompt=body(prompt)["prompt"])]
        assert events[-1].type == "response.failed" and events[-1].response.error.code == "server_error"
        async with client.responses.stream(model="gpt-x", input="hi", prompt=body(prompt)["prompt"]) as stream:
            with pytest.raises(RuntimeError, match="response.completed"):
                await stream.get_final_response()

    asyncio.run(run())


def test_the_route_is_imported_on_its_first_call_only() -> None:
    """A cold start that serves renders pays nothing for the Responses modules."""
    probe = "import json, sys, handlers.http_app; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "handlers.http_app" in loaded
    assert not loaded & {"core.responses", "core.responses_request", "core.responses_stream",
                         "handlers.responses_routes", "handlers.openapi_responses"}
