"""OpenAI chat completions <-> Amazon Bedrock Converse / ConverseStream. Pure functions, no I/O.

Request: `to_converse_request` (the keyword arguments of `converse` / `converse_stream`). Answer:
`to_openai_completion`. Stream: `ConverseStreamTranslator`, fed one event of the `stream` at a time.
"""

from __future__ import annotations

import base64
import time
from typing import Any, Mapping

from core.errors import BadGateway, InvalidRequest
from infra.providers import openai_shapes as oa

# Converse stopReason -> OpenAI finish_reason. Anything not listed is "stop": never a non-OpenAI value.
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}

IMAGE_FORMATS: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason or "", "stop")


# --- request -------------------------------------------------------------------------------------


def to_converse_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `converse(**kwargs)` / `converse_stream(**kwargs)`. Raises InvalidRequest."""
    model = body.get("model")
    if not model or not isinstance(model, str):
        raise InvalidRequest("A model is required.", param="model")
    oa.check_single_choice(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty array.", param="messages")

    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise InvalidRequest("A message must be an object.", param=param)
        role = message.get("role")
        if role in ("system", "developer"):
            text = oa.text_only(message.get("content"), param=f"{param}.content")
            if text:
                system.append({"text": text})
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), param=f"{param}.content"))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, param=param))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, param=param)])
        else:
            raise InvalidRequest(f"Message role {role!r} is not supported for Bedrock.", param=f"{param}.role")

    request: dict[str, Any] = {"modelId": model, "messages": turns}
    if system:
        request["system"] = system
    inference: dict[str, Any] = {}
    limit = oa.max_tokens(body)
    if limit is not None:
        inference["maxTokens"] = limit
    if body.get("temperature") is not None:
        inference["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        inference["topP"] = body["top_p"]
    stops = oa.stop_sequences(body)
    if stops:
        inference["stopSequences"] = stops
    if inference:
        request["inferenceConfig"] = inference
    tool_config = _tool_config(body, turns)
    if tool_config:
        request["toolConfig"] = tool_config
    return request


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Converse wants user and assistant turns to alternate: same-role neighbours become one turn."""
    if not blocks:  # an assistant turn with neither text nor tool calls: the API rejects empty turns
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": list(blocks)})


def _user_blocks(content: Any, *, param: str) -> list[dict[str, Any]]:
    blocks = []
    for index, part in enumerate(oa.content_parts(content, param=param)):
        part_param = f"{param}[{index}]"
        kind = part.get("type", "text")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise InvalidRequest("A text part needs a text string.", param=part_param)
            if part["text"]:  # Converse rejects blank text blocks
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part, param=part_param))
        else:
            raise InvalidRequest(f"Content part type {kind!r} is not supported for Bedrock.", param=part_param)
    return blocks


