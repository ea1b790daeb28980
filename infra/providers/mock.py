"""`mock`: a deterministic, offline provider for local runs, demos and tests.

Every answer says it is a mock: its content starts with `[mock]` and its `system_fingerprint` is
`cuecard-mock`. It echoes the last user message, honours `n`, `tool_choice` naming a function (or
`required`), `response_format: json_object`, `max_tokens` (in words), and streams word by word.
A binding's `config.token_delay_ms` slows the stream down, to show streaming at work.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any, AsyncIterator, Mapping

from core.providers import ProviderCall

FINGERPRINT = "cuecard-mock"


class MockProvider:
    def __init__(self, **_settings: Any) -> None:
        pass

    async def complete(self, call: ProviderCall) -> dict[str, Any]:
        body = call.body
        words, finish = _reply_words(body)
        n = int(body.get("n") or 1)
        tool_call = _tool_call(body)
        choices = []
        for index in range(n):
            message: dict[str, Any] = {"role": "assistant", "content": None if tool_call else " ".join(words)}
            if tool_call:
                message["tool_calls"] = [tool_call]
            choices.append({"index": index, "message": message, "logprobs": None,
                            "finish_reason": "tool_calls" if tool_call else finish})
        return {
            "id": _completion_id(call),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or "mock"),
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
            "usage": _usage(body, len(words) * n),
        }

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        body = call.body
        words, finish = _reply_words(body)
        delay = float(call.binding.config.get("token_delay_ms", 0)) / 1000
        base = {"id": _completion_id(call), "object": "chat.completion.chunk", "created": int(time.time()),
                "model": str(body.get("model") or "mock"), "system_fingerprint": FINGERPRINT}
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        for position, word in enumerate(words):
            if delay:
                await asyncio.sleep(delay)
            text = word if position == 0 else f" {word}"
            yield {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        if (body.get("stream_options") or {}).get("include_usage"):
            yield {**base, "choices": [], "usage": _usage(body, len(words))}


def _last_user_text(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def _reply_words(body: Mapping[str, Any]) -> tuple[list[str], str]:
    heard = _last_user_text(body.get("messages"))
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        words = [json.dumps({"mock": True, "echo": heard}, ensure_ascii=False)]
    else:
        words = ["[mock]", "You", "said:", *(heard.split() or ["nothing."])]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and 0 < limit < len(words):
        return words[:limit], "length"
    return words, "stop"


def _tool_call(body: Mapping[str, Any]) -> dict[str, Any] | None:
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, Mapping)]
    choice = body.get("tool_choice")
    if not tools or choice in (None, "none", "auto"):
        return None
    name = (choice.get("function") or {}).get("name") if isinstance(choice, Mapping) else None
    name = name or tools[0].get("function", {}).get("name", "tool")
    return {"id": f"call_mock_{name}", "type": "function", "function": {"name": name, "arguments": "{}"}}


def _completion_id(call: ProviderCall) -> str:
    digest = hashlib.sha256(json.dumps(call.body, sort_keys=True, default=str).encode()).hexdigest()
    return f"chatcmpl-mock-{digest[:24]}"


def _usage(body: Mapping[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt_tokens = sum(len(str(message.get("content", "")).split())
                        for message in body.get("messages") or [] if isinstance(message, Mapping))
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
