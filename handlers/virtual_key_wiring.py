"""Builds provider bindings' store, secret store and service for the composition root (handlers/container.py)."""

from __future__ import annotations

from dataclasses import dataclass

from core.service import utc_now
from core.virtual_keys import VirtualKeyService
from infra.cache import CachingSecretStore, CachingVirtualKeyStore
from infra.settings import Settings
from infra.stores import Stores


@dataclass(frozen=True)
class VirtualKeyParts:
    bindings: CachingVirtualKeyStore  # a VirtualKeyStore: for PromptService's check and CompletionService
    secrets: CachingSecretStore  # a SecretStore: for CompletionService
    service: VirtualKeyService  # for the /virtual-keys routes and the sample data


def build_virtual_keys(settings: Settings, stores: Stores) -> VirtualKeyParts:
    """The backend's bindings and secret store, each behind its cache."""
    bindings = CachingVirtualKeyStore(stores.virtual_keys, ttl=settings.virtual_key_cache_ttl)
    secrets = CachingSecretStore(stores.secrets, ttl=settings.secret_cache_ttl)
    return VirtualKeyParts(bindings, secrets, VirtualKeyService(bindings, secrets, now=utc_now))
