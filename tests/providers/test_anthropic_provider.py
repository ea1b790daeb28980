"""The Anthropic adapter over HTTP, against a local server replaying recorded Anthropic answers."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import BadGateway, UpstreamError
from infra.providers.anthropic import AnthropicProvider
from tests.fake_upstream import FakeUpstream
from tests.providers.anthropic_fixtures import load_json, raw
from tests.providers.conftest import FAST_RETRY, SECRET, binding, chat_body, collect, make_call, run

MODEL = "claude-sonnet-4-5-20250929"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}


@pytest.fixture
def provider() -> AnthropicProvider:
    return AnthropicProvider(retry=FAST_RETRY)


def _call(fake: FakeUpstream, *, stream: bool = False, **params: Any):
    vk = binding("anthropic", custom_host=fake.origin, headers={"anthropic-beta": "prompt-caching-2024-07-31",
                                                                "X-Api-Key": "not-from-a-binding"})
    return make_call(body=chat_body("What's up?", model=MODEL, **params), vk=vk, stream=stream)


def _frames(name: str) -> list[str]:
    return [frame + "\n\n" for frame in raw(name).decode().split("\n\n") if frame.strip()]


def _without_created(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert len({item.pop("created") for item in items}) == 1
    return items


# --- complete() ------------------------------------------------------------------------------


def test_complete_posts_a_messages_request_and_translates_the_answer(fake, provider):
    fake.json_reply = load_json("text.json")
    answer = run(provider.complete(_call(fake, max_tokens=64, user="u-1")))
    assert _without_created([answer]) == [{
        "id": "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?",
                                             "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 12, "total_tokens": 24},
    }]
    seen = fake.last_request
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == SECRET
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert seen.headers["content-type"] == "application/json"
    assert "authorization" not in seen.headers
    assert seen.body == {"model": MODEL, "system": "Be brief.",
                         "messages": [{"role": "user", "content": [{"type": "text", "text": "What's up?"}]}],
                         "max_tokens": 64, "metadata": {"user_id": "u-1"}}


def test_complete_tool_use(fake, provider):
    fake.json_reply = load_json("tool_use.json")
    answer = run(provider.complete(_call(fake, tools=[WEATHER_TOOL], tool_choice="required")))
    assert fake.last_request.body["tools"] == [{"name": "get_weather", "description": "Current weather",
                                                "input_schema": WEATHER_TOOL["function"]["parameters"]}]
    assert fake.last_request.body["tool_choice"] == {"type": "any"}
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [{
        "id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}"}}]


def test_complete_max_tokens_is_length(fake, provider):
    fake.json_reply = load_json("max_tokens.json")
    answer = run(provider.complete(_call(fake, max_completion_tokens=10)))
    assert answer["choices"][0]["finish_reason"] == "length"
    assert fake.last_request.body["max_tokens"] == 10


def test_a_400_error_body_passes_through_with_its_status(fake, provider):
    fake.fail_next(400, body=raw("error_400.json"))
    with pytest.raises(UpstreamError) as caught:
        run(provider.complete(_call(fake)))
    assert caught.value.to_body() == {"error": {
        "message": "max_tokens: 200000 > 64000, which is the maximum allowed number of output tokens for "
                   "claude-sonnet-4-5-20250929",
        "type": "invalid_request_error", "param": None, "code": "upstream_error"}}
    assert caught.value.status == 400
    assert fake.hits == 1  # a 4xx is never retried


@pytest.mark.parametrize("status", [529, 500])
def test_overloaded_or_failing_upstream_is_a_bad_gateway_after_the_retries(fake, provider, status):
    fake.fail_next(status, times=3, body=raw("error_529.json"))
    with pytest.raises(BadGateway) as caught:
        run(provider.complete(_call(fake)))
    assert "Overloaded" in caught.value.message
    assert fake.hits == 3


def test_one_529_then_an_answer_succeeds(fake, provider):
    fake.fail_next(529, body=raw("error_529.json"))
    fake.json_reply = load_json("text.json")
    answer = run(provider.complete(_call(fake)))
    assert answer["choices"][0]["message"]["content"] == "Hello! How can I help you today?"
    assert fake.hits == 2


def test_urls():
    provider = AnthropicProvider()
    assert provider.url(make_call(vk=binding("anthropic"))) == "https://api.anthropic.com/v1/messages"
    assert provider.url(make_call(vk=binding("anthropic", custom_host="https://gw.example/v1/"))) == \
        "https://gw.example/v1/messages"


# --- stream() --------------------------------------------------------------------------------


def _chunk(id: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"id": id, "object": "chat.completion.chunk", "model": MODEL, "usage": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}


def test_stream_text_with_usage(fake, provider):
    fake.stream_frames = _frames("stream_text.sse")
    chunks, error = run(collect(provider, _call(fake, stream=True, stream_options={"include_usage": True})))
    assert error is None
    id = "chatcmpl-msg_01PPTB1VfAYm5zB6hT3hLW8y"
    assert _without_created(chunks) == [
        _chunk(id, {"role": "assistant", "content": ""}),
        _chunk(id, {"content": "Hello"}),
        _chunk(id, {"content": "! How can I help?"}),
        _chunk(id, {}, "stop"),
        {"id": id, "object": "chat.completion.chunk", "model": MODEL, "choices": [],
         "usage": {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}},
    ]
    assert fake.last_request.body["stream"] is True
    assert "stream_options" not in fake.last_request.body


def test_stream_tool_use(fake, provider):
    fake.stream_frames = _frames("stream_tool_use.sse")
    chunks, error = run(collect(provider, _call(fake, stream=True, tools=[WEATHER_TOOL])))
    assert error is None
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Okay, let's check the weather."},
        {"tool_calls": [{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
                         "function": {"name": "get_weather", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": " \"San Francisco, CA\"}"}}]},
        {},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_an_error_event_mid_stream_raises_after_the_chunks_and_is_not_retried(fake, provider):
    fake.stream_frames = _frames("stream_error.sse")
    chunks, error = run(collect(provider, _call(fake, stream=True)))
    assert [chunk["choices"][0]["delta"] for chunk in chunks] == [{"role": "assistant", "content": ""},
                                                                   {"content": "Once upon"}]
    assert isinstance(error, BadGateway) and "Overloaded" in error.message
    assert fake.hits == 1


def test_an_error_event_before_any_chunk_is_retried(fake, provider):
    fake.stream_frames = _frames("stream_overloaded_first.sse")
    chunks, error = run(collect(provider, _call(fake, stream=True)))
    assert chunks == []
    assert isinstance(error, BadGateway)
    assert fake.hits == 3


def test_a_529_before_the_stream_is_retried_then_a_bad_gateway(fake, provider):
    fake.fail_next(529, times=3, body=raw("error_529.json"))
    chunks, error = run(collect(provider, _call(fake, stream=True)))
    assert chunks == [] and isinstance(error, BadGateway)
    assert fake.hits == 3


def test_a_400_on_a_stream_passes_through(fake, provider):
    fake.fail_next(400, body=raw("error_400.json"))
    chunks, error = run(collect(provider, _call(fake, stream=True)))
    assert chunks == [] and isinstance(error, UpstreamError) and error.status == 400
    assert error.message.startswith("max_tokens: 200000 > 64000")


def test_a_stream_cut_before_message_stop_is_a_bad_gateway(fake, provider):
    fake.stream_frames = _frames("stream_text.sse")
    fake.cut_after = 4
    chunks, error = run(collect(provider, _call(fake, stream=True)))
    assert [chunk["choices"][0]["delta"] for chunk in chunks] == [{"role": "assistant", "content": ""},
                                                                   {"content": "Hello"}]
    assert isinstance(error, BadGateway)
