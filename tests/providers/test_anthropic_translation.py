"""OpenAI <-> Anthropic Messages translation, against recorded Anthropic answers."""

from __future__ import annotations

import pytest

from core.errors import BadGateway, InvalidRequest, UpstreamError
from infra.providers.anthropic_translation import (
    AnthropicStreamTranslator,
    finish_reason,
    to_anthropic_request,
    to_openai_completion,
)
from tests.providers.anthropic_fixtures import load_json, sse_events

CREATED = 1_700_000_000
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
WEATHER_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}


# --- request ---------------------------------------------------------------------------------


def test_a_whole_conversation_translates():
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these, and what's the weather?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
            ]},
            {"role": "system", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "no location"}]},
            {"role": "user", "content": "Thanks. And tomorrow?"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather", "parameters": WEATHER_SCHEMA}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "stop": "\n\nHuman:",
        "max_completion_tokens": 300,
        "max_tokens": 999,
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "user-42",
        "presence_penalty": 0.5,  # no Anthropic counterpart: dropped
    }
    assert to_anthropic_request(body) == {
        "model": "claude-sonnet-4-5-20250929",
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these, and what's the weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, sunny"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "no location"}]},
                {"type": "text", "text": "Thanks. And tomorrow?"},
            ]},
        ],
        "max_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["\n\nHuman:"],
        "metadata": {"user_id": "user-42"},
        "tools": [{"name": "get_weather", "description": "Current weather", "input_schema": WEATHER_SCHEMA}],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }


def test_defaults_max_tokens_and_marks_a_stream():
    request = to_anthropic_request({"model": "claude-3-5-haiku-20241022",
                                    "messages": [{"role": "user", "content": "Hi"}],
                                    "stop": ["END", "STOP"], "max_tokens": 50}, stream=True)
    assert request == {
        "model": "claude-3-5-haiku-20241022",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "max_tokens": 50,
        "stop_sequences": ["END", "STOP"],
        "stream": True,
    }
    assert to_anthropic_request({"model": "m", "messages": [{"role": "user", "content": "Hi"}]})["max_tokens"] == 4096


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    ("auto", None, {"type": "auto"}),
    ("required", None, {"type": "any"}),
    ("none", None, {"type": "none"}),
    ({"type": "function", "function": {"name": "f"}}, False, {"type": "tool", "name": "f", "disable_parallel_tool_use": True}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
])
def test_tool_choice(choice, parallel, expected):
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    request = to_anthropic_request(body)
    assert request["tool_choice"] == expected
    assert request["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]


def test_cache_control_on_system_parts_keeps_the_blocks():
    request = to_anthropic_request({"model": "m", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}]},
        {"role": "system", "content": "More"},
        {"role": "user", "content": "Hi"},
    ]})
    assert request["system"] == [
        {"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "More"},
    ]


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "Hi"}]}, "model"),
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m", "messages": [{"role": "wizard", "content": "Hi"}]}, "messages[0].role"),
    ({"model": "m", "n": 2, "messages": [{"role": "user", "content": "Hi"}]}, "n"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]}, "messages[0].content[0]"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://example.com/x.png"}}]}]}, "messages[0].content[0]"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0]"),
    ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stop": [1]}, "stop"),
    ({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "tool_choice": "sometimes",
      "tools": [{"type": "function", "function": {"name": "f"}}]}, "tool_choice"),
])
def test_invalid_requests_name_the_parameter(body, param):
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic_request(body)
    assert caught.value.param == param
    assert caught.value.status == 400


# --- answer ----------------------------------------------------------------------------------


def test_text_reply():
    assert to_openai_completion(load_json("text.json"), created=CREATED) == {
        "id": "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": CREATED,
        "model": "claude-sonnet-4-5-20250929",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 12, "completion_tokens": 12, "total_tokens": 24},
    }


def test_tool_use_reply():
    assert to_openai_completion(load_json("tool_use.json"), created=CREATED) == {
        "id": "chatcmpl-msg_01Aq9w938a90dw8q",
        "object": "chat.completion",
        "created": CREATED,
        "model": "claude-sonnet-4-5-20250929",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "I'll check the weather in San Francisco for you.",
                "refusal": None,
                "tool_calls": [{
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "type": "function",
                    "function": {"name": "get_weather",
                                 "arguments": "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}"},
                }],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }],
        # cached input counts as prompt tokens, as OpenAI counts it
        "usage": {"prompt_tokens": 512, "completion_tokens": 92, "total_tokens": 604,
                  "prompt_tokens_details": {"cached_tokens": 128}},
    }


def test_max_tokens_stop_is_length():
    completion = to_openai_completion(load_json("max_tokens.json"), created=CREATED)
    assert completion["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Once upon a time, in a quiet village nestled between",
                    "refusal": None},
        "logprobs": None,
        "finish_reason": "length",
    }
    assert completion["usage"] == {"prompt_tokens": 18, "completion_tokens": 10, "total_tokens": 28}


