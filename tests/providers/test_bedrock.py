"""The Bedrock adapter: OpenAI <-> Converse translation, and calls on a botocore-stubbed client."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from core.errors import BadGateway, GatewayTimeout, InvalidRequest, UpstreamError
from core.models import VirtualKey
from core.providers import ProviderCall, Timeouts
from infra.providers.bedrock import BedrockProvider, translate_error
from infra.providers.bedrock_translation import finish_reason, to_converse_request
from infra.providers.retry import RetryPolicy
from tests.providers import bedrock_eventstream as es

REGION = "eu-west-1"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
WEATHER_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                                 "parameters": WEATHER_SCHEMA}}
HELLO = {"model": MODEL, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
         "max_tokens": 100, "temperature": 0.5}
HELLO_CONVERSE = {"modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
                  "system": [{"text": "Be brief."}], "inferenceConfig": {"maxTokens": 100, "temperature": 0.5}}


def _binding(**config: Any) -> VirtualKey:
    return VirtualKey(id="vk_1", slug="bedrock-eu", name="Bedrock EU", provider="bedrock",
                      created_at="2025-01-01T00:00:00Z", updated_at="2025-01-01T00:00:00Z",
                      config={"region": REGION, **config})


def _call(body: dict[str, Any], *, stream: bool = False) -> ProviderCall:
    return ProviderCall(body=body, binding=_binding(), secret=None, stream=stream, request_id="req-123")


@pytest.fixture
def provider() -> BedrockProvider:
    return BedrockProvider(retry=RetryPolicy(base_delay=0, max_delay=0))


@pytest.fixture
def stubber(provider: BedrockProvider):
    with Stubber(provider.client(REGION)) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _without_created(answer: dict[str, Any]) -> dict[str, Any]:
    assert abs(answer.pop("created") - time.time()) < 60
    return answer


# --- request translation ---------------------------------------------------------------------


def test_a_whole_conversation_translates():
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this, and the weather?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                {"type": "image_url", "image_url": {"url": "s3://bucket/photos/cat.JPG"}},
            ]},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "tooluse_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "18C, sunny"},
            {"role": "user", "content": "Thanks. And tomorrow?"},
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        "stop": ["\n\nHuman:"],
        "max_completion_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "dropped: Converse has no such field",
    }
    assert to_converse_request(body) == {
        "modelId": MODEL,
        "system": [{"text": "You are terse."}, {"text": "Answer in English."}],
        "messages": [
            {"role": "user", "content": [
                {"text": "What is this, and the weather?"},
                {"image": {"format": "png", "source": {"bytes": base64.b64decode(PNG_B64)}}},
                {"image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://bucket/photos/cat.JPG"}}}},
            ]},
            {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"location": "Paris"}}}]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "18C, sunny"}]}},
                {"text": "Thanks. And tomorrow?"},
            ]},
        ],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.2, "topP": 0.9, "stopSequences": ["\n\nHuman:"]},
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "get_weather", "description": "Current weather",
                                    "inputSchema": {"json": WEATHER_SCHEMA}}}],
            "toolChoice": {"any": {}},
        },
    }


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"auto": {}}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
])
def test_tool_choice(choice, expected):
    request = to_converse_request({**HELLO, "tools": [WEATHER_TOOL], "tool_choice": choice})
    assert request["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_leaves_the_tools_out_unless_the_conversation_used_them():
    assert "toolConfig" not in to_converse_request({**HELLO, "tools": [WEATHER_TOOL], "tool_choice": "none"})
    with_history = {**HELLO, "tools": [WEATHER_TOOL], "tool_choice": "none", "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function",
                                              "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
    ]}
    assert "toolChoice" not in to_converse_request(with_history)["toolConfig"]


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "data:image/bmp;base64,Qk0="])
def test_images_bedrock_cannot_take_are_invalid(url):
    with pytest.raises(InvalidRequest) as caught:
        to_converse_request({"model": MODEL, "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]})
    assert caught.value.param == "messages[0].content[0]"


@pytest.mark.parametrize(("stop_reason", "expected"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("content_filtered", "content_filter"), ("guardrail_intervened", "content_filter"),
    ("model_context_window_exceeded", "length"), ("malformed_model_output", "stop"), (None, "stop"),
])
def test_finish_reasons_are_always_openai_values(stop_reason, expected):
    assert finish_reason(stop_reason) == expected


# --- converse --------------------------------------------------------------------------------


def test_converse_text(provider, stubber):
    stubber.add_response("converse", {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello! How can I help?"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 14, "outputTokens": 7, "totalTokens": 21},
        "metrics": {"latencyMs": 412},
    }, HELLO_CONVERSE)
    answer = asyncio.run(provider.complete(_call(HELLO)))
    assert _without_created(answer) == {
        "id": "chatcmpl-req-123",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help?", "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 14, "completion_tokens": 7, "total_tokens": 21},
    }


def test_converse_tool_use(provider, stubber):
    stubber.add_response("converse", {
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Let me look that up."},
            {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather",
                         "input": {"location": "Seattle, WA"}}},
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 390, "outputTokens": 58, "totalTokens": 548, "cacheReadInputTokens": 100},
        "metrics": {"latencyMs": 1203},
    })
    answer = asyncio.run(provider.complete(_call({**HELLO, "tools": [WEATHER_TOOL]})))
    assert _without_created(answer) == {
        "id": "chatcmpl-req-123",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{"index": 0, "message": {
            "role": "assistant", "content": "Let me look that up.", "refusal": None,
            "tool_calls": [{"id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "type": "function",
                            "function": {"name": "get_weather", "arguments": "{\"location\":\"Seattle, WA\"}"}}],
        }, "logprobs": None, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 490, "completion_tokens": 58, "total_tokens": 548,
                  "prompt_tokens_details": {"cached_tokens": 100}},
    }


@pytest.mark.parametrize(("code", "http_status", "error_class", "status"), [
    ("ValidationException", 400, UpstreamError, 400),
    ("AccessDeniedException", 403, UpstreamError, 403),
    ("ResourceNotFoundException", 404, UpstreamError, 404),
    ("ThrottlingException", 429, UpstreamError, 429),
    ("ModelTimeoutException", 408, GatewayTimeout, 504),
    ("ServiceUnavailableException", 503, BadGateway, 502),
    ("InternalServerException", 500, BadGateway, 502),
])
def test_converse_errors(provider, stubber, code, http_status, error_class, status):
    message = "The provided model identifier is invalid." if code == "ValidationException" else f"{code} happened"
    stubber.add_client_error("converse", service_error_code=code, service_message=message,
                             http_status_code=http_status)
    with pytest.raises(error_class) as caught:
        asyncio.run(provider.complete(_call(HELLO)))
    assert caught.value.status == status
    assert message in caught.value.message


def test_validation_exception_passes_its_message_through(provider, stubber):
    stubber.add_client_error("converse", service_error_code="ValidationException",
                             service_message="The provided model identifier is invalid.", http_status_code=400)
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(provider.complete(_call(HELLO)))
    assert caught.value.to_body() == {"error": {"message": "The provided model identifier is invalid.",
                                                "type": "invalid_request_error", "param": None,
                                                "code": "ValidationException"}}


@pytest.mark.parametrize(("exc", "error_class"), [
    (ReadTimeoutError(endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com"), GatewayTimeout),
    (EndpointConnectionError(endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com"), BadGateway),
])
def test_transport_errors(exc, error_class):
    assert isinstance(translate_error(exc), error_class)


# --- converse_stream -------------------------------------------------------------------------


def _stream(provider, body, bodies: list[es.RawBody], *, stop_after: int | None = None) -> list[dict[str, Any]]:
    es.install(provider.client(REGION), bodies)

    async def collect() -> list[dict[str, Any]]:
        chunks = []
        stream = provider.stream(_call(body, stream=True))
        try:
            async for chunk in stream:
                chunks.append(chunk)
                if stop_after is not None and len(chunks) >= stop_after:
                    break
        finally:
            await stream.aclose()
        return chunks

    return asyncio.run(collect())


TEXT_EVENTS = [
    es.event("messageStart", {"role": "assistant"}),
    es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
    es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "! How can I help?"}}),
    es.event("contentBlockStop", {"contentBlockIndex": 0}),
    es.event("messageStop", {"stopReason": "end_turn"}),
    es.event("metadata", {"usage": {"inputTokens": 14, "outputTokens": 9, "totalTokens": 23},
                          "metrics": {"latencyMs": 380}}),
]


def _chunks_without_created(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    created = {chunk.pop("created") for chunk in chunks}
    assert len(created) == 1
    return chunks


def _chunk(delta, finish_reason=None, *, usage=True):
    chunk = {"id": "chatcmpl-req-123", "object": "chat.completion.chunk", "model": MODEL,
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
    if usage:
        chunk["usage"] = None
    return chunk


def test_stream_text_with_usage(provider, stubber):
    stubber.add_response("converse_stream", {}, HELLO_CONVERSE)
    body = {**HELLO, "stream_options": {"include_usage": True}}
    assert _chunks_without_created(_stream(provider, body, [es.RawBody(TEXT_EVENTS)])) == [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Hello"}),
        _chunk({"content": "! How can I help?"}),
        _chunk({}, "stop"),
        {"id": "chatcmpl-req-123", "object": "chat.completion.chunk", "model": MODEL, "choices": [],
         "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23}},
    ]


def test_stream_tool_use(provider, stubber):
    stubber.add_response("converse_stream", {})
    events = [
        es.event("messageStart", {"role": "assistant"}),
        es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Checking."}}),
        es.event("contentBlockStop", {"contentBlockIndex": 0}),
        es.event("contentBlockStart", {"contentBlockIndex": 1, "start": {
            "toolUse": {"toolUseId": "tooluse_Y3b8", "name": "get_weather"}}}),
        es.event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"location\":"}}}),
        es.event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": " \"Seattle\"}"}}}),
        es.event("contentBlockStop", {"contentBlockIndex": 1}),
        es.event("messageStop", {"stopReason": "tool_use"}),
        es.event("metadata", {"usage": {"inputTokens": 400, "outputTokens": 40, "totalTokens": 440},
                              "metrics": {"latencyMs": 900}}),
    ]
    chunks = _stream(provider, {**HELLO, "tools": [WEATHER_TOOL]}, [es.RawBody(events)])
    assert _chunks_without_created(chunks) == [
        _chunk({"role": "assistant", "content": ""}, usage=False),
        _chunk({"content": "Checking."}, usage=False),
        _chunk({"tool_calls": [{"index": 0, "id": "tooluse_Y3b8", "type": "function",
                                "function": {"name": "get_weather", "arguments": ""}}]}, usage=False),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]}, usage=False),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": " \"Seattle\"}"}}]}, usage=False),
        _chunk({}, "tool_calls", usage=False),
    ]


def test_stream_guardrail_stop_is_content_filter(provider, stubber):
    stubber.add_response("converse_stream", {})
    events = [es.event("messageStart", {"role": "assistant"}),
              es.event("messageStop", {"stopReason": "guardrail_intervened"})]
    chunks = _stream(provider, HELLO, [es.RawBody(events)])
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks] == [None, "content_filter"]


def test_stream_error_before_any_chunk_raises_the_mapped_error(provider, stubber):
    stubber.add_client_error("converse_stream", service_error_code="ValidationException",
                             service_message="messages: roles must alternate", http_status_code=400)
    with pytest.raises(UpstreamError) as caught:
        _stream(provider, HELLO, [])
    assert (caught.value.status, caught.value.message) == (400, "messages: roles must alternate")


def test_a_throttling_event_before_the_first_chunk_is_retried(provider, stubber):
    stubber.add_response("converse_stream", {})
    stubber.add_response("converse_stream", {})
    throttled = es.RawBody([es.exception("throttlingException", "Too many requests, please wait.")])
    chunks = _stream(provider, HELLO, [throttled, es.RawBody(TEXT_EVENTS)])
    assert [chunk["choices"][0]["delta"] for chunk in chunks] == [
        {"role": "assistant", "content": ""}, {"content": "Hello"}, {"content": "! How can I help?"}, {}]


def test_throttling_that_outlives_the_retries_is_a_429(provider, stubber):
    for _ in range(3):
        stubber.add_response("converse_stream", {})
    bodies = [es.RawBody([es.exception("throttlingException", "Too many requests.")]) for _ in range(3)]
    with pytest.raises(UpstreamError) as caught:
        _stream(provider, HELLO, bodies)
    assert (caught.value.status, caught.value.message) == (429, "Too many requests.")


def test_an_error_event_after_the_first_chunk_is_not_retried(provider, stubber):
    stubber.add_response("converse_stream", {})
    events = [*TEXT_EVENTS[:2], es.exception("modelStreamErrorException", "The model failed mid-stream.")]
    es.install(provider.client(REGION), [es.RawBody(events)])
    chunks: list[dict[str, Any]] = []

    async def collect() -> None:
        async for chunk in provider.stream(_call(HELLO, stream=True)):
            chunks.append(chunk)

    with pytest.raises(BadGateway) as caught:
        asyncio.run(collect())
    assert "The model failed mid-stream." in caught.value.message
    assert [chunk["choices"][0]["delta"] for chunk in chunks] == [{"role": "assistant", "content": ""},
                                                                   {"content": "Hello"}]


def test_a_stream_cut_before_message_stop_is_a_bad_gateway(provider, stubber):
    stubber.add_response("converse_stream", {})
    with pytest.raises(BadGateway):
        _stream(provider, HELLO, [es.RawBody(TEXT_EVENTS[:3])])


def test_stopping_early_closes_the_event_stream(provider, stubber):
    stubber.add_response("converse_stream", {})
    body = es.RawBody(TEXT_EVENTS, split=1)
    chunks = _stream(provider, HELLO, [body], stop_after=1)
    assert len(chunks) == 1
    deadline = time.monotonic() + 5
    while not body.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert body.closed


# --- the client ------------------------------------------------------------------------------


def test_one_client_per_region_with_timeouts_and_standard_retries(provider):
    client = provider.client(REGION, Timeouts(connect=3, first_byte=40, read=90))
    assert provider.client(REGION, Timeouts(connect=3, first_byte=40, read=90)) is client
    assert provider.client("us-east-1") is not client
    assert client.meta.region_name == REGION
    assert client.meta.config.connect_timeout == 3
    assert client.meta.config.read_timeout == 90
    assert client.meta.config.retries["mode"] == "standard"


def test_the_region_comes_from_the_binding_then_the_environment(provider, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    no_region = ProviderCall(body=HELLO, binding=_binding(region=None), secret=None, stream=False, request_id="r")
    with pytest.raises(InvalidRequest):
        provider.region_for(no_region)
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert provider.region_for(no_region) == "ap-south-1"
    assert provider.region_for(_call(HELLO)) == REGION


def test_a_stalled_stream_is_a_gateway_timeout_and_its_thread_stops(provider):
    timeouts = Timeouts(connect=1, first_byte=1, read=0.2, total=5)
    body = es.StallingBody(TEXT_EVENTS[:2])
    client = provider.client(REGION, timeouts)
    es.install(client, [body])
    chunks: list[dict[str, Any]] = []

    async def collect() -> None:
        call = ProviderCall(body=HELLO, binding=_binding(), secret=None, stream=True, request_id="req-123",
                            timeouts=timeouts)
        async for chunk in provider.stream(call):
            chunks.append(chunk)

    with Stubber(client) as stub:
        stub.add_response("converse_stream", {})
        started = time.monotonic()
        with pytest.raises(GatewayTimeout):
            asyncio.run(collect())
    assert time.monotonic() - started < 3
    assert [chunk["choices"][0]["delta"] for chunk in chunks] == [{"role": "assistant", "content": ""},
                                                                   {"content": "Hello"}]
    assert body.closed
