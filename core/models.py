"""Domain records. Frozen: a stored version never changes, and a record read is never edited in place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Mapping


class Kind(str, Enum):
    """The two versioned template families. They share storage, versioning and publishing."""

    PROMPT = "prompt"
    PARTIAL = "partial"

    @property
    def slug_prefix(self) -> str:
        return "pp" if self is Kind.PROMPT else "pl"


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionContent:
    """What a version holds: the one definition of a version's fields.

    Stores persist `content_record()` and rebuild with `content_from_record()`; the API reads
    `API_VERSION_FIELDS`; nothing else lists these fields.
    """

    string: str
    variables: tuple[str, ...] = ()  # derived from `string` when the version is written
    description: str | None = None
    model: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    virtual_key: str | None = None
    is_raw_template: bool = False
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    template_metadata: Mapping[str, Any] = field(default_factory=dict)
    variables_schema: Mapping[str, Any] | None = None  # a JSON Schema (2020-12) of the variables; None: inferred
    strict_variables: bool = False  # renders check the variables against the schema unless a call says otherwise


CONTENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(VersionContent))
# The API's name where it differs from ours, and the fields a writer never sends.
_API_NAMES = {"description": "version_description"}
_DERIVED_FIELDS = frozenset({"variables"})
API_VERSION_FIELDS: dict[str, str] = {
    _API_NAMES.get(name, name): name for name in CONTENT_FIELDS if name not in _DERIVED_FIELDS
}  # API name -> field name


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionDraft(VersionContent):
    """What a writer supplies for a new version; the store assigns `version`."""

    version_id: str
    created_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateVersion(VersionDraft):
    """One immutable version of a prompt or a partial."""

    kind: Kind
    entity_id: str
    slug: str
    version: int

    @classmethod
    def from_draft(cls, kind: Kind, entity_id: str, slug: str, version: int, draft: VersionDraft) -> TemplateVersion:
        """The stored version: the draft's fields, as written, plus where and which number it is."""
        content = {f.name: getattr(draft, f.name) for f in fields(VersionDraft)}
        return cls(kind=kind, entity_id=entity_id, slug=slug, version=version, **content)

    @property
    def source(self) -> str:
        """How errors name this version: `prompt pp-greet-a1b2c3 version 4`."""
        return f"{self.kind.value} {self.slug} version {self.version}"


def content_record(version: VersionContent) -> dict[str, Any]:
    """A version's content as JSON-able data; None-valued fields are left out."""
    record: dict[str, Any] = {}
    for name in CONTENT_FIELDS:
        value = getattr(version, name)
        if value is None:
            continue
        if isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        record[name] = value
    return record


def content_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """`content_record`'s inverse, as keyword arguments; absent fields take their defaults."""
    content: dict[str, Any] = {name: record[name] for name in CONTENT_FIELDS if record.get(name) is not None}
    if "variables" in content:
        content["variables"] = tuple(content["variables"])
    for flag in ("is_raw_template", "strict_variables"):
        if flag in content:
            content[flag] = bool(content[flag])
    return content


@dataclass(frozen=True, slots=True)
class Entity:
    """The mutable head of a prompt or partial: its name and the pointers into its versions."""

    kind: Kind
    id: str
    slug: str
    name: str
    created_at: str
    updated_at: str
    latest_version: int
    published_version: int | None
    collection_id: str = "default"
    workspace_id: str | None = None
    labels: Mapping[str, int] = field(default_factory=dict)  # label name -> version number
    metadata: Mapping[str, Any] = field(default_factory=dict)
    deleted: bool = False
    # Other systems' ids of a prompt (OpenAI's `pmpt_...`), each naming it as its id or slug does; a partial has none.
    external_ids: tuple[str, ...] = ()


BUILTIN_LABELS: tuple[str, ...] = ("production", "staging", "development")
_BUILTIN_NAMESPACE = uuid.UUID("5f1c2b0e-8d4a-5b7e-9c3f-0a6d2e4b8c17")


def builtin_id(name: str) -> str:
    """The fixed UUID of something that always exists (a built-in label, the default collection): the same in
    every store and every install, so ids are UUIDs as Portkey's spec has them, while names stay accepted."""
    return str(uuid.uuid5(_BUILTIN_NAMESPACE, name))


