"""The port to LLM providers: one OpenAI-shaped call in, OpenAI-shaped completions or chunks out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Mapping, Protocol

from core.models import VirtualKey


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    first_byte: float = 60.0  # until the provider's first response byte (or first chunk)
    read: float = 120.0  # between bytes once it answers
    total: float = 600.0


DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """An OpenAI chat-completions request for one provider binding.

    `body` holds model, messages and parameters, never `stream`: adapters add what their API needs
    when `stream` is true. `stream_options.include_usage` may be in `body`.
    """

    body: Mapping[str, Any]
    binding: VirtualKey
    secret: str | None
    stream: bool
    request_id: str
    timeouts: Timeouts = Timeouts()


class ChatProvider(Protocol):
    async def complete(self, call: ProviderCall) -> dict[str, Any]:
        """A `chat.completion` object. Raises core errors: UpstreamError (4xx), BadGateway, GatewayTimeout."""
        ...

    def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        """`chat.completion.chunk` objects as they arrive, the usage chunk last when asked for.

        Retries (429, 5xx, refused connections) happen only before the first chunk is yielded.
        Any failure raises a core error, before or after the first chunk.
        """
        ...


class ProviderFactory(Protocol):
    def provider(self, name: str) -> ChatProvider:
        """The adapter for a provider name (imported on first use)."""
        ...
