"""Small factories for domain records used across the integration tests."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from core.models import Entity, Kind, Label, TemplateVersion, VersionDraft
from core.ports import TemplateStore

NOW = "2025-01-01T00:00:00.000Z"


def new_entity(kind: Kind = Kind.PROMPT, name: str = "greet", *, created_at: str = NOW, **fields: Any) -> Entity:
    return Entity(
        kind=kind,
        id=str(uuid.uuid4()),
        slug=f"{kind.slug_prefix}-{name}-{secrets.token_hex(3)}",
        name=name,
        created_at=created_at,
        updated_at=created_at,
        latest_version=1,
        published_version=1,
        **fields,
    )


def draft(string: str = "Hello {{name}}", **fields: Any) -> VersionDraft:
    fields.setdefault("version_id", str(uuid.uuid4()))
    fields.setdefault("created_at", NOW)
    return VersionDraft(string=string, **fields)


def create(store: TemplateStore, kind: Kind = Kind.PROMPT, name: str = "greet", **draft_fields: Any) -> Entity:
    entity = new_entity(kind, name)
    store.create(kind, entity, draft(**draft_fields))
    return entity


def append(store: TemplateStore, kind: Kind, key: str, string: str, **fields: Any) -> TemplateVersion:
    return store.append_version(kind, key, lambda latest: draft(string, **fields))


def new_label(name: str, *, created_at: str = NOW, **fields: Any) -> Label:
    return Label(id=str(uuid.uuid4()), name=name, created_at=created_at, **fields)