BUILTIN_LABEL_IDS: dict[str, str] = {builtin_id(f"label:{name}"): name for name in BUILTIN_LABELS}


def builtin_label_name(key: str) -> str | None:
    """The built-in label a name or built-in id names, else None."""
    return key if key in BUILTIN_LABELS else BUILTIN_LABEL_IDS.get(key)


@dataclass(frozen=True, slots=True)
class Label:
    id: str
    name: str
    created_at: str
    description: str | None = None
    color_code: str | None = None
    workspace_id: str | None = None
    builtin: bool = False
    organisation_id: str | None = None
    updated_at: str | None = None  # None until a store keeps it: then the creation time, or the last update's

    @property
    def last_updated_at(self) -> str:
        return self.updated_at or self.created_at


def builtin_label(name: str) -> Label:
    """A built-in label as every store answers it: never stored, always there."""
    return Label(id=builtin_id(f"label:{name}"), name=name, created_at="1970-01-01T00:00:00.000Z",
                 description=f"Built-in {name} label", builtin=True)


DEFAULT_COLLECTION = "default"  # the slug of the collection that always exists, and how prompts store it
DEFAULT_COLLECTION_ID = builtin_id("collection:default")


def is_default_collection(key: str | None) -> bool:
    return key in (DEFAULT_COLLECTION, DEFAULT_COLLECTION_ID)


def stored_collection(key: str) -> str:
    """How an entity keeps its collection: the default one by its slug (as every stored prompt has it)."""
    return DEFAULT_COLLECTION if is_default_collection(key) else key


def shown_collection(key: str) -> str:
    """How answers name an entity's collection: the default one by its UUID, as Portkey's spec types it."""
    return DEFAULT_COLLECTION_ID if is_default_collection(key) else key


@dataclass(frozen=True, slots=True)
class Collection:
    """A folder of prompts and partials (Portkey's collection). `default` always exists and is never stored;
    its slug is `default` and its id DEFAULT_COLLECTION_ID. The slug is fixed at creation; a rename changes
    only the name."""

    id: str
    slug: str
    name: str
    created_at: str
    updated_at: str
    workspace_id: str | None = None
    parent_collection_id: str | None = None

    @property
    def is_default(self) -> bool:
        return self.id == DEFAULT_COLLECTION_ID


def default_collection() -> Collection:
    return Collection(id=DEFAULT_COLLECTION_ID, slug=DEFAULT_COLLECTION, name="Default", created_at="1970-01-01T00:00:00.000Z",
                      updated_at="1970-01-01T00:00:00.000Z")


class Scope(str, Enum):
    """What an API key may do; what each grants is the table in `core.auth`."""

    RENDER = "render"  # render prompts
    COMPLETE = "complete"  # render, and run completions (spends provider money)
    WRITE = "write"  # render, and manage prompts, partials and labels
    ADMIN = "admin"  # everything, provider bindings included


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as stored: only its hash, never the key."""

    key_hash: str
    key_id: str
    name: str
    scopes: frozenset[Scope]
    created_at: str
    prefix: str = ""  # the first characters, so a person can tell keys apart
    revoked: bool = False



PROVIDERS: tuple[str, ...] = ("openai", "azure-openai", "anthropic", "bedrock", "mock")


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A provider binding, as Portkey calls it: which provider, where, and a reference to its secret.

    The secret itself lives in the secret store; `secret_ref` names it and `masked_key` shows its
    shape (`sk-...a1b2`). Neither the key nor the reference is ever returned by the API.
    """

    id: str
    slug: str
    name: str
    provider: str
    created_at: str
    updated_at: str
    secret_ref: str | None = None
    masked_key: str | None = None
    custom_host: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # extra, non-secret request headers
    config: Mapping[str, Any] = field(default_factory=dict)  # provider options: api_version, region, ...
    note: str | None = None


# What an update may change on a binding (its id, slug, provider and created_at are fixed).
VIRTUAL_KEY_CHANGEABLE_FIELDS = frozenset(
    {"name", "note", "custom_host", "headers", "config", "secret_ref", "masked_key", "updated_at"})


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Something that happened, for EventBridge: `source` (e.g. `cuecard.prompts`), `detail_type`
    (e.g. `Prompt Version Created`) and a JSON-able `detail`."""

    source: str
    detail_type: str
    detail: Mapping[str, Any]
