"""Prompts as files: `pull` writes a registry's prompts and partials into a folder, `push` plans and makes the
versions that bring the registry to the files. Both work over HTTP (ApiClient), so against any server.

Layout: `<dir>/<slug>.prompt` and `<dir>/<slug>.partial` for the default collection, and a folder per other
collection, named by its slug (`<dir>/<collection>/<child collection>/<slug>.prompt`).

A file is unchanged when its content hash (core.content_hash) is the latest version's: then push makes no
version. Push makes exactly one version for each file whose content differs, creates what is new, and then
(with `label` or `publish`) points the label or the published version at each file's version, so running it
again, on every commit, changes nothing once the registry has caught up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from core.admin_requests import SLUG_PATTERN
from core.diffs import unified_text_diff
from core.errors import CuecardError
from core.models import API_VERSION_FIELDS, DEFAULT_COLLECTION, is_default_collection
from core.variables import guarded_changes
from handlers.api_client import ApiClient, quoted
from handlers.prompt_files import PARTIAL_SUFFIX, PROMPT_SUFFIX, PromptDocument, format_document, parse_document

SUFFIX_KINDS = {PROMPT_SUFFIX: "prompt", PARTIAL_SUFFIX: "partial"}
KIND_SUFFIXES = {kind: suffix for suffix, kind in SUFFIX_KINDS.items()}
_PAGE_SIZE = 1000
_COLLECTION_FOLDER = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")  # what a collection's slug looks like

Step = Callable[[str], None]  # told each item as it is done: progress for people


def _no_progress(_: str) -> None:
    return None


# --- the registry, as files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteItem:
    """A prompt or partial in the registry, with its latest version as a document."""

    kind: str
    id: str
    slug: str
    folder: str  # the collection's folder ("" for the default collection)
    latest_version: int
    latest_version_id: str
    published_version: int | None
    labels: dict[str, int]
    document: PromptDocument
    variables_schema: dict[str, Any] | None  # the latest version's, as served (inferred when it has none)

    @property
    def path(self) -> str:
        return _path(self.folder, self.slug, self.kind)


@dataclass
class Registry:
    collections: dict[str, dict[str, Any]]  # id -> collection
    folders: dict[str, str]  # collection id -> folder
    items: dict[tuple[str, str], RemoteItem] = field(default_factory=dict)  # (kind, slug) -> item

    def collection_id(self, folder: str) -> str | None:
        if folder == "":
            return DEFAULT_COLLECTION
        return next((cid for cid, path in self.folders.items() if path == folder), None)


def _path(folder: str, slug: str, kind: str) -> str:
    return f"{folder}/{slug}{KIND_SUFFIXES[kind]}" if folder else f"{slug}{KIND_SUFFIXES[kind]}"


def _pages(api: ApiClient, path: str, **params: str) -> Iterator[dict[str, Any]]:
    page = 0
    while True:
        answer = api.get(path, page_size=str(_PAGE_SIZE), current_page=str(page), **params)
        items = answer.get("data") or []
        yield from items
        if len(items) < _PAGE_SIZE:
            return
        page += 1


def _folders(collections: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Collection id -> its folder: the slugs of its ancestors and its own, joined by `/`."""
    folders: dict[str, str] = {}

    def folder(cid: str, seen: frozenset[str] = frozenset()) -> str:
        collection = collections.get(cid)
        if collection is None or collection.get("is_default") or cid in seen:
            return ""
        parent = collection.get("parent_collection_id")
        above = folder(parent, seen | {cid}) if parent else ""
        return f"{above}/{collection['slug']}" if above else str(collection["slug"])

    for cid in collections:
        folders[cid] = folder(cid)
    return folders


def read_registry(api: ApiClient, *, collection: str | None = None, step: Step = _no_progress) -> Registry:
    """Every prompt and partial (of `collection`, by id or slug, if given) with its latest version."""
    collections = {c["id"]: c for c in _pages(api, "/collections")}
    registry = Registry(collections=collections, folders=_folders(collections))
    only: dict[str, str] = {}
    if collection is not None:
        only = {"collection_id": _collection_key(registry, collection)}
    provider_slugs = _provider_slugs(api)
    for summary in list(_pages(api, "/prompts", **only)):
        detail = api.get(f"/prompts/{quoted(summary['id'])}", version=str(summary["latest_version"]))
        registry.items[("prompt", detail["slug"])] = _prompt_item(registry, detail, provider_slugs)
        step(detail["slug"])
    for summary in list(_pages(api, "/prompts/partials", **only)):
        detail = summary
        if summary["version"] != summary["latest_version"]:
            detail = api.get(f"/prompts/partials/{quoted(summary['id'])}", version=str(summary["latest_version"]))
        registry.items[("partial", detail["slug"])] = _partial_item(registry, detail)
        step(detail["slug"])
    return registry


