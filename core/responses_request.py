"""A `POST /v1/responses` body read into what a chat-completions call of a stored prompt needs.

Validation only: every field OpenAI's Responses API has is either translated (`prompt`, `input`,
`instructions`, `model`, `temperature`, `top_p`, `max_output_tokens`, `tools`, `tool_choice`, `text`,
`parallel_tool_calls`, `reasoning.effort`, `user`, `safety_identifier`, `prompt_cache_key`,
`service_tier`), echoed (`metadata`), accepted with the one value cuecard can honour (`store: false`,
`background: false`, `truncation: "disabled"`, an empty `include`), or refused with a 400
(`unsupported_parameter`) naming it. A field the API does not have is a 400 (`unknown_parameter`).
Nothing is dropped silently. Errors name the Responses field (`prompt.variables.photo`,
`input[2].content[0].file_id`), never the chat one it becomes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import InvalidRequest
from core.hyperparameters import _describe, _flag, validate_parameters
from core.references import parse_reference
from core.template_values import text_value

# Responses fields cuecard cannot honour, with the one value each may take (None: only absent or null).
_REFUSED: dict[str, tuple[Any, ...]] = {
    "store": (False,),
    "background": (False,),
    "previous_response_id": (),
    "conversation": (),
    "truncation": ("disabled",),
    "include": ([],),
    "max_tool_calls": (),
    "top_logprobs": (),
    "context_management": (),
    "access_programs": (),
    "background_options": (),
    "image": (),
    "moderation": (),
    "prompt_cache_options": (),
    "prompt_cache_retention": (),
}
_WHY_REFUSED = {
    "store": "cuecard keeps no responses; send store: false or leave it out",
    "previous_response_id": "cuecard keeps no responses; send the earlier turns in input instead",
    "conversation": "cuecard keeps no conversations; send the earlier turns in input instead",
    "background": "cuecard runs no background responses",
}
# Passed through to the chat call under the same name, each a string.
_PASSED_STRINGS = ("user", "safety_identifier", "prompt_cache_key", "service_tier")
_TRANSLATED = ("prompt", "model", "input", "instructions", "stream", "stream_options", "temperature", "top_p",
               "max_output_tokens", "tools", "tool_choice", "text", "parallel_tool_calls", "reasoning", "metadata")
KNOWN_FIELDS = frozenset((*_REFUSED, *_PASSED_STRINGS, *_TRANSLATED))
_ROLES = ("user", "assistant", "system", "developer")
_IMAGE_DETAILS = {"low": "low", "high": "high", "auto": "auto", "original": "high"}
_MAX_METADATA = 16


def unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"{param} is not supported: {why}.", param=param, code="unsupported_parameter")


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """A valid Responses body. `variables` are what the template renders with: text, numbers and booleans as
    sent, and for each image or file variable a placeholder string that `parts` maps to its chat content part."""

    reference: str  # `key`, `key@N`, `key@latest` or `key@label`
    prompt_id: str  # as sent, for the echo
    variables: dict[str, Any]
    echoed_variables: dict[str, Any]
    parts: dict[str, dict[str, Any]]
    version_given: bool
    instructions: str | None
    input_messages: list[dict[str, Any]]
    overrides: dict[str, Any]  # chat-completions keys; `max_output_tokens` is under "max_tokens"
    stream: bool
    metadata: dict[str, str] = field(default_factory=dict)


def parse_responses_request(body: Any, *, placeholder_token: str | None = None) -> ResponsesRequest:
    """Checks a `POST /v1/responses` body and translates its parts; raises InvalidRequest (400)."""
    if not isinstance(body, Mapping):
        raise InvalidRequest(f"The request body must be a JSON object; got {_describe(body)}.")
    for key, value in body.items():
        if key not in KNOWN_FIELDS:
            raise InvalidRequest(f"Unknown parameter: {key}.", param=key, code="unknown_parameter")
        if key in _REFUSED and value is not None and not any(value == allowed and type(value) is type(allowed)
                                                             for allowed in _REFUSED[key]):
            raise unsupported(key, _WHY_REFUSED.get(key, "cuecard runs a stored prompt as one chat completion"))
    stream = _flag(body, "stream") or False
    if body.get("stream_options") is not None:
        _stream_options(body["stream_options"], stream)
    prompt = body.get("prompt")
    if not isinstance(prompt, Mapping):
        raise InvalidRequest("prompt is required: cuecard answers with a stored prompt, {\"id\": ..., \"version\": ..., "
                             f"\"variables\": ...}}; got {_describe(prompt)}.", param="prompt")
    prompt_id, reference, version_given = _reference(prompt)
    token = placeholder_token or secrets.token_hex(8)
    variables, echoed, parts = _variables(prompt.get("variables"), token)
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest(f"instructions must be a string; got {_describe(instructions)}.", param="instructions")
    return ResponsesRequest(
        reference=reference, prompt_id=prompt_id, variables=variables, echoed_variables=echoed, parts=parts,
        version_given=version_given, instructions=instructions, input_messages=input_messages(body.get("input")),
        overrides=_overrides(body), stream=stream, metadata=_metadata(body.get("metadata")))


# --- prompt ------------------------------------------------------------------------------------------


def _reference(prompt: Mapping[str, Any]) -> tuple[str, str, bool]:
    """(id as sent, the reference to resolve, whether a version was given)."""
    for field_name in prompt:
        if field_name not in ("id", "prompt_id", "version", "variables"):
            raise InvalidRequest(f"Unknown parameter: prompt.{field_name}.", param=f"prompt.{field_name}",
                                 code="unknown_parameter")
    if prompt.get("id") is not None and prompt.get("prompt_id") is not None:
        raise InvalidRequest("Send prompt.id or prompt.prompt_id, not both.", param="prompt.prompt_id")
    name = "prompt_id" if prompt.get("id") is None and prompt.get("prompt_id") is not None else "id"
    given = prompt.get(name)
    if not isinstance(given, str) or not given:
        raise InvalidRequest(f"prompt.id must be a non-empty string: a prompt's id, slug or external id (pmpt_...); "
                             f"got {_describe(given)}.", param=f"prompt.{name}")
    key = given
    parse_reference(key, param=f"prompt.{name}")
    version = prompt.get("version")
    if version is None:
        return key, key, False
    if "@" in key:
        raise InvalidRequest(f"prompt.{name} already names a version ({key}); leave out prompt.version, or the @ "
                             "part of the id.", param="prompt.version", code="invalid_prompt_reference")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str) or not version:
        raise InvalidRequest("prompt.version must be a non-empty string: a version number, \"latest\" or a label; "
                             f"got {_describe(version)}.", param="prompt.version", code="invalid_prompt_reference")
    reference = f"{key}@{version}"
    parse_reference(reference, param="prompt.version")
    return key, reference, True


def _variables(value: Any, token: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    if value is None:
        return {}, {}, {}
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"prompt.variables must be an object; got {_describe(value)}.", param="prompt.variables")
    variables: dict[str, Any] = {}
    echoed: dict[str, Any] = {}
    parts: dict[str, dict[str, Any]] = {}
    for name, item in value.items():
        param = f"prompt.variables.{name}"
        if isinstance(item, str):
            variables[name] = echoed[name] = item
        elif isinstance(item, bool | int | float):
            variables[name], echoed[name] = item, text_value(item)
        elif isinstance(item, Mapping) and item.get("type") == "input_text":
            variables[name] = _text_part(item, param)["text"]
            echoed[name] = dict(item)
        elif isinstance(item, Mapping) and item.get("type") in ("input_image", "input_file"):
            placeholder = f"cuecard_part_{token}_{len(parts)}"
            parts[placeholder] = content_part(item, param)
            variables[name], echoed[name] = placeholder, dict(item)
        else:
            raise InvalidRequest(f"{param} must be a string, a number, a boolean, or an input_text, input_image or "
                                 f"input_file object; got {_describe(item)}.", param=param)
    return variables, echoed, parts


# --- input -------------------------------------------------------------------------------------------


def input_messages(value: Any) -> list[dict[str, Any]]:
    """`input` as chat messages: a string is one user message; a list's items are translated in order."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise InvalidRequest(f"input must be a string or an array of items; got {_describe(value)}.", param="input")
    messages: list[dict[str, Any]] = []
    for param, item in _objects(value, "input"):
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(item, param))
        elif kind == "function_call":
            _add_tool_call(messages, _function_call(item, param))
        elif kind == "function_call_output":
            messages.append(_function_call_output(item, param))
        else:
            raise unsupported(f"{param}.type", f"cuecard translates message, function_call and function_call_output "
                                               f"items to a chat completion, not {_describe(kind)}")
    return messages


