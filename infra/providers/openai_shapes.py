"""Pure helpers shared by the provider translations: reading OpenAI chat requests, building OpenAI answers.

No I/O. Every adapter that translates to and from a non-OpenAI API builds its `chat.completion`
and `chat.completion.chunk` objects here, so they all have the same shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Mapping, Sequence

from core.errors import InvalidRequest


def plain(value: Any) -> Any:
    """A deep copy made of plain dicts and lists (request bodies may hold read-only mappings)."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


# --- reading the request -----------------------------------------------------------------------

_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*?);base64,(?P<data>.*)$", re.S)


def parse_data_url(url: str, *, param: str) -> tuple[str, str]:
    """(media type, base64 text) of a `data:<media>;base64,<data>` URL; InvalidRequest otherwise."""
    match = _DATA_URL.match(url)
    if not match or not match.group("media"):
        raise InvalidRequest("An image data URL must look like data:<media type>;base64,<data>.", param=param)
    data = match.group("data").strip()
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("The image data URL does not hold valid base64.", param=param) from None
    return match.group("media").lower(), data


def is_http_url(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def content_parts(content: Any, *, param: str) -> list[Mapping[str, Any]]:
    """A message's content as a list of parts: a string becomes one text part, null none."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        parts = []
        for index, part in enumerate(content):
            if isinstance(part, str):
                parts.append({"type": "text", "text": part})
            elif isinstance(part, Mapping):
                parts.append(part)
            else:
                raise InvalidRequest("A content part must be an object.", param=f"{param}[{index}]")
        return parts
    raise InvalidRequest("Message content must be a string, an array of parts or null.", param=param)


def text_only(content: Any, *, param: str) -> str:
    """The text of content that may only hold text parts (system messages, tool results)."""
    texts = []
    for index, part in enumerate(content_parts(content, param=param)):
        if part.get("type") not in ("text", None) or not isinstance(part.get("text"), str):
            raise InvalidRequest("Only text parts are allowed here.", param=f"{param}[{index}]")
        texts.append(part["text"])
    return "".join(texts)


def tool_arguments(arguments: Any, *, param: str) -> dict[str, Any]:
    """An assistant tool call's `arguments` (a JSON text) as an object."""
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, Mapping):
        return plain(arguments)
    if not isinstance(arguments, str):
        raise InvalidRequest("Tool call arguments must be a JSON text.", param=param)
    try:
        value = json.loads(arguments)
    except ValueError:
        raise InvalidRequest("Tool call arguments are not valid JSON.", param=param) from None
    if not isinstance(value, dict):
        raise InvalidRequest("Tool call arguments must be a JSON object.", param=param)
    return value


def function_tools(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The request's function definitions: `tools`, or the legacy `functions` when there are no tools."""
    tools = body.get("tools")
    if tools:
        result = []
        for index, tool in enumerate(tools):
            if not isinstance(tool, Mapping) or tool.get("type", "function") != "function" \
                    or not isinstance(tool.get("function"), Mapping) or not tool["function"].get("name"):
                raise InvalidRequest("Only function tools with a name are supported.", param=f"tools[{index}]")
            result.append(tool["function"])
        return result
    functions = body.get("functions")
    if functions:
        for index, function in enumerate(functions):
            if not isinstance(function, Mapping) or not function.get("name"):
                raise InvalidRequest("A function needs a name.", param=f"functions[{index}]")
        return list(functions)
    return []


def tool_choice(body: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """("auto" | "required" | "none" | "named", name) from `tool_choice` or the legacy `function_call`."""
    choice = body.get("tool_choice")
    if choice is None and body.get("function_call") is not None:
        legacy = body["function_call"]
        choice = legacy if isinstance(legacy, str) else {"type": "function", "function": legacy}
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice in ("auto", "required", "none"):
            return choice, None
        raise InvalidRequest("tool_choice must be auto, required, none or a named function.", param="tool_choice")
    if isinstance(choice, Mapping):
        function = choice.get("function")
        if isinstance(function, Mapping) and function.get("name"):
            return "named", str(function["name"])
    raise InvalidRequest("tool_choice must be auto, required, none or a named function.", param="tool_choice")


def stop_sequences(body: Mapping[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, Sequence) and all(isinstance(item, str) for item in stop):
        return list(stop)
    raise InvalidRequest("stop must be a string or an array of strings.", param="stop")


def max_tokens(body: Mapping[str, Any]) -> int | None:
    """`max_completion_tokens`, else the deprecated `max_tokens` the SDK still sends."""
    value = body.get("max_completion_tokens")
    if value is None:
        value = body.get("max_tokens")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest("max_tokens must be a positive integer.", param="max_tokens")
    return value


def check_single_choice(body: Mapping[str, Any]) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("This provider returns one choice per request: n must be 1.", param="n")


def include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return bool(isinstance(options, Mapping) and options.get("include_usage"))


# --- building the answer -----------------------------------------------------------------------


def usage(prompt_tokens: int, completion_tokens: int, *, cached_tokens: int | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens:
        result["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return result


def tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments if arguments is not None else {},
                                                             ensure_ascii=False, separators=(",", ":"))},
    }


def completion(*, id: str, created: int, model: str, text: str | None, tool_calls: list[dict[str, Any]],
               finish_reason: str, usage: Mapping[str, Any] | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    result: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        result["usage"] = dict(usage)
    return result


class ChunkBuilder:
    """Builds the chunks of one stream: one id, one `created`, one model, `usage: null` when usage is asked for."""

    def __init__(self, *, id: str, created: int, model: str, include_usage: bool) -> None:
        self.id = id
        self.created = created
        self.model = model
        self.include_usage = include_usage

    def _base(self) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}

    def delta(self, delta: Mapping[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk = self._base()
        chunk["choices"] = [{"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish_reason}]
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def usage(self, usage: Mapping[str, Any]) -> dict[str, Any]:
        chunk = self._base()
        chunk["choices"] = []
        chunk["usage"] = dict(usage)
        return chunk


def tool_call_start(index: int, call_id: str, name: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, "id": call_id, "type": "function",
                            "function": {"name": name, "arguments": ""}}]}


def tool_call_arguments(index: int, fragment: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
