"""The prompt service: resolves, renders and manages versioned prompts through the store ports."""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from core import views
from core.admin_requests import (
    CreateLabel,
    CreatePartial,
    CreatePrompt,
    LabelVersion,
    ListQuery,
    MakeDefault,
    PublishPrompt,
    UpdateLabel,
    UpdatePartial,
    UpdatePrompt,
    parse_body,
    parse_query,
)
from core.errors import (
    InvalidReference,
    InvalidRequest,
    NotFound,
    PartialInUse,
    RenderedJSONInvalid,
    TemplateError,
    VersionNotFound,
    VirtualKeyNotFound,
    external_id_taken,
)
from core.hyperparameters import PromptRequest, merge_parameters, parse_request_body, validate_parameters
from core.models import API_VERSION_FIELDS, Entity, Kind, Label, TemplateVersion, VersionDraft, stored_collection
from core.ports import CollectionStore, LabelStore, TemplateStore, VirtualKeyStore
from core.references import Reference, check_external_ids, check_label_name, parse_reference
from core.templating import (
    DEFAULT_LIMITS,
    RenderLimits,
    check_prompt_template,
    collect_partials,
    partial_tags,
    render_chat,
    render_raw,
    render_text,
    template_kind,
    template_variables,
)
from core.ttl_cache import TtlCache
from core.variables import check_compatible, check_variables_schema, render_variables

# A version's fields by their API names (core.models defines them); an update without `patch` must bring
# the first two.
VERSION_FIELDS = tuple(API_VERSION_FIELDS)
REQUIRED_UPDATE_FIELDS = ("string", "parameters")
# Portkey's spec: `name`, `collection_id`, `version_description` and `virtual_key` "can always be updated
# independently without affecting versioning". The first two (and workspace_id, prompt_metadata, external_ids)
# are the head's and never make a version. The last two live on a version, and versions are immutable: sent
# without any other version field they make a new version copying the latest (as `patch: true` would).
HEAD_FIELDS = {"name": "name", "collection_id": "collection_id", "workspace_id": "workspace_id",
               "prompt_metadata": "metadata", "external_ids": "external_ids"}  # API name -> Entity field
ANNOTATION_FIELDS = ("virtual_key", "version_description")
_TOOL_FIELDS = ("tools", "tool_choice", "functions")
_MAX_VERSION_DIGITS = 12  # as core.references: version numbers stay below 10**12
_MAX_LISTED_DEPENDENTS = 20


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_slug(kind: Kind, name: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:12].strip("-") or kind.value
    return f"{kind.slug_prefix}-{stem}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered prompt: the OpenAI request body, the version that produced it, and the request."""

    version: TemplateVersion
    body: dict[str, Any]
    request: PromptRequest


