"""The composition root: builds the store, caches, service and authenticator from settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.auth import Authenticator, mint_key
from core.models import Scope
from core.service import PromptService, utc_now
from handlers.http_app import create_app
from infra.cache import CachingTemplateStore
from infra.dynamodb_store import DynamoStore
from infra.settings import Settings


@dataclass(frozen=True)
class Container:
    settings: Settings
    store: DynamoStore
    service: PromptService
    auth: Authenticator

    def asgi_app(self) -> Any:
        return create_app(self.service, self.auth, max_body_bytes=self.settings.max_body_bytes)


def build_container(settings: Settings | None = None) -> Container:
    settings = settings or Settings.from_env()
    store = DynamoStore.from_settings(settings)
    templates = CachingTemplateStore(store, ttl=settings.pointer_cache_ttl, pinned_size=settings.pinned_cache_size)
    static_keys = []
    if settings.admin_key:
        static_keys.append(mint_key("CUECARD_ADMIN_KEY", frozenset({Scope.ADMIN}), utc_now(), key=settings.admin_key).record)
    auth = Authenticator(store, ttl=settings.auth_cache_ttl, static_keys=static_keys)
    return Container(settings, store, PromptService(templates, store), auth)
