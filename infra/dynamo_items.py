"""The table's item layout: key builders and domain record <-> DynamoDB item.

Prompt/partial `pk = <kind>#<id>` holds `HEAD` (the Entity), `V#<0000000001>` (immutable versions),
`PTR#published` / `PTR#latest` / `PTR#label#<name>` (full copies of the version pointed at, so any
reference resolves in one read) and `VID#<version_id>` (version id -> number). Guard items keep
slugs, label names and collection slugs unique. A prompt's external ids (HEAD's `external_ids`) are
claimed under the same key guards as slugs, `slug#prompt#<external id>`/GUARD with `external_id`
set, so one key names one live prompt, by its slug or an external id. A collection is
`collection#<id>` / `COLLECTION`.
See template.yaml for the two GSIs.
"""

from __future__ import annotations

from typing import Any, Mapping

from core.models import (
    CONTENT_FIELDS,
    ApiKeyRecord,
    Collection,
    Entity,
    Kind,
    Label,
    Scope,
    TemplateVersion,
    content_from_record,
    content_record,
)
from infra.attribute_codec import from_attr, to_attr

Item = dict[str, dict[str, Any]]

HEAD_SK = "HEAD"
GUARD_SK = "GUARD"
LABEL_SK = "LABEL"
API_KEY_SK = "APIKEY"
VERSION_PREFIX = "V#"
POINTER_PREFIX = "PTR#"
PUBLISHED_SK = "PTR#published"
LATEST_SK = "PTR#latest"
LABEL_POINTER_PREFIX = "PTR#label#"
VERSION_ID_PREFIX = "VID#"
ACTOR = "actor"  # who made the change: on HEAD items (the last change) and V# items (the version's author)
LABEL_TYPE = "label"
COLLECTION_SK = "COLLECTION"
COLLECTION_TYPE = "collection"
API_KEY_TYPE = "apikey"


# --- keys ------------------------------------------------------------------------------------


def entity_pk(kind: Kind, entity_id: str) -> str:
    return f"{kind.value}#{entity_id}"


def version_sk(number: int) -> str:
    return f"{VERSION_PREFIX}{number:010d}"


def label_pointer_sk(label: str) -> str:
    return f"{LABEL_POINTER_PREFIX}{label}"


def version_id_sk(version_id: str) -> str:
    return f"{VERSION_ID_PREFIX}{version_id}"


def alias(kind: Kind, slug: str) -> str:
    return f"{kind.value}#{slug}"


