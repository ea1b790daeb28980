"""The OpenAI adapter against a real (fake) OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from core.errors import BadGateway, GatewayTimeout, UpstreamError
from core.providers import Timeouts
from infra.providers.openai_compatible import OpenAIProvider
from tests.fake_upstream import FakeUpstream
from tests.providers.conftest import FAST_RETRY, SECRET, binding, chat_body, collect, make_call, run

TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Look it up.",
                                            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}}]


@pytest.fixture
def provider() -> OpenAIProvider:
    return OpenAIProvider(retry=FAST_RETRY)


def text_of(chunks: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"] and c["choices"][0]["index"] == index)


# --- complete() --------------------------------------------------------------------------------


def test_complete_returns_the_upstream_json_untouched_with_n_2(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    result = run(provider.complete(make_call(fake, body=chat_body("hi you", n=2, temperature=0.2))))
    assert result == fake.last_response
    assert [c["index"] for c in result["choices"]] == [0, 1]
    assert result["choices"][1]["message"]["content"] == "Echo: hi you"
    assert fake.last_request.path == "/v1/chat/completions"
    assert fake.last_request.body == chat_body("hi you", n=2, temperature=0.2)


def test_tools_and_tool_calls_pass_through(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    body = chat_body("find cats", tools=TOOLS, tool_choice="auto", parallel_tool_calls=False)
    result = run(provider.complete(make_call(fake, body=body)))
    assert fake.last_request.body == body
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [{"id": "call_fake_0", "type": "function", "function": {
        "name": "lookup", "arguments": json.dumps({"text": "find cats"})}}]


def test_logprobs_and_response_format_pass_through(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    body = chat_body("two words", logprobs=True, top_logprobs=1, response_format={"type": "json_object"})
    result = run(provider.complete(make_call(fake, body=body)))
    assert result == fake.last_response
    assert json.loads(result["choices"][0]["message"]["content"]) == {"reply": "Echo: two words"}
    assert [p["token"] for p in result["choices"][0]["logprobs"]["content"]] == ["Echo:", " two", " words"]
    assert fake.last_request.body["response_format"] == {"type": "json_object"}


def test_complete_sends_neither_stream_nor_stream_options(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    run(provider.complete(make_call(fake, body=chat_body(stream_options={"include_usage": True}))))
    assert "stream" not in fake.last_request.body
    assert "stream_options" not in fake.last_request.body


def test_default_base_url_is_openai() -> None:
    assert OpenAIProvider().url(make_call()) == "https://api.openai.com/v1/chat/completions"


# --- headers -------------------------------------------------------------------------------------


def test_bearer_auth_and_the_binding_headers_are_sent(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    vk = binding(custom_host=fake.base_url + "/", headers={"OpenAI-Organization": "org-1", "X-Extra": "yes"})
    run(provider.complete(make_call(vk=vk)))
    headers = fake.last_request.headers
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["openai-organization"] == "org-1"
    assert headers["x-extra"] == "yes"
    assert headers["content-type"] == "application/json"


def test_no_auth_header_without_a_secret(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    run(provider.complete(make_call(fake, secret=None)))
    assert "authorization" not in fake.last_request.headers


# --- stream() ------------------------------------------------------------------------------------


def test_stream_yields_the_upstream_chunks_in_order_and_ends(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    chunks, error = run(collect(provider, make_call(fake, body=chat_body("one two three"), stream=True)))
    assert error is None
    assert chunks == fake.sent_chunks
    assert text_of(chunks) == "Echo: one two three"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert fake.last_request.body["stream"] is True
    assert fake.last_request.headers["accept"] == "text/event-stream"


def test_stream_with_include_usage_ends_with_the_usage_chunk(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    body = chat_body("a b", n=2, stream_options={"include_usage": True})
    chunks, error = run(collect(provider, make_call(fake, body=body, stream=True)))
    assert error is None
    assert fake.last_request.body["stream_options"] == {"include_usage": True}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 6
    assert text_of(chunks, 0) == text_of(chunks, 1) == "Echo: a b"


def test_stream_tool_call_chunks_pass_through(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    chunks, error = run(collect(provider, make_call(fake, body=chat_body("x", tools=TOOLS), stream=True)))
    assert error is None and chunks == fake.sent_chunks
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "lookup"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_is_not_buffered(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.token_delay = 0.05
    words = " ".join(f"w{i}" for i in range(19))  # 20 tokens with "Echo:"

    async def timed() -> list[float]:
        start = time.perf_counter()
        arrivals = []
        stream = provider.stream(make_call(fake, body=chat_body(words), stream=True))
        async for _ in stream:
            arrivals.append(time.perf_counter() - start)
        return arrivals

    arrivals = run(timed())
    assert len(arrivals) == 22
    assert arrivals[0] < 0.4 * arrivals[-1]  # generous: about 0 vs about 1 s


def test_stopping_early_releases_the_stream(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.token_delay = 0.01

    async def scenario() -> dict[str, Any]:
        stream = provider.stream(make_call(fake, body=chat_body("a b c d e f"), stream=True))
        async for _ in stream:
            break
        await stream.aclose()
        return await provider.complete(make_call(fake))

    assert run(scenario())["object"] == "chat.completion"
    assert fake.hits == 2


# --- upstream errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("status, type_", [(400, "invalid_request_error"), (401, "authentication_error"),
                                           (404, "not_found_error"), (422, None)])
def test_4xx_keeps_status_and_message(fake: FakeUpstream, provider: OpenAIProvider, status: int, type_: str | None) -> None:
    fake.fail_next(status, message=f"upstream says {status}", type=type_, code="some_code")
    with pytest.raises(UpstreamError) as caught:
        run(provider.complete(make_call(fake)))
    error = caught.value
    assert (error.status, error.message, error.code) == (status, f"upstream says {status}", "some_code")
    assert error.type == (type_ or "invalid_request_error")
    assert fake.hits == 1


def test_4xx_on_a_stream_raises_before_any_chunk(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.fail_next(400, message="bad messages")
    chunks, error = run(collect(provider, make_call(fake, stream=True)))
    assert chunks == []
    assert isinstance(error, UpstreamError) and (error.status, error.message) == (400, "bad messages")


def test_a_plain_text_error_body_becomes_the_message(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.fail_next(403, body=b"Forbidden by proxy")
    with pytest.raises(UpstreamError) as caught:
        run(provider.complete(make_call(fake)))
    assert (caught.value.status, caught.value.message) == (403, "Forbidden by proxy")


def test_the_api_key_never_reaches_a_message(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.fail_next(401, message=f"Incorrect API key provided: {SECRET}.")
    with pytest.raises(UpstreamError) as caught:
        run(provider.complete(make_call(fake)))
    assert SECRET not in caught.value.message and "[redacted]" in caught.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_5xx_is_retried_then_bad_gateway(fake: FakeUpstream, provider: OpenAIProvider, stream: bool) -> None:
    fake.fail_next(503, times=10, message="overloaded")
    call = make_call(fake, stream=stream)
    if stream:
        chunks, error = run(collect(provider, call))
        assert chunks == []
    else:
        with pytest.raises(BadGateway) as caught:
            run(provider.complete(call))
        error = caught.value
    assert isinstance(error, BadGateway) and error.status == 502 and "overloaded" in error.message
    assert fake.hits == FAST_RETRY.max_attempts


@pytest.mark.parametrize("stream", [False, True])
def test_429_is_retried_and_succeeds_when_the_upstream_recovers(fake: FakeUpstream, provider: OpenAIProvider,
                                                                stream: bool) -> None:
    fake.fail_next(429, retry_after=0, message="slow down")
    call = make_call(fake, stream=stream)
    if stream:
        chunks, error = run(collect(provider, call))
        assert error is None and text_of(chunks) == "Echo: hello there"
    else:
        assert run(provider.complete(call))["choices"][0]["message"]["content"] == "Echo: hello there"
    assert fake.hits == 2


def test_429_after_the_last_attempt_keeps_its_status(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.fail_next(429, times=10, retry_after=0, message="slow down")
    with pytest.raises(UpstreamError) as caught:
        run(provider.complete(make_call(fake)))
    assert (caught.value.status, caught.value.message) == (429, "slow down")
    assert fake.hits == FAST_RETRY.max_attempts


def test_a_retry_after_beyond_the_cap_is_not_waited_for(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.fail_next(429, retry_after=3600)
    with pytest.raises(UpstreamError) as caught:
        run(provider.complete(make_call(fake)))
    assert caught.value.status == 429
    assert fake.hits == 1


def test_a_connection_dropped_before_the_answer_is_retried(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.drop_next()
    assert run(provider.complete(make_call(fake)))["object"] == "chat.completion"
    assert fake.hits == 2


def test_a_refused_connection_is_bad_gateway_quickly(provider: OpenAIProvider) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    call = make_call(vk=binding(custom_host=f"http://127.0.0.1:{port}/v1"), timeouts=Timeouts(connect=30, first_byte=30))
    start = time.perf_counter()
    with pytest.raises(BadGateway) as caught:
        run(provider.complete(call))
    assert time.perf_counter() - start < 10  # generous: no timeout was waited for
    assert "connect" in caught.value.message


# --- timeouts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_slow_first_byte_is_gateway_timeout_without_retry(fake: FakeUpstream, provider: OpenAIProvider,
                                                            stream: bool) -> None:
    fake.first_byte_delay = 5
    call = make_call(fake, stream=stream, timeouts=Timeouts(first_byte=0.2, read=30))
    if stream:
        _, error = run(collect(provider, call))
    else:
        with pytest.raises(GatewayTimeout) as caught:
            run(provider.complete(call))
        error = caught.value
    assert isinstance(error, GatewayTimeout) and error.status == 504 and "0.2s" in error.message
    assert fake.hits == 1


def test_first_byte_bounds_only_the_first_chunk(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.token_delay = 0.3
    call = make_call(fake, body=chat_body("a b"), stream=True, timeouts=Timeouts(first_byte=0.2, read=5))
    chunks, error = run(collect(provider, call))
    assert error is None and text_of(chunks) == "Echo: a b"


def test_a_stall_mid_stream_beyond_read_is_gateway_timeout(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.token_delay = 5
    call = make_call(fake, stream=True, timeouts=Timeouts(first_byte=5, read=0.2))
    chunks, error = run(collect(provider, call))
    assert len(chunks) == 1  # the role chunk goes out at once
    assert isinstance(error, GatewayTimeout) and "mid-stream" in error.message
    assert fake.hits == 1


# --- failures mid-stream ---------------------------------------------------------------------------


def test_a_connection_cut_mid_stream_raises_after_the_chunks_without_retry(fake: FakeUpstream,
                                                                         provider: OpenAIProvider) -> None:
    fake.cut_after = 3
    chunks, error = run(collect(provider, make_call(fake, body=chat_body("a b c d e"), stream=True)))
    assert chunks == fake.sent_chunks and len(chunks) == 3
    assert isinstance(error, BadGateway)
    assert fake.hits == 1


def _frame(payload: Any) -> str:
    return f"data: {json.dumps(payload)}\n\n"


FIRST = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]}
LAST = {**FIRST, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


def test_an_event_error_frame_mid_stream_raises(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.stream_frames = [_frame(FIRST), 'event: error\ndata: {"error": {"message": "model crashed", '
                                         '"type": "server_error"}}\n\n', _frame(LAST), "data: [DONE]\n\n"]
    chunks, error = run(collect(provider, make_call(fake, stream=True)))
    assert chunks == [FIRST]
    assert isinstance(error, BadGateway) and "model crashed" in error.message
    assert fake.hits == 1


def test_an_error_data_frame_with_a_client_error_type_is_upstream_error(fake: FakeUpstream,
                                                                       provider: OpenAIProvider) -> None:
    fake.stream_frames = [_frame(FIRST), _frame({"error": {"message": "context too long",
                                                           "type": "invalid_request_error"}})]
    chunks, error = run(collect(provider, make_call(fake, stream=True)))
    assert chunks == [FIRST]
    assert isinstance(error, UpstreamError) and (error.status, error.message) == (400, "context too long")


def test_an_error_data_frame_with_a_server_error_is_bad_gateway(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.stream_frames = [_frame({"error": {"message": "internal", "type": "server_error", "code": 500}})]
    chunks, error = run(collect(provider, make_call(fake, stream=True)))
    assert chunks == [] and isinstance(error, BadGateway)


def test_comments_pings_and_named_events_are_skipped(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.stream_frames = [": keep-alive\n\n", _frame(FIRST), "event: ping\ndata: {}\n\n", _frame(LAST),
                          "data: [DONE]\n\n", _frame(FIRST)]
    chunks, error = run(collect(provider, make_call(fake, stream=True)))
    assert error is None and chunks == [FIRST, LAST]


def test_a_stream_ending_without_finish_or_done_is_bad_gateway(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.stream_frames = [_frame(FIRST)]
    chunks, error = run(collect(provider, make_call(fake, stream=True)))
    assert chunks == [FIRST] and isinstance(error, BadGateway)


def test_a_finished_stream_without_done_ends_cleanly(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.stream_frames = [_frame(FIRST), _frame(LAST)]
    chunks, error = run(collect(provider, make_call(fake, stream=True)))
    assert error is None and chunks == [FIRST, LAST]


def test_a_chunk_that_is_not_json_is_bad_gateway(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.stream_frames = [_frame(FIRST), "data: {not json\n\n"]
    chunks, error = run(collect(provider, make_call(fake, stream=True)))
    assert chunks == [FIRST] and isinstance(error, BadGateway)


def test_an_error_object_in_a_200_json_answer_raises(fake: FakeUpstream, provider: OpenAIProvider) -> None:
    fake.json_reply = {"error": {"message": "model not found", "type": "not_found_error"}}
    with pytest.raises(UpstreamError) as caught:
        run(provider.complete(make_call(fake)))
    assert (caught.value.status, caught.value.message) == (404, "model not found")
