"""Reading a `POST /v1/responses` body (core.responses_request): resolution, variables, input, parameters, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import InvalidRequest
from core.responses_request import parse_responses_request

TOKEN = "t0ken"


def parse(**body: Any):
    body.setdefault("prompt", {"id": "greet"})
    return parse_responses_request(body, placeholder_token=TOKEN)


def refused(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_responses_request({"prompt": {"id": "greet"}, **body} if "prompt" not in body else body)
    return caught.value


# --- prompt: which version ---------------------------------------------------------------------------


@pytest.mark.parametrize("prompt, reference", [
    ({"id": "greet"}, "greet"),
    ({"id": "greet", "version": "3"}, "greet@3"),
    ({"id": "greet", "version": 3}, "greet@3"),
    ({"id": "greet", "version": "latest"}, "greet@latest"),
    ({"id": "greet", "version": "production"}, "greet@production"),
    ({"id": "greet", "version": None}, "greet"),
    ({"id": "greet@2"}, "greet@2"),
    ({"id": "pmpt_68b0c29740048196bd3a6e6ac3c4d0e2", "version": "2"}, "pmpt_68b0c29740048196bd3a6e6ac3c4d0e2@2"),
    ({"prompt_id": "greet", "version": "4"}, "greet@4"),
    ({"id": "c3eb3006-4981-4457-a575-4a1858889f28"}, "c3eb3006-4981-4457-a575-4a1858889f28"),
])
def test_prompt_id_and_version_name_the_reference(prompt, reference) -> None:
    request = parse(prompt=prompt)
    assert request.reference == reference
    assert request.prompt_id == prompt.get("id", prompt.get("prompt_id"))
    assert request.version_given == (prompt.get("version") is not None)


@pytest.mark.parametrize("prompt, param, code", [
    ({"id": "greet@2", "version": "3"}, "prompt.version", "invalid_prompt_reference"),
    ({"id": "greet", "version": True}, "prompt.version", "invalid_prompt_reference"),
    ({"id": "greet", "version": ""}, "prompt.version", "invalid_prompt_reference"),
    ({"id": "greet", "version": 0}, "prompt.version", "invalid_prompt_reference"),
    ({"id": "greet", "version": "-1"}, "prompt.version", "invalid_prompt_reference"),
    ({"id": "greet", "version": "default"}, "prompt.version", "invalid_prompt_reference"),
    ({"id": "greet", "version": ["3"]}, "prompt.version", "invalid_prompt_reference"),
    ({"id": "no spaces"}, "prompt.id", "invalid_prompt_reference"),
    ({"id": ""}, "prompt.id", "invalid_request"),
    ({"id": 7}, "prompt.id", "invalid_request"),
    ({"variables": {}}, "prompt.id", "invalid_request"),
    ({"id": "a", "prompt_id": "b"}, "prompt.prompt_id", "invalid_request"),
    ({"id": "greet", "name": "x"}, "prompt.name", "unknown_parameter"),
    ({"id": "greet", "variables": ["x"]}, "prompt.variables", "invalid_request"),
])
def test_a_bad_prompt_is_a_400_naming_the_field(prompt, param, code) -> None:
    error = refused({"prompt": prompt})
    assert (error.status, error.param, error.code) == (400, param, code)


@pytest.mark.parametrize("body", [{}, {"prompt": None}, {"prompt": "greet"}, {"input": "hi"}])
def test_the_prompt_is_required(body) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_responses_request(body)
    assert caught.value.param == "prompt" and "stored prompt" in caught.value.message


# --- prompt: variables -------------------------------------------------------------------------------

IMAGE = {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"}
FILE = {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}


def test_variables_render_as_sent_and_echo_as_text() -> None:
    request = parse(prompt={"id": "greet", "variables": {
        "name": "Ada", "count": 3, "ratio": 1.0, "ok": True, "note": {"type": "input_text", "text": "hi {{x}}"},
        "photo": IMAGE, "doc": FILE}})
    photo, doc = f"cuecard_part_{TOKEN}_0", f"cuecard_part_{TOKEN}_1"
    assert request.variables == {"name": "Ada", "count": 3, "ratio": 1.0, "ok": True, "note": "hi {{x}}",
                                 "photo": photo, "doc": doc}
    assert request.echoed_variables == {"name": "Ada", "count": "3", "ratio": "1", "ok": "true",
                                        "note": {"type": "input_text", "text": "hi {{x}}"}, "photo": IMAGE, "doc": FILE}
    assert request.parts == {
        photo: {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        doc: {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
    }


def test_image_detail_original_is_sent_as_high_and_a_file_id_file_passes() -> None:
    request = parse(prompt={"id": "g", "variables": {"a": {**IMAGE, "detail": "original"},
                                                     "b": {"type": "input_file", "file_id": "file-1"}}})
    assert [part for part in request.parts.values()] == [
        {"type": "image_url", "image_url": {"url": IMAGE["image_url"], "detail": "high"}},
        {"type": "file", "file": {"file_id": "file-1"}}]


@pytest.mark.parametrize("value, param, code", [
    (None, "prompt.variables.v", "invalid_request"),
    (["a"], "prompt.variables.v", "invalid_request"),
    ({"a": 1}, "prompt.variables.v", "invalid_request"),
    ({"type": "input_audio"}, "prompt.variables.v", "invalid_request"),
    ({"type": "input_text"}, "prompt.variables.v.text", "invalid_request"),
    ({"type": "input_text", "text": "x", "extra": 1}, "prompt.variables.v.extra", "unsupported_parameter"),
    ({"type": "input_image", "file_id": "file-1", "detail": "auto"}, "prompt.variables.v.file_id",
     "unsupported_parameter"),
    ({"type": "input_image", "detail": "auto"}, "prompt.variables.v.image_url", "invalid_request"),
    ({**IMAGE, "detail": "huge"}, "prompt.variables.v.detail", "invalid_request"),
    ({**IMAGE, "detail": {}}, "prompt.variables.v.detail", "invalid_request"),
    ({"type": "input_file", "file_url": "https://example.com/a.pdf"}, "prompt.variables.v.file_url",
     "unsupported_parameter"),
    ({"type": "input_file", "filename": "a.pdf"}, "prompt.variables.v", "invalid_request"),
])
def test_a_variable_of_another_shape_is_a_400_naming_it(value, param, code) -> None:
    error = refused({"prompt": {"id": "greet", "variables": {"v": value}}})
    assert (error.status, error.param, error.code) == (400, param, code)


# --- input -------------------------------------------------------------------------------------------


def test_a_string_input_is_one_user_message() -> None:
    assert parse(input="Hello").input_messages == [{"role": "user", "content": "Hello"}]


def test_input_items_become_chat_messages_in_order() -> None:
    request = parse(input=[
        {"role": "user", "content": "What is the weather?"},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Use celsius."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Here:"}, IMAGE, FILE]},
        {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "weather", "arguments": "{\"c\":1}",
         "status": "completed"},
        {"type": "function_call", "call_id": "call_2", "name": "time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "12C"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "noon"}]},
        {"type": "function_call", "call_id": "call_3", "name": "time", "arguments": "{}"},
    ])
    call = {"type": "function"}
    assert request.input_messages == [
        {"role": "user", "content": "What is the weather?"},
        {"role": "developer", "content": [{"type": "text", "text": "Use celsius."}]},
        {"role": "user", "content": [{"type": "text", "text": "Here:"},
                                     {"type": "image_url", "image_url": {"url": IMAGE["image_url"], "detail": "low"}},
                                     {"type": "file", "file": {"file_data": FILE["file_data"], "filename": "a.pdf"}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."}], "tool_calls": [
            {"id": "call_1", **call, "function": {"name": "weather", "arguments": "{\"c\":1}"}},
            {"id": "call_2", **call, "function": {"name": "time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_3", **call, "function": {"name": "time", "arguments": "{}"}}]},
    ]


@pytest.mark.parametrize("item, param, code", [
    ("hi", "input[0]", "invalid_request"),
    ({"content": "no role"}, "input[0].type", "unsupported_parameter"),
    ({"type": "item_reference", "id": "msg_1"}, "input[0].type", "unsupported_parameter"),
    ({"type": "reasoning", "summary": []}, "input[0].type", "unsupported_parameter"),
    ({"role": "robot", "content": "x"}, "input[0].role", "invalid_request"),
    ({"role": "user", "content": 5}, "input[0].content", "invalid_request"),
    ({"role": "user", "content": [{"type": "input_audio"}]}, "input[0].content[0].type", "unsupported_parameter"),
    ({"role": "user", "content": [{"type": "input_text", "text": 1}]}, "input[0].content[0].text", "invalid_request"),
    ({"role": "user", "content": "x", "name": "bob"}, "input[0].name", "unsupported_parameter"),
    ({"type": "function_call", "call_id": "c", "name": "f"}, "input[0].arguments", "invalid_request"),
    ({"type": "function_call_output", "output": "x"}, "input[0].call_id", "invalid_request"),
    ({"type": "function_call_output", "call_id": "c", "output": 3}, "input[0].output", "invalid_request"),
])
def test_an_input_item_cuecard_cannot_translate_is_a_400_naming_it(item, param, code) -> None:
    error = refused({"input": [item]})
    assert (error.status, error.param, error.code) == (400, param, code)


def test_input_of_another_type_is_a_400() -> None:
    assert refused({"input": {"role": "user"}}).param == "input"


# --- parameters ----------------------------------------------------------------------------------------


def test_parameters_become_the_chat_calls() -> None:
    request = parse(
        model="gpt-x", temperature=0.5, top_p=0.9, max_output_tokens=64, parallel_tool_calls=False, user="u1",
        safety_identifier="s1", prompt_cache_key="k1", service_tier="flex", reasoning={"effort": "low", "summary": None},
        tools=[{"type": "function", "name": "lookup", "description": "Find", "parameters": {"type": "object"},
                "strict": True}],
        tool_choice={"type": "function", "name": "lookup"},
        text={"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True},
              "verbosity": "low"},
        instructions="Be brief.", metadata={"team": "a"}, stream=True, stream_options={"include_obfuscation": False},
        store=False, background=False, truncation="disabled", include=[], previous_response_id=None)
    assert request.overrides == {
        "model": "gpt-x", "temperature": 0.5, "top_p": 0.9, "parallel_tool_calls": False, "user": "u1",
        "safety_identifier": "s1", "prompt_cache_key": "k1", "service_tier": "flex", "max_tokens": 64,
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Find",
                                                    "parameters": {"type": "object"}, "strict": True}}],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "verbosity": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"},
                                                                   "strict": True}},
        "reasoning_effort": "low",
    }
    assert (request.instructions, request.metadata, request.stream) == ("Be brief.", {"team": "a"}, True)


@pytest.mark.parametrize("text, expected", [
    ({"format": {"type": "text"}}, {"type": "text"}),
    ({"format": {"type": "json_object"}}, {"type": "json_object"}),
])
def test_text_formats(text, expected) -> None:
    assert parse(text=text).overrides == {"response_format": expected}


@pytest.mark.parametrize("body, param, code, says", [
    ({"temperature": 3}, "temperature", "invalid_request", "temperature must be between 0 and 2"),
    ({"top_p": "high"}, "top_p", "invalid_request", "top_p must be a number"),
    ({"max_output_tokens": 0}, "max_output_tokens", "invalid_request", "max_output_tokens must be a positive integer"),
    ({"max_output_tokens": 2.0}, "max_output_tokens", "invalid_request", "max_output_tokens must be an integer"),
    ({"model": 4}, "model", "invalid_request", "model must be a string"),
    ({"parallel_tool_calls": "yes"}, "parallel_tool_calls", "invalid_request", "must be a boolean"),
    ({"tools": [{"type": "function", "name": "bad name"}]}, "tools[0].name", "invalid_request", "tools[0].name must"),
    ({"tools": [{"type": "function"}]}, "tools[0].name", "invalid_request", "tools[0].name is required"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_parameter", "function tools only"),
    ({"tools": [{"type": "function", "name": "f", "defer_loading": True}]}, "tools[0].defer_loading",
     "unsupported_parameter", "not supported"),
    ({"tools": {"type": "function"}}, "tools", "invalid_request", "tools must be an array"),
    ({"tool_choice": "sometimes"}, "tool_choice", "invalid_request", "tool_choice must be"),
    ({"tool_choice": {"type": "function"}}, "tool_choice.name", "invalid_request", "tool_choice.name is required"),
    ({"tool_choice": {"type": "file_search"}}, "tool_choice.type", "unsupported_parameter", "function tools only"),
    ({"tool_choice": 1}, "tool_choice", "invalid_request", "tool_choice must be"),
    ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name", "invalid_request", "required"),
    ({"text": {"format": {"type": "json_schema", "name": "a b", "schema": {}}}}, "text.format.name",
     "invalid_request", "text.format.name must"),
    ({"text": {"format": {"type": "xml"}}}, "text.format", "invalid_request", "text.format must"),
    ({"text": {"verbosity": "max"}}, "text.verbosity", "invalid_request", "low, medium or high"),
    ({"text": {"tone": "x"}}, "text.tone", "unsupported_parameter", "not supported"),
    ({"reasoning": {"effort": "low", "summary": "auto"}}, "reasoning.summary", "unsupported_parameter", "effort only"),
    ({"reasoning": {"effort": 2}}, "reasoning.effort", "invalid_request", "must be a string"),
    ({"instructions": ["x"]}, "instructions", "invalid_request", "instructions must be a string"),
    ({"stream": "yes"}, "stream", "invalid_request", "stream must be a boolean"),
    ({"stream_options": {"include_obfuscation": False}}, "stream_options", "invalid_request", "only allowed when"),
    ({"metadata": {"a": 1}}, "metadata.a", "invalid_request", "must be a string"),
    ({"metadata": {str(i): "v" for i in range(17)}}, "metadata", "invalid_request", "at most 16"),
    ({"user": 3}, "user", "invalid_request", "user must be a string"),
    ({"store": True}, "store", "unsupported_parameter", "keeps no responses"),
    ({"previous_response_id": "resp_1"}, "previous_response_id", "unsupported_parameter", "keeps no responses"),
    ({"background": True}, "background", "unsupported_parameter", "no background"),
    ({"conversation": "conv_1"}, "conversation", "unsupported_parameter", "keeps no conversations"),
    ({"truncation": "auto"}, "truncation", "unsupported_parameter", "not supported"),
    ({"include": ["message.output_text.logprobs"]}, "include", "unsupported_parameter", "not supported"),
    ({"max_tool_calls": 3}, "max_tool_calls", "unsupported_parameter", "not supported"),
    ({"top_logprobs": 2}, "top_logprobs", "unsupported_parameter", "not supported"),
    ({"store": 0}, "store", "unsupported_parameter", "not supported"),
    ({"variables": {"a": "b"}}, "variables", "unknown_parameter", "Unknown parameter: variables"),
    ({"messages": []}, "messages", "unknown_parameter", "Unknown parameter: messages"),
])
def test_a_bad_or_unsupported_parameter_is_a_400_naming_it(body, param, code, says) -> None:
    error = refused(body)
    assert (error.status, error.type, error.param, error.code) == (400, "invalid_request_error", param, code)
    assert says in error.message


def test_the_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest):
        parse_responses_request([{"prompt": {"id": "x"}}])


def test_each_request_gets_placeholders_of_its_own() -> None:
    body = {"prompt": {"id": "g", "variables": {"photo": IMAGE}}}
    first, second = parse_responses_request(body), parse_responses_request(body)
    assert first.variables["photo"] != second.variables["photo"]
