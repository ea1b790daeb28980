"""OpenAI chat completions <-> Anthropic Messages API. Pure functions, no I/O.

Request: `to_anthropic_request`. Answer: `to_openai_completion`. Stream: `AnthropicStreamTranslator`,
fed one SSE event at a time, gives the OpenAI chunks that event stands for.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from core.errors import BadGateway, CuecardError, InvalidRequest
from infra.providers import openai_shapes as oa
from infra.providers import upstream_errors

PROVIDER = "anthropic"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI callers often leave it out

# Anthropic stop_reason -> OpenAI finish_reason. Anything not listed is "stop": never a non-OpenAI value.
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_PASSTHROUGH_PARAMS = ("temperature", "top_p", "top_k", "thinking")
_CACHE_CONTROL = "cache_control"


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason or "", "stop")


# --- request -------------------------------------------------------------------------------------


def to_anthropic_request(body: Mapping[str, Any], *, stream: bool = False) -> dict[str, Any]:
    """The `/v1/messages` body for an OpenAI chat-completions body. Raises InvalidRequest."""
    model = body.get("model")
    if not model or not isinstance(model, str):
        raise InvalidRequest("A model is required.", param="model")
    oa.check_single_choice(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty array.", param="messages")

    system_blocks: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise InvalidRequest("A message must be an object.", param=param)
        role = message.get("role")
        if role in ("system", "developer"):
            system_blocks.extend(_system_blocks(message.get("content"), param=f"{param}.content"))
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), param=f"{param}.content"))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, param=param))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, param=param)])
        else:
            raise InvalidRequest(f"Message role {role!r} is not supported for Anthropic.", param=f"{param}.role")

    request: dict[str, Any] = {"model": model, "messages": turns,
                               "max_tokens": oa.max_tokens(body) or DEFAULT_MAX_TOKENS}
    if system_blocks:
        if any(_CACHE_CONTROL in block for block in system_blocks):
            request["system"] = system_blocks
        else:
            request["system"] = "\n\n".join(block["text"] for block in system_blocks)
    for name in _PASSTHROUGH_PARAMS:
        if body.get(name) is not None:
            request[name] = oa.plain(body[name])
    stops = oa.stop_sequences(body)
    if stops:
        request["stop_sequences"] = stops
    if body.get("user"):
        request["metadata"] = {"user_id": str(body["user"])}
    tools = oa.function_tools(body)
    if tools:
        request["tools"] = [_tool(function) for function in tools]
        choice = _tool_choice(body)
        if choice is not None:
            request["tool_choice"] = choice
    if stream:
        request["stream"] = True
    return request


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Adds blocks as a turn, merged into the previous turn of the same role (tool results + user text)."""
    if not blocks:  # an assistant turn with neither text nor tool calls: the API rejects empty turns
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": list(blocks)})