def _collection_key(registry: Registry, key: str) -> str:
    if is_default_collection(key):
        return DEFAULT_COLLECTION
    for cid, collection in registry.collections.items():
        if key in (cid, collection["slug"]):
            return cid
    raise CuecardError(f"--collection {key!r} names no collection.")


def _provider_slugs(api: ApiClient) -> dict[str, str]:
    """Provider binding id -> slug, so files name bindings by slug; {} for a key that may not list them."""
    try:
        return {vk["id"]: vk["slug"] for vk in _pages(api, "/virtual-keys") if vk.get("slug")}
    except CuecardError as exc:
        if getattr(exc, "status", None) in (401, 403):
            return {}
        raise


# Where a prompt's retrieve shows a version field (API name -> key) when not under the field's own name.
_SHOWN_AS = {"version_description": "prompt_version_description"}
_READ_APART = frozenset({"variables_schema"})  # retrieve shows an inferred one when the version has none


def _prompt_item(registry: Registry, detail: dict[str, Any], provider_slugs: dict[str, str]) -> RemoteItem:
    version = {name: detail.get(_SHOWN_AS.get(name, field)) for name, field in API_VERSION_FIELDS.items()
               if name not in _READ_APART}
    binding = version.get("virtual_key")
    if isinstance(binding, str) and binding in provider_slugs:
        version["virtual_key"] = provider_slugs[binding]
    schema = detail.get("variables_schema")
    if schema is not None and not detail.get("variables_schema_inferred"):
        version["variables_schema"] = schema
    version = {name: value for name, value in version.items() if value is not None}
    document = PromptDocument(kind="prompt", slug=detail["slug"], name=detail["name"], version=version,
                              metadata=detail.get("prompt_metadata") or {},
                              external_ids=tuple(detail.get("external_ids") or ()))
    return RemoteItem(kind="prompt", id=detail["id"], slug=detail["slug"], folder=_folder_of(registry, detail),
                      latest_version=detail["prompt_version"], latest_version_id=detail["prompt_version_id"],
                      published_version=detail.get("published_version"), labels=dict(detail.get("labels") or {}),
                      document=document, variables_schema=schema)


def _partial_item(registry: Registry, detail: dict[str, Any]) -> RemoteItem:
    version = {"string": detail["string"]}
    if detail.get("version_description"):
        version["version_description"] = detail["version_description"]
    document = PromptDocument(kind="partial", slug=detail["slug"], name=detail["name"], version=version)
    return RemoteItem(kind="partial", id=detail["id"], slug=detail["slug"], folder=_folder_of(registry, detail),
                      latest_version=detail["version"], latest_version_id=detail["version_id"],
                      published_version=detail.get("published_version"), labels={}, document=document,
                      variables_schema=None)


def _folder_of(registry: Registry, detail: dict[str, Any]) -> str:
    key = detail.get("collection_id")
    if key is None or is_default_collection(key):
        return ""
    if key in registry.folders:
        return registry.folders[key]
    return next((registry.folders[cid] for cid, c in registry.collections.items() if c["slug"] == key), key)


# --- pull ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pulled:
    path: str
    kind: str
    slug: str
    version: int
    written: bool  # False: the file already held this


def pull(api: ApiClient, directory: Path, *, collection: str | None = None, step: Step = _no_progress) -> list[Pulled]:
    """Writes each prompt's and partial's latest version to its file; a file that already says it is left as
    it is (not even touched)."""
    registry = read_registry(api, collection=collection, step=step)
    pulled = []
    for item in sorted(registry.items.values(), key=lambda item: item.path):
        target = directory / item.path
        text = format_document(item.document)
        written = not (target.is_file() and target.read_bytes() == text.encode("utf-8"))
        if written:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w", encoding="utf-8", newline="") as out:
                out.write(text)
        pulled.append(Pulled(item.path, item.kind, item.slug, item.latest_version, written))
    return pulled


# --- push: the plan ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalFile:
    path: str  # relative to the pushed folder, with `/`
    folder: str
    document: PromptDocument

    @property
    def canonical(self) -> str:
        return format_document(self.document)


def read_files(directory: Path) -> list[LocalFile]:
    """Every `.prompt` and `.partial` file under `directory` (hidden folders skipped), read and checked."""
    if not directory.is_dir():
        raise CuecardError(f"{directory} is not a folder.")
    files: list[LocalFile] = []
    seen: dict[tuple[str, str], str] = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        kind = SUFFIX_KINDS.get(path.suffix)
        if kind is None or not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        name, folder = relative.as_posix(), "/".join(relative.parent.parts)
        slug = path.stem
        if not SLUG_PATTERN.match(slug):
            raise CuecardError(f"{name}: the file name is the {kind}'s slug: 3-64 lowercase letters, digits, '-' "
                               "or '_', starting with a letter or digit.")
        for part in relative.parent.parts:
            if not _COLLECTION_FOLDER.match(part) or part == DEFAULT_COLLECTION:
                raise CuecardError(f"{name}: the folder {part!r} is no collection slug (lowercase letters and digits "
                                   "joined by '-', not 'default'); files of the default collection sit at the top.")
        if (kind, slug) in seen:
            raise CuecardError(f"{name} and {seen[kind, slug]} are the same {kind} ({slug}); a slug is one file.")
        seen[kind, slug] = name
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CuecardError(f"cannot read {name}: {exc}") from None
        files.append(LocalFile(name, folder, parse_document(text, kind=kind, slug=slug, path=name)))
    return files


