"""Prompt completions: render, find the version's provider binding, and call the provider."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, AsyncIterator

from core.errors import InvalidRequest, VirtualKeyNotFound
from core.models import VirtualKey
from core.ports import SecretStore, VirtualKeyStore
from core.providers import DEFAULT_TIMEOUTS, ChatProvider, ProviderCall, ProviderFactory, Timeouts
from core.service import PromptService, Rendered

# Keys of a render body that never reach a provider: streaming is the call's transport, not a parameter.
_TRANSPORT_KEYS = ("stream",)


@dataclass(frozen=True, slots=True)
class PreparedCompletion:
    """Everything resolved before the provider is called, so errors so far are plain HTTP errors."""

    rendered: Rendered
    binding: VirtualKey
    provider: ChatProvider
    call: ProviderCall

    @property
    def stream(self) -> bool:
        return self.call.stream


class CompletionService:
    def __init__(
        self,
        prompts: PromptService,
        bindings: VirtualKeyStore,
        secrets: SecretStore,
        providers: ProviderFactory,
        *,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
    ) -> None:
        self._prompts = prompts
        self._bindings = bindings
        self._secrets = secrets
        self._providers = providers
        self._timeouts = timeouts

    def prepare(self, reference: str, body: Any, *, request_id: str) -> PreparedCompletion:
        return self.prepare_rendered(self._prompts.render(reference, body), request_id=request_id)

    def prepare_rendered(self, rendered: Rendered, *, request_id: str) -> PreparedCompletion:
        """The call for a chat body built already (core.responses builds its own from a render)."""
        version = rendered.version
        if not version.virtual_key:
            raise InvalidRequest(
                f"{version.source} has no virtual_key, so it can be rendered but not completed. "
                "Bind it to a provider by updating the prompt with a virtual_key.",
                param="virtual_key",
                code="missing_virtual_key",
            )
        try:
            binding = self._bindings.get_virtual_key(version.virtual_key)
        except VirtualKeyNotFound:
            raise InvalidRequest(
                f"{version.source} is bound to a virtual key that no longer exists; bind it to another one.",
                param="virtual_key",
                code="virtual_key_not_found",
            ) from None
        secret = self._secrets.get_secret(binding.secret_ref) if binding.secret_ref else None
        stream = rendered.request.stream
        call = ProviderCall(
            body=provider_body(rendered),
            binding=binding,
            secret=secret,
            stream=stream,
            request_id=request_id,
            timeouts=self._timeouts if stream else non_streaming(self._timeouts),
        )
        return PreparedCompletion(rendered, binding, self._providers.provider(binding.provider), call)

    async def complete(self, prepared: PreparedCompletion) -> dict[str, Any]:
        completion = await prepared.provider.complete(prepared.call)
        completion["provider"] = prepared.binding.provider
        return completion

    async def stream(self, prepared: PreparedCompletion) -> AsyncIterator[dict[str, Any]]:
        async for chunk in prepared.provider.stream(prepared.call):
            chunk["provider"] = prepared.binding.provider
            yield chunk


def non_streaming(timeouts: Timeouts) -> Timeouts:
    """A non-streamed answer's first byte comes after the whole generation: bound it by `read`, not `first_byte`."""
    return replace(timeouts, first_byte=max(timeouts.first_byte, timeouts.read))


def provider_body(rendered: Rendered) -> dict[str, Any]:
    """The chat request a provider receives: a text template's prompt becomes one user message."""
    body = {key: value for key, value in rendered.body.items() if key not in _TRANSPORT_KEYS}
    if not rendered.request.stream:
        body.pop("stream_options", None)
    if "messages" not in body and "prompt" in body:
        body["messages"] = [{"role": "user", "content": body.pop("prompt")}]
    return body
