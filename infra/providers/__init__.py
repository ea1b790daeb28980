"""Provider adapters, and the registry that finds them by name.

The registry imports an adapter's module on first use, so a provider nobody calls costs nothing at
cold start (this package imports neither aiohttp nor boto3). Each adapter is built once and reused.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any, Mapping

from core.errors import InvalidRequest

if TYPE_CHECKING:
    from core.providers import ChatProvider
    from infra.providers.retry import RetryPolicy

# Provider name -> "module:Class".
PROVIDER_CLASSES: Mapping[str, str] = {
    "openai": "infra.providers.openai_compatible:OpenAIProvider",
    "azure-openai": "infra.providers.azure_openai:AzureOpenAIProvider",
    "anthropic": "infra.providers.anthropic:AnthropicProvider",
    "bedrock": "infra.providers.bedrock:BedrockProvider",
    "mock": "infra.providers.mock:MockProvider",
}


class ProviderRegistry:
    """`core.providers.ProviderFactory`. Settings reach each adapter's constructor as keywords.

    `retry` (a `RetryPolicy`) and any further keyword settings are passed to every adapter whose
    constructor takes them (by name, or through `**settings`). Timeouts are not settings here: they
    travel with each call in `ProviderCall.timeouts`.
    """

    def __init__(self, *, retry: RetryPolicy | None = None, classes: Mapping[str, str] | None = None,
                 **settings: Any) -> None:
        self._settings = {key: value for key, value in {"retry": retry, **settings}.items() if value is not None}
        self._classes = dict(PROVIDER_CLASSES if classes is None else classes)
        self._adapters: dict[str, ChatProvider] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._classes)

    def provider(self, name: str) -> ChatProvider:
        adapter = self._adapters.get(name)
        if adapter is not None:
            return adapter
        target = self._classes.get(name)
        if target is None:
            raise InvalidRequest(f"Unknown provider {name!r}; expected one of: {', '.join(self._classes)}.",
                                 param="provider", code="unknown_provider")
        with self._lock:
            adapter = self._adapters.get(name)
            if adapter is None:
                module_name, _, class_name = target.partition(":")
                cls = getattr(importlib.import_module(module_name), class_name)
                adapter = cls(**_accepted(cls, self._settings))
                self._adapters[name] = adapter
        return adapter


def _accepted(cls: type, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings `cls(...)` takes: all of them if it has `**kwargs`, else those it names."""
    import inspect

    parameters = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(settings)
    names = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return {key: value for key, value in settings.items() if key in names}
