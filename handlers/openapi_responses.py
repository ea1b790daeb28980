"""The OpenAPI entry of `POST /v1/responses` (handlers.responses_routes) and its schemas.

`RESPONSES_OPERATION` is the route's `Operation` in handlers.openapi_spec's terms; `responses_paths()` and
`responses_schemas()` are what it adds to the document (`add_responses_document` adds them to a built one).
The request schema says exactly what core.responses_request accepts: every field the Responses API has
that cuecard translates, echoes or accepts with the one value it can honour, and nothing else.
"""

from __future__ import annotations

import copy
from typing import Any

from handlers.openapi_spec import (
    _COMPLETE,
    _KEY,
    _LABEL,
    _PROMPT_HEADERS,
    SCHEMAS,
    Operation,
    _operation,
)

PATH = "/responses"
_NULL: dict[str, Any] = {"type": "null"}
_NAME = "^[a-zA-Z0-9_-]{1,64}$"  # core.hyperparameters.NAME_PATTERN: function and schema names
# A version number as core.references reads it: at most 13 digits (leading zeros count), from 1 to 10^12 - 1.
_SELECTOR = f"(?:latest|(?=[0-9]{{1,13}}$)0*[1-9][0-9]{{0,11}}|{_LABEL})"
_VERSION = f"^{_SELECTOR}$"
_REFERENCE = f"^{_KEY}(?:@{_SELECTOR})?$"
_MAX_VERSION = 10**12

RESPONSES_OPERATION = Operation(
    "createResponse", "Run a stored prompt (OpenAI Responses API)", "Responses", "complete", _COMPLETE,
    "ResponsesRequest", ok="Response", ok_headers=_PROMPT_HEADERS, stream=True,
    description="OpenAI's `POST /v1/responses` with a stored prompt: `prompt.id` is the prompt's id, slug or "
                "external id (`pmpt_...`), `prompt.version` a version number, `latest` or a label (default: the "
                "published version), `prompt.variables` strings, numbers, booleans, or `input_text`, `input_image` "
                "and `input_file` parts (an image or file becomes a content part of the message that uses it). The "
                "call's messages are the rendered template's, then `instructions` as a developer message, then "
                "`input`; `model`, `temperature`, `top_p`, `max_output_tokens`, `tools`, `tool_choice` and "
                "`text.format` override the version's for the call. It runs as a chat completion on the version's "
                "virtual key, translated both ways, whatever the provider. cuecard keeps no responses: `store: "
                "true`, `previous_response_id` and `background: true` are 400 `unsupported_parameter`, as is any "
                "other Responses field it cannot honour; an unknown field is 400 `unknown_parameter`. 404: no such "
                "prompt, version or label. With `\"stream\": true` the answer is the Responses event stream "
                "(`event: <type>` frames, `response.created` first and `response.completed`, `response.incomplete` "
                "or `response.failed` last), with `: keep-alive` comments while the provider is silent.")


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, _NULL]}


def _object(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False,
            **extra}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": SCHEMAS + name}


def _string_given(*names: str) -> dict[str, Any]:
    """A schema matching an object in which each of `names` is a string (not absent, not null)."""
    return {"required": list(names), "properties": {name: {"type": "string"} for name in names}}


