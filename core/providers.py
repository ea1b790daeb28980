"""The port to LLM providers: one OpenAI-shaped call in, OpenAI-shaped completions or chunks out."""

from __future__ import annotations

import json
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


class JsonChunk(dict[str, Any]):
    """A chunk parsed from a provider's JSON text, the text kept (`json_text`) so that an SSE frame can pass the
    provider's bytes on instead of encoding the chunk again (handlers/sse.py).

    `json_text` is the text of exactly this object, on one line, or None. Setting `provider` (a string, on a chunk
    without one) splices `,"provider":"..."` into it, as the completions service does on every chunk; any other
    change drops it, so the chunk is then encoded as any dict. (Changes inside nested values are not seen: nothing
    between the provider and the frame makes any.)"""

    __slots__ = ("json_text",)

    def __init__(self, parsed: Mapping[str, Any], text: str) -> None:
        super().__init__(parsed)
        # Only a non-empty object on one line can take `,"provider":...` before its closing brace.
        ok = bool(parsed) and text.startswith("{") and text.endswith("}") and "\n" not in text and "\r" not in text
        self.json_text: str | None = text if ok else None

    def __setitem__(self, key: str, value: Any) -> None:
        text = getattr(self, "json_text", None)  # unset while copy/pickle rebuild the chunk
        if text is not None and key == "provider" and key not in self and isinstance(value, str):
            self.json_text = text[:-1] + ',"provider":' + json.dumps(value, ensure_ascii=False) + "}"
        else:
            self.json_text = None
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.json_text = None
        super().__delitem__(key)

    def _dropped(name: str) -> Any:  # type: ignore[misc]  # noqa: N805 - a helper run once, in the class body
        method = getattr(dict, name)

        def changed(self: JsonChunk, *args: Any, **kwargs: Any) -> Any:
            self.json_text = None
            return method(self, *args, **kwargs)

        changed.__name__ = name
        return changed

    pop = _dropped("pop")
    popitem = _dropped("popitem")
    setdefault = _dropped("setdefault")
    update = _dropped("update")
    clear = _dropped("clear")
    __ior__ = _dropped("__ior__")
    del _dropped


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
