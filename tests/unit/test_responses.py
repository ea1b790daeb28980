"""ResponsesService over in-memory stores: the chat call a Responses request makes, and the Response it answers
(core.responses), and the stream's events (core.responses_stream)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, AsyncIterator

import pytest

from core.completions import CompletionService
from core.errors import BadGateway, InvalidRequest, NotFound
from core.providers import ProviderCall
from core.responses import ResponsesService, to_response
from core.responses_stream import ResponseEvents, response_events
from core.service import PromptService
from tests.unit.fakes import InMemoryStore
from tests.unit.test_completions import Bindings, Secrets, binding

CHAT = json.dumps([{"role": "system", "content": "You help with {{product}}."},
                   {"role": "user", "content": "{{question}}"}])
IMAGE = {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"}
IMAGE_PART = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "auto"}}


class Scripted:
    """Answers `answer` (or streams `chunks`), recording each call; `error` raises after `fail_after` chunks."""

    def __init__(self, answer: dict[str, Any] | None = None, chunks: list[dict[str, Any]] | None = None,
                 error: Exception | None = None, fail_after: int = 0) -> None:
        self.answer = answer or completion("ok")
        self.chunks = chunks or []
        self.error, self.fail_after = error, fail_after
        self.calls: list[ProviderCall] = []

    async def complete(self, call: ProviderCall) -> dict[str, Any]:
        self.calls.append(call)
        return json.loads(json.dumps(self.answer))

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        self.calls.append(call)
        for index, chunk in enumerate(self.chunks):
            if self.error is not None and index == self.fail_after:
                raise self.error
            yield chunk


class One:
    def __init__(self, provider: Any) -> None:
        self.instance = provider

    def provider(self, name: str) -> Any:
        return self.instance


def completion(text: str | None, *, finish: str = "stop", tool_calls: list[dict[str, Any]] | None = None,
               refusal: str | None = None, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": refusal}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x-2026",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}


def ids() -> Any:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter)}"


def make(provider: Any = None, **prompt_fields: Any) -> tuple[ResponsesService, PromptService, dict[str, Any], Any]:
    store = InMemoryStore()
    prompts = PromptService(store, store)
    provider = provider or Scripted()
    completions = CompletionService(prompts, Bindings(binding("vk", "openai", "ref")), Secrets(ref="sk"), One(provider))
    fields = {"name": "Help", "string": CHAT, "model": "gpt-x", "virtual_key": "vk",
              "parameters": {"temperature": 0.2, "max_tokens": 100}, **prompt_fields}
    prompt = prompts.create_prompt(fields)
    return ResponsesService(prompts, completions, clock=lambda: 1_800_000_000.5, new_id=ids()), prompts, prompt, provider


def run(service: ResponsesService, body: dict[str, Any], request_id: str = "abc") -> dict[str, Any]:
    return asyncio.run(service.create(service.prepare(body, request_id=request_id)))


VARIABLES = {"product": "Acme", "question": "Where is my order?"}


# --- the chat call ---------------------------------------------------------------------------------


def test_the_chat_call_is_the_rendered_template_then_instructions_then_input() -> None:
    service, _, prompt, provider = make()
    run(service, {"prompt": {"id": prompt["slug"], "variables": VARIABLES}, "instructions": "Answer in French.",
                  "input": [{"role": "user", "content": "And my refund?"}]})
    call = provider.calls[0]
    assert call.body == {
        "model": "gpt-x", "temperature": 0.2, "max_tokens": 100,
        "messages": [{"role": "system", "content": "You help with Acme."},
                     {"role": "user", "content": "Where is my order?"},
                     {"role": "developer", "content": "Answer in French."},
                     {"role": "user", "content": "And my refund?"}]}
    assert call.stream is False and call.request_id == "abc" and call.secret == "sk"


def test_request_parameters_override_the_saved_ones_for_the_call() -> None:
    service, prompts, prompt, provider = make(tools=[{"type": "function", "function": {"name": "saved"}}],
                                              parameters={"temperature": 0.2, "max_completion_tokens": 100, "n": 2})
    run(service, {"prompt": {"id": prompt["id"]}, "model": "gpt-y", "temperature": 0.9, "top_p": 0.5,
                  "max_output_tokens": 7, "tools": [{"type": "function", "name": "lookup"}], "tool_choice": "required",
                  "text": {"format": {"type": "json_object"}}})
    body = provider.calls[0].body
    assert body["model"] == "gpt-y" and body["temperature"] == 0.9 and body["top_p"] == 0.5
    assert body["max_completion_tokens"] == 7 and "max_tokens" not in body  # the key the saved parameters use
    assert body["tools"] == [{"type": "function", "function": {"name": "lookup"}}] and body["tool_choice"] == "required"
    assert body["response_format"] == {"type": "json_object"}
    assert "n" not in body  # a Response holds one answer
    assert prompts.get_prompt(prompt["id"])["prompt_version"] == 1  # nothing stored changed


def test_a_text_template_is_one_user_message() -> None:
    service, _, prompt, provider = make(string="Summarize {{text}}")
    run(service, {"prompt": {"id": prompt["slug"], "variables": {"text": "this"}}, "input": "Now."})
    assert provider.calls[0].body["messages"] == [{"role": "user", "content": "Summarize this"},
                                                  {"role": "user", "content": "Now."}]


def test_an_image_variable_becomes_a_content_part_where_the_template_uses_it() -> None:
    template = json.dumps([{"role": "system", "content": "Describe images."}, {"role": "user", "content": "{{photo}}"},
                           {"role": "user", "content": "Compare {{a}} with {{b}}, please."}])
    service, _, prompt, provider = make(string=template)
    second = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}
    run(service, {"prompt": {"id": prompt["slug"], "variables": {"photo": IMAGE, "a": IMAGE, "b": second}}})
    assert provider.calls[0].body["messages"] == [
        {"role": "system", "content": "Describe images."},
        {"role": "user", "content": [IMAGE_PART]},
        {"role": "user", "content": [{"type": "text", "text": "Compare  with , please."}, IMAGE_PART,
                                     {"type": "image_url", "image_url": {"url": second["image_url"], "detail": "high"}}]},
    ]


def test_a_file_variable_in_a_raw_template_part() -> None:
    raw = '[{"role": "user", "content": [{"type": "text", "text": "Read {{doc}}"}, {"type": "text", "text": "{{doc2}}"}]}]'
    service, _, prompt, provider = make(string=raw, is_raw_template=True)
    doc = {"type": "input_file", "file_id": "file-1"}
    run(service, {"prompt": {"id": prompt["slug"], "variables": {"doc": doc, "doc2": doc}}})
    part = {"type": "file", "file": {"file_id": "file-1"}}
    assert provider.calls[0].body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Read "}, part, part]}]


def test_an_image_variable_where_only_text_can_go_is_a_400() -> None:
    raw = '[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "{{photo}}"}}]}]'
    service, _, prompt, provider = make(string=raw, is_raw_template=True)
    with pytest.raises(InvalidRequest) as caught:
        service.prepare({"prompt": {"id": prompt["slug"], "variables": {"photo": IMAGE}}}, request_id="r")
    assert caught.value.param == "prompt.variables.photo" and "string variable" in caught.value.message
    run(service, {"prompt": {"id": prompt["slug"], "variables": {"photo": IMAGE["image_url"]}}})
    assert provider.calls[0].body["messages"][0]["content"][0]["image_url"]["url"] == IMAGE["image_url"]


def test_versions_resolve_by_number_label_and_latest() -> None:
    service, prompts, prompt, provider = make()
    prompts.update_prompt(prompt["id"], {"patch": True, "model": "gpt-v2"})
    prompts.label_version(prompt["id"], "2", {"label_id": "staging"})
    models = {}
    for version in (None, "1", 2, "latest", "staging"):
        answer = run(service, {"prompt": {"id": prompt["slug"], "version": version}})
        models[version] = (provider.calls[-1].body["model"], answer["prompt"]["version"])
    assert models == {None: ("gpt-x", "1"), "1": ("gpt-x", "1"), 2: ("gpt-v2", "2"), "latest": ("gpt-v2", "2"),
                      "staging": ("gpt-v2", "2")}


@pytest.mark.parametrize("prompt_ref, param, code", [
    ({"id": "no-such-prompt"}, "prompt.id", "prompt_not_found"),
    ({"id": "SLUG", "version": "9"}, "prompt.version", "version_not_found"),
    ({"id": "SLUG", "version": "no-such-label"}, "prompt.version", "label_not_found"),
    ({"id": "SLUG@9"}, "prompt.id", "version_not_found"),
])
def test_unknown_prompts_and_versions_are_404s(prompt_ref, param, code) -> None:
    service, _, prompt, provider = make()
    prompt_ref = {key: value.replace("SLUG", prompt["slug"]) for key, value in prompt_ref.items()}
    with pytest.raises(NotFound) as caught:
        service.prepare({"prompt": prompt_ref}, request_id="r")
    body = caught.value.to_body()["error"]
    assert (caught.value.status, body["type"], body["param"], body["code"]) == (404, "not_found_error", param, code)
    assert provider.calls == []


def test_a_version_with_its_own_schema_refuses_unknown_variables() -> None:
    schema = {"type": "object", "properties": {"product": {"type": "string"}, "question": {"type": "string"}}}
    service, _, prompt, _ = make(variables_schema=schema)
    run(service, {"prompt": {"id": prompt["slug"], "variables": VARIABLES}})
    with pytest.raises(InvalidRequest) as caught:
        service.prepare({"prompt": {"id": prompt["slug"], "variables": {**VARIABLES, "tone": "warm"}}}, request_id="r")
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, "prompt.variables.tone",
                                                                            "invalid_variables")
    open_schema = {**schema, "additionalProperties": True}
    service, _, prompt, _ = make(variables_schema=open_schema)
    run(service, {"prompt": {"id": prompt["slug"], "variables": {**VARIABLES, "tone": "warm"}}})


def test_a_version_without_a_schema_takes_any_variables() -> None:
    service, _, prompt, _ = make()
    run(service, {"prompt": {"id": prompt["slug"], "variables": {**VARIABLES, "extra": "x"}}})


def test_a_strict_versions_refusal_names_the_prompt_variable() -> None:
    schema = {"type": "object", "properties": {"product": {"type": "string"}, "question": {"type": "string"}},
              "required": ["product", "question"]}
    service, _, prompt, _ = make(variables_schema=schema, strict_variables=True)
    with pytest.raises(InvalidRequest) as caught:
        service.prepare({"prompt": {"id": prompt["slug"], "variables": {"product": "Acme"}}}, request_id="r")
    assert caught.value.param == "prompt.variables.question" and '"strict"' not in caught.value.message


# --- the Response ----------------------------------------------------------------------------------


def test_the_response_echoes_the_prompt_and_what_the_call_asked() -> None:
    service, _, prompt, _ = make()
    answer = run(service, {"prompt": {"id": prompt["slug"], "variables": {**VARIABLES, "count": 2}},
                           "instructions": "Be brief.", "metadata": {"team": "support"},
                           "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
                           "tool_choice": {"type": "function", "name": "lookup"}, "user": "u-1",
                           "text": {"format": {"type": "json_schema", "name": "a", "schema": {"type": "object"}}}})
    assert answer == {
        "id": "resp_abc", "object": "response", "created_at": 1_800_000_000, "completed_at": 1_800_000_000,
        "status": "completed", "background": False, "error": None, "incomplete_details": None,
        "instructions": "Be brief.", "max_output_tokens": 100, "metadata": {"team": "support"}, "model": "gpt-x-2026",
        "output": [{"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": "ok", "annotations": [], "logprobs": []}]}],
        "parallel_tool_calls": True, "previous_response_id": None,
        "prompt": {"id": prompt["slug"], "version": "1", "variables": {**VARIABLES, "count": "2"}},
        "reasoning": {"effort": None, "summary": None}, "service_tier": None, "store": False, "temperature": 0.2,
        "text": {"format": {"type": "json_schema", "name": "a", "schema": {"type": "object"}}},
        "tool_choice": {"type": "function", "name": "lookup"},
        "tools": [{"type": "function", "name": "lookup", "description": None, "parameters": {"type": "object"},
                   "strict": None}],
        "top_p": None, "truncation": "disabled", "user": "u-1",
        "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 13},
    }


def test_tool_calls_become_function_call_items_after_the_text() -> None:
    calls = [{"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": "{\"id\":1}"}},
             {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": "{}"}}]
    service, _, prompt, _ = make(Scripted(completion("Let me look.", finish="tool_calls", tool_calls=calls)))
    output = run(service, {"prompt": {"id": prompt["slug"]}})["output"]
    assert [item["type"] for item in output] == ["message", "function_call", "function_call"]
    assert output[1] == {"id": "fc_2", "type": "function_call", "status": "completed", "call_id": "call_a",
                         "name": "lookup", "arguments": "{\"id\":1}"}
    assert output[2]["call_id"] == "call_b" and output[2]["name"] == "time"


def test_the_token_limit_makes_an_incomplete_response() -> None:
    service, _, prompt, _ = make(Scripted(completion("Cut sh", finish="length")))
    answer = run(service, {"prompt": {"id": prompt["slug"]}, "max_output_tokens": 2})
    assert answer["status"] == "incomplete" and answer["incomplete_details"] == {"reason": "max_output_tokens"}
    assert answer["output"][0]["status"] == "incomplete" and answer["max_output_tokens"] == 2


def test_a_refusal_and_usage_details() -> None:
    usage = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25,
             "prompt_tokens_details": {"cached_tokens": 8}, "completion_tokens_details": {"reasoning_tokens": 2}}
    service, _, prompt, _ = make(Scripted(completion(None, refusal="I can't help with that.", usage=usage)))
    answer = run(service, {"prompt": {"id": prompt["slug"]}})
    assert answer["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help with that."}]
    assert answer["usage"] == {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 0},
                               "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 25}


def test_an_answer_without_choices_or_usage_is_an_empty_response() -> None:
    answer = to_response({"id": "resp_x"}, {"choices": []}, new_id=ids(), now=lambda: 5.0)
    assert answer == {"id": "resp_x", "status": "completed", "output": [], "usage": None, "completed_at": 5}


# --- the stream -------------------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c", "object": "chat.completion.chunk", "model": "gpt-x-2026", "choices": choices, **extra}


def stream(service: ResponsesService, body: dict[str, Any]) -> list[dict[str, Any]]:
    prepared = service.prepare({**body, "stream": True}, request_id="s1")

    async def collect() -> list[dict[str, Any]]:
        events = ResponseEvents(prepared.response, new_id=service.new_id, now=service.clock)
        return [event async for event in response_events(events, service.chunks(prepared))]

    return asyncio.run(collect())


TEXT_CHUNKS = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
               chunk({}, "stop"),
               chunk(usage={"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6})]


def test_a_text_stream_runs_the_responses_event_sequence() -> None:
    service, _, prompt, provider = make(Scripted(chunks=TEXT_CHUNKS))
    events = stream(service, {"prompt": {"id": prompt["slug"]}})
    assert [event["type"] for event in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert {event["response"]["id"] for event in events if "response" in event} == {"resp_s1"}
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    assert [event["delta"] for event in events if event["type"].endswith(".delta")] == ["Hel", "lo"]
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["output"][0]["content"][0]["text"] == "Hello"
    assert final["output"][0]["id"] == events[2]["item"]["id"] == events[4]["item_id"]
    assert final["usage"]["input_tokens"] == 4 and final["usage"]["total_tokens"] == 6
    # The call asks the provider for the usage chunk: a Response always reports usage.
    assert provider.calls[0].stream is True and provider.calls[0].body["stream_options"] == {"include_usage": True}


def test_streamed_tool_calls_are_function_call_items_with_argument_deltas() -> None:
    chunks = [chunk({"role": "assistant", "content": "Looking."}),
              chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                     "function": {"name": "lookup", "arguments": ""}}]}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"id\":"}}]}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
              chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                                     "function": {"name": "time", "arguments": "{}"}}]}),
              chunk({}, "tool_calls")]
    service, _, prompt, _ = make(Scripted(chunks=chunks))
    events = stream(service, {"prompt": {"id": prompt["slug"]}})
    types = [event["type"] for event in events]
    assert types == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    added = [event["item"] for event in events if event["type"] == "response.output_item.added"]
    assert [(item["type"], item.get("call_id"), item.get("name")) for item in added] == [
        ("message", None, None), ("function_call", "call_a", "lookup"), ("function_call", "call_b", "time")]
    final = events[-1]["response"]["output"]
    assert [item.get("arguments") for item in final] == [None, "{\"id\":1}", "{}"]
    assert [event["output_index"] for event in events if event["type"] == "response.output_item.done"] == [0, 1, 2]


def test_a_stream_stopped_by_the_token_limit_ends_incomplete() -> None:
    chunks = [chunk({"content": "Cut"}), chunk({}, "length")]
    service, _, prompt, _ = make(Scripted(chunks=chunks))
    events = stream(service, {"prompt": {"id": prompt["slug"]}, "max_output_tokens": 1})
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-2]["item"]["status"] == "incomplete"


def test_a_refusal_streams_as_refusal_events() -> None:
    chunks = [chunk({"refusal": "No"}), chunk({"refusal": "pe."}), chunk({}, "stop")]
    service, _, prompt, _ = make(Scripted(chunks=chunks))
    events = stream(service, {"prompt": {"id": prompt["slug"]}})
    assert [event["type"] for event in events][3:7] == ["response.content_part.added", "response.refusal.delta",
                                                        "response.refusal.delta", "response.refusal.done"]
    assert events[-1]["response"]["output"][0]["content"] == [{"type": "refusal", "refusal": "Nope."}]


def test_a_failure_after_the_stream_began_is_response_failed() -> None:
    service, _, prompt, _ = make(Scripted(chunks=TEXT_CHUNKS, error=BadGateway("The provider cut the stream."),
                                          fail_after=2))
    events = stream(service, {"prompt": {"id": prompt["slug"]}})
    assert [event["type"] for event in events][-2:] == ["response.output_text.delta", "response.failed"]
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["id"] == "resp_s1"
    assert failed["error"] == {"code": "server_error", "message": "The provider cut the stream."}
    assert failed["output"][0]["status"] == "incomplete" and failed["output"][0]["content"][0]["text"] == "Hel"


def test_an_unexpected_error_and_an_empty_stream_also_end_failed() -> None:
    service, _, prompt, _ = make(Scripted(chunks=TEXT_CHUNKS, error=RuntimeError("bug"), fail_after=0))
    events = stream(service, {"prompt": {"id": prompt["slug"]}})
    assert [event["type"] for event in events] == ["response.created", "response.in_progress", "response.failed"]
    assert events[-1]["response"]["error"]["message"] == "The stream failed on the server."
    service, _, prompt, _ = make(Scripted(chunks=[]))
    events = stream(service, {"prompt": {"id": prompt["slug"]}})
    assert events[-1]["type"] == "response.failed" and "without a chunk" in events[-1]["response"]["error"]["message"]
