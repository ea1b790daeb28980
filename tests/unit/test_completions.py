"""CompletionService over in-memory stores, with the mock provider and a scripted failing one."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import pytest

from core.completions import CompletionService, provider_body
from core.errors import BadGateway, InvalidRequest, VirtualKeyNotFound
from core.models import VirtualKey
from core.providers import ProviderCall
from core.service import PromptService
from infra.providers.mock import FINGERPRINT, MockProvider
from tests.unit.fakes import InMemoryStore

CHAT = json.dumps([{"role": "system", "content": "Be {{tone}}."}, {"role": "user", "content": "{{question}}"}])


class Bindings:
    def __init__(self, *bindings: VirtualKey) -> None:
        self.items = {b.slug: b for b in bindings}

    def get_virtual_key(self, key: str) -> VirtualKey:
        if key not in self.items:
            raise VirtualKeyNotFound(f"no virtual key {key}")
        return self.items[key]


class Secrets:
    def __init__(self, **values: str) -> None:
        self.values = values
        self.reads = 0

    def get_secret(self, ref: str) -> str:
        self.reads += 1
        return self.values[ref]


class Recording:
    """A provider that records the call and answers from a script."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls: list[ProviderCall] = []
        self.fail_after = fail_after

    async def complete(self, call: ProviderCall) -> dict[str, Any]:
        self.calls.append(call)
        return {"id": "x", "object": "chat.completion", "choices": []}

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        self.calls.append(call)
        for index in range(3):
            if self.fail_after is not None and index >= self.fail_after:
                raise BadGateway("upstream cut the stream")
            yield {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": str(index)}}]}


def binding(slug: str, provider: str, secret_ref: str | None = None, **config: Any) -> VirtualKey:
    return VirtualKey(id=f"id-{slug}", slug=slug, name=slug, provider=provider, created_at="t", updated_at="t",
                      secret_ref=secret_ref, config=config)


@pytest.fixture
def prompts() -> PromptService:
    store = InMemoryStore()
    return PromptService(store, store)


class Providers:
    def __init__(self, openai: Any) -> None:
        self.openai = openai

    def provider(self, name: str) -> Any:
        return self.openai if name == "openai" else MockProvider()


def make(prompts: PromptService, provider: Any, **secrets: str) -> CompletionService:
    bindings = Bindings(binding("vk-openai", "openai", "ref-1"), binding("mock", "mock"))
    return CompletionService(prompts, bindings, Secrets(**secrets), Providers(provider))


def create(prompts: PromptService, **fields: Any) -> dict:
    return prompts.create_prompt({"name": "Ask", "string": CHAT, "parameters": {"temperature": 0.5},
                                  "model": "gpt-x", **fields})


def test_the_provider_gets_the_rendered_body_binding_and_secret(prompts) -> None:
    provider = Recording()
    service = make(prompts, provider, **{"ref-1": "sk-secret"})
    prompt = create(prompts, virtual_key="vk-openai")
    prepared = service.prepare(prompt["slug"], {"variables": {"tone": "brief", "question": "Why?"}, "top_p": 0.5},
                               request_id="req-1")
    result = asyncio.run(service.complete(prepared))
    call = provider.calls[0]
    assert call.body == {"model": "gpt-x", "temperature": 0.5, "top_p": 0.5,
                         "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}]}
    assert call.secret == "sk-secret" and call.binding.provider == "openai" and call.request_id == "req-1"
    assert call.stream is False
    assert result["provider"] == "openai"


def test_stream_flag_comes_from_the_request_and_never_reaches_the_body(prompts) -> None:
    provider = Recording()
    service = make(prompts, provider, **{"ref-1": "k"})
    prompt = create(prompts, virtual_key="vk-openai", parameters={"stream": True, "stream_options": {"include_usage": True}})
    plain = service.prepare(prompt["id"], {"variables": {}}, request_id="r")
    assert plain.stream is False and "stream" not in plain.call.body and "stream_options" not in plain.call.body
    streamed = service.prepare(prompt["id"], {"stream": True, "stream_options": {"include_usage": True}}, request_id="r")
    assert streamed.stream is True and "stream" not in streamed.call.body
    assert streamed.call.body["stream_options"] == {"include_usage": True}


def test_stream_chunks_carry_the_provider_name(prompts) -> None:
    service = make(prompts, Recording(), **{"ref-1": "k"})
    prompt = create(prompts, virtual_key="vk-openai")
    prepared = service.prepare(prompt["id"], {"stream": True}, request_id="r")

    async def collect() -> list[dict]:
        return [chunk async for chunk in service.stream(prepared)]

    chunks = asyncio.run(collect())
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["0", "1", "2"]
    assert {c["provider"] for c in chunks} == {"openai"}


def test_a_version_without_virtual_key_renders_but_cannot_complete(prompts) -> None:
    service = make(prompts, Recording())
    prompt = create(prompts)
    assert prompts.render(prompt["id"], {}).body["model"] == "gpt-x"
    with pytest.raises(InvalidRequest) as info:
        service.prepare(prompt["id"], {}, request_id="r")
    assert info.value.status == 400 and info.value.param == "virtual_key" and info.value.code == "missing_virtual_key"


def test_a_binding_deleted_after_the_prompt_was_saved_is_a_clear_400(prompts) -> None:
    service = make(prompts, Recording())
    prompt = create(prompts, virtual_key="gone")
    with pytest.raises(InvalidRequest) as info:
        service.prepare(prompt["id"], {}, request_id="r")
    assert "no longer exists" in info.value.message


def test_a_text_template_becomes_one_user_message(prompts) -> None:
    provider = Recording()
    service = make(prompts, provider, **{"ref-1": "k"})
    prompt = prompts.create_prompt({"name": "T", "string": "Say {{x}}", "model": "m", "virtual_key": "vk-openai"})
    asyncio.run(service.complete(service.prepare(prompt["id"], {"variables": {"x": "hi"}}, request_id="r")))
    assert provider.calls[0].body["messages"] == [{"role": "user", "content": "Say hi"}]
    assert "prompt" not in provider.calls[0].body


def test_mock_provider_says_it_is_a_mock_and_honours_n_tools_and_usage(prompts) -> None:
    service = make(prompts, Recording())
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    prompt = create(prompts, virtual_key="mock", tools=tools)
    prepared = service.prepare(prompt["id"], {"variables": {"question": "where is it"}, "n": 2}, request_id="r")
    result = asyncio.run(service.complete(prepared))
    assert result["system_fingerprint"] == FINGERPRINT and result["provider"] == "mock"
    assert [c["message"]["content"] for c in result["choices"]] == ["[mock] You said: where is it"] * 2
    forced = service.prepare(prompt["id"], {"tool_choice": {"type": "function", "function": {"name": "lookup"}}},
                             request_id="r")
    choice = asyncio.run(service.complete(forced))["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["tool_calls"][0]["function"]["name"] == "lookup"

    streamed = service.prepare(prompt["id"], {"variables": {"question": "a b"}, "stream": True,
                                              "stream_options": {"include_usage": True}}, request_id="r")

    async def collect() -> list[dict]:
        return [chunk async for chunk in service.stream(streamed)]

    chunks = asyncio.run(collect())
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "[mock] You said: a b"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5


def test_provider_body_does_not_touch_the_rendered_body(prompts) -> None:
    rendered = prompts.render(create(prompts)["id"], {"stream": True})
    before = json.dumps(rendered.body, sort_keys=True)
    provider_body(rendered)
    assert json.dumps(rendered.body, sort_keys=True) == before


def test_a_non_streamed_call_waits_for_the_whole_answer_not_just_the_first_byte(prompts) -> None:
    from core.providers import Timeouts

    bindings = Bindings(binding("vk-openai", "openai", "ref-1"))
    service = CompletionService(prompts, bindings, Secrets(**{"ref-1": "k"}), Providers(Recording()),
                                timeouts=Timeouts(first_byte=10, read=120))
    prompt = create(prompts, virtual_key="vk-openai")
    assert service.prepare(prompt["id"], {}, request_id="r").call.timeouts.first_byte == 120
    assert service.prepare(prompt["id"], {"stream": True}, request_id="r").call.timeouts.first_byte == 10
