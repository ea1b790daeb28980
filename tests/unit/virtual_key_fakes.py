"""In-memory `VirtualKeyStore` and `SecretStore` for unit tests: the ports' contracts and nothing more.

tests/contract/ runs the same contract tests against these and the real backends.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Mapping

from core.errors import Conflict, InvalidRequest, StoreUnavailable, VirtualKeyNotFound
from core.models import VirtualKey

# What an update may change: a binding's id, slug, provider and created_at are fixed.
CHANGEABLE_FIELDS = frozenset(
    {"name", "note", "custom_host", "headers", "config", "secret_ref", "masked_key", "updated_at"})


class InMemoryVirtualKeyStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bindings: dict[str, VirtualKey] = {}  # id -> binding
        self.reads = 0
        self.fail_next_create: Exception | None = None

    def _find(self, key: str) -> VirtualKey:
        binding = self.bindings.get(key) or next((b for b in self.bindings.values() if b.slug == key), None)
        if binding is None:
            raise VirtualKeyNotFound(f"virtual key {key} not found")
        return binding

    def create_virtual_key(self, binding: VirtualKey) -> VirtualKey:
        with self._lock:
            if self.fail_next_create is not None:
                error, self.fail_next_create = self.fail_next_create, None
                raise error
            if binding.id in self.bindings or any(b.slug == binding.slug for b in self.bindings.values()):
                raise Conflict(f"slug {binding.slug} is already in use", param="slug")
            self.bindings[binding.id] = binding
            return binding

    def get_virtual_key(self, key: str) -> VirtualKey:
        with self._lock:
            self.reads += 1
            return self._find(key)

    def list_virtual_keys(self) -> list[VirtualKey]:
        with self._lock:
            return sorted(self.bindings.values(), key=lambda b: (b.created_at, b.id))

    def update_virtual_key(self, key: str, changes: Mapping[str, Any]) -> VirtualKey:
        unknown = set(changes) - CHANGEABLE_FIELDS
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))} of a virtual key")
        with self._lock:
            updated = dataclasses.replace(self._find(key), **changes)
            self.bindings[updated.id] = updated
            return updated

    def delete_virtual_key(self, key: str) -> None:
        with self._lock:
            del self.bindings[self._find(key).id]


class InMemorySecretStore:
    def __init__(self, prefix: str = "test/") -> None:
        self.prefix = prefix
        self.values: dict[str, str] = {}
        self.deleted: list[str] = []
        self.calls: list[str] = []  # operation names, in order
        self.fail_deletes = False

    def put_secret(self, name: str, value: str) -> str:
        self.calls.append("put")
        ref = self.prefix + name
        self.values[ref] = value
        return ref

    def get_secret(self, ref: str) -> str:
        self.calls.append("get")
        if ref not in self.values:
            raise StoreUnavailable("no such secret")
        return self.values[ref]

    def delete_secret(self, ref: str) -> None:
        self.calls.append("delete")
        if self.fail_deletes:
            raise StoreUnavailable("the secret store is down")
        self.values.pop(ref, None)
        self.deleted.append(ref)
