"""The composition root: builds the store, caches, service and authenticator from settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.auth import Authenticator, mint_key
from core.completions import CompletionService
from core.models import Scope
from core.providers import Timeouts
from core.service import PromptService, utc_now
from handlers.virtual_key_wiring import VirtualKeyParts, build_virtual_keys
from infra.cache import CachingTemplateStore
from infra.dynamodb_store import DynamoStore
from infra.providers import ProviderRegistry
from infra.providers.retry import RetryPolicy
from infra.settings import Settings


@dataclass(frozen=True)
class Container:
    settings: Settings
    store: DynamoStore
    service: PromptService
    auth: Authenticator
    virtual_keys: VirtualKeyParts
    completions: CompletionService

    def asgi_app(self) -> Any:
        from handlers.http_app import create_app  # FastAPI only where HTTP is served, not in the worker

        return create_app(self.service, self.auth, completions=self.completions,
                          virtual_keys=self.virtual_keys.service, max_body_bytes=self.settings.max_body_bytes)


def build_container(settings: Settings | None = None) -> Container:
    settings = settings or Settings.from_env()
    store = DynamoStore.from_settings(settings)
    templates = CachingTemplateStore(store, ttl=settings.pointer_cache_ttl, pinned_size=settings.pinned_cache_size)
    static_keys = []
    if settings.admin_key:
        static_keys.append(mint_key("CUECARD_ADMIN_KEY", frozenset({Scope.ADMIN}), utc_now(), key=settings.admin_key).record)
    auth = Authenticator(store, ttl=settings.auth_cache_ttl, static_keys=static_keys)
    virtual_keys = build_virtual_keys(settings, store)
    service = PromptService(templates, store, virtual_keys=virtual_keys.bindings)
    timeouts = Timeouts(connect=settings.provider_connect_timeout, first_byte=settings.provider_first_byte_timeout,
                        read=settings.provider_read_timeout, total=settings.provider_total_timeout)
    providers = ProviderRegistry(retry=RetryPolicy(max_attempts=settings.provider_max_attempts))
    completions = CompletionService(service, virtual_keys.bindings, virtual_keys.secrets, providers, timeouts=timeouts)
    return Container(settings, store, service, auth, virtual_keys, completions)