def _message(item: Mapping[str, Any], param: str) -> dict[str, Any]:
    _known_keys(item, ("type", "role", "content", "id", "status", "phase"), param)
    role = item.get("role")
    if role not in _ROLES:
        raise InvalidRequest(f"{param}.role must be one of {', '.join(_ROLES)}; got {_describe(role)}.",
                             param=f"{param}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(f"{param}.content must be a string or an array of content parts; got "
                             f"{_describe(content)}.", param=f"{param}.content")
    return {"role": role, "content": [content_part(part, f"{param}.content[{index}]")
                                      for index, part in enumerate(content)]}


def _function_call(item: Mapping[str, Any], param: str) -> dict[str, Any]:
    _known_keys(item, ("type", "id", "call_id", "name", "arguments", "status"), param)
    for key in ("call_id", "name", "arguments"):
        if not isinstance(item.get(key), str):
            raise InvalidRequest(f"{param}.{key} must be a string; got {_describe(item.get(key))}.",
                                 param=f"{param}.{key}")
    return {"id": item["call_id"], "type": "function", "function": {"name": item["name"], "arguments": item["arguments"]}}


def _add_tool_call(messages: list[dict[str, Any]], call: dict[str, Any]) -> None:
    """A function call joins the assistant message just before it (its text, or earlier calls), else starts one."""
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_call_output(item: Mapping[str, Any], param: str) -> dict[str, Any]:
    _known_keys(item, ("type", "id", "call_id", "output", "status"), param)
    call_id, output = item.get("call_id"), item.get("output")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{param}.call_id must be the call_id of the function_call it answers; got "
                             f"{_describe(call_id)}.", param=f"{param}.call_id")
    if isinstance(output, list):
        output = [content_part(part, f"{param}.output[{index}]") for index, part in enumerate(output)]
    elif not isinstance(output, str):
        raise InvalidRequest(f"{param}.output must be a string or an array of content parts; got "
                             f"{_describe(output)}.", param=f"{param}.output")
    return {"role": "tool", "tool_call_id": call_id, "content": output}