@dataclass
class Change:
    """What push does for one file: `new`, `changed` or `unchanged`."""

    file: LocalFile
    remote: RemoteItem | None
    status: str
    new_version: bool  # a version is made (new, or content changed)
    head: dict[str, Any]  # head fields to change: name, collection_id, prompt_metadata, external_ids
    diff: str
    warnings: list[str] = field(default_factory=list)
    version: int | None = None  # the file's version once pushed (or the latest, when unchanged)
    version_id: str | None = None

    @property
    def kind(self) -> str:
        return self.file.document.kind


def plan(files: Iterable[LocalFile], registry: Registry) -> list[Change]:
    """Each file's change against the registry's latest versions; partials first, as prompts include them."""
    changes = []
    for local in sorted(files, key=lambda f: (f.document.kind != "partial", f.path)):
        remote = registry.items.get((local.document.kind, local.document.slug))
        if remote is None:
            diff = unified_text_diff("", local.canonical, old_name="/dev/null", new_name=local.path)
            changes.append(Change(local, None, "new", True, {}, diff))
            continue
        new_version = local.document.content_hash != remote.document.content_hash
        head = _head_changes(local, remote)
        diff = unified_text_diff(format_document(remote.document), local.canonical,
                                 old_name=f"{remote.path} (registry, version {remote.latest_version})", new_name=local.path)
        status = "changed" if new_version or head else "unchanged"
        change = Change(local, remote, status, new_version, head, diff if status == "changed" else "")
        if not new_version:
            change.version, change.version_id = remote.latest_version, remote.latest_version_id
        changes.append(change)
    return changes


def _head_changes(local: LocalFile, remote: RemoteItem) -> dict[str, Any]:
    head: dict[str, Any] = {}
    if local.document.name != remote.document.name:
        head["name"] = local.document.name
    if local.folder != remote.folder:
        head["collection_id"] = local.folder
    if local.document.kind == "prompt" and dict(local.document.metadata) != dict(remote.document.metadata):
        head["prompt_metadata"] = dict(local.document.metadata)
    if local.document.kind == "prompt" and local.document.external_ids != remote.document.external_ids:
        head["external_ids"] = list(local.document.external_ids)
    return head


def guard_warnings(api: ApiClient, changes: list[Change], *, label: str | None) -> None:
    """Adds to each changed prompt the warnings of the server's breaking-change guard: what it would refuse
    (409 incompatible_variables) if the published pointer, or `label`, moved from its version now to the file's
    (core.variables.guarded_changes, the function the server uses)."""
    for change in changes:
        remote = change.remote
        if change.kind != "prompt" or remote is None or not change.new_version:
            continue
        version = change.file.document.version
        targets = {}
        if remote.published_version is not None:
            targets["publishing it"] = remote.published_version
        if label is not None and label in remote.labels:
            targets[f"moving label {label} to it"] = remote.labels[label]
        for action, number in targets.items():
            current = remote.variables_schema if number == remote.latest_version else \
                api.get(f"/prompts/{quoted(remote.id)}", version=str(number)).get("variables_schema")
            problems = guarded_changes(current, version.get("variables_schema"), str(version.get("string") or ""),
                                       raw=bool(version.get("is_raw_template")))
            if problems:
                change.warnings.append(f"{action} would break callers of version {number} (409 "
                                       f"incompatible_variables without --force): {'; '.join(map(str, problems))}")


# --- push: applying it -----------------------------------------------------------------------------------


def apply(api: ApiClient, changes: list[Change], registry: Registry, *, label: str | None = None,
          publish: bool = False, force: bool = False, step: Step = _no_progress) -> None:
    """Makes the planned versions, then moves `label` and/or the published pointer to each file's version.
    Stops at the first refusal (CuecardError); what was done before it stays done, and a second run picks up
    from there."""
    label_id = _label_id(api, label) if label is not None else None
    for done, change in enumerate(changes):
        try:
            _ensure_collection(api, registry, change.file.folder)
            if change.kind == "partial":
                _push_partial(api, registry, change)
            else:
                _push_prompt(api, registry, change)
            if label is not None and label_id is not None and change.kind == "prompt":
                _move_label(api, change, label, label_id, force)
            if publish:
                _publish(api, change, force)
        except CuecardError as exc:
            failure = CuecardError(f"{change.file.path}: {exc.message} ({done} of {len(changes)} files were done "
                                   "before it; push again once it is fixed)", code=exc.code)
            failure.status = exc.status
            raise failure from None
        step(change.file.path)


