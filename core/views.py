"""The JSON shapes Portkey's API answers with, built from domain records."""

from __future__ import annotations

from typing import Any, Mapping

from core.content_hash import version_hash
from core.models import CONTENT_FIELDS, Collection, Entity, Kind, Label, TemplateVersion, shown_collection
from core.variables import version_schema

_PROMPT_ONLY_FIELDS = ("variables_schema", "strict_variables")


def _version_fields(version: TemplateVersion) -> dict[str, Any]:
    """A version's content as the API shows it; the description is shown under the caller's own name. A prompt's
    `variables_schema` is its effective one (`variables_schema_inferred` says whether it was inferred); every
    version carries its `content_hash`."""
    shown = {name: getattr(version, name) for name in CONTENT_FIELDS if name != "description"}
    for name, value in shown.items():
        if isinstance(value, Mapping):
            shown[name] = dict(value)
        elif isinstance(value, tuple):
            shown[name] = list(value)
    shown["is_raw_template"] = version.is_raw_template  # a boolean, as Portkey's spec says
    for name in ("tools", "functions"):  # arrays in the spec: never null
        if shown[name] is None:
            shown[name] = []
    if version.kind is Kind.PROMPT:
        shown["variables_schema"] = version_schema(version)
        shown["variables_schema_inferred"] = version.variables_schema is None
    else:
        for name in _PROMPT_ONLY_FIELDS:
            del shown[name]
    shown["content_hash"] = version_hash(version)
    return shown


def labels_of(entity: Entity, version: int) -> list[str]:
    return sorted(name for name, number in entity.labels.items() if number == version)


def _label_id(entity: Entity, version: int, label_ids: Mapping[str, str]) -> str | None:
    """Portkey's one `label_id` of a version: the id of the first (by name) of its labels, or None."""
    names = labels_of(entity, version)
    return label_ids.get(names[0], names[0]) if names else None


# Portkey has version statuses `active` and `archived`; cuecard archives no version.
VERSION_STATUS = "active"


def prompt_summary(entity: Entity) -> dict[str, Any]:
    return {
        "id": entity.id,
        "slug": entity.slug,
        "name": entity.name,
        "collection_id": shown_collection(entity.collection_id),
        "workspace_id": entity.workspace_id,
        "status": "active",
        "created_at": entity.created_at,
        "last_updated_at": entity.updated_at,
        "latest_version": entity.latest_version,
        "published_version": entity.published_version,
        "labels": dict(entity.labels),
        "external_ids": list(entity.external_ids),
        "object": entity.kind.value,
    }


def prompt_list_item(entity: Entity, shown: TemplateVersion) -> dict[str, Any]:
    """A prompt in a list: the summary plus Portkey's `model`, the shown (published) version's."""
    return {**prompt_summary(entity), "model": shown.model}


def prompt_detail(entity: Entity, version: TemplateVersion, label_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A prompt with one version's fields flattened at the top level: Portkey's `Prompt` object, as its
    retrieve (and its versions.retrieve) answers. `label_ids`: label name -> id."""
    return {
        **prompt_summary(entity),
        "prompt_metadata": dict(entity.metadata),
        "prompt_version": version.version,
        "prompt_version_id": version.version_id,
        "prompt_version_status": VERSION_STATUS,
        "prompt_version_description": version.description,
        "prompt_version_label_id": _label_id(entity, version.version, label_ids or {}),
        "prompt_version_labels": labels_of(entity, version.version),
        "prompt_version_created_at": version.created_at,
        **_version_fields(version),
    }


def prompt_version_detail(entity: Entity, version: TemplateVersion, label_ids: Mapping[str, str]) -> dict[str, Any]:
    """versions.retrieve: Portkey's `Prompt` object for this version (`id` is the prompt's), plus cuecard's
    `version_id`, `labels` and `is_published`."""
    return {
        **prompt_detail(entity, version, label_ids),
        "version_id": version.version_id,
        "labels": labels_of(entity, version.version),  # the prompt's label map is under `prompt_version_labels`
        "is_published": entity.published_version == version.version,
    }


def version_view(entity: Entity, version: TemplateVersion, label_ids: Mapping[str, str]) -> dict[str, Any]:
    """An item of versions.list: Portkey's `PromptVersionSummary` (a prompt's) or `PromptPartialVersion`
    (a partial's), plus cuecard's flat version fields."""
    content = _version_fields(version)
    shown = {
        "id": version.version_id,
        "prompt_id": entity.id,
        "slug": entity.slug,
        "prompt_version": version.version,
        "prompt_version_description": version.description,
        "prompt_description": version.description,
        "prompt_template": {name: value for name, value in content.items() if name != "variables"},
        "label_id": _label_id(entity, version.version, label_ids),
        "labels": labels_of(entity, version.version),
        "is_published": entity.published_version == version.version,
        "status": VERSION_STATUS,
        "prompt_version_status": VERSION_STATUS,
        "created_at": version.created_at,
        **content,
        "object": entity.kind.value,
    }
    if entity.kind is Kind.PARTIAL:
        shown.update(
            prompt_partial_id=entity.id,
            prompt_partial_version_id=version.version_id,
            version=str(version.version),  # a string in Portkey's spec (PromptPartialVersion)
            description=version.description,
        )
    return shown


def partial_detail(entity: Entity, version: TemplateVersion) -> dict[str, Any]:
    return {
        "id": entity.id,
        "slug": entity.slug,
        "name": entity.name,
        "collection_id": shown_collection(entity.collection_id),
        "workspace_id": entity.workspace_id,
        "status": entity.metadata.get("status", "active"),
        "string": version.string,
        "variables": list(version.variables),
        "version": version.version,
        "version_id": version.version_id,
        "prompt_partial_version_id": version.version_id,
        "version_description": version.description,
        "content_hash": version_hash(version),
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
        "organisation_id": label.organisation_id,
        "workspace_id": label.workspace_id,
        "is_universal": label.builtin,
        "status": "active",
        "created_at": label.created_at,
        "last_updated_at": label.last_updated_at,
        "object": "label",
    }


def page(items: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    return {"object": "list", "total": len(items) if total is None else total, "data": items}


def collection_view(collection: Collection, *, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Portkey's Collection (CollectionWithDetails when `details` are given)."""
    view: dict[str, Any] = {
        "id": collection.id,
        "name": collection.name,
        "slug": collection.slug,
        "workspace_id": collection.workspace_id,
        "parent_collection_id": collection.parent_collection_id,
        "is_default": collection.is_default,
        "status": "active",
        "created_at": collection.created_at,
        "last_updated_at": collection.updated_at,
        "object": "collection",
    }
    if details is not None:
        view["collection_details"] = dict(details)
    return view


def child_collection_view(collection: Collection, details: Mapping[str, Any]) -> dict[str, Any]:
    """Portkey's ChildCollection."""
    return {"id": collection.id, "name": collection.name, "last_updated_at": collection.updated_at,
            "collection_details": dict(details)}