@pytest.mark.parametrize(("stop_reason", "expected"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("refusal", "content_filter"), ("pause_turn", "stop"), ("model_context_window_exceeded", "length"),
    ("something_new", "stop"), (None, "stop"),
])
def test_finish_reasons_are_always_openai_values(stop_reason, expected):
    assert finish_reason(stop_reason) == expected


def test_an_answer_without_content_is_a_bad_gateway():
    with pytest.raises(BadGateway):
        to_openai_completion({"id": "msg_1", "type": "message"})


# --- stream ----------------------------------------------------------------------------------


def _chunk(id, model, delta, finish_reason=None, usage=False):
    chunk = {"id": id, "object": "chat.completion.chunk", "created": CREATED, "model": model,
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
    if usage:
        chunk["usage"] = None
    return chunk


def _translate(name, *, include_usage=False):
    translator = AnthropicStreamTranslator(model="requested-model", include_usage=include_usage, created=CREATED)
    chunks = []
    for event, data in sse_events(name):
        chunks.extend(translator.feed(event, data))
    translator.finish()
    return chunks


def test_text_stream():
    id, model = "chatcmpl-msg_01PPTB1VfAYm5zB6hT3hLW8y", "claude-sonnet-4-5-20250929"
    assert _translate("stream_text.sse") == [
        _chunk(id, model, {"role": "assistant", "content": ""}),
        _chunk(id, model, {"content": "Hello"}),
        _chunk(id, model, {"content": "! How can I help?"}),
        _chunk(id, model, {}, "stop"),
    ]


def test_text_stream_with_usage():
    id, model = "chatcmpl-msg_01PPTB1VfAYm5zB6hT3hLW8y", "claude-sonnet-4-5-20250929"
    assert _translate("stream_text.sse", include_usage=True) == [
        _chunk(id, model, {"role": "assistant", "content": ""}, usage=True),
        _chunk(id, model, {"content": "Hello"}, usage=True),
        _chunk(id, model, {"content": "! How can I help?"}, usage=True),
        _chunk(id, model, {}, "stop", usage=True),
        {"id": id, "object": "chat.completion.chunk", "created": CREATED, "model": model, "choices": [],
         "usage": {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}},
    ]


def test_tool_use_stream():
    id, model = "chatcmpl-msg_014p7gG3wDgGV9EUtLvnow3U", "claude-sonnet-4-5-20250929"
    assert _translate("stream_tool_use.sse", include_usage=True) == [
        _chunk(id, model, {"role": "assistant", "content": ""}, usage=True),
        _chunk(id, model, {"content": "Okay, let's check the weather."}, usage=True),
        _chunk(id, model, {"tool_calls": [{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
                                           "function": {"name": "get_weather", "arguments": ""}}]}, usage=True),
        _chunk(id, model, {"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]}, usage=True),
        _chunk(id, model, {"tool_calls": [{"index": 0, "function": {"arguments": " \"San Francisco, CA\"}"}}]},
               usage=True),
        _chunk(id, model, {}, "tool_calls", usage=True),
        {"id": id, "object": "chat.completion.chunk", "created": CREATED, "model": model, "choices": [],
         "usage": {"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561}},
    ]


def test_an_error_event_raises_after_the_chunks_before_it():
    translator = AnthropicStreamTranslator(model="m", created=CREATED)
    chunks = []
    with pytest.raises(BadGateway) as caught:
        for event, data in sse_events("stream_error.sse"):
            chunks.extend(translator.feed(event, data))
    assert "Overloaded" in caught.value.message
    assert [chunk["choices"][0]["delta"] for chunk in chunks] == [{"role": "assistant", "content": ""},
                                                                   {"content": "Once upon"}]


def test_an_invalid_request_error_event_keeps_its_status():
    translator = AnthropicStreamTranslator(model="m", created=CREATED)
    with pytest.raises(UpstreamError) as caught:
        translator.feed("error", {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}})
    assert (caught.value.status, caught.value.message, caught.value.type) == (400, "bad", "invalid_request_error")


def test_a_stream_cut_before_message_stop_is_a_bad_gateway():
    translator = AnthropicStreamTranslator(model="m", created=CREATED)
    for event, data in sse_events("stream_text.sse")[:4]:
        translator.feed(event, data)
    with pytest.raises(BadGateway):
        translator.finish()


def test_message_stop_without_a_stop_reason_still_finishes():
    translator = AnthropicStreamTranslator(model="m", created=CREATED)
    translator.feed("message_start", {"type": "message_start", "message": {"id": "msg_x", "model": "m", "usage": {}}})
    chunks = translator.feed("message_stop", {"type": "message_stop"})
    assert chunks == [_chunk("chatcmpl-msg_x", "m", {}, "stop")]
