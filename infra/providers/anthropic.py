"""`anthropic`: the Anthropic Messages API (`POST /v1/messages`), answered in the OpenAI schema.

Transport, deadlines, retries and HTTP error mapping are the shared ones (http_exchange.py); this
module only builds the request and translates (anthropic_translation.py). Anthropic may also fail a
stream that already answered 200 with an `error` event; when that event comes first, before any
chunk went out, it is retried like a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator, Mapping

from core.errors import CuecardError
from core.providers import ProviderCall
from infra.providers import anthropic_translation as at
from infra.providers import openai_shapes as oa
from infra.providers import upstream_errors
from infra.providers.http_client import HttpClients
from infra.providers.http_exchange import HttpExchange, UpstreamRequest
from infra.providers.retry import RetryPolicy

log = logging.getLogger(__name__)

PROVIDER = at.PROVIDER
DEFAULT_BASE_URL = "https://api.anthropic.com"
# Error types of an in-stream `error` event worth another attempt while nothing reached the caller.
_RETRYABLE_ERROR_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error"})
# Headers a binding may not set: the adapter owns them.
_OWN_HEADERS = frozenset({"x-api-key", "content-type", "content-length", "authorization", "host"})


class AnthropicProvider:
    def __init__(self, *, exchange: HttpExchange | None = None, retry: RetryPolicy | None = None,
                 clients: HttpClients | None = None, base_url: str = DEFAULT_BASE_URL, **_settings: Any) -> None:
        self._exchange = exchange or HttpExchange(retry=retry, clients=clients)
        self._base_url = base_url

    def url(self, call: ProviderCall) -> str:
        base = (call.binding.custom_host or self._base_url).rstrip("/")
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def headers(self, call: ProviderCall) -> dict[str, str]:
        headers = {name.lower(): str(value) for name, value in (call.binding.headers or {}).items()
                   if name.lower() not in _OWN_HEADERS}
        headers.setdefault("anthropic-version", str(call.binding.config.get("anthropic_version")
                                                    or at.ANTHROPIC_VERSION))
        headers["content-type"] = "application/json"
        if call.secret:
            headers["x-api-key"] = call.secret
        return headers

    def _upstream(self, call: ProviderCall, payload: Mapping[str, Any]) -> UpstreamRequest:
        return UpstreamRequest(
            provider=PROVIDER,
            url=self.url(call),
            headers=self.headers(call),
            body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(),
            timeouts=call.timeouts,
            secret=call.secret,
        )

    async def complete(self, call: ProviderCall) -> dict[str, Any]:
        payload = at.to_anthropic_request(call.body, stream=False)
        answer = await self._exchange.post_json(self._upstream(call, payload))
        return at.to_openai_completion(answer, model=payload["model"])

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        payload = at.to_anthropic_request(call.body, stream=True)
        request = self._upstream(call, payload)
        include_usage = oa.include_usage(call.body)
        attempt = 0
        while True:
            attempt += 1
            translator = at.AnthropicStreamTranslator(model=payload["model"], include_usage=include_usage,
                                                      secret=call.secret)
            events = self._exchange.post_sse(request)
            yielded = False
            retry_in: float | None = None
            try:
                async for event in events:
                    data = _json(event.data)
                    try:
                        chunks = translator.feed(event.event, data)
                    except CuecardError as error:
                        retry_in = None if yielded else self._retry_delay(data, attempt)
                        if retry_in is None:
                            raise
                        log.warning("provider %s attempt %d failed (%s), retrying in %.2fs",
                                    PROVIDER, attempt, error.message, retry_in)
                        break
                    for chunk in chunks:
                        yielded = True
                        yield chunk
                    if translator.done:
                        break
                if retry_in is None:
                    translator.finish()
                    return
            finally:
                await events.aclose()
            await asyncio.sleep(retry_in)

    def _retry_delay(self, data: Any, attempt: int) -> float | None:
        error = data.get("error") if isinstance(data, Mapping) else None
        if isinstance(error, Mapping) and error.get("type") in _RETRYABLE_ERROR_TYPES:
            return self._exchange.retry.delay(attempt)
        return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise upstream_errors.malformed(PROVIDER, "a stream event that is not JSON") from None
