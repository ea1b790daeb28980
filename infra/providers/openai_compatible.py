"""`openai`: any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, LM Studio, ...).

The binding's `custom_host` is the base URL (`http://127.0.0.1:11434/v1`); the default is OpenAI's.
Requests and answers pass through untouched: `n`, tools, `response_format`, `logprobs` included.
Subclasses change only where the request goes and how it authenticates (see azure_openai.py).
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Mapping

from core.errors import BadGateway
from core.providers import JsonChunk, ProviderCall
from infra.providers import upstream_errors as errors
from infra.providers.http_client import HttpClients
from infra.providers.http_exchange import HttpExchange, UpstreamRequest
from infra.providers.retry import RetryPolicy
from infra.providers.sse import SSEEvent

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_CHUNK_EVENTS = (None, "message")  # frames named otherwise (pings, custom events) are skipped


class OpenAIProvider:
    name = "openai"

    def __init__(self, *, retry: RetryPolicy | None = None, clients: HttpClients | None = None,
                 **_settings: Any) -> None:
        self._exchange = HttpExchange(retry=retry, clients=clients)

    async def complete(self, call: ProviderCall) -> dict[str, Any]:
        body = dict(call.body)
        body.pop("stream", None)
        body.pop("stream_options", None)  # OpenAI rejects it without stream: true
        payload = await self._exchange.post_json(self._request(call, body))
        if not isinstance(payload, dict):
            raise errors.malformed(self.name, "an answer that is not a JSON object")
        if "error" in payload and "choices" not in payload:
            raise errors.from_frame(payload, provider=self.name, secret=call.secret)
        return payload

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        body = dict(call.body)
        body["stream"] = True
        events = self._exchange.post_sse(self._request(call, body), last=_is_done)
        finished = False  # a finish_reason or usage was seen: a missing [DONE] is then forgiven
        try:
            async for event in events:
                if _is_done(event):
                    return
                data = event.data.strip()
                if event.event == "error":
                    raise errors.from_frame(_json_or_text(data), provider=self.name, secret=call.secret)
                if event.event not in _CHUNK_EVENTS or not data:
                    continue
                try:
                    parsed = json.loads(data)
                except ValueError:
                    raise errors.malformed(self.name, "a chunk that is not JSON") from None
                if not isinstance(parsed, dict):
                    raise errors.malformed(self.name, "a chunk that is not a JSON object")
                if "error" in parsed and "choices" not in parsed:
                    raise errors.from_frame(parsed, provider=self.name, secret=call.secret)
                finished = finished or _is_final(parsed)
                yield JsonChunk(parsed, data)  # the text kept: the frame passes it on, `provider` spliced in
            if not finished:
                raise BadGateway(f"The provider {self.name} ended the stream before it finished.")
        finally:
            await events.aclose()

    # --- what subclasses change -----------------------------------------------------------------

    def url(self, call: ProviderCall) -> str:
        base = (call.binding.custom_host or DEFAULT_BASE_URL).rstrip("/")
        return f"{base}/chat/completions"

    def auth_headers(self, secret: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {secret}"} if secret else {}

    # --------------------------------------------------------------------------------------------

    def _request(self, call: ProviderCall, body: Mapping[str, Any]) -> UpstreamRequest:
        headers = {"content-type": "application/json"}
        headers.update({name.lower(): value for name, value in call.binding.headers.items()})
        headers.update(self.auth_headers(call.secret))
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_plain).encode("utf-8")
        return UpstreamRequest(provider=self.name, url=self.url(call), headers=headers, body=content,
                               timeouts=call.timeouts, secret=call.secret)


def _is_done(event: SSEEvent) -> bool:
    return event.data.strip() == "[DONE]"


def _is_final(chunk: Mapping[str, Any]) -> bool:
    if chunk.get("usage"):
        return True
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(
        isinstance(choice, Mapping) and choice.get("finish_reason") for choice in choices)


def _json_or_text(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