def _image(part: Mapping[str, Any], *, param: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequest("An image_url part needs a url.", param=param)
    if url.startswith("data:"):
        media_type, data = oa.parse_data_url(url, param=param)
        image_format = IMAGE_FORMATS.get(media_type)
        if image_format is None:
            raise InvalidRequest(f"Bedrock accepts png, jpeg, gif and webp images, not {media_type}.", param=param)
        return {"image": {"format": image_format, "source": {"bytes": base64.b64decode(data)}}}
    if url.startswith("s3://"):
        image_format = IMAGE_FORMATS.get("image/" + url.rsplit(".", 1)[-1].lower())
        if image_format is None:
            raise InvalidRequest("An s3:// image URL must end in .png, .jpeg, .jpg, .gif or .webp.", param=param)
        return {"image": {"format": image_format, "source": {"s3Location": {"uri": url}}}}
    raise InvalidRequest("Bedrock takes images as base64 data URLs or s3:// URIs, not http(s) URLs.", param=param)


def _assistant_blocks(message: Mapping[str, Any], *, param: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(oa.content_parts(message.get("content"), param=f"{param}.content")):
        kind = part.get("type", "text")
        text = part.get("refusal") if kind == "refusal" else part.get("text")
        if kind not in ("text", "refusal") or not isinstance(text, str):
            raise InvalidRequest("An assistant message may only hold text.", param=f"{param}.content[{index}]")
        if text:
            blocks.append({"text": text})
    for index, call in enumerate(message.get("tool_calls") or ()):
        call_param = f"{param}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not function.get("name") or not call.get("id"):
            raise InvalidRequest("A tool call needs an id and a function name.", param=call_param)
        blocks.append({"toolUse": {
            "toolUseId": str(call["id"]),
            "name": str(function["name"]),
            "input": oa.tool_arguments(function.get("arguments"), param=f"{call_param}.function.arguments"),
        }})
    return blocks


def _tool_result(message: Mapping[str, Any], *, param: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not call_id:
        raise InvalidRequest("A tool message needs a tool_call_id.", param=f"{param}.tool_call_id")
    content = message.get("content")
    if isinstance(content, str) or content is None:
        blocks = [{"text": content or " "}]  # Converse rejects an empty tool result
    else:
        blocks = _user_blocks(content, param=f"{param}.content") or [{"text": " "}]
    return {"toolResult": {"toolUseId": str(call_id), "content": blocks}}


def _has_tool_blocks(turns: list[dict[str, Any]]) -> bool:
    return any("toolUse" in block or "toolResult" in block for turn in turns for block in turn["content"])


def _tool_config(body: Mapping[str, Any], turns: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`toolConfig`. Converse has no `none` choice: then tools are left out, unless the conversation
    already holds tool blocks (Converse then requires the tools): they stay, with the default choice."""
    functions = oa.function_tools(body)
    if not functions:
        return None
    choice = oa.tool_choice(body)
    if choice is not None and choice[0] == "none" and not _has_tool_blocks(turns):
        return None
    tools = []
    for function in functions:
        spec: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            spec["description"] = function["description"]
        spec["inputSchema"] = {"json": oa.plain(function.get("parameters") or {"type": "object", "properties": {}})}
        tools.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": tools}
    if choice is not None:
        kind, name = choice
        if kind == "auto":
            config["toolChoice"] = {"auto": {}}
        elif kind == "required":
            config["toolChoice"] = {"any": {}}
        elif kind == "named":
            config["toolChoice"] = {"tool": {"name": name}}
    return config


# --- answer ------------------------------------------------------------------------------------


def completion_id(request_id: str | None) -> str:
    return f"chatcmpl-{request_id}" if request_id else "chatcmpl-bedrock"


def openai_usage(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    cache_read = int(usage.get("cacheReadInputTokens") or 0)
    cache_write = int(usage.get("cacheWriteInputTokens") or 0)
    prompt = int(usage.get("inputTokens") or 0) + cache_read + cache_write
    return oa.usage(prompt, int(usage.get("outputTokens") or 0), cached_tokens=cache_read)


def to_openai_completion(response: Mapping[str, Any], *, model: str, id: str,
                         created: int | None = None) -> dict[str, Any]:
    """A `chat.completion` for a Converse answer. Raises BadGateway if it holds no message."""
    message = (response.get("output") or {}).get("message")
    if not isinstance(message, Mapping) or not isinstance(message.get("content"), list):
        raise BadGateway("Bedrock answered without a message.")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message["content"]:
        if not isinstance(block, Mapping):
            continue
        if "text" in block:
            texts.append(str(block["text"]))
        elif "toolUse" in block:
            tool_use = block["toolUse"]
            tool_calls.append(oa.tool_call(str(tool_use.get("toolUseId")), str(tool_use.get("name")),
                                           tool_use.get("input")))
        # reasoningContent, citations and the like have no OpenAI counterpart
    return oa.completion(
        id=id,
        created=int(time.time()) if created is None else created,
        model=model,
        text="".join(texts) if texts else None,
        tool_calls=tool_calls,
        finish_reason=finish_reason(response.get("stopReason")),
        usage=openai_usage(response.get("usage")),
    )


# --- stream ------------------------------------------------------------------------------------


class ConverseStreamTranslator:
    """Turns ConverseStream events (`{"messageStart": {...}}`, ...) into OpenAI chunks, one at a time.

    `messageStop` carries the stop reason and `metadata` (after it) the usage; the usage chunk is
    given by `finish()`, which also checks the stream did stop.
    """

    def __init__(self, *, model: str, id: str, include_usage: bool = False, created: int | None = None) -> None:
        self._chunks = oa.ChunkBuilder(id=id, created=int(time.time()) if created is None else created,
                                       model=model, include_usage=include_usage)
        self._include_usage = include_usage
        self._started = False
        self._stopped = False
        self._usage: Mapping[str, Any] | None = None
        self._tool_index: dict[int, int] = {}  # Converse contentBlockIndex -> OpenAI tool_calls index

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        if not self._started and ("messageStart" in event or "contentBlockStart" in event
                                  or "contentBlockDelta" in event):
            self._started = True
            chunks.append(self._chunks.delta({"role": "assistant", "content": ""}))
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            tool_use = (start.get("start") or {}).get("toolUse")
            if tool_use:
                position = len(self._tool_index)
                self._tool_index[int(start.get("contentBlockIndex") or 0)] = position
                chunks.append(self._chunks.delta(oa.tool_call_start(
                    position, str(tool_use.get("toolUseId")), str(tool_use.get("name")))))
        elif "contentBlockDelta" in event:
            block = event["contentBlockDelta"]
            delta = block.get("delta") or {}
            index = int(block.get("contentBlockIndex") or 0)
            if delta.get("text"):
                chunks.append(self._chunks.delta({"content": delta["text"]}))
            elif "toolUse" in delta and index in self._tool_index and (delta["toolUse"] or {}).get("input"):
                chunks.append(self._chunks.delta(oa.tool_call_arguments(self._tool_index[index],
                                                                        delta["toolUse"]["input"])))
        elif "messageStop" in event:
            if not self._started:
                self._started = True
                chunks.append(self._chunks.delta({"role": "assistant", "content": ""}))
            self._stopped = True
            chunks.append(self._chunks.delta({}, finish_reason=finish_reason(event["messageStop"].get("stopReason"))))
        elif "metadata" in event:
            self._usage = event["metadata"].get("usage")
        return chunks

    def finish(self) -> list[dict[str, Any]]:
        """The usage chunk when asked for; BadGateway if the stream never stopped."""
        if not self._stopped:
            raise BadGateway("Bedrock's stream ended before the message was complete.")
        if self._include_usage:
            return [self._chunks.usage(openai_usage(self._usage))]
        return []