def _with_cache_control(block: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    if part.get(_CACHE_CONTROL) is not None:
        block[_CACHE_CONTROL] = oa.plain(part[_CACHE_CONTROL])
    return block


def _system_blocks(content: Any, *, param: str) -> list[dict[str, Any]]:
    blocks = []
    for index, part in enumerate(oa.content_parts(content, param=param)):
        if part.get("type", "text") != "text" or not isinstance(part.get("text"), str):
            raise InvalidRequest("A system message may only hold text.", param=f"{param}[{index}]")
        if part["text"]:
            blocks.append(_with_cache_control({"type": "text", "text": part["text"]}, part))
    return blocks


def _user_blocks(content: Any, *, param: str) -> list[dict[str, Any]]:
    blocks = []
    for index, part in enumerate(oa.content_parts(content, param=param)):
        part_param = f"{param}[{index}]"
        kind = part.get("type", "text")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise InvalidRequest("A text part needs a text string.", param=part_param)
            blocks.append(_with_cache_control({"type": "text", "text": part["text"]}, part))
        elif kind == "image_url":
            blocks.append(_with_cache_control(_image(part, param=part_param), part))
        else:
            raise InvalidRequest(f"Content part type {kind!r} is not supported for Anthropic.", param=part_param)
    return blocks


def _image(part: Mapping[str, Any], *, param: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequest("An image_url part needs a url.", param=param)
    if url.startswith("data:"):
        media_type, data = oa.parse_data_url(url, param=param)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if oa.is_http_url(url):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest("An image URL must be an http(s) URL or a base64 data URL.", param=param)


def _assistant_blocks(message: Mapping[str, Any], *, param: str) -> list[dict[str, Any]]:
    blocks = []
    for index, part in enumerate(oa.content_parts(message.get("content"), param=f"{param}.content")):
        kind = part.get("type", "text")
        text = part.get("refusal") if kind == "refusal" else part.get("text")
        if kind not in ("text", "refusal") or not isinstance(text, str):
            raise InvalidRequest("An assistant message may only hold text.", param=f"{param}.content[{index}]")
        if text:  # Anthropic rejects empty text blocks, and an assistant turn with tool calls often has ""
            blocks.append(_with_cache_control({"type": "text", "text": text}, part))
    for index, call in enumerate(message.get("tool_calls") or ()):
        call_param = f"{param}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not function.get("name") or not call.get("id"):
            raise InvalidRequest("A tool call needs an id and a function name.", param=call_param)
        blocks.append({
            "type": "tool_use",
            "id": str(call["id"]),
            "name": str(function["name"]),
            "input": oa.tool_arguments(function.get("arguments"), param=f"{call_param}.function.arguments"),
        })
    return blocks


def _tool_result(message: Mapping[str, Any], *, param: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not call_id:
        raise InvalidRequest("A tool message needs a tool_call_id.", param=f"{param}.tool_call_id")
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": str(call_id)}
    if isinstance(content, str) or content is None:
        result["content"] = content or ""
    else:
        result["content"] = _user_blocks(content, param=f"{param}.content")
    return result


def _tool(function: Mapping[str, Any]) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        tool["description"] = function["description"]
    tool["input_schema"] = oa.plain(function.get("parameters") or {"type": "object", "properties": {}})
    return tool


def _tool_choice(body: Mapping[str, Any]) -> dict[str, Any] | None:
    choice = oa.tool_choice(body)
    parallel = body.get("parallel_tool_calls")
    if choice is None:
        return {"type": "auto", "disable_parallel_tool_use": True} if parallel is False else None
    kind, name = choice
    if kind == "none":
        return {"type": "none"}
    result: dict[str, Any] = {"auto": {"type": "auto"}, "required": {"type": "any"}}.get(kind) \
        or {"type": "tool", "name": name}
    if parallel is False:
        result["disable_parallel_tool_use"] = True
    return result


# --- answer ------------------------------------------------------------------------------------


def completion_id(message_id: str | None) -> str:
    return f"chatcmpl-{message_id}" if message_id else "chatcmpl-anthropic"


def openai_usage(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenAI usage from Anthropic's: cached input counts as prompt tokens, as OpenAI counts it."""
    usage = usage or {}
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cache_read + cache_write
    return oa.usage(prompt, int(usage.get("output_tokens") or 0), cached_tokens=cache_read)


def to_openai_completion(response: Mapping[str, Any], *, model: str | None = None,
                         created: int | None = None) -> dict[str, Any]:
    """A `chat.completion` for an Anthropic Message. Raises BadGateway if it is not one."""
    if isinstance(response, Mapping) and response.get("type") == "error":
        raise stream_error(response)
    content = response.get("content") if isinstance(response, Mapping) else None
    if not isinstance(content, list):
        raise upstream_errors.malformed(PROVIDER, "a message without content")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            tool_calls.append(oa.tool_call(str(block.get("id")), str(block.get("name")), block.get("input")))
        # thinking, redacted_thinking and server-tool blocks have no OpenAI counterpart
    return oa.completion(
        id=completion_id(response.get("id")),
        created=int(time.time()) if created is None else created,
        model=str(response.get("model") or model or ""),
        text="".join(texts) if texts else None,
        tool_calls=tool_calls,
        finish_reason=finish_reason(response.get("stop_reason")),
        usage=openai_usage(response.get("usage")),
    )


def stream_error(data: Any, *, secret: str | None = None) -> CuecardError:
    """The core error for an in-stream `error` event: the HTTP status was 200, so the error type says which."""
    return upstream_errors.from_frame(data, provider=PROVIDER, secret=secret)


# --- stream ------------------------------------------------------------------------------------


class AnthropicStreamTranslator:
    """Turns Anthropic stream events into OpenAI chunks, one event at a time.

    `feed(event, data)` returns the chunks for that event (often none); `finish()` checks the stream
    ended properly. An `error` event raises the core error it stands for.
    """

    def __init__(self, *, model: str, include_usage: bool = False, created: int | None = None,
                 secret: str | None = None) -> None:
        self._model = model
        self._secret = secret
        self._include_usage = include_usage
        self._created = int(time.time()) if created is None else created
        self._chunks: oa.ChunkBuilder | None = None
        self._tool_index: dict[int, int] = {}  # Anthropic content block index -> OpenAI tool_calls index
        self._usage: dict[str, Any] = {}
        self._finished = False
        self._stopped = False

    @property
    def started(self) -> bool:
        return self._chunks is not None

    @property
    def done(self) -> bool:
        return self._stopped

    def feed(self, event: str | None, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        kind = (data.get("type") if isinstance(data, Mapping) else None) or event
        if kind == "error":
            raise stream_error(data, secret=self._secret)
        if kind == "message_start":
            return self._message_start(data.get("message") or {})
        if kind in ("ping", None) or self._stopped:
            return []
        if self._chunks is None:
            raise upstream_errors.malformed(PROVIDER, f"{kind!r} before message_start")
        if kind == "content_block_start":
            return self._block_start(int(data.get("index") or 0), data.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(int(data.get("index") or 0), data.get("delta") or {})
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            self._stopped = True
            chunks = [] if self._finished else [self._chunks.delta({}, finish_reason="stop")]
            if self._include_usage:
                chunks.append(self._chunks.usage(openai_usage(self._usage)))
            return chunks
        return []  # content_block_stop and event types added later

    def finish(self) -> None:
        """Raises BadGateway when the stream ended before `message_stop`."""
        if not self._stopped:
            raise BadGateway("The provider anthropic ended the stream before the message was complete.")

    def _message_start(self, message: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._usage.update(message.get("usage") or {})
        self._chunks = oa.ChunkBuilder(id=completion_id(message.get("id")), created=self._created,
                                       model=str(message.get("model") or self._model),
                                       include_usage=self._include_usage)
        return [self._chunks.delta({"role": "assistant", "content": ""})]

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[dict[str, Any]]:
        assert self._chunks is not None
        if block.get("type") == "text" and block.get("text"):
            return [self._chunks.delta({"content": block["text"]})]
        if block.get("type") == "tool_use":
            position = len(self._tool_index)
            self._tool_index[index] = position
            return [self._chunks.delta(oa.tool_call_start(position, str(block.get("id")), str(block.get("name"))))]
        return []

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        assert self._chunks is not None
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunks.delta({"content": delta["text"]})]
        if kind == "input_json_delta" and delta.get("partial_json") and index in self._tool_index:
            return [self._chunks.delta(oa.tool_call_arguments(self._tool_index[index], delta["partial_json"]))]
        return []  # thinking_delta, signature_delta, citations_delta

    def _message_delta(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        assert self._chunks is not None
        self._usage.update({key: value for key, value in (data.get("usage") or {}).items() if value is not None})
        stop_reason = (data.get("delta") or {}).get("stop_reason")
        if self._finished or not stop_reason:
            return []
        self._finished = True
        return [self._chunks.delta({}, finish_reason=finish_reason(stop_reason))]
