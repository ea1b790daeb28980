"""Collections (Portkey's `/collections`): folders that prompts and partials belong to.

`default` always exists (never stored; id and slug `default`) and cannot be renamed or deleted (409
`default_collection`: Portkey's spec answers 404 to deleting it, which would contradict a GET of it). A
collection's slug comes from its name when it is created and never changes; prompts and partials name
their collection by id or slug. A collection that still holds live prompts or partials cannot be
deleted (409, naming how many).
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Callable, Mapping

from core import views
from core.admin_requests import CreateCollection, ListQuery, UpdateCollection, parse_body, parse_query
from core.errors import Conflict, NotFound
from core.models import DEFAULT_COLLECTION, Collection, Entity, Kind, is_default_collection
from core.ports import CollectionStore, TemplateStore

COLLECTION_NOT_FOUND = "collection_not_found"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_UUID_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def collection_not_found(key: str) -> NotFound:
    """What every CollectionStore raises for an unknown id or slug."""
    return NotFound(f"No collection {key!r}.", code=COLLECTION_NOT_FOUND)


def refuse_default(key: str, verb: str) -> None:
    """The default collection is built in: stores and the service refuse to change it."""
    if is_default_collection(key):
        raise Conflict(f"The default collection is built in and cannot be {verb}.", code="default_collection")


def slug_for(name: str, suffix: str) -> str:
    """A collection's slug: its name in lowercase letters, digits and '-' (`Marketing emails` ->
    `marketing-emails`), or `collection-<suffix>` for a name with none of those, or one that would be
    `default` or look like a UUID."""
    slug = _NOT_SLUG.sub("-", name.casefold()).strip("-")[:64].strip("-")
    if len(slug) < 1 or slug == DEFAULT_COLLECTION or _UUID_SHAPE.match(slug):
        return f"collection-{suffix}"
    return slug


class CollectionService:
    """The `/collections` API over a CollectionStore; the TemplateStore answers what lives in a collection."""

    def __init__(self, collections: CollectionStore, templates: TemplateStore, *,
                 now: Callable[[], str], new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self._collections = collections
        self._templates = templates
        self._now = now
        self._new_id = new_id

    def create(self, body: Any) -> dict[str, Any]:
        request = parse_body(CreateCollection, body)
        parent = None
        if request.parent_collection_id is not None:
            parent = self._collections.get_collection(request.parent_collection_id).id
        collection_id, now = self._new_id(), self._now()
        collection = Collection(id=collection_id, slug=slug_for(request.name, collection_id.replace("-", "")[:8]),
                                name=request.name, created_at=now, updated_at=now,
                                workspace_id=request.workspace_id, parent_collection_id=parent)
        created = self._collections.create_collection(collection)
        return {"id": created.id, "slug": created.slug, "object": "collection"}

    def list_collections(self, query: Mapping[str, str]) -> dict[str, Any]:
        options = parse_query(ListQuery, dict(query))
        everything = self._collections.list_collections()
        found = [c for c in everything if options.in_workspace(c.workspace_id)]
        if options.search:
            needle = options.search.casefold()
            found = [c for c in found if needle in c.name.casefold() or needle in c.slug]
        contents = self._prompts_by_collection()
        items = [views.collection_view(c, details=_details(c, everything, contents)) for c in found]
        start = options.current_page * options.page_size
        return views.page(items[start : start + options.page_size], total=len(items))

    def get(self, key: str) -> dict[str, Any]:
        collection = self._collections.get_collection(key)
        everything = self._collections.list_collections()
        contents = self._prompts_by_collection()
        children = [views.child_collection_view(child, _details(child, everything, contents))
                    for child in everything if child.parent_collection_id == collection.id]
        return {**views.collection_view(collection, details=_details(collection, everything, contents)),
                "child_collections": children}

    def update(self, key: str, body: Any) -> dict[str, Any]:
        request = parse_body(UpdateCollection, body)
        collection = self._collections.get_collection(key)
        refuse_default(collection.id, "renamed")
        self._collections.update_collection(collection.id, name=request.name, updated_at=self._now())
        return {}

    def delete(self, key: str) -> dict[str, Any]:
        collection = self._collections.get_collection(key)
        refuse_default(collection.id, "deleted")
        held = {kind: self._members(kind, collection) for kind in Kind}
        prompts, partials = len(held[Kind.PROMPT]), len(held[Kind.PARTIAL])
        if prompts or partials:
            raise Conflict(f"Collection {collection.slug!r} still holds {prompts} prompt(s) and {partials} partial(s); "
                           "move or delete them first.", code="collection_not_empty")
        self._collections.delete_collection(collection.id)
        return {}

    # --- internals ------------------------------------------------------------------------------

    def _members(self, kind: Kind, collection: Collection) -> list[Entity]:
        """Live entities naming the collection by id or by slug."""
        members = {e.id: e for e in self._templates.list_entities(kind, collection_id=collection.id)}
        if collection.slug != collection.id:
            members.update((e.id, e) for e in self._templates.list_entities(kind, collection_id=collection.slug))
        return list(members.values())

    def _prompts_by_collection(self) -> dict[str, list[Entity]]:
        by_collection: dict[str, list[Entity]] = {}
        for entity in self._templates.list_entities(Kind.PROMPT):
            by_collection.setdefault(entity.collection_id, []).append(entity)
        return by_collection


def _details(collection: Collection, everything: list[Collection],
             prompts: Mapping[str, list[Entity]]) -> dict[str, Any]:
    """Portkey's CollectionDetails: how many child collections and prompts, and when each last changed."""
    children = [c for c in everything if c.parent_collection_id == collection.id and not c.is_default]
    held = {e.id: e for key in {collection.id, collection.slug} for e in prompts.get(key, [])}.values()
    return {
        "child_collections_count": len(children),
        "prompts_count": len(held),
        "child_collections_last_updated_at": max((c.updated_at for c in children), default=None),
        "prompts_last_updated_at": max((e.updated_at for e in held), default=None),
    }
