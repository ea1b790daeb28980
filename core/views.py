"""The JSON shapes Portkey's API answers with, built from domain records."""

from __future__ import annotations

from typing import Any, Mapping

from core.models import CONTENT_FIELDS, Entity, Label, TemplateVersion


def _version_fields(version: TemplateVersion) -> dict[str, Any]:
    """A version's content as the API shows it; the description is shown under the caller's own name."""
    shown = {name: getattr(version, name) for name in CONTENT_FIELDS if name != "description"}
    for name, value in shown.items():
        if isinstance(value, Mapping):
            shown[name] = dict(value)
        elif isinstance(value, tuple):
            shown[name] = list(value)
    shown["is_raw_template"] = 1 if version.is_raw_template else 0
    return shown


def labels_of(entity: Entity, version: int) -> list[str]:
    return sorted(name for name, number in entity.labels.items() if number == version)


def prompt_summary(entity: Entity) -> dict[str, Any]:
    return {
        "id": entity.id,
        "slug": entity.slug,
        "name": entity.name,
        "collection_id": entity.collection_id,
        "workspace_id": entity.workspace_id,
        "status": "active",
        "created_at": entity.created_at,
        "last_updated_at": entity.updated_at,
        "latest_version": entity.latest_version,
        "published_version": entity.published_version,
        "labels": dict(entity.labels),
        "object": entity.kind.value,
    }


def prompt_detail(entity: Entity, version: TemplateVersion) -> dict[str, Any]:
    """A prompt with one version's fields flattened at the top level, as Portkey's retrieve answers."""
    return {
        **prompt_summary(entity),
        "prompt_metadata": dict(entity.metadata),
        "prompt_version": version.version,
        "prompt_version_id": version.version_id,
        "prompt_version_description": version.description,
        "prompt_version_labels": labels_of(entity, version.version),
        "prompt_version_created_at": version.created_at,
        **_version_fields(version),
    }


def version_view(entity: Entity, version: TemplateVersion) -> dict[str, Any]:
    return {
        "id": version.version_id,
        "prompt_id": entity.id,
        "slug": entity.slug,
        "prompt_version": version.version,
        "prompt_version_description": version.description,
        "labels": labels_of(entity, version.version),
        "is_published": entity.published_version == version.version,
        "created_at": version.created_at,
        **_version_fields(version),
        "object": f"{entity.kind.value}_version",
    }


def partial_detail(entity: Entity, version: TemplateVersion) -> dict[str, Any]:
    return {
        "id": entity.id,
        "slug": entity.slug,
        "name": entity.name,
        "collection_id": entity.collection_id,
        "workspace_id": entity.workspace_id,
        "status": entity.metadata.get("status", "active"),
        "string": version.string,
        "variables": list(version.variables),
        "version": version.version,
        "version_id": version.version_id,
        "version_description": version.description,
        "latest_version": entity.latest_version,
        "published_version": entity.published_version,
        "created_at": entity.created_at,
        "last_updated_at": entity.updated_at,
        "object": "partial",
    }


def label_view(label: Label) -> dict[str, Any]:
    return {
        "id": label.id,
        "name": label.name,
        "description": label.description,
        "color_code": label.color_code,
        "workspace_id": label.workspace_id,
        "is_universal": label.builtin,
        "created_at": label.created_at,
        "object": "label",
    }


def page(items: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    return {"object": "list", "total": len(items) if total is None else total, "data": items}