# --- content parts -----------------------------------------------------------------------------------


def content_part(part: Any, param: str) -> dict[str, Any]:
    """A Responses content part (input_text, input_image, input_file, output_text, refusal) as a chat one."""
    if not isinstance(part, Mapping):
        raise InvalidRequest(f"{param} must be a content part object; got {_describe(part)}.", param=param)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return _text_part(part, param)
    if kind == "refusal":
        _known_keys(part, ("type", "refusal"), param)
        return {"type": "refusal", "refusal": _string(part, "refusal", param)}
    if kind == "input_image":
        return _image_part(part, param)
    if kind == "input_file":
        return _file_part(part, param)
    raise unsupported(f"{param}.type", f"content parts are input_text, input_image, input_file, output_text or "
                                       f"refusal; got {_describe(kind)}")


def _text_part(part: Mapping[str, Any], param: str) -> dict[str, Any]:
    # An output_text part of an earlier answer sent back as input: its annotations and logprobs describe the text.
    known = ("type", "text", "annotations", "logprobs") if part.get("type") == "output_text" else ("type", "text")
    _known_keys(part, known, param)
    return {"type": "text", "text": _string(part, "text", param)}


def _image_part(part: Mapping[str, Any], param: str) -> dict[str, Any]:
    _known_keys(part, ("type", "image_url", "file_id", "detail"), param)
    if part.get("file_id") is not None:
        raise unsupported(f"{param}.file_id", "a chat completion takes an image as image_url (an https or data: URL), "
                                              "not an OpenAI file id")
    url = _string(part, "image_url", param)
    image: dict[str, Any] = {"url": url}
    detail = part.get("detail")
    if detail is not None:
        if not isinstance(detail, str) or detail not in _IMAGE_DETAILS:
            raise InvalidRequest(f"{param}.detail must be one of low, high, auto or original; got {_describe(detail)}.",
                                 param=f"{param}.detail")
        image["detail"] = _IMAGE_DETAILS[detail]
    return {"type": "image_url", "image_url": image}


