"""Every store port of one backend, bundled, and the snapshot a backend can import whole.

A backend (infra/sqlite/, infra/dynamodb/) builds a `Stores`; the composition root wires its parts
into the services. `Snapshot` carries everything a store holds, as domain records, for imports
(an old data dir's journal into SQLite, or one backend into another).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from core.jobs import JobLedger
from core.models import ApiKeyRecord, Entity, Label, TemplateVersion, VirtualKey
from core.ports import ApiKeyStore, CollectionStore, LabelStore, SecretStore, TemplateStore, VirtualKeyStore


@dataclass(frozen=True)
class Stores:
    templates: TemplateStore
    labels: LabelStore
    collections: CollectionStore
    api_keys: ApiKeyStore
    virtual_keys: VirtualKeyStore
    secrets: SecretStore
    jobs: JobLedger
    close: Callable[[], None] = lambda: None


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A version as kept: a deleted entity's versions are hidden, never erased."""

    version: TemplateVersion
    deleted: bool = False
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class StoredJob:
    """One job-ledger record (core.jobs.JobLedger), as the ledger keeps it."""

    job_id: str
    state: str  # "running" or "done"
    fingerprint: str | None
    expires_at: float
    claim_token: str | None = None
    lease_until: float | None = None
    result: str | None = None  # the result message as JSON text (done only)
    status: str | None = None


@dataclass
class Snapshot:
    """Everything one store holds. Entities include deleted ones (`Entity.deleted`); `labels` are the
    custom labels only (built-ins always exist); `secrets` maps a secret reference to its value."""

    entities: list[Entity] = field(default_factory=list)
    entity_actors: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, id) -> last actor
    versions: list[StoredVersion] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    api_keys: list[ApiKeyRecord] = field(default_factory=list)
    virtual_keys: list[VirtualKey] = field(default_factory=list)
    virtual_key_actors: dict[str, str] = field(default_factory=dict)  # binding id -> last actor
    secrets: dict[str, str] = field(default_factory=dict)
    jobs: list[StoredJob] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        prompts = sum(1 for entity in self.entities if entity.kind.value == "prompt")
        return {
            "prompts": prompts,
            "partials": len(self.entities) - prompts,
            "versions": len(self.versions),
            "labels": len(self.labels),
            "API keys": len(self.api_keys),
            "virtual keys": len(self.virtual_keys),
            "provider keys": len(self.secrets),
            "job records": len(self.jobs),
        }
