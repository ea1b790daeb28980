"""Prompt completions through `cuecard serve`, driven by the unchanged `portkey-ai` SDK (and its
vendored `openai` client), against a fake OpenAI-compatible upstream on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from portkey_ai import AsyncPortkey, Portkey
from portkey_ai._vendor.openai import OpenAI, Stream
from portkey_ai._vendor.openai.types.chat import ChatCompletion, ChatCompletionChunk
from portkey_ai.api_resources.exceptions import APIStatusError, NotFoundError

from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.e2e

SECRET = "sk-e2e-upstream-secret-0123456789"


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(autouse=True)
def calm_upstream(upstream):
    upstream.reset()
    yield


@pytest.fixture(scope="module")
def client(server) -> Portkey:
    return Portkey(api_key=server.admin_key, base_url=server.base_url)


@pytest.fixture(scope="module")
def prompt_slug(client, upstream) -> str:
    binding = client.virtual_keys.create(name="Fake upstream", provider="openai", key=SECRET,
                                         custom_host=upstream.base_url)
    assert binding.slug
    created = client.prompts.create(
        name="Echo", collection_id="default", model="gpt-fake", virtual_key=binding.slug,
        string=json.dumps([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{q}}"}]),
        parameters={"temperature": 0.2},
    )
    return created.slug


def test_non_streaming_completion_is_a_bare_chat_completion(client, prompt_slug, upstream) -> None:
    result = client.prompts.completions.create(prompt_id=prompt_slug, variables={"q": "hello there"}, max_tokens=50)
    assert result.object == "chat.completion"
    assert result.choices[0].message.content == "Echo: hello there"
    assert result.provider == "openai"
    sent = upstream.last_request
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.body["model"] == "gpt-fake" and sent.body["temperature"] == 0.2 and sent.body["max_tokens"] == 50
    assert "stream" not in sent.body and "variables" not in sent.body


def test_streaming_completion_yields_chunks_and_usage(client, prompt_slug) -> None:
    stream = client.prompts.completions.create(prompt_id=prompt_slug, variables={"q": "one two three"}, stream=True,
                                               stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Echo: one two three"
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert all(chunk.provider == "openai" for chunk in chunks)


def test_async_client_streams_and_completes(server, prompt_slug) -> None:
    async def run() -> tuple[str, str]:
        client = AsyncPortkey(api_key=server.admin_key, base_url=server.base_url)
        full = await client.prompts.completions.create(prompt_id=prompt_slug, variables={"q": "async hi"})
        stream = await client.prompts.completions.create(prompt_id=prompt_slug, variables={"q": "async stream"},
                                                         stream=True)
        parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        return full.choices[0].message.content, "".join(parts)

    full, streamed = asyncio.run(run())
    assert full == "Echo: async hi" and streamed == "Echo: async stream"


def test_the_openai_client_reads_the_same_stream(server, prompt_slug) -> None:
    openai = OpenAI(api_key=server.admin_key, base_url=server.base_url,
                    default_headers={"x-portkey-api-key": server.admin_key})
    completion = openai.post(f"/prompts/{prompt_slug}/completions", body={"variables": {"q": "plain"}},
                             cast_to=ChatCompletion)
    assert completion.choices[0].message.content == "Echo: plain"
    stream = openai.post(f"/prompts/{prompt_slug}/completions", body={"variables": {"q": "a b"}, "stream": True},
                         cast_to=ChatCompletion, stream=True, stream_cls=Stream[ChatCompletionChunk])
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "Echo: a b"


def test_streaming_is_not_buffered(client, prompt_slug, upstream) -> None:
    upstream.token_delay = 0.05
    words = " ".join(f"w{i}" for i in range(20))
    start = time.perf_counter()
    arrivals = []
    for chunk in client.prompts.completions.create(prompt_id=prompt_slug, variables={"q": words}, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter() - start)
    assert len(arrivals) >= 20
    # 21 tokens at 50 ms: the last arrives after ~1 s; a buffered proxy would deliver the first with it.
    assert arrivals[0] < 0.4 * arrivals[-1]


def test_upstream_4xx_keeps_its_status_and_message(client, prompt_slug, upstream) -> None:
    upstream.fail_next(404, message="The model `gpt-fake` does not exist")
    with pytest.raises(NotFoundError) as info:
        client.prompts.completions.create(prompt_id=prompt_slug, variables={"q": "x"})
    assert "does not exist" in str(info.value)
    assert upstream.hits == 1


def test_a_failing_upstream_is_never_called_twice_by_the_sdk(server, client, prompt_slug, upstream) -> None:
    """The SDK retries a 5xx once unless x-portkey-request-id is present; cuecard always sends it."""
    url = f"{server.base_url}/prompts/{prompt_slug}/completions"
    upstream.fail_next(500, times=100)
    direct = httpx.post(url, headers={"x-portkey-api-key": server.admin_key}, json={"variables": {"q": "x"}})
    assert direct.status_code == 502 and direct.headers["x-portkey-request-id"]
    hits_per_call = upstream.hits
    assert hits_per_call >= 1
    with pytest.raises(APIStatusError) as info:
        client.prompts.completions.create(prompt_id=prompt_slug, variables={"q": "x"})
    assert info.value.status_code == 502
    assert upstream.hits == 2 * hits_per_call  # one more cuecard call, not two


def test_a_stream_cut_mid_way_ends_with_an_error_the_sdk_raises(client, prompt_slug, upstream) -> None:
    upstream.cut_after = 3
    received = []
    with pytest.raises(Exception) as info:
        for chunk in client.prompts.completions.create(prompt_id=prompt_slug, variables={"q": "a b c d e f"}, stream=True):
            received.append(chunk)
    assert received, "the chunks before the cut reach the client"
    assert "bad_gateway" in str(info.value) or "502" in str(info.value) or "upstream" in str(info.value).lower()
    assert upstream.hits == 1  # no retry once a byte reached the client


def test_a_prompt_without_virtual_key_renders_but_completing_it_is_a_400(client) -> None:
    from portkey_ai.api_resources.exceptions import BadRequestError

    created = client.prompts.create(name="Unbound", collection_id="default", model="m",
                                    string=json.dumps([{"role": "user", "content": "hi"}]), parameters={})
    assert client.prompts.render(prompt_id=created.slug, variables={}).success
    with pytest.raises(BadRequestError) as info:
        client.prompts.completions.create(prompt_id=created.slug, variables={})
    assert "virtual_key" in str(info.value)


def test_sample_prompts_complete_offline_with_the_mock_provider(client) -> None:
    result = client.prompts.completions.create(prompt_id="support-reply@production",
                                               variables={"product": "Acme", "tone": "warm", "question": "Hi?"})
    assert result.choices[0].message.content.startswith("[mock]")
    assert result.provider == "mock"
