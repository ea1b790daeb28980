"""MCP prompts (`prompts/list`, `prompts/get`) from cuecard's prompts: the pure mapping, in MCP's wire shapes.

handlers/mcp_server.py serves it with the official `mcp` SDK; nothing here imports that SDK, so the mapping is
tested and type-checked with the rest of core/. docs/mcp.md is the user-facing account of what maps to what.

- A prompt is listed at a label: the version that label marks, else its published version (`served_version`).
  Its MCP `name` is its slug, `title` its name, `description` the version's description, and `arguments`
  come from the version's variables schema (`core.variables`).
- MCP arguments are untyped strings, so each argument's `description` says the type, enum and default
  (`argument_description`), and `prompt_variables` turns the strings back into the schema's types.
- A rendered OpenAI body becomes MCP messages (`prompt_messages`): MCP has only `user` and `assistant`, and one
  content block a message, so a message of several parts becomes several messages of the same role.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from core.errors import InvalidRequest, TemplateError, VersionNotFound
from core.hyperparameters import PromptRequest
from core.models import BUILTIN_LABELS, Entity, Kind, TemplateVersion
from core.ports import LabelStore, TemplateStore
from core.references import Reference, parse_reference
from core.service import PromptService, Rendered
from core.variables import version_schema

PAGE_SIZE = 50  # prompts a `prompts/list` page holds
DEFAULT_LABEL = "production"
META_PREFIX = "cuecard/"  # our keys in an MCP `_meta`
_JSON_TYPES = frozenset({"integer", "number", "boolean", "object", "array", "null"})  # decoded from the string
_MAX_QUOTED = 200  # characters of an enum or default an argument's description quotes
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}  # OpenAI's input_audio formats


# --- the prompts, through the store ports ------------------------------------------------------------


class McpPrompts:
    """`prompts/list` and `prompts/get` (and the tools' renders) over the template and label stores and the
    PromptService: what a label serves, resolved as a render resolves it, rendered by the same code."""

    def __init__(self, service: PromptService, templates: TemplateStore, labels: LabelStore, *,
                 page_size: int = PAGE_SIZE) -> None:
        self._service = service
        self._templates = templates
        self._labels = labels
        self._page_size = page_size

    def label_name(self, label: str) -> str:
        """The name of the label called (or with the id) `label`; LabelNotFound when there is none. A built-in
        label's name needs no store read."""
        return label if label in BUILTIN_LABELS else self._labels.get_label(label).name

    def list_prompts(self, label: str, cursor: str | None) -> dict[str, Any]:
        """A `ListPromptsResult`: a page of the prompts `label` (else the published version) serves."""
        name = self.label_name(label)
        page = list_page(self._templates.list_entities(Kind.PROMPT), name, cursor, self._page_size)
        prompts = []
        for entity, number in page.entities:
            version = self._templates.get_version(Kind.PROMPT, entity.id, number)
            prompts.append(prompt_entry(entity, version, _schema_or_none(version), name))
        result: dict[str, Any] = {"prompts": prompts}
        if page.next_cursor is not None:
            result["nextCursor"] = page.next_cursor
        return result

    def fingerprint(self) -> tuple[tuple[Any, ...], ...]:
        return list_fingerprint(self._templates.list_entities(Kind.PROMPT))

    def resolve(self, name: str, label: str) -> tuple[TemplateVersion, str | None]:
        """The version `name` serves and the label that chose it (None: none did). A slug or id alone is the
        version `label` marks, else the published one; a full reference (`slug@3`, `slug@staging`) is as written."""
        ref = parse_reference(name, param="name")
        if ref.selector != "published":
            return self._templates.resolve(Kind.PROMPT, ref), ref.label
        chosen = self.label_name(label)
        try:
            return self._templates.resolve(Kind.PROMPT, Reference(ref.key, "label", label=chosen)), chosen
        except VersionNotFound:  # the label exists, but not on this prompt
            return self._templates.resolve(Kind.PROMPT, ref), None

    def get_prompt(self, name: str, arguments: Mapping[str, str] | None, label: str) -> dict[str, Any]:
        """A `GetPromptResult`: the prompt rendered with `arguments` (strings, typed by its schema)."""
        version, chosen = self.resolve(name, label)
        rendered = self.render_version(version, prompt_variables(version_schema(version), arguments))
        result: dict[str, Any] = {"messages": prompt_messages(rendered.body), "_meta": version_meta(version, chosen)}
        if version.description:
            result["description"] = version.description
        return result

    def render(self, name: str, variables: Mapping[str, Any], label: str) -> Rendered:
        """`name` rendered with typed `variables`, as `/render` renders it (the tools' path)."""
        return self.render_version(self.resolve(name, label)[0], variables)

    def render_version(self, version: TemplateVersion, variables: Mapping[str, Any]) -> Rendered:
        request = PromptRequest(variables=dict(variables), stream=False, overrides={})
        return Rendered(version, self._service.build_request(version, request), request)


def _schema_or_none(version: TemplateVersion) -> dict[str, Any] | None:
    try:
        return version_schema(version)
    except TemplateError:  # a template that does not parse lists without arguments; prompts/get says why
        return None


# --- which version a label serves, and the list's pages -------------------------------------------------


def served_version(entity: Entity, label: str) -> int | None:
    """The version `label` marks on `entity`, else its published version; None when it has neither."""
    return entity.labels.get(label, entity.published_version)


def list_fingerprint(entities: Iterable[Entity]) -> tuple[tuple[Any, ...], ...]:
    """What `prompts/list` depends on, at any label: a change here is a `notifications/prompts/list_changed`."""
    return tuple(sorted((entity.id, entity.slug, entity.name, entity.published_version,
                         tuple(sorted(entity.labels.items()))) for entity in entities))


@dataclass(frozen=True, slots=True)
class Page:
    entities: list[tuple[Entity, int]]  # each listed prompt and the version it serves
    next_cursor: str | None


def list_page(entities: Iterable[Entity], label: str, cursor: str | None, size: int = PAGE_SIZE) -> Page:
    """The prompts a `prompts/list` page shows at `label`, oldest first (by creation time, then id), and the cursor
    of the next page.

    The cursor names the last prompt shown (its creation time and id), and the next page starts after that place in
    the order, so a prompt created or deleted between two pages neither repeats nor hides another."""
    served = sorted(((entity, version) for entity in entities
                     if (version := served_version(entity, label)) is not None), key=lambda pair: _place(pair[0]))
    if cursor is not None:
        after = _decode_cursor(cursor)
        served = [pair for pair in served if _place(pair[0]) > after]
    shown = served[:size]
    more = len(served) > size
    return Page(shown, _encode_cursor(_place(shown[-1][0])) if more else None)


def _place(entity: Entity) -> tuple[str, str]:
    return entity.created_at, entity.id


def _encode_cursor(position: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, UnicodeEncodeError):
        position = None
    if not (isinstance(position, list) and len(position) == 2 and all(isinstance(part, str) for part in position)):
        raise InvalidRequest("The cursor is not one this server gave: list again without it.", param="cursor")
    return position[0], position[1]


# --- a listed prompt ---------------------------------------------------------------------------------


def prompt_entry(entity: Entity, version: TemplateVersion, schema: Mapping[str, Any] | None,
                 label: str) -> dict[str, Any]:
    """One `Prompt` of `prompts/list`. `schema` is the version's effective variables schema; None when its template
    does not parse (it lists without arguments, and `prompts/get` says what is wrong)."""
    entry: dict[str, Any] = {"name": entity.slug, "title": entity.name,
                             "arguments": prompt_arguments(schema) if schema is not None else [],
                             "_meta": version_meta(version, label if label in entity.labels else None)}
    if version.description:
        entry["description"] = version.description
    return entry


def version_meta(version: TemplateVersion, label: str | None) -> dict[str, Any]:
    """Which version serves: its prompt id, number, and the label that chose it (None: the published version)."""
    return {f"{META_PREFIX}prompt_id": version.entity_id, f"{META_PREFIX}version": version.version,
            f"{META_PREFIX}label": label}


def prompt_arguments(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An MCP `PromptArgument` per property of the variables schema: required when the schema requires it and gives
    no default; the description carries the property's description, type, enum and default."""
    properties = _properties(schema)
    required = set(schema.get("required", ()))
    arguments = []
    for name, subschema in properties.items():
        argument: dict[str, Any] = {"name": name, "required": name in required and not _has_default(subschema)}
        description = argument_description(subschema)
        if description:
            argument["description"] = description
        arguments.append(argument)
    return arguments


def argument_description(subschema: Any) -> str | None:
    """`Number of sentences. Type: integer (send it as JSON text). Default: 3.` None when the schema says nothing."""
    if not isinstance(subschema, Mapping):
        return None
    parts = []
    described = subschema.get("description") or subschema.get("title")
    if isinstance(described, str) and described.strip():
        text = described.strip()
        parts.append(text if text.endswith((".", "!", "?")) else text + ".")
    types = _types(subschema)
    if types:
        decoded = " (send it as JSON text)" if _decoded(types) else ""
        parts.append(f"Type: {' or '.join(types)}{decoded}.")
    if isinstance(subschema.get("enum"), list):
        parts.append(f"One of: {', '.join(_quoted(value) for value in subschema['enum'])}.")
    elif "const" in subschema:
        parts.append(f"Always {_quoted(subschema['const'])}.")
    if "default" in subschema:
        parts.append(f"Default: {_quoted(subschema['default'])}.")
    return " ".join(parts) or None


# --- prompts/get: the arguments -----------------------------------------------------------------------


def prompt_variables(schema: Mapping[str, Any], arguments: Mapping[str, str] | None) -> dict[str, Any]:
    """The render's variables from MCP's string arguments: a property whose schema type is integer, number,
    boolean, object, array or null (and not string) is decoded from JSON, so a strict schema accepts it.

    Raises InvalidRequest naming every required argument missing (`param`: the first, `arguments.<name>`), or
    the argument whose text is not the JSON its type needs."""
    arguments = dict(arguments or {})
    properties = _properties(schema)
    missing = [name for name in schema.get("required", ())
               if name not in arguments and not _has_default(properties.get(name))]
    if missing:
        names = ", ".join(missing)
        raise InvalidRequest(f"Missing required argument{'s' if len(missing) > 1 else ''}: {names}.",
                             param=f"arguments.{missing[0]}", code="missing_argument")
    variables: dict[str, Any] = {}
    for name, text in arguments.items():
        types = _types(properties.get(name))
        variables[name] = _decode(name, text, types) if _decoded(types) and isinstance(text, str) else text
    return variables


def _decode(name: str, text: str, types: Sequence[str]) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidRequest(f"Argument {name} is {' or '.join(types)}: send it as JSON text, such as "
                             f"{_example(types[0])}.", param=f"arguments.{name}", code="invalid_argument") from None


def _example(type_: str) -> str:
    return {"integer": "3", "number": "0.5", "boolean": "true", "object": '{"key": "value"}', "array": '["a", "b"]',
            "null": "null"}[type_]


def _decoded(types: Sequence[str]) -> bool:
    """Whether a value of these schema types is sent as JSON text: typed, and never a plain string."""
    return bool(types) and "string" not in types and set(types) <= _JSON_TYPES


def _types(subschema: Any) -> list[str]:
    declared = subschema.get("type") if isinstance(subschema, Mapping) else None
    if isinstance(declared, str):
        return [declared]
    return [item for item in declared if isinstance(item, str)] if isinstance(declared, list) else []


def _properties(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = schema.get("properties")
    return properties if isinstance(properties, Mapping) else {}


def _has_default(subschema: Any) -> bool:
    return isinstance(subschema, Mapping) and "default" in subschema


def _quoted(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_QUOTED else text[: _MAX_QUOTED - 3] + "..."


# --- prompts/get: the messages ------------------------------------------------------------------------


def prompt_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """MCP `PromptMessage`s from a rendered OpenAI request body (`messages`, or a text prompt's `prompt`).

    Roles: `assistant` stays; `user`, `system`, `developer`, `tool` and `function` become `user` (MCP has no
    other role). Content: text is `text`; an `image_url` part is an `image` when it is a `data:` URL of an image
    (base64 data and its MIME type), a `resource_link` to the URL when it is http(s); `input_audio` is `audio`;
    an assistant's `tool_calls` and any other part are `text` holding their JSON. One message per content block."""
    if "messages" not in body:
        prompt = body.get("prompt")
        return [_message("user", _text(prompt if isinstance(prompt, str) else json.dumps(prompt)))]
    messages: list[dict[str, Any]] = []
    for message in body.get("messages") or ():
        if not isinstance(message, Mapping):
            continue
        role = "assistant" if message.get("role") == "assistant" else "user"
        messages.extend(_message(role, block) for block in _blocks(message))
    return messages


def _message(role: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"role": role, "content": content}


def _blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]]
    if isinstance(content, str):
        blocks = [_text(content)]
    elif isinstance(content, list):
        blocks = [_part(part) for part in content]
    elif content is None:
        blocks = []
    else:
        blocks = [_text(json.dumps(content, ensure_ascii=False))]
    if message.get("tool_calls"):
        blocks.append(_text(json.dumps({"tool_calls": message["tool_calls"]}, ensure_ascii=False)))
    if message.get("function_call"):
        blocks.append(_text(json.dumps({"function_call": message["function_call"]}, ensure_ascii=False)))
    return blocks


def _part(part: Any) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return _text(part["text"])
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        if isinstance(url, str):
            block = image_block(url)
            if block is not None:
                return block
    if kind == "input_audio" and isinstance(part.get("input_audio"), Mapping):
        audio = part["input_audio"]
        if isinstance(audio.get("data"), str) and audio.get("format") in _AUDIO_TYPES:
            return {"type": "audio", "data": audio["data"], "mimeType": _AUDIO_TYPES[audio["format"]]}
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return _text(part["refusal"])
    return _text(json.dumps(part, ensure_ascii=False))


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def image_block(url: str) -> dict[str, Any] | None:
    """An image URL as MCP content: `image` for a `data:` URL of an image, `resource_link` for http(s); None for
    anything else (the caller shows the part as JSON text)."""
    if url.startswith("data:"):
        decoded = _data_url(url)
        if decoded is None or not decoded[0].startswith("image/"):
            return None
        return {"type": "image", "data": decoded[1], "mimeType": decoded[0]}
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    name = parts.path.rstrip("/").rsplit("/", 1)[-1] or parts.netloc
    link: dict[str, Any] = {"type": "resource_link", "uri": url, "name": name}
    guessed, _ = mimetypes.guess_type(parts.path)
    if guessed and guessed.startswith("image/"):
        link["mimeType"] = guessed
    return link


def _data_url(url: str) -> tuple[str, str] | None:
    """A `data:` URL's MIME type and its data in base64; None when it is malformed."""
    header, comma, payload = url[len("data:"):].partition(",")
    if not comma:
        return None
    fields = header.split(";")
    mime = fields[0].strip().lower() or "text/plain"
    if "base64" in (field.strip().lower() for field in fields[1:]):
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return None
    else:
        raw = unquote_to_bytes(payload)
    return mime, base64.b64encode(raw).decode("ascii")


__all__ = [
    "DEFAULT_LABEL", "PAGE_SIZE", "McpPrompts", "Page", "argument_description", "image_block", "list_fingerprint", "list_page",
    "prompt_arguments", "prompt_entry", "prompt_messages", "prompt_variables",
    "served_version", "version_meta",
]