def key(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def slug_guard_key(kind: Kind, slug: str) -> Item:
    return key(f"slug#{kind.value}#{slug}", GUARD_SK)


def external_id_claim(kind: Kind, external_id: str, entity_id: str, slug: str) -> Item:
    """The key guard that makes `external_id` name entity `entity_id` (`slug`, kept to name it in a conflict)."""
    return {**slug_guard_key(kind, external_id), "entity_id": s(entity_id), "holder_slug": s(slug),
            "external_id": s(external_id)}


def is_external_claim(guard: Mapping[str, Any]) -> bool:
    """Whether a key guard is an external id's claim (else it is a slug's guard)."""
    return "external_id" in guard


def guard_holder_slug(guard: Mapping[str, Any], key: str) -> str:
    """The slug of the entity a key guard of `key` reserves the key for."""
    return str(guard["holder_slug"]["S"]) if is_external_claim(guard) else key


def label_key(label_id: str) -> Item:
    return key(f"label#{label_id}", LABEL_SK)


def label_name_guard_key(name: str) -> Item:
    return key(f"labelname#{name}", GUARD_SK)


def collection_key(collection_id: str) -> Item:
    return key(f"collection#{collection_id}", COLLECTION_SK)


def collection_slug_guard_key(slug: str) -> Item:
    return key(f"collectionslug#{slug}", GUARD_SK)


def api_key_key(key_hash: str) -> Item:
    return key(f"apikey#{key_hash}", API_KEY_SK)


# --- attribute helpers -------------------------------------------------------------------------


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _optional(item: Item, name: str, value: Any) -> None:
    if value is not None:
        item[name] = to_attr(value, name=name)


def _get(item: Mapping[str, Any], name: str, default: Any = None) -> Any:
    attr = item.get(name)
    return default if attr is None else from_attr(attr)


# --- versions ----------------------------------------------------------------------------------


def version_item(version: TemplateVersion, sk: str, *, actor: str | None = None) -> Item:
    """A V# item (sk = version_sk) or a pointer copy of it (sk = PTR#...); `actor` wrote the version."""
    item: Item = {
        **key(entity_pk(version.kind, version.entity_id), sk),
        "alias": s(alias(version.kind, version.slug)),
        "kind": s(version.kind.value),
        "entity_id": s(version.entity_id),
        "slug": s(version.slug),
        "version": n(version.version),
        "version_id": s(version.version_id),
        "created_at": s(version.created_at),
    }
    for name, value in content_record(version).items():
        item[name] = to_attr(value, name=name)
    _optional(item, ACTOR, actor)
    return item


def pointer_copy(version_attrs: Item, sk: str) -> Item:
    """The same version under another sort key, without a deletion marker."""
    copy = {name: value for name, value in version_attrs.items() if name != "deleted"}
    copy["sk"] = s(sk)
    return copy


def version_from_item(item: Mapping[str, Any]) -> TemplateVersion:
    return TemplateVersion(
        kind=Kind(_get(item, "kind")),
        entity_id=_get(item, "entity_id"),
        slug=_get(item, "slug"),
        version=_get(item, "version"),
        version_id=_get(item, "version_id"),
        created_at=_get(item, "created_at"),
        **content_from_record({name: _get(item, name) for name in CONTENT_FIELDS}),
    )


def is_deleted(item: Mapping[str, Any]) -> bool:
    return bool(_get(item, "deleted", False))


# --- entities ----------------------------------------------------------------------------------


def head_item(entity: Entity, *, actor: str | None = None) -> Item:
    """A new HEAD: version 1 is both latest and published; `revision` counts HEAD writes, `actor` made the last."""
    item: Item = {
        **key(entity_pk(entity.kind, entity.id), HEAD_SK),
        "alias": s(alias(entity.kind, entity.slug)),
        "entity_type": s(entity.kind.value),
        "entity_sort": s(f"{entity.created_at}#{entity.id}"),
        "kind": s(entity.kind.value),
        "entity_id": s(entity.id),
        "slug": s(entity.slug),
        "name": s(entity.name),
        "collection_id": s(entity.collection_id),
        "created_at": s(entity.created_at),
        "updated_at": s(entity.updated_at),
        "latest_version": n(1),
        "published_version": n(1),
        "labels": {"M": {}},
        "metadata": to_attr(dict(entity.metadata), name="metadata"),
        "deleted": {"BOOL": False},
        "revision": n(1),
    }
    _optional(item, "workspace_id", entity.workspace_id)
    _optional(item, "external_ids", list(entity.external_ids) or None)  # absent: none
    _optional(item, ACTOR, actor)
    return item


def entity_from_item(item: Mapping[str, Any]) -> Entity:
    return Entity(
        kind=Kind(_get(item, "kind")),
        id=_get(item, "entity_id"),
        slug=_get(item, "slug"),
        name=_get(item, "name"),
        created_at=_get(item, "created_at"),
        updated_at=_get(item, "updated_at"),
        latest_version=_get(item, "latest_version"),
        published_version=_get(item, "published_version"),
        collection_id=_get(item, "collection_id", "default"),
        workspace_id=_get(item, "workspace_id"),
        labels=_get(item, "labels", {}),
        metadata=_get(item, "metadata", {}),
        deleted=bool(_get(item, "deleted", False)),
        external_ids=tuple(_get(item, "external_ids", ())),
    )


def revision_of(item: Mapping[str, Any]) -> int:
    return int(_get(item, "revision", 0))


def actor_of(item: Mapping[str, Any]) -> str | None:
    """Who made the item's last change (HEAD) or wrote it (V#); None on items older than actor recording."""
    return _get(item, ACTOR)


# --- labels ------------------------------------------------------------------------------------


def label_item(label: Label) -> Item:
    item: Item = {
        **label_key(label.id),
        "entity_type": s(LABEL_TYPE),
        "entity_sort": s(f"{label.created_at}#{label.id}"),
        "label_id": s(label.id),
        "name": s(label.name),
        "created_at": s(label.created_at),
    }
    _optional(item, "description", label.description)
    _optional(item, "color_code", label.color_code)
    _optional(item, "workspace_id", label.workspace_id)
    _optional(item, "organisation_id", label.organisation_id)
    item["last_updated_at"] = s(label.last_updated_at)
    return item


def label_from_item(item: Mapping[str, Any]) -> Label:
    return Label(
        id=_get(item, "label_id"),
        name=_get(item, "name"),
        created_at=_get(item, "created_at"),
        description=_get(item, "description"),
        color_code=_get(item, "color_code"),
        workspace_id=_get(item, "workspace_id"),
        organisation_id=_get(item, "organisation_id"),
        updated_at=_get(item, "last_updated_at") or _get(item, "created_at"),
    )


# --- collections -------------------------------------------------------------------------------


def collection_item(collection: Collection) -> Item:
    item: Item = {
        **collection_key(collection.id),
        "entity_type": s(COLLECTION_TYPE),
        "entity_sort": s(f"{collection.created_at}#{collection.id}"),
        "collection_id": s(collection.id),
        "slug": s(collection.slug),
        "name": s(collection.name),
        "created_at": s(collection.created_at),
        "updated_at": s(collection.updated_at),
    }
    _optional(item, "workspace_id", collection.workspace_id)
    _optional(item, "parent_collection_id", collection.parent_collection_id)
    return item


def collection_from_item(item: Mapping[str, Any]) -> Collection:
    return Collection(
        id=_get(item, "collection_id"),
        slug=_get(item, "slug"),
        name=_get(item, "name"),
        created_at=_get(item, "created_at"),
        updated_at=_get(item, "updated_at"),
        workspace_id=_get(item, "workspace_id"),
        parent_collection_id=_get(item, "parent_collection_id"),
    )


def string_set(item: Mapping[str, Any], name: str) -> set[str]:
    """A string-set attribute (DynamoDB drops an emptied set, so absent means empty)."""
    return set(item.get(name, {}).get("SS", []))


# --- API keys ----------------------------------------------------------------------------------


def api_key_item(record: ApiKeyRecord) -> Item:
    return {
        **api_key_key(record.key_hash),
        "entity_type": s(API_KEY_TYPE),
        "entity_sort": s(f"{record.created_at}#{record.key_id}"),
        "key_hash": s(record.key_hash),
        "key_id": s(record.key_id),
        "name": s(record.name),
        "scopes": {"L": [s(scope.value) for scope in sorted(record.scopes, key=lambda scope: scope.value)]},
        "created_at": s(record.created_at),
        "prefix": s(record.prefix),
        "revoked": {"BOOL": record.revoked},
    }


def api_key_from_item(item: Mapping[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_hash=_get(item, "key_hash"),
        key_id=_get(item, "key_id"),
        name=_get(item, "name"),
        scopes=frozenset(Scope(scope) for scope in _get(item, "scopes", [])),
        created_at=_get(item, "created_at"),
        prefix=_get(item, "prefix", ""),
        revoked=bool(_get(item, "revoked", False)),
    )
