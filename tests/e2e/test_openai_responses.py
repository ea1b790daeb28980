"""OpenAI's Responses API with stored prompts, through a real `cuecard serve`, driven by the unchanged `openai` SDK
(sync and async): an app that called `client.responses.create(prompt={"id": "pmpt_...", ...})` changes only its
`base_url` and key. The mock provider answers offline; a fake OpenAI-compatible upstream shows what reaches a
provider."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel

from tests.e2e.conftest import ADMIN_KEY, Server, call, ok
from tests.e2e.test_keys_cli import create_key
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.e2e

PMPT = "pmpt_68b0c29740048196bd3a6e6ac3c4d0e20ed9a13f0d15bf5e"
TEMPLATE = json.dumps([{"role": "system", "content": "You support {{product}}."},
                       {"role": "user", "content": "{{question}}"}])
VARIABLES = {"product": "Acme", "question": "Where is my order?"}
IMAGE = {"type": "input_image", "image_url": "https://example.com/receipt.png", "detail": "high"}


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def prompts(server: Server, upstream: FakeUpstream) -> dict[str, str]:
    """Slugs of a prompt on the mock provider (two versions, `staging` on 1) and one on the fake upstream."""
    ok(call(server, "POST", "/virtual-keys", ADMIN_KEY, {"name": "Responses mock", "slug": "resp-mock",
                                                         "provider": "mock"}))
    ok(call(server, "POST", "/virtual-keys", ADMIN_KEY, {"name": "Responses upstream", "slug": "resp-upstream",
                                                         "provider": "openai", "key": "sk-e2e-responses-000000",
                                                         "custom_host": upstream.base_url}))
    ok(call(server, "POST", "/prompts", ADMIN_KEY, {
        "name": "Support", "slug": "resp-support", "model": "mock-1", "virtual_key": "resp-mock", "string": TEMPLATE,
        "parameters": {"temperature": 0.3}}))
    ok(call(server, "PUT", "/prompts/resp-support", ADMIN_KEY, {"patch": True, "model": "mock-2"}))
    ok(call(server, "PUT", "/prompts/resp-support/versions/1", ADMIN_KEY, {"label_id": "staging"}))
    ok(call(server, "POST", "/prompts", ADMIN_KEY, {
        "name": "Upstream", "slug": "resp-upstream", "model": "gpt-fake", "virtual_key": "resp-upstream",
        "string": json.dumps([{"role": "system", "content": "Read receipts."},
                              {"role": "user", "content": "{{receipt}}"},
                              {"role": "user", "content": "Total for {{customer}}, with {{photo}} attached?"}]),
        "parameters": {"temperature": 0.1, "max_tokens": 300}}))
    return {"mock": "resp-support", "upstream": "resp-upstream"}


@pytest.fixture(scope="module")
def client(server: Server) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)


@pytest.fixture(autouse=True)
def calm_upstream(upstream: FakeUpstream):
    upstream.reset()
    yield


# --- the call --------------------------------------------------------------------------------------


def test_a_stored_prompt_by_slug_answers_a_response(client, prompts) -> None:
    raw = client.responses.with_raw_response.create(prompt={"id": prompts["mock"], "variables": VARIABLES})
    response = raw.parse()
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "[mock] You said: Where is my order?"
    assert response.prompt.id == prompts["mock"] and response.prompt.version == "1"  # the published version
    assert response.prompt.variables == VARIABLES
    assert response.model == "mock-1" and response.temperature == 0.3
    assert response.usage.output_tokens == 7 and response.usage.total_tokens == response.usage.input_tokens + 7
    assert response.id.startswith("resp_")
    assert raw.headers["x-cuecard-prompt-slug"] == prompts["mock"] and raw.headers["x-cuecard-prompt-version"] == "1"


@pytest.mark.parametrize("version, model", [("1", "mock-1"), (2, "mock-2"), ("latest", "mock-2"),
                                            ("staging", "mock-1"), (None, "mock-1")])
def test_the_version_is_a_number_latest_or_a_label(client, prompts, version, model) -> None:
    response = client.responses.create(prompt={"id": prompts["mock"], "version": version, "variables": VARIABLES})
    assert response.model == model


def test_a_prompt_found_by_its_openai_id(server, client, prompts) -> None:
    """Needs `external_ids` on the prompt (PUT /v1/prompts/{id}): the id an app already sends keeps working."""
    ok(call(server, "PUT", f"/prompts/{prompts['mock']}", ADMIN_KEY, {"external_ids": [PMPT]}))
    response = client.responses.create(prompt={"id": PMPT, "version": "1", "variables": VARIABLES})
    assert response.prompt.id == PMPT and response.prompt.version == "1" and response.model == "mock-1"
    assert response.output_text.endswith("Where is my order?")


def test_a_complete_scoped_key_is_enough(server, prompts) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    key = create_key("responses-app", "complete", cwd=server.data_dir.parent, env=env,
                     target=("--data-dir", str(server.data_dir))).key
    app = OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
    assert app.responses.create(prompt={"id": prompts["mock"], "variables": VARIABLES}).status == "completed"
    render_only = create_key("responses-render", "render", cwd=server.data_dir.parent, env=env,
                             target=("--data-dir", str(server.data_dir))).key
    with pytest.raises(openai.PermissionDeniedError):
        OpenAI(base_url=server.base_url, api_key=render_only, max_retries=0).responses.create(
            prompt={"id": prompts["mock"]})
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=server.base_url, api_key="cck_" + "x" * 43, max_retries=0).responses.create(
            prompt={"id": prompts["mock"]})


def test_the_provider_gets_template_then_instructions_then_input_with_image_parts(client, prompts, upstream) -> None:
    response = client.responses.create(
        prompt={"id": prompts["upstream"], "variables": {"receipt": IMAGE, "customer": "Ada", "photo": {
            "type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}},
        instructions="Answer in one line.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Also this one:"}, IMAGE]}])
    assert response.output_text == "Echo: Also this one: "  # the fake echoes the text parts, joined by spaces
    sent = upstream.last_request.body
    assert sent["messages"] == [
        {"role": "system", "content": "Read receipts."},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE["image_url"], "detail": "high"}}]},
        {"role": "user", "content": [{"type": "text", "text": "Total for Ada, with  attached?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=",
                                                                        "detail": "low"}}]},
        {"role": "developer", "content": "Answer in one line."},
        {"role": "user", "content": [{"type": "text", "text": "Also this one:"},
                                     {"type": "image_url", "image_url": {"url": IMAGE["image_url"], "detail": "high"}}]},
    ]
    assert response.prompt.variables["receipt"].type == "input_image"


def test_request_parameters_override_the_stored_ones(client, prompts, upstream) -> None:
    response = client.responses.create(
        prompt={"id": prompts["upstream"], "variables": {"receipt": "r", "customer": "c", "photo": "p"}},
        model="gpt-other", temperature=0.7, top_p=0.5, max_output_tokens=40, parallel_tool_calls=False,
        tools=[{"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": False}],
        tool_choice="none", text={"format": {"type": "json_object"}}, user="u-1", reasoning={"effort": "low"})
    sent = upstream.last_request.body
    assert (sent["model"], sent["temperature"], sent["top_p"], sent["max_tokens"]) == ("gpt-other", 0.7, 0.5, 40)
    assert sent["tools"] == [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"},
                                                               "strict": False}}]
    assert sent["tool_choice"] == "none" and sent["response_format"] == {"type": "json_object"}
    assert sent["parallel_tool_calls"] is False and sent["user"] == "u-1" and sent["reasoning_effort"] == "low"
    assert json.loads(response.output_text) == {"reply": "Echo: Total for c, with p attached?"}
    assert response.max_output_tokens == 40 and response.tool_choice == "none" and response.tools[0].name == "lookup"
    assert response.parallel_tool_calls is False


class Reply(BaseModel):
    reply: str


def test_structured_output_parses(client, prompts, upstream) -> None:
    parsed = client.responses.parse(prompt={"id": prompts["upstream"], "variables": {"customer": "Bo"}},
                                    text_format=Reply)
    assert parsed.output_parsed == Reply(reply="Echo: Total for Bo, with  attached?")
    assert upstream.last_request.body["response_format"]["type"] == "json_schema"
    assert upstream.last_request.body["response_format"]["json_schema"]["name"] == "Reply"


def test_a_tool_call_and_its_answer_round_trip(client, prompts, upstream) -> None:
    tools = [{"type": "function", "name": "lookup_order", "parameters": {"type": "object"}, "strict": None}]
    first = client.responses.create(prompt={"id": prompts["upstream"], "variables": {"customer": "Cy"}}, tools=tools,
                                    tool_choice={"type": "function", "name": "lookup_order"})
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "lookup_order" and calls[0].call_id == "call_fake_0"
    assert json.loads(calls[0].arguments) == {"text": "Total for Cy, with  attached?"}
    second = client.responses.create(
        prompt={"id": prompts["upstream"], "variables": {"customer": "Cy"}}, tools=tools, tool_choice="none",
        input=[*first.output, {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Shipped."}])
    assert second.output_text == "Echo: Total for Cy, with  attached?"
    sent = upstream.last_request.body["messages"]
    assert sent[-2] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_fake_0", "type": "function", "function": {"name": "lookup_order", "arguments": calls[0].arguments}}]}
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_fake_0", "content": "Shipped."}


def test_the_token_limit_makes_the_response_incomplete(client, prompts) -> None:
    response = client.responses.create(prompt={"id": prompts["mock"], "variables": VARIABLES}, max_output_tokens=2)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "[mock] You"


# --- streaming -------------------------------------------------------------------------------------


def test_create_with_stream_yields_the_event_sequence(client, prompts) -> None:
    events = list(client.responses.create(prompt={"id": prompts["mock"], "variables": VARIABLES}, stream=True))
    types = [event.type for event in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == events[-1].response.output_text == "[mock] You said: Where is my order?"
    assert events[-1].response.usage.output_tokens == 7
    assert len({event.response.id for event in events if hasattr(event, "response")}) == 1


def test_the_stream_helper_and_get_final_response(client, prompts) -> None:
    with client.responses.stream(model="mock-2", input="Any news?",
                                 prompt={"id": prompts["mock"], "version": "2", "variables": VARIABLES}) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "[mock] You said: Any news?"
    assert final.status == "completed" and final.prompt.version == "2"


def test_a_streamed_tool_call_is_a_function_call_item(client, prompts) -> None:
    tools = [{"type": "function", "name": "lookup_order", "parameters": {"type": "object"}, "strict": None}]
    with client.responses.stream(model="gpt-fake", input="order 7", tools=tools, tool_choice="required",
                                 prompt={"id": prompts["upstream"], "variables": {"customer": "Di"}}) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    assert [item.type for item in final.output] == ["function_call"]
    assert final.output[0].name == "lookup_order" and json.loads(final.output[0].arguments) == {"text": "order 7"}


def test_a_stream_stopped_by_the_token_limit_ends_incomplete(client, prompts) -> None:
    events = list(client.responses.create(prompt={"id": prompts["mock"], "variables": VARIABLES}, stream=True,
                                          max_output_tokens=3))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


def test_a_provider_failure_mid_stream_is_response_failed(client, prompts, upstream) -> None:
    upstream.cut_after = 3
    events = list(client.responses.create(prompt={"id": prompts["upstream"], "variables": {"customer": "Ed"}},
                                          stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.failed"
    assert events[-1].response.error.code == "server_error" and events[-1].response.id == events[0].response.id


def test_the_async_client_creates_and_streams(server, prompts) -> None:
    async def run() -> tuple[str, list[str], str]:
        client = AsyncOpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)
        response = await client.responses.create(prompt={"id": prompts["mock"], "variables": VARIABLES})
        stream = await client.responses.create(prompt={"id": prompts["mock"], "variables": VARIABLES}, stream=True)
        types = [event.type async for event in stream]
        async with client.responses.stream(model="mock-1", input="async?", prompt={"id": prompts["mock"]}) as helper:
            final = await helper.get_final_response()
        return response.output_text, types, final.output_text

    text, types, final = asyncio.run(run())
    assert text == "[mock] You said: Where is my order?"
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert final == "[mock] You said: async?"


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, status, param, code", [
    ({"prompt": {"id": "no-such-prompt"}}, openai.NotFoundError, 404, "prompt.id", "prompt_not_found"),
    ({"prompt": {"id": "SLUG", "version": "9"}}, openai.NotFoundError, 404, "prompt.version", "version_not_found"),
    ({"prompt": {"id": "SLUG", "version": "no-such-label"}}, openai.NotFoundError, 404, "prompt.version",
     "label_not_found"),
    ({"prompt": {"id": "SLUG@1", "version": "2"}}, openai.BadRequestError, 400, "prompt.version",
     "invalid_prompt_reference"),
    ({"prompt": {"id": "SLUG"}, "store": True}, openai.BadRequestError, 400, "store", "unsupported_parameter"),
    ({"prompt": {"id": "SLUG"}, "previous_response_id": "resp_1"}, openai.BadRequestError, 400,
     "previous_response_id", "unsupported_parameter"),
    ({"prompt": {"id": "SLUG"}, "background": True}, openai.BadRequestError, 400, "background",
     "unsupported_parameter"),
    ({"prompt": {"id": "SLUG"}, "tools": [{"type": "web_search"}]}, openai.BadRequestError, 400, "tools[0].type",
     "unsupported_parameter"),
    ({"prompt": {"id": "SLUG", "variables": {"question": ["a"]}}}, openai.BadRequestError, 400,
     "prompt.variables.question", "invalid_request"),
    ({"prompt": {"id": "SLUG", "variables": {"question": {"type": "input_file", "file_url": "https://x/a.pdf"}}}},
     openai.BadRequestError, 400, "prompt.variables.question.file_url", "unsupported_parameter"),
    ({"prompt": {"id": "SLUG"}, "temperature": 5}, openai.BadRequestError, 400, "temperature", "invalid_request"),
    ({"prompt": {"id": "SLUG"}, "max_output_tokens": 0}, openai.BadRequestError, 400, "max_output_tokens",
     "invalid_request"),
    ({"input": "no prompt"}, openai.BadRequestError, 400, "prompt", "invalid_request"),
    ({"prompt": {"id": "SLUG"}, "extra_body": {"variables": {}}}, openai.BadRequestError, 400, "variables",
     "unknown_parameter"),
])
def test_errors_reach_the_sdk_in_openais_shape(client, prompts, kwargs, error, status, param, code) -> None:
    kwargs = json.loads(json.dumps(kwargs).replace("SLUG", prompts["mock"]))
    with pytest.raises(error) as caught:
        client.responses.create(**kwargs)
    assert caught.value.status_code == status
    assert (caught.value.param, caught.value.code) == (param, code)
    assert caught.value.type == ("not_found_error" if status == 404 else "invalid_request_error")


def test_the_root_path_serves_it_too(server, prompts) -> None:
    response = httpx.post(f"{server.root}/responses", headers={"authorization": f"Bearer {server.admin_key}"},
                          json={"prompt": {"id": prompts["mock"], "variables": VARIABLES}}, timeout=30)
    assert response.status_code == 200 and response.json()["output"][0]["content"][0]["text"].startswith("[mock]")
