"""The composition root: picks the store backend and builds the caches, services and authenticator on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.auth import Authenticator, mint_key
from core.collections import CollectionService
from core.completions import CompletionService
from core.errors import CuecardError
from core.models import Scope
from core.providers import Timeouts
from core.service import PromptService, utc_now
from handlers.virtual_key_wiring import VirtualKeyParts, build_virtual_keys
from infra.cache import CachingTemplateStore
from infra.providers import ProviderRegistry
from infra.providers.retry import RetryPolicy
from infra.settings import Settings
from infra.stores import Stores


@dataclass(frozen=True)
class Container:
    settings: Settings
    stores: Stores
    service: PromptService
    auth: Authenticator
    virtual_keys: VirtualKeyParts
    completions: CompletionService
    collections: CollectionService
    templates: CachingTemplateStore  # the one the service reads through, so MCP's reads share its caches

    def asgi_app(self, *, inline_renders: bool = True) -> Any:
        """The HTTP app, `/mcp` included. `inline_renders=False` (cuecard serve, many requests per process) keeps
        renders and key lookups off the event loop; the Lambda functions serve one request at a time and stay inline."""
        from handlers.asgi_edge import EdgeMiddleware
        from handlers.http_app import create_app  # FastAPI only where HTTP is served, not in the worker
        from handlers.mcp_route import McpRoute

        edge = create_app(self.service, self.auth, completions=self.completions,
                          virtual_keys=self.virtual_keys.service, collections=self.collections,
                          max_body_bytes=self.settings.max_body_bytes,
                          inline_renders=inline_renders,
                          cached_renders_inline=not inline_renders and self.settings.store == "sqlite")
        assert isinstance(edge, EdgeMiddleware)  # /mcp goes inside it: request ids, stage prefixes, limits
        edge.app = McpRoute(edge.app, lambda: self.mcp_endpoint(inline=inline_renders))
        return edge

    def mcp_endpoint(self, *, inline: bool = True) -> Any:
        """The `/mcp` ASGI app (handlers/mcp_server.py); importing it loads the `mcp` SDK."""
        from core.mcp_prompts import McpPrompts
        from handlers.mcp_server import McpEndpoint, McpParts, poll_interval

        prompts = McpPrompts(self.service, self.templates, self.stores.labels)
        parts = McpParts(prompts, self.auth, self.completions, inline=inline,
                         max_body_bytes=self.settings.max_body_bytes,
                         poll_interval=poll_interval(self.settings.pointer_cache_ttl))
        return McpEndpoint(parts)


def open_stores(settings: Settings) -> Stores:
    """The backend `settings.store` names; each is imported only when chosen (the Lambda path loads DynamoDB's)."""
    if settings.store == "sqlite":
        from infra.sqlite import DATABASE_NAME, open_sqlite_stores

        return open_sqlite_stores(Path(settings.data_dir) / DATABASE_NAME, secret_prefix=settings.secret_prefix,
                                  job_ttl_seconds=settings.job_idempotency_ttl)
    try:
        from infra.dynamodb_stores import dynamodb_stores
    except ModuleNotFoundError as exc:
        raise CuecardError(f"The DynamoDB store needs the aws extra ({exc.name} is missing): "
                           "pip install 'cuecard[aws]'") from None
    return dynamodb_stores(settings)


def build_container(settings: Settings | None = None, stores: Stores | None = None) -> Container:
    settings = settings or Settings.from_env()
    stores = stores or open_stores(settings)
    templates = CachingTemplateStore(stores.templates, ttl=settings.pointer_cache_ttl,
                                     pinned_size=settings.pinned_cache_size)
    static_keys = []
    if settings.admin_key:
        static_keys.append(mint_key("CUECARD_ADMIN_KEY", frozenset({Scope.ADMIN}), utc_now(), key=settings.admin_key).record)
    auth = Authenticator(stores.api_keys, ttl=settings.auth_cache_ttl, static_keys=static_keys)
    virtual_keys = build_virtual_keys(settings, stores)
    service = PromptService(templates, stores.labels, virtual_keys=virtual_keys.bindings,
                            render_limits=settings.render_limits, collections=stores.collections,
                            name_cache_ttl=settings.pointer_cache_ttl)
    timeouts = Timeouts(connect=settings.provider_connect_timeout, first_byte=settings.provider_first_byte_timeout,
                        read=settings.provider_read_timeout, total=settings.provider_total_timeout)
    providers = ProviderRegistry(retry=RetryPolicy(max_attempts=settings.provider_max_attempts))
    completions = CompletionService(service, virtual_keys.bindings, virtual_keys.secrets, providers, timeouts=timeouts)
    collections = CollectionService(stores.collections, templates, now=utc_now)
    return Container(settings, stores, service, auth, virtual_keys, completions, collections, templates)