def _label_id(api: ApiClient, name: str) -> str:
    for found in _pages(api, "/labels", search=name):
        if found["name"] == name:
            return str(found["id"])
    raise CuecardError(f"--label {name!r} names no label; create it first (POST /v1/labels) or use production, "
                       "staging or development.")


def _ensure_collection(api: ApiClient, registry: Registry, folder: str) -> None:
    if registry.collection_id(folder) is not None:
        return
    parent_folder, _, slug = folder.rpartition("/")
    parent = None
    if parent_folder:
        _ensure_collection(api, registry, parent_folder)
        parent = registry.collection_id(parent_folder)
    body: dict[str, Any] = {"name": slug}
    if parent is not None and not is_default_collection(parent):
        body["parent_collection_id"] = parent
    created, _ = api.call("POST", "/collections", body=body)
    if created["slug"] != slug:
        raise CuecardError(f"the collection made for folder {folder!r} got the slug {created['slug']!r}; rename the "
                           "folder to a collection slug.")
    registry.collections[created["id"]] = {"id": created["id"], "slug": slug, "parent_collection_id": parent}
    registry.folders[created["id"]] = folder


def _version_body(document: PromptDocument) -> dict[str, Any]:
    body = {name: value for name, value in document.version.items() if value is not None}
    body.setdefault("parameters", {})
    return body


def _push_prompt(api: ApiClient, registry: Registry, change: Change) -> None:
    document = change.file.document
    collection = registry.collection_id(change.file.folder)
    if change.remote is None:
        body = {"name": document.name, "slug": document.slug, "collection_id": collection, **_version_body(document)}
        if document.metadata:
            body["prompt_metadata"] = dict(document.metadata)
        if document.external_ids:
            body["external_ids"] = list(document.external_ids)
        created, _ = api.call("POST", "/prompts", body=body)
        change.version, change.version_id = int(created["version"]), created["version_id"]
        return
    head = dict(change.head)
    if "collection_id" in head:
        head["collection_id"] = collection
    if change.new_version or head:
        body = {**(_version_body(document) if change.new_version else {}), **head}
        updated, _ = api.call("PUT", f"/prompts/{quoted(change.remote.id)}", body=body)
        if change.new_version:
            change.version, change.version_id = int(updated["version"]), updated["prompt_version_id"]


def _push_partial(api: ApiClient, registry: Registry, change: Change) -> None:
    document = change.file.document
    if change.remote is None:
        created, _ = api.call("POST", "/prompts/partials", body={
            "name": document.name, "slug": document.slug, "collection_id": registry.collection_id(change.file.folder),
            **document.version})
        change.version, change.version_id = int(created["version"]), created["version_id"]
        return
    if "collection_id" in change.head:
        raise CuecardError(f"{change.file.path}: a partial cannot move to another collection; it is in "
                           f"{change.remote.folder or 'the default collection'!r} in the registry.")
    body: dict[str, Any] = {}
    if change.new_version:
        body = {"string": document.version["string"],
                "version_description": document.version.get("version_description") or ""}
    if "name" in change.head:
        body["name"] = change.head["name"]
    if body:
        updated, _ = api.call("PUT", f"/prompts/partials/{quoted(change.remote.id)}", body=body)
        if change.new_version:
            change.version, change.version_id = int(updated["version"]), updated["version_id"]


def _move_label(api: ApiClient, change: Change, label: str, label_id: str, force: bool) -> None:
    remote = change.remote
    if remote is not None and remote.labels.get(label) == change.version:
        return
    prompt_id = remote.id if remote is not None else change.file.document.slug
    body: dict[str, Any] = {"label_id": label_id}
    if force:
        body["force"] = True
    api.call("PUT", f"/prompts/{quoted(prompt_id)}/versions/{quoted(str(change.version_id))}", body=body)


def _publish(api: ApiClient, change: Change, force: bool) -> None:
    remote = change.remote
    if remote is not None and remote.published_version == change.version:
        return
    key = remote.id if remote is not None else change.file.document.slug
    route = "/prompts/partials" if change.kind == "partial" else "/prompts"
    body: dict[str, Any] = {"version": change.version}
    if force and change.kind == "prompt":
        body["force"] = True
    api.call("PUT", f"{route}/{quoted(key)}/makeDefault", body=body)


__all__ = ["Change", "LocalFile", "Pulled", "Registry", "RemoteItem", "apply", "guard_warnings",
           "plan", "pull", "read_files", "read_registry"]