def _request_schemas() -> dict[str, Any]:
    text = _object({"type": {"const": "input_text"}, "text": {"type": "string"}}, ("type", "text"))
    output_text = _object({"type": {"const": "output_text"}, "text": {"type": "string"}, "annotations": {},
                           "logprobs": {}}, ("type", "text"))
    refusal = _object({"type": {"const": "refusal"}, "refusal": {"type": "string"}}, ("type", "refusal"))
    image = _object({"type": {"const": "input_image"}, "image_url": {"type": "string"},
                     "detail": _nullable({"enum": ["low", "high", "auto", "original"]}), "file_id": _NULL},
                    ("type", "image_url"),
                    description="An image as an https or data: URL; `original` detail is sent as `high`. OpenAI "
                                "file ids are refused (a chat completion cannot take them).")
    file = _object({"type": {"const": "input_file"}, "file_id": _nullable({"type": "string"}),
                    "file_data": _nullable({"type": "string"}), "filename": _nullable({"type": "string"}),
                    "file_url": _NULL, "detail": _NULL}, ("type",),
                   anyOf=[_string_given("file_id"), _string_given("file_data")],
                   description="A file as `file_id` or `file_data` (a data: URL, with `filename`).")
    parts = {"type": "array", "items": {"anyOf": [_ref(name) for name in (
        "ResponsesInputText", "ResponsesOutputText", "ResponsesRefusal", "ResponsesInputImage", "ResponsesInputFile")]}}
    metadata_of_items = {"id": {}, "status": {}}
    message = _object({"type": {"const": "message"}, "role": {"enum": ["user", "assistant", "system", "developer"]},
                       "content": {"anyOf": [{"type": "string"}, parts]}, "phase": {}, **metadata_of_items},
                      ("role", "content"))
    call = _object({"type": {"const": "function_call"}, "call_id": {"type": "string"}, "name": {"type": "string"},
                    "arguments": {"type": "string"}, **metadata_of_items}, ("type", "call_id", "name", "arguments"))
    call_output = _object({"type": {"const": "function_call_output"}, "call_id": {"type": "string", "minLength": 1},
                           "output": {"anyOf": [{"type": "string"}, parts]}, **metadata_of_items},
                          ("type", "call_id", "output"))
    variable = {"anyOf": [{"type": ["string", "number", "boolean"]}, _ref("ResponsesInputText"),
                          _ref("ResponsesInputImage"), _ref("ResponsesInputFile")]}
    unversioned = {"type": "string", "pattern": f"^{_KEY}$"}
    prompt = _object(
        {"id": {"type": ["string", "null"], "pattern": _REFERENCE,
                "description": "The prompt's id, slug or external id (`pmpt_...`); `id@version` when `version` is "
                               "not given.", "examples": ["support-reply", "summarize@latest"]},
         "prompt_id": {"type": ["string", "null"], "pattern": _REFERENCE,
                       "description": "Another spelling of `id` (some of OpenAI's examples use it)."},
         "version": {"anyOf": [{"type": "string", "pattern": _VERSION}, {"type": "integer", "minimum": 1,
                                                                         "maximum": _MAX_VERSION}, _NULL],
                     "description": "A version number, `latest` or a label; default: the published version."},
         "variables": _nullable({"type": "object", "additionalProperties": variable})},
        anyOf=[_string_given("id"), _string_given("prompt_id")],
        allOf=[{"not": _string_given("id", "prompt_id")},
               {"if": {"required": ["version"], "properties": {"version": {"type": ["string", "integer"]}}},
                "then": {"properties": {"id": {"anyOf": [unversioned, _NULL]},
                                        "prompt_id": {"anyOf": [unversioned, _NULL]}}}}])
    function_tool = _object({"type": {"const": "function"}, "name": {"type": "string", "pattern": _NAME},
                             "description": _nullable({"type": "string"}), "parameters": _nullable({"type": "object"}),
                             "strict": _nullable({"type": "boolean"})}, ("type", "name"))
    text_format = {"anyOf": [
        _object({"type": {"enum": ["text", "json_object"]}}, ("type",)),
        _object({"type": {"const": "json_schema"}, "name": {"type": "string", "pattern": _NAME},
                 "schema": {"type": "object"}, "description": _nullable({"type": "string"}),
                 "strict": _nullable({"type": "boolean"})}, ("type", "name", "schema")),
        _NULL]}
    string = _nullable({"type": "string"})
    request = _object({
        "prompt": _ref("ResponsesPrompt"),
        "model": string,
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"anyOf": [
            _ref("ResponsesInputMessage"), _ref("ResponsesFunctionCall"), _ref("ResponsesFunctionCallOutput")]}},
            _NULL]},
        "instructions": string,
        "stream": _nullable({"type": "boolean"}),
        "stream_options": _nullable(_object({"include_obfuscation": _nullable({"type": "boolean"})},
                                            description="Accepted; cuecard adds no obfuscation.")),
        "temperature": _nullable({"type": "number", "minimum": 0, "maximum": 2}),
        "top_p": _nullable({"type": "number", "minimum": 0, "maximum": 1}),
        "max_output_tokens": _nullable({"type": "integer", "minimum": 1}),
        "tools": _nullable({"type": "array", "maxItems": 128, "items": _ref("ResponsesFunctionTool")}),
        "tool_choice": {"anyOf": [{"enum": ["none", "auto", "required"]},
                                  _object({"type": {"const": "function"}, "name": {"type": "string"}},
                                          ("type", "name")), _NULL]},
        "text": _nullable(_object({"format": text_format,
                                   "verbosity": _nullable({"enum": ["low", "medium", "high"]})})),
        "parallel_tool_calls": _nullable({"type": "boolean"}),
        "reasoning": _nullable({"type": "object", "properties": {"effort": string},
                                "additionalProperties": _NULL,
                                "description": "`effort` becomes the chat call's `reasoning_effort`."}),
        "metadata": _nullable({"type": "object", "maxProperties": 16, "additionalProperties": {"type": "string"},
                               "description": "Echoed in the answer."}),
        "user": string, "safety_identifier": string, "prompt_cache_key": string, "service_tier": string,
        "store": {"anyOf": [{"const": False}, _NULL], "description": "cuecard keeps no responses."},
        "background": {"anyOf": [{"const": False}, _NULL]},
        "truncation": {"anyOf": [{"const": "disabled"}, _NULL]},
        "include": {"anyOf": [{"type": "array", "maxItems": 0}, _NULL]},
        **{name: _NULL for name in ("previous_response_id", "conversation", "max_tool_calls", "top_logprobs",
                                    "context_management", "access_programs", "background_options", "image",
                                    "moderation", "prompt_cache_options", "prompt_cache_retention")},
    }, ("prompt",), allOf=[{"if": {"required": ["stream_options"],
                                   "properties": {"stream_options": {"type": "object"}}},
                            "then": {"required": ["stream"], "properties": {"stream": {"const": True}}}}],
        description="OpenAI's Responses request with a stored prompt. Fields cuecard cannot honour take only "
                    "null (or the one value it can: `store: false`, `background: false`, `truncation: "
                    "\"disabled\"`, an empty `include`).")
    return {
        "ResponsesRequest": request, "ResponsesPrompt": prompt, "ResponsesInputText": text,
        "ResponsesOutputText": output_text, "ResponsesRefusal": refusal, "ResponsesInputImage": image,
        "ResponsesInputFile": file, "ResponsesInputMessage": message, "ResponsesFunctionCall": call,
        "ResponsesFunctionCallOutput": call_output, "ResponsesFunctionTool": function_tool,
    }