class PromptService:
    def __init__(
        self,
        templates: TemplateStore,
        labels: LabelStore,
        *,
        now: Callable[[], str] = utc_now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        virtual_keys: VirtualKeyStore | None = None,
        render_limits: RenderLimits = DEFAULT_LIMITS,
        name_cache_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        collections: CollectionStore | None = None,
    ) -> None:
        self._collections = collections  # None: a collection_id is stored unchecked
        self._templates = templates
        self._labels = labels
        self._now = now
        self._new_id = new_id
        self._virtual_keys = virtual_keys  # None: a prompt's virtual_key is stored unchecked
        self._render_limits = render_limits  # per render, partial lookups included
        # `{{>name}}` lookups, for `name_cache_ttl` seconds (0: none cached): a prompt's collection by its
        # id, and a collection's partial names (name -> id of the oldest partial of that name). Writes
        # through this service drop the entries they change; other processes see them when they expire.
        self._prompt_collections: TtlCache[str, str] = TtlCache(name_cache_ttl, 4096, clock)
        self._partial_names: TtlCache[str, Mapping[str, str]] = TtlCache(name_cache_ttl, 1024, clock)

    # --- inference ---------------------------------------------------------------------------

    def render(self, reference: str, body: Any) -> Rendered:
        ref = parse_reference(reference)
        request = parse_request_body(body)
        version = self._templates.resolve(Kind.PROMPT, ref)
        return Rendered(version, self.build_request(version, request), request)

    def build_request(self, version: TemplateVersion, request: PromptRequest) -> dict[str, Any]:
        """Saved model and parameters, the rendered messages (or prompt), then the call's overrides."""
        defaults: dict[str, Any] = {}
        if version.model:
            defaults["model"] = version.model
        defaults.update(version.parameters)
        for field in _TOOL_FIELDS:
            value = getattr(version, field)
            if value is not None and value != []:  # an empty list means none; providers refuse `"tools": []`
                defaults[field] = value
        if "messages" in request.overrides:  # the caller's messages: nothing is rendered, so nothing is checked
            return merge_parameters(defaults, request.overrides)
        variables = render_variables(version, request.variables, strict=request.strict)
        key, rendered = self._render_template(version, variables)
        defaults[key] = rendered
        return merge_parameters(defaults, request.overrides)

    def _render_template(self, version: TemplateVersion, variables: Mapping[str, Any]) -> tuple[str, Any]:
        budget = self._render_limits.budget()

        def fetch(tag: str) -> tuple[str, str] | None:
            return self._fetch_partial(tag, version)

        partials = collect_partials(version.string, variables, fetch, raw=version.is_raw_template, budget=budget)
        if version.is_raw_template:
            messages = render_raw(version.string, variables, partials, source=version.source, budget=budget)
            if not isinstance(messages, list) or not all(isinstance(message, dict) for message in messages):
                raise RenderedJSONInvalid(
                    f"{version.source} is a raw template and must render to a JSON array of message objects."
                )
            return "messages", messages
        if template_kind(version.string) == "chat":
            return "messages", render_chat(version.string, variables, partials, budget=budget)
        return "prompt", render_text(version.string, variables, partials, budget=budget)

    def _fetch_partial(self, tag: str, rendering: TemplateVersion) -> tuple[str, str] | None:
        """A partial by tag: by id, then by slug, then by name within the collection of the prompt being
        rendered (`rendering`; nested partials too), any `@N`/`@latest`/`@label` selector applying. None (it
        renders empty) when nothing matches. Id and slug misses are cached by the store (infra/cache.py),
        names by this service, so unknown tags cost no store read while the caches live."""
        try:
            ref: Reference | None = parse_reference(tag, param="partial")
        except (InvalidReference, ValueError):  # ValueError: a version number too long for int()
            ref = None  # no id or slug, but it may be a name (`{{>Style guide}}`)
        if ref is not None:
            try:
                version = self._templates.resolve(Kind.PARTIAL, ref)
                return f"{version.entity_id}@{version.version}", version.string
            except NotFound:
                pass
        partial_id = self._partial_by_name(ref.key if ref is not None else tag.strip(), rendering)
        if partial_id is None:
            return None
        by_id = dataclasses.replace(ref, key=partial_id) if ref is not None else Reference(partial_id)
        try:
            version = self._templates.resolve(Kind.PARTIAL, by_id)
        except NotFound:
            return None
        return f"{version.entity_id}@{version.version}", version.string

    def _partial_by_name(self, name: str, rendering: TemplateVersion) -> str | None:
        """The id of the oldest live partial called `name` in the rendered prompt's collection."""
        if not name:
            return None
        try:
            collection = self._prompt_collections.get_or_load(
                rendering.entity_id, lambda: self._templates.get_entity(rendering.kind, rendering.entity_id).collection_id)
        except NotFound:
            return None  # deleted while rendering
        return self._partial_names.get_or_load(collection, lambda: _names_in(self._templates, collection)).get(name)

    # --- prompts -------------------------------------------------------------------------------

    def create_prompt(self, body: Any) -> dict[str, Any]:
        request = parse_body(CreatePrompt, body)
        draft = self._draft(request.model_dump(include=set(VERSION_FIELDS)), check_chat=True)
        external_ids = check_external_ids(request.external_ids or [])
        self._check_virtual_key(request.virtual_key)
        self._check_collection(request.collection_id)
        entity = self._new_entity(Kind.PROMPT, request.name, request.slug, request.collection_id, request.workspace_id,
                                  request.prompt_metadata or {})
        version = self._templates.create(Kind.PROMPT, dataclasses.replace(entity, external_ids=external_ids), draft)
        return {"id": entity.id, "slug": entity.slug, "version_id": version.version_id, "version": 1, "object": "prompt"}

    def update_prompt(self, key: str, body: Any) -> dict[str, Any]:
        """Head fields change the head; version fields make one new version (see HEAD_FIELDS above).

        Without `patch`, an update that sends a template field (any version field but `virtual_key` and
        `version_description`) replaces the whole version, so it must carry `string` and `parameters`
        (Portkey's strict mode). With `patch: true`, or when only `virtual_key` and/or
        `version_description` are sent, the fields left out are copied from the latest version.
        """
        request = parse_body(UpdatePrompt, body)
        given = request.model_fields_set
        sent = {field: getattr(request, field) for field in VERSION_FIELDS if field in given}
        changes = {target: getattr(request, source) for source, target in HEAD_FIELDS.items()
                   if getattr(request, source) is not None}
        versioned = [field for field, value in sent.items() if value is not None]
        if not versioned and not changes:
            raise InvalidRequest(
                "An update must change something: send name, collection_id, workspace_id, prompt_metadata or "
                "external_ids (no new version), virtual_key or version_description (a new version copying the latest), "
                "or string and parameters (a new version).",
                param="string", code="missing_required_parameter",
            )
        copy_forward = request.patch or all(field in ANNOTATION_FIELDS for field in versioned)
        if versioned and not copy_forward:
            missing = [field for field in REQUIRED_UPDATE_FIELDS if getattr(request, field) is None]
            if missing:
                raise InvalidRequest(_incomplete_update_message(missing, versioned), param=missing[0],
                                     code="missing_required_parameter")
        self._check_virtual_key(sent.get("virtual_key"))  # one copied forward is not re-checked
        self._check_collection(changes.get("collection_id"))
        if "collection_id" in changes:
            changes["collection_id"] = stored_collection(changes["collection_id"])
        if "external_ids" in changes:
            changes["external_ids"] = check_external_ids(changes["external_ids"])
            if versioned:  # the version is written first: refuse, before it, ids that are plainly taken
                self._check_external_ids_free(key, changes["external_ids"])

        def build(latest: TemplateVersion) -> VersionDraft:
            fields = dict(sent)
            if copy_forward:
                for field in VERSION_FIELDS:
                    # A description belongs to the version it describes; it is never copied forward.
                    if fields.get(field) is None and field != "version_description":
                        fields[field] = _version_field(latest, field)
            # A string copied forward was accepted when it was written: it is not re-judged.
            return self._draft(fields, check_chat="string" in sent)

        version = self._templates.append_version(Kind.PROMPT, key, build) if versioned else None
        head = self._templates.update_entity(Kind.PROMPT, version.entity_id if version else key, changes) \
            if changes else None
        if head is not None and "collection_id" in changes:
            moved = head.id
            self._prompt_collections.invalidate(lambda entity_id, _collection: entity_id == moved)
        if version is None:  # no new version: the answer names the latest, which the update left as it was
            head = head or self._templates.get_entity(Kind.PROMPT, key)
            version = self._templates.get_version(Kind.PROMPT, head.id, head.latest_version)
        return {
            "id": version.entity_id,
            "slug": version.slug,
            "prompt_version_id": version.version_id,
            "version": version.version,
            "object": "prompt",
        }

    def _check_external_ids_free(self, key: str, external_ids: tuple[str, ...]) -> None:
        """ExternalIdTaken if another live prompt holds one of `external_ids` now. Only a courtesy before a write
        that cannot be undone: the store's claim, in the head's own write, is what keeps them unique."""
        owner = self._templates.get_entity(Kind.PROMPT, key).id
        for external_id in external_ids:
            try:
                holder = self._templates.get_entity(Kind.PROMPT, external_id)
            except NotFound:
                continue
            if holder.id != owner:
                raise external_id_taken(external_id, holder.slug)

    def get_prompt(self, key: str, version: str | None = None) -> dict[str, Any]:
        entity = self._templates.get_entity(Kind.PROMPT, key)
        number = _version_number(version, entity) if version is not None else (entity.published_version or entity.latest_version)
        return views.prompt_detail(entity, self._templates.get_version(Kind.PROMPT, entity.id, number),
                                   self._label_ids())

    def list_prompts(self, query: Mapping[str, str]) -> dict[str, Any]:
        options = parse_query(ListQuery, dict(query))
        entities = self._filtered(Kind.PROMPT, options)
        start = options.current_page * options.page_size
        items = [views.prompt_list_item(entity, self._shown_version(entity))
                 for entity in entities[start : start + options.page_size]]
        return views.page(items, total=len(entities))

    def delete_prompt(self, key: str) -> dict[str, Any]:
        self._templates.delete(Kind.PROMPT, key)
        return {}

    def publish_prompt(self, key: str, body: Any) -> dict[str, Any]:
        """Publishes a version; 409 `incompatible_variables` if callers of the published one would break,
        unless `force`."""
        request = parse_body(PublishPrompt, body)
        if not request.force:
            entity = self._templates.get_entity(Kind.PROMPT, key)
            target = self._templates.get_version(Kind.PROMPT, entity.id, request.version)
            self._check_move(entity, entity.published_version, target, f"Publishing version {target.version}")
        self._templates.publish(Kind.PROMPT, key, request.version)
        return {}

    def list_versions(self, kind: Kind, key: str) -> dict[str, Any]:
        entity = self._templates.get_entity(kind, key)
        versions = self._templates.list_versions(kind, entity.id)
        label_ids = self._label_ids()
        return views.page([views.version_view(entity, version, label_ids) for version in versions])

    def get_version(self, key: str, version_ref: str) -> dict[str, Any]:
        entity = self._templates.get_entity(Kind.PROMPT, key)
        return views.prompt_version_detail(entity, self._find_version(entity, version_ref), self._label_ids())

    def label_version(self, key: str, version_ref: str, body: Any) -> dict[str, Any]:
        """Puts a label on a version (409 `incompatible_variables` if callers of the labelled version would
        break, unless `force`), or with `label_id: null` takes every label off it."""
        request = parse_body(LabelVersion, body)
        label = self._labels.get_label(request.label_id) if request.label_id is not None else None
        entity = self._templates.get_entity(Kind.PROMPT, key)
        version = self._find_version(entity, version_ref)
        if label is not None:
            if not request.force:
                self._check_move(entity, entity.labels.get(label.name), version,
                                 f"Moving label {label.name} to version {version.version}")
            self._templates.set_label(entity.id, version.version, label.name)
            return {}
        for name, number in entity.labels.items():  # SDK versions.update(label_id=None): unlabel this version
            if number == version.version:
                self._templates.remove_label(entity.id, name)
        return {}

    def diff_versions(self, key: str, from_ref: str | None, to_ref: str | None) -> dict[str, Any]:
        """`GET /prompts/{id}/diff?from=..&to=..`: each side a version number, `latest` or a label, resolved
        as `key@side` (core.references); the answer is core.diffs'."""
        entity = self._templates.get_entity(Kind.PROMPT, key)
        sides = []
        for param, selector in (("from", from_ref), ("to", to_ref)):
            if not selector:
                raise InvalidRequest(f"`{param}` is required: a version number, `latest` or a label.", param=param)
            if "@" in selector:
                raise InvalidReference(f"`{param}` is a version number, `latest` or a label, without '@'.",
                                       param=param)
            if selector.isascii() and selector.isdigit():
                selector = selector.lstrip("0") or "0"  # `007` is version 7 (as the path's `id@007`)
            ref = parse_reference(f"{entity.slug}@{selector}", param=param)
            sides.append((f"{entity.slug}@{selector}", self._templates.resolve(Kind.PROMPT, ref)))
        (old_name, old), (new_name, new) = sides
        from core import diffs  # difflib, for this route only: off the cold path

        return diffs.diff_versions(old, new, old_name=old_name, new_name=new_name)

    def _check_move(self, entity: Entity, current: int | None, target: TemplateVersion, action: str) -> None:
        """The breaking-change guard of a pointer (published, a label) at version `current` moving to `target`."""
        if current is not None and current != target.version:
            check_compatible(self._templates.get_version(Kind.PROMPT, entity.id, current), target, action=action)

    def _find_version(self, entity: Entity, version_ref: str) -> TemplateVersion:
        if version_ref.isascii() and version_ref.isdigit():
            return self._templates.get_version(entity.kind, entity.id, _version_number(version_ref, entity))
        return self._templates.get_version_by_id(entity.kind, entity.id, version_ref)

    # --- partials ------------------------------------------------------------------------------

    def create_partial(self, body: Any) -> dict[str, Any]:
        request = parse_body(CreatePartial, body)
        draft = self._draft({"string": request.string, "version_description": request.version_description})
        self._check_collection(request.collection_id)
        entity = self._new_entity(Kind.PARTIAL, request.name, request.slug, request.collection_id, request.workspace_id, {})
        try:
            version = self._templates.create(Kind.PARTIAL, entity, draft)
        finally:
            self._forget_partial_names()
        return {"id": entity.id, "slug": entity.slug, "version_id": version.version_id, "version": 1, "object": "partial"}

    def update_partial(self, key: str, body: Any) -> dict[str, Any]:
        request = parse_body(UpdatePartial, body)
        entity = self._templates.get_entity(Kind.PARTIAL, key)
        answer: dict[str, Any] = {"id": entity.id, "slug": entity.slug, "object": "partial"}
        description = request.version_description or request.description
        if request.string is not None or description is not None:
            # A description is a version's (Portkey's create names it `version_description`, its partial
            # versions `description`); versions are immutable, so a description alone is a new version of the
            # latest string, answered with its `prompt_partial_version_id` as Portkey's update answers.
            version = self._templates.append_version(
                Kind.PARTIAL, entity.id,
                lambda latest: self._draft({"string": request.string if request.string is not None else latest.string,
                                            "version_description": description}))
            answer.update(version_id=version.version_id, prompt_partial_version_id=version.version_id,
                          version=version.version)
        changes: dict[str, Any] = {}
        if request.name is not None:
            changes["name"] = request.name
        if request.status is not None:
            changes["metadata"] = {**entity.metadata, "status": request.status}
        if changes:
            try:
                self._templates.update_entity(Kind.PARTIAL, entity.id, changes)
            finally:
                self._forget_partial_names()
        return answer

    def get_partial(self, key: str, version: str | None = None) -> dict[str, Any]:
        entity = self._templates.get_entity(Kind.PARTIAL, key)
        number = _version_number(version, entity) if version is not None else (entity.published_version or entity.latest_version)
        return views.partial_detail(entity, self._templates.get_version(Kind.PARTIAL, entity.id, number))

    def list_partials(self, query: Mapping[str, str]) -> dict[str, Any]:
        options = parse_query(ListQuery, dict(query))
        entities = self._filtered(Kind.PARTIAL, options)
        start = options.current_page * options.page_size
        details = []
        for entity in entities[start : start + options.page_size]:
            details.append(views.partial_detail(entity, self._shown_version(entity)))
        return views.page(details, total=len(entities))

    def delete_partial(self, key: str, force: bool = False) -> dict[str, Any]:
        """Deletes a partial; 409 while the published, latest or a labelled version of a live prompt or
        partial includes it (`{{>slug}}`, `{{>slug@N}}`, `{{>id}}`, or `{{>name}}` from its own collection
        when the name means this partial), unless `force`. `{{>>var}}` names its partial at render time, so
        it is never counted as a use."""
        if not force:
            entity = self._templates.get_entity(Kind.PARTIAL, key)
            dependents = self._dependents(entity)
            if dependents:
                listed = "; ".join(dependents[:_MAX_LISTED_DEPENDENTS])
                more = len(dependents) - _MAX_LISTED_DEPENDENTS
                raise PartialInUse(
                    f"partial {entity.slug} is still used by {listed}{f'; and {more} more' if more > 0 else ''}. "
                    "Remove it from those versions first, or delete with ?force=true (they then render it empty).",
                    param="partial_id",
                )
        try:
            self._templates.delete(Kind.PARTIAL, key)
        finally:
            self._forget_partial_names()
        return {}

    def _forget_partial_names(self) -> None:
        """After a partial write (rare): every cached collection's names, as a name may have moved."""
        self._partial_names.invalidate()

    def _dependents(self, partial: Entity) -> list[str]:
        """Which pointed-at versions of live prompts and partials include `partial`, as
        `prompt <slug> version <N> (published, label production)`."""
        partials = self._templates.list_entities(Kind.PARTIAL)
        keys = {entity.slug for entity in partials} | {entity.id for entity in partials}
        owner = next((entity for entity in partials
                      if entity.collection_id == partial.collection_id and entity.name == partial.name), partial)
        # `{{>name}}` means this partial in its collection unless an older one holds the name or the name is
        # some partial's slug or id (which win).
        name = partial.name if owner.id == partial.id and partial.name not in keys else None
        found = []
        for kind in (Kind.PROMPT, Kind.PARTIAL):
            for entity in partials if kind is Kind.PARTIAL else self._templates.list_entities(kind):
                if entity.id == partial.id:
                    continue
                by_name = name if entity.collection_id == partial.collection_id else None
                for number, pointers in _pointed_versions(entity).items():
                    version = self._templates.get_version(kind, entity.id, number)
                    if _includes(version, partial, by_name):
                        found.append(f"{kind.value} {entity.slug} version {number} ({', '.join(pointers)})")
        return found

    def publish_partial(self, key: str, body: Any) -> dict[str, Any]:
        request = parse_body(MakeDefault, body)
        self._templates.publish(Kind.PARTIAL, key, request.version)
        return {}

    # --- labels --------------------------------------------------------------------------------

    def create_label(self, body: Any) -> dict[str, Any]:
        request = parse_body(CreateLabel, body)
        label = Label(
            id=self._new_id(),
            name=check_label_name(request.name),
            created_at=self._now(),
            description=request.description,
            color_code=request.color_code,
            workspace_id=request.workspace_id,
            organisation_id=request.organisation,
        )
        created = self._labels.create_label(label)
        return {"id": created.id, "name": created.name, "object": "label"}

    def list_labels(self, query: Mapping[str, str]) -> dict[str, Any]:
        options = parse_query(ListQuery, dict(query))
        found = [label for label in self._labels.list_labels() if options.in_workspace(label.workspace_id)]
        if options.search:
            needle = options.search.casefold()
            found = [label for label in found if needle in label.name.casefold()]
        labels = [views.label_view(label) for label in found]
        start = options.current_page * options.page_size
        return views.page(labels[start : start + options.page_size], total=len(labels))

    def get_label(self, label_id: str) -> dict[str, Any]:
        return views.label_view(self._labels.get_label(label_id))

    def update_label(self, label_id: str, body: Any) -> dict[str, Any]:
        request = parse_body(UpdateLabel, body)
        name = check_label_name(request.name) if request.name is not None else None
        label = self._labels.get_label(label_id)
        if label.builtin:
            raise InvalidRequest(f"The built-in label {label.name!r} cannot be changed.", code="builtin_label")
        self._labels.update_label(label.id, name=name, description=request.description, color_code=request.color_code)
        return {}

    def delete_label(self, label_id: str) -> dict[str, Any]:
        label = self._labels.get_label(label_id)
        if label.builtin:
            raise InvalidRequest(f"The built-in label {label.name!r} cannot be deleted.", code="builtin_label")
        self._labels.delete_label(label.id)
        return {}

    # --- shared --------------------------------------------------------------------------------

    def _shown_version(self, entity: Entity) -> TemplateVersion:
        """The version a list shows: the published one, else the latest."""
        return self._templates.get_version(entity.kind, entity.id, entity.published_version or entity.latest_version)

    def _label_ids(self) -> dict[str, str]:
        """Label name -> id, for the `label_id` fields of versions."""
        return {label.name: label.id for label in self._labels.list_labels()}

    def _filtered(self, kind: Kind, options: ListQuery) -> list[Entity]:
        collection = stored_collection(options.collection_id) if options.collection_id is not None else None
        entities = self._templates.list_entities(kind, collection_id=collection)
        entities = [e for e in entities if options.in_workspace(e.workspace_id)]
        if options.search:
            needle = options.search.casefold()
            entities = [e for e in entities if needle in e.name.casefold() or needle in e.slug]
        return entities

    def _new_entity(self, kind: Kind, name: str, slug: str | None, collection_id: str, workspace_id: str | None,
                    metadata: Mapping[str, Any]) -> Entity:
        now = self._now()
        return Entity(
            kind=kind,
            id=self._new_id(),
            slug=slug or make_slug(kind, name),
            name=name,
            created_at=now,
            updated_at=now,
            latest_version=1,
            published_version=1,
            collection_id=stored_collection(collection_id),
            workspace_id=workspace_id,
            metadata=dict(metadata),
        )

    def _check_collection(self, key: str | None) -> None:
        """A prompt or partial may only be put in a collection that exists (by id or slug; `default` does)."""
        if key is None or self._collections is None:
            return
        try:
            self._collections.get_collection(key)
        except NotFound:
            raise InvalidRequest(
                f"collection_id {key[:80]!r} names no collection. Create it first with POST /v1/collections, "
                "or leave collection_id out for the default collection.",
                param="collection_id",
                code="collection_not_found",
            ) from None

    def _check_virtual_key(self, key: str | None) -> None:
        """A prompt may only name a virtual key (by id or slug) that exists. The value is not quoted:
        people paste provider keys into this field."""
        if not key or self._virtual_keys is None:
            return
        try:
            self._virtual_keys.get_virtual_key(key)
        except VirtualKeyNotFound:
            raise InvalidRequest(
                "virtual_key does not name an existing virtual key (by id or slug). Create it first with "
                "POST /v1/virtual-keys.",
                param="virtual_key",
                code="virtual_key_not_found",
            ) from None

    def _draft(self, fields: Mapping[str, Any], *, check_chat: bool = False) -> VersionDraft:
        """Checks a version's fields as a create or update would store them. `check_chat`: a prompt's new
        string that starts with `[` must be a valid chat template (see `check_prompt_template`)."""
        string = fields.get("string")
        if not isinstance(string, str):
            raise InvalidRequest("Missing required field 'string'.", param="string", code="missing_required_parameter")
        raw = bool(fields.get("is_raw_template"))
        try:
            if check_chat and not raw:
                check_prompt_template(string)
            variables = tuple(template_variables(string, raw=raw))
        except TemplateError as exc:
            raise type(exc)(f"string: {exc.message}", param="string", code=exc.code) from None
        if fields.get("variables_schema") is not None:
            check_variables_schema(fields["variables_schema"])
        parameters = dict(fields.get("parameters") or {})
        validate_parameters(parameters, prefix="parameters")
        tool_fields = {name: fields.get(name) for name in _TOOL_FIELDS if fields.get(name) is not None}
        validate_parameters(tool_fields)
        content = {API_VERSION_FIELDS[name]: value for name, value in fields.items()
                   if name in API_VERSION_FIELDS and value is not None}
        content.update(
            string=string,
            variables=variables,
            parameters=parameters,
            is_raw_template=bool(fields.get("is_raw_template")),
            template_metadata=dict(fields.get("template_metadata") or {}),
            **tool_fields,
        )
        return VersionDraft(version_id=self._new_id(), created_at=self._now(), **content)