def _file_part(part: Mapping[str, Any], param: str) -> dict[str, Any]:
    _known_keys(part, ("type", "file_id", "file_data", "filename", "file_url", "detail"), param)
    if part.get("file_url") is not None:
        raise unsupported(f"{param}.file_url", "a chat completion takes a file as file_data (a data: URL) or file_id")
    if part.get("detail") is not None:
        raise unsupported(f"{param}.detail", "a chat completion's file part has no detail")
    file: dict[str, Any] = {}
    if part.get("file_id") is not None:
        file["file_id"] = _string(part, "file_id", param)
    if part.get("file_data") is not None:
        file["file_data"] = _string(part, "file_data", param)
    if part.get("filename") is not None:
        file["filename"] = _string(part, "filename", param)
    if "file_id" not in file and "file_data" not in file:
        raise InvalidRequest(f"{param} needs file_id or file_data.", param=param)
    return {"type": "file", "file": file}


def _string(obj: Mapping[str, Any], key: str, param: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(f"{param}.{key} must be a string; got {_describe(value)}.", param=f"{param}.{key}")
    return value


def _objects(value: list[Any], name: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each item of the array `name` with its param (`input[2]`); an item that is not an object is a 400."""
    for index, item in enumerate(value):
        param = f"{name}[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidRequest(f"{param} must be an object; got {_describe(item)}.", param=param)
        yield param, item


def _known_keys(obj: Mapping[str, Any], known: tuple[str, ...], param: str) -> None:
    for key in obj:
        if key not in known:
            raise unsupported(f"{param}.{key}", f"cuecard translates only {', '.join(known)} here")


# --- parameters --------------------------------------------------------------------------------------

# Where a chat parameter's error is reported: the Responses field it came from.
_CHAT_PARAMS = (("max_tokens", "max_output_tokens"), ("response_format.json_schema", "text.format"),
                ("response_format", "text.format"), ("tool_choice.function", "tool_choice"),
                ("reasoning_effort", "reasoning.effort"))


def _overrides(body: Mapping[str, Any]) -> dict[str, Any]:
    """The chat-completions parameters the request sets; checked with OpenAI's bounds."""
    chat: dict[str, Any] = {}
    for key in ("model", "temperature", "top_p", "parallel_tool_calls", *_PASSED_STRINGS):
        if body.get(key) is not None:
            chat[key] = body[key]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if body.get("tools") is not None:
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("text") is not None:
        chat.update(_text(body["text"]))
    if body.get("reasoning") is not None:
        chat.update(_reasoning(body["reasoning"]))
    for key in _PASSED_STRINGS:
        if key in chat and not isinstance(chat[key], str):
            raise InvalidRequest(f"{key} must be a string; got {_describe(chat[key])}.", param=key)
    try:
        validate_parameters(chat)
    except InvalidRequest as exc:
        raise _in_responses_terms(exc) from None
    return chat


def _in_responses_terms(exc: InvalidRequest) -> InvalidRequest:
    param = exc.param or ""
    for chat_name, responses_name in _CHAT_PARAMS:
        if param == chat_name or param.startswith((chat_name + ".", chat_name + "[")):
            param = responses_name + param[len(chat_name):]
            break
    if param.startswith("tools[") and ".function." in param:
        param = param.replace(".function.", ".", 1)
    message = exc.message.replace(exc.param, param, 1) if exc.param else exc.message
    return InvalidRequest(message, param=param or None, code=exc.code)


def _tools(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidRequest(f"tools must be an array; got {_describe(value)}.", param="tools")
    tools = []
    for param, tool in _objects(value, "tools"):
        if tool.get("type") != "function":
            raise unsupported(f"{param}.type", f"cuecard runs function tools only (a chat completion has no hosted "
                                               f"tools); got {_describe(tool.get('type'))}")
        _known_keys(tool, ("type", "name", "description", "parameters", "strict"), param)
        function = {key: tool[key] for key in ("name", "description", "parameters", "strict")
                    if tool.get(key) is not None}
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and value.get("type") == "function":
        _known_keys(value, ("type", "name"), "tool_choice")
        return {"type": "function", "function": {key: value[key] for key in ("name",) if value.get(key) is not None}}
    if isinstance(value, Mapping):
        raise unsupported("tool_choice.type", f"cuecard names function tools only; got {_describe(value.get('type'))}")
    raise InvalidRequest(f"tool_choice must be none, auto, required or {{\"type\": \"function\", \"name\": ...}}; got "
                         f"{_describe(value)}.", param="tool_choice")


def _text(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"text must be an object; got {_describe(value)}.", param="text")
    _known_keys(value, ("format", "verbosity"), "text")
    chat: dict[str, Any] = {}
    if value.get("verbosity") is not None:
        if value["verbosity"] not in ("low", "medium", "high"):
            raise InvalidRequest(f"text.verbosity must be low, medium or high; got {_describe(value['verbosity'])}.",
                                 param="text.verbosity")
        chat["verbosity"] = value["verbosity"]
    fmt = value.get("format")
    if fmt is None:
        return chat
    if not isinstance(fmt, Mapping) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise InvalidRequest("text.format must be an object whose type is text, json_object or json_schema; got "
                             f"{_describe(fmt)}.", param="text.format")
    if fmt["type"] != "json_schema":
        _known_keys(fmt, ("type",), "text.format")
        chat["response_format"] = {"type": fmt["type"]}
        return chat
    _known_keys(fmt, ("type", "name", "schema", "description", "strict"), "text.format")
    for key in ("name", "schema"):
        if fmt.get(key) is None:
            raise InvalidRequest(f"text.format.{key} is required when type is json_schema.", param=f"text.format.{key}")
    chat["response_format"] = {"type": "json_schema", "json_schema": {
        key: fmt[key] for key in ("name", "description", "schema", "strict") if fmt.get(key) is not None}}
    return chat


def _reasoning(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"reasoning must be an object; got {_describe(value)}.", param="reasoning")
    for key, item in value.items():
        if key != "effort" and item is not None:
            raise unsupported(f"reasoning.{key}", "a chat completion takes reasoning.effort only")
    effort = value.get("effort")
    if effort is None:
        return {}
    if not isinstance(effort, str):
        raise InvalidRequest(f"reasoning.effort must be a string; got {_describe(effort)}.", param="reasoning.effort")
    return {"reasoning_effort": effort}


def _stream_options(value: Any, stream: bool) -> None:
    if not stream:
        raise InvalidRequest("stream_options is only allowed when stream is true.", param="stream_options")
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"stream_options must be an object; got {_describe(value)}.", param="stream_options")
    _known_keys(value, ("include_obfuscation",), "stream_options")
    if value.get("include_obfuscation") is not None and not isinstance(value["include_obfuscation"], bool):
        raise InvalidRequest("stream_options.include_obfuscation must be a boolean.",
                             param="stream_options.include_obfuscation")


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > _MAX_METADATA:
        raise InvalidRequest(f"metadata must be an object of at most {_MAX_METADATA} string values.", param="metadata")
    for key, item in value.items():
        if not isinstance(item, str):
            raise InvalidRequest(f"metadata.{key} must be a string; got {_describe(item)}.", param=f"metadata.{key}")
    return dict(value)