def _answer_schemas() -> dict[str, Any]:
    def closed(properties: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": properties, "required": list(properties)}

    status = {"enum": ["in_progress", "completed", "incomplete"]}
    output_text = closed({"type": {"const": "output_text"}, "text": {"type": "string"},
                          "annotations": {"type": "array"}, "logprobs": {"type": "array"}})
    message = closed({"id": {"type": "string"}, "type": {"const": "message"}, "role": {"const": "assistant"},
                      "status": status, "content": {"type": "array", "items": {"anyOf": [
                          output_text, closed({"type": {"const": "refusal"}, "refusal": {"type": "string"}})]}}})
    call = closed({"id": {"type": "string"}, "type": {"const": "function_call"}, "status": status,
                   "call_id": {"type": "string"}, "name": {"type": "string"}, "arguments": {"type": "string"}})
    usage = closed({
        "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"},
        "input_tokens_details": closed({"cached_tokens": {"type": "integer"}, "cache_write_tokens": {"type": "integer"}}),
        "output_tokens_details": closed({"reasoning_tokens": {"type": "integer"}})})
    number = _nullable({"type": "number"})
    response = {
        "type": "object",
        "required": ["id", "object", "created_at", "status", "model", "output", "parallel_tool_calls", "tool_choice",
                     "tools", "prompt", "error", "incomplete_details", "usage"],
        "properties": {
            "id": {"type": "string", "pattern": "^resp_"}, "object": {"const": "response"},
            "created_at": {"type": "integer"}, "completed_at": {"type": "integer"},
            "status": {"enum": ["in_progress", "completed", "incomplete", "failed"]},
            "model": {"type": "string"}, "output": {"type": "array", "items": {"anyOf": [message, call]}},
            "parallel_tool_calls": {"type": "boolean"}, "tool_choice": {}, "tools": {"type": "array"},
            "prompt": closed({"id": {"type": "string"}, "version": {"type": "string"}, "variables": {"type": "object"}}),
            "error": _nullable(closed({"code": {"type": "string"}, "message": {"type": "string"}})),
            "incomplete_details": _nullable(closed({"reason": {"enum": ["max_output_tokens", "content_filter"]}})),
            "usage": _nullable(usage), "temperature": number, "top_p": number,
            "max_output_tokens": _nullable({"type": "integer"}), "instructions": _nullable({"type": "string"}),
            "metadata": {"type": "object"}, "store": {"const": False}, "background": {"const": False},
            "previous_response_id": _NULL, "text": {"type": "object"}, "truncation": {"const": "disabled"},
        },
        "description": "OpenAI's Response object; `prompt` echoes the id sent, the version that served and the "
                       "variables (numbers and booleans as text).",
    }
    event = {
        "type": "object", "required": ["data"],
        "properties": {
            "event": {"type": "string", "description": "The event's type: `response.created`, `response.in_progress`, "
                      "`response.output_item.added`, `response.content_part.added`, `response.output_text.delta`, "
                      "`response.function_call_arguments.delta`, their `.done` events, and last "
                      "`response.completed`, `response.incomplete` or `response.failed`."},
            "data": {"type": "string", "description": "The event as JSON: `type`, `sequence_number` (from 0, one "
                                                      "more each event) and its fields."},
        },
        "description": "A server-sent event of a streamed Response; comments (`: keep-alive`) come between them "
                       "while the provider is silent.",
    }
    return {"Response": response, "ResponseEvent": event}


def responses_schemas() -> dict[str, Any]:
    """The component schemas the operation refers to."""
    return {**_request_schemas(), **_answer_schemas()}


def responses_paths(prefix: str = "/v1") -> dict[str, Any]:
    """`{"/v1/responses": {"post": ...}}`."""
    operation = _operation(RESPONSES_OPERATION, PATH)
    operation["requestBody"]["content"]["application/json"]["examples"] = {
        "stored prompt": {"value": {"model": "mock-1", "prompt": {"id": "support-reply", "version": "2", "variables": {
            "product": "Acme", "tone": "warm", "question": "Where is my order?"}}}},
    }
    operation["responses"]["200"]["content"]["text/event-stream"] = {"schema": _ref("ResponseEvent")}
    return {prefix + PATH: {"post": operation}}


def add_responses_document(spec: dict[str, Any], *, served: bool) -> dict[str, Any]:
    """`spec` with the route and its schemas when the app serves it (it does when completions are set up)."""
    if served:
        spec["paths"].update(copy.deepcopy(responses_paths()))
        spec["components"]["schemas"].update(responses_schemas())
    return spec


__all__ = ["RESPONSES_OPERATION", "add_responses_document", "responses_paths", "responses_schemas"]