def _names_in(templates: TemplateStore, collection: str) -> dict[str, str]:
    """Partial name -> id in `collection`; of partials sharing a name, the oldest (list order) holds it."""
    names: dict[str, str] = {}
    for entity in templates.list_entities(Kind.PARTIAL, collection_id=collection):
        names.setdefault(entity.name, entity.id)
    return names


def _incomplete_update_message(missing: list[str], sent: list[str]) -> str:
    return (
        f"This update sends {', '.join(sorted(sent))}, which makes a new version; without \"patch\": true a new "
        f"version is the whole version, so it must also carry {' and '.join(map(repr, missing))}. "
        "With Portkey's SDK send both: prompts.update(id, string=..., parameters=...) (take the one you keep "
        'from prompts.retrieve(id)). Over HTTP, send "patch": true to copy the fields you leave out from the '
        "latest version. name, collection_id, virtual_key and version_description can be sent alone."
    )


def _version_field(version: TemplateVersion, field: str) -> Any:
    value = getattr(version, API_VERSION_FIELDS[field])
    return dict(value) if isinstance(value, Mapping) else value


def _version_number(text: str, entity: Entity) -> int:
    """A version number as given in a query or a path: 400 if it is no positive whole number, 404 if it is
    one too large for any version (int() of thousands of digits would raise)."""
    digits = text.lstrip("0") if text.isascii() and text.isdigit() else ""
    if not digits:
        raise InvalidRequest(f"version must be a positive whole number; got {text[:40]!r}.", param="version")
    if len(digits) > _MAX_VERSION_DIGITS:
        raise VersionNotFound(f"{entity.kind.value} {entity.slug} has no version {digits[:20]}... "
                              f"(version numbers have at most {_MAX_VERSION_DIGITS} digits)")
    return int(digits)


def _pointed_versions(entity: Entity) -> dict[int, list[str]]:
    """Version number -> the pointers at it: published, latest, label <name>."""
    pointers: dict[int, list[str]] = {}
    if entity.published_version:
        pointers.setdefault(entity.published_version, []).append("published")
    pointers.setdefault(entity.latest_version, []).append("latest")
    for label, number in sorted(entity.labels.items()):
        pointers.setdefault(number, []).append(f"label {label}")
    return pointers


def _includes(version: TemplateVersion, partial: Entity, name: str | None) -> bool:
    """Whether `version` names `partial` in a static partial tag, by slug or id, or by `name` when given,
    any selector."""
    try:
        tags = partial_tags(version.string, raw=version.is_raw_template)
    except TemplateError:
        return False  # a version that does not parse includes nothing (writes refuse such versions)
    for tag in tags:
        if tag.startswith(">"):
            continue  # `>var` (dynamic)
        try:
            key = parse_reference(tag, param="partial").key
        except (InvalidReference, ValueError):
            key = tag.strip()  # no reference, but maybe a name
        if key == partial.slug or key.lower() == partial.id or (name is not None and key == name):
            return True
    return False


__all__ = ["PromptService", "Rendered", "Reference", "make_slug", "utc_now"]
