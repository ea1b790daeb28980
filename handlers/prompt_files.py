"""Prompt files: one human-editable file per prompt (`<slug>.prompt`) and per partial (`<slug>.partial`).

A file is YAML front matter between `---` lines, then the template. The format is documented in
docs/prompt-files.md; in short:

    ---
    name: Summarize
    model: gpt-4o-mini
    provider: openai-prod          # the provider binding (virtual key), by slug
    parameters:
      temperature: 0.2
    template: chat                 # chat: the body is messages; text: the body is the template as written
    ---
    ::: system
    You summarize text.

    ::: user
    Summarize {{text}}.

A chat body is a list of messages, each a `::: <role>` line then its content, with one empty line between
messages. Keys of a message other than role and content follow the role as a JSON object
(`::: assistant {"name": "bot"}`). Multi-part content is a `:::: <type>` line a part, each with its other keys as
JSON (`:::: text {"cache_control": {"type": "ephemeral"}}`) and a text part's text below it. A content line that
starts with `:::` is written with a `\\` before it. A raw template (`is_raw_template: true`) and a text template
are their body, as written.

Files are canonical: `format_*` of what `parse_*` read gives the same bytes, front matter keys in a fixed order
and nested keys sorted, so pull, push and pull again leave a file byte for byte the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from core.content_hash import content_hash
from core.errors import InvalidRequest
from core.models import API_VERSION_FIELDS

PROMPT_SUFFIX = ".prompt"
PARTIAL_SUFFIX = ".partial"
FENCE = "---"
# Front matter keys in the order files show them, and the version field (API name) each one holds.
_FRONT_MATTER_FIELDS: dict[str, str] = {
    "description": "version_description",
    "model": "model",
    "provider": "virtual_key",
    "parameters": "parameters",
    "response_format": "",  # parameters.response_format, shown on its own
    "tools": "tools",
    "tool_choice": "tool_choice",
    "functions": "functions",
    "template_metadata": "template_metadata",
    "variables_schema": "variables_schema",
    "strict_variables": "strict_variables",
    "is_raw_template": "is_raw_template",
}
# A version field added in core.models must get a front matter key here, or push would drop it.
if {name for name in _FRONT_MATTER_FIELDS.values() if name} | {"string"} != set(API_VERSION_FIELDS):
    raise TypeError(f"prompt files must hold exactly the version fields {sorted(API_VERSION_FIELDS)}")
_PROMPT_KEYS = ("name", *_FRONT_MATTER_FIELDS, "template", "metadata", "external_ids")
_PARTIAL_KEYS = ("name", "description")
_MESSAGE = re.compile(r"^::: (?P<role>[^\s{]+)(?: (?P<attrs>\{.*\}))?$")
_PART = re.compile(r"^:::: (?P<type>[^\s{]+)(?: (?P<attrs>\{.*\}))?$")
_NEEDS_ESCAPE = re.compile(r"^\\*:::")


class PromptFileError(InvalidRequest):
    """A prompt file that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class PromptDocument:
    """What one file holds: a prompt's or partial's head fields and one version's fields (API names)."""

    kind: str  # "prompt" or "partial"
    slug: str
    name: str
    version: Mapping[str, Any]  # string, model, parameters, ... as the create and update bodies name them
    metadata: Mapping[str, Any] = field(default_factory=dict)
    external_ids: tuple[str, ...] = ()  # e.g. OpenAI `pmpt_...` ids the prompt answers to

    @property
    def content_hash(self) -> str:
        return content_hash(self.version)


# --- writing --------------------------------------------------------------------------------------


def format_document(document: PromptDocument) -> str:
    """The canonical text of a prompt or partial file."""
    version = dict(document.version)
    string = str(version.get("string") or "")
    front: dict[str, Any] = {"name": document.name}
    if document.kind == "partial":
        if version.get("version_description"):
            front["description"] = version["version_description"]
        return _with_front_matter(front, string)
    parameters = dict(version.get("parameters") or {})
    response_format = parameters.pop("response_format", None)
    for key, name in _FRONT_MATTER_FIELDS.items():
        value = response_format if key == "response_format" else version.get(name)
        if key == "parameters":
            value = parameters
        if value is None or value == {} or value == [] or value is False:
            continue
        front[key] = _sorted(value)
    body = string
    if not version.get("is_raw_template"):
        messages = _chat_messages(string)
        front["template"] = "text"
        if messages is not None and _round_trips(messages):
            front["template"], body = "chat", format_chat_body(messages)
    if document.metadata:
        front["metadata"] = _sorted(dict(document.metadata))
    if document.external_ids:
        front["external_ids"] = list(document.external_ids)
    return _with_front_matter(front, body)


def _with_front_matter(front: Mapping[str, Any], body: str) -> str:
    import yaml

    def dump(allow_unicode: bool) -> str:
        return str(yaml.safe_dump(dict(front), sort_keys=False, allow_unicode=allow_unicode,
                                  default_flow_style=False, width=1 << 16))

    text = dump(True)
    if yaml.safe_load(text) != dict(front):  # PyYAML folds a few characters (NEL) it writes unescaped
        text = dump(False)
    return f"{FENCE}\n{text}{FENCE}\n{body}\n"


def _sorted(value: Any) -> Any:
    """Mappings with sorted keys, all the way down (their order carries no meaning); lists keep theirs."""
    if isinstance(value, Mapping):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(item) for item in value]
    return value


def _chat_messages(string: str) -> list[dict[str, Any]] | None:
    if not string.lstrip().startswith("["):
        return None
    try:
        parsed = json.loads(string)
    except ValueError:
        return None
    if isinstance(parsed, list) and parsed and all(
            isinstance(message, dict) and isinstance(message.get("role"), str) for message in parsed):
        return parsed
    return None


def _round_trips(messages: list[dict[str, Any]]) -> bool:
    """Whether a chat body holds these messages exactly; those it can't are written as their JSON text."""
    try:
        return parse_chat_body(format_chat_body(messages), "") == messages
    except PromptFileError:
        return False


def _attrs(extra: Mapping[str, Any]) -> str:
    return f" {json.dumps(_sorted(extra), ensure_ascii=False)}" if extra else ""


def _escaped(text: str) -> str:
    return "\n".join("\\" + line if _NEEDS_ESCAPE.match(line) else line for line in text.split("\n"))


def format_chat_body(messages: list[dict[str, Any]]) -> str:
    """Messages as a chat body: `::: role` blocks, one empty line apart."""
    blocks = []
    for message in messages:
        content = message.get("content")
        extra = {key: value for key, value in message.items() if key not in ("role", "content")}
        if isinstance(content, str):
            text = _escaped(content)
        elif isinstance(content, list) and content and all(_is_part(part) for part in content):
            text = "\n\n".join(_format_part(part) for part in content)
        else:  # null or absent content, or a shape parts can't hold: kept as JSON on the message line
            if "content" in message:
                extra["content"] = content
            text = ""
        blocks.append(f"::: {message['role']}{_attrs(extra)}\n{text}")
    return "\n\n".join(blocks)


def _is_part(part: Any) -> bool:
    return isinstance(part, dict) and isinstance(part.get("type"), str) and bool(part["type"]) and \
        not any(char.isspace() or char == "{" for char in part["type"])


def _format_part(part: Mapping[str, Any]) -> str:
    text = part.get("text")
    extra = {key: value for key, value in part.items() if key != "type" and not (key == "text" and isinstance(text, str))}
    return f":::: {part['type']}{_attrs(extra)}\n{_escaped(text) if isinstance(text, str) else ''}"


# --- reading --------------------------------------------------------------------------------------


def parse_document(text: str, *, kind: str, slug: str, path: str) -> PromptDocument:
    """A prompt or partial file's content; PromptFileError (naming `path`) if it is not one."""
    front, body = _split_front_matter(text, path)
    allowed = _PARTIAL_KEYS if kind == "partial" else _PROMPT_KEYS
    unknown = sorted(set(front) - set(allowed))
    if unknown:
        raise PromptFileError(f"{path}: unknown front matter key(s) {', '.join(unknown)}; a {kind} file takes "
                              f"{', '.join(allowed)}.", param=unknown[0])
    name = front.get("name")
    if not isinstance(name, str) or not name:
        raise PromptFileError(f"{path}: the front matter needs a `name` (the {kind}'s display name).", param="name")
    if kind == "partial":
        version: dict[str, Any] = {"string": body}
        if front.get("description"):
            version["version_description"] = front["description"]
        return PromptDocument(kind=kind, slug=slug, name=name, version=version)
    version = {}
    for key, api_name in _FRONT_MATTER_FIELDS.items():
        if key in front and api_name:
            version[api_name] = front[key]
    if "response_format" in front:
        version["parameters"] = {**dict(version.get("parameters") or {}), "response_format": front["response_format"]}
    template = front.get("template", "text" if version.get("is_raw_template") else "chat")
    if template not in ("chat", "text"):
        raise PromptFileError(f"{path}: `template` is chat or text; got {template!r}.", param="template")
    if template == "chat" and not version.get("is_raw_template"):
        messages = parse_chat_body(body, path)
        version["string"] = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
    else:
        version["string"] = body
    metadata = front.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise PromptFileError(f"{path}: `metadata` must be a mapping.", param="metadata")
    external_ids = front.get("external_ids") or []
    if not isinstance(external_ids, list) or not all(isinstance(item, str) for item in external_ids):
        raise PromptFileError(f"{path}: `external_ids` must be a list of strings.", param="external_ids")
    return PromptDocument(kind=kind, slug=slug, name=name, version=version, metadata=metadata,
                          external_ids=tuple(external_ids))


def _split_front_matter(text: str, path: str) -> tuple[dict[str, Any], str]:
    import yaml

    if not text.startswith(FENCE + "\n"):
        raise PromptFileError(f"{path}: a prompt file starts with a `---` line, then its front matter.", param="name")
    end = text.find(f"\n{FENCE}\n", len(FENCE))
    if end < 0:
        raise PromptFileError(f"{path}: the front matter has no closing `---` line.", param="name")
    try:
        front = yaml.safe_load(text[len(FENCE) + 1 : end + 1]) or {}
    except yaml.YAMLError as exc:
        raise PromptFileError(f"{path}: the front matter is not valid YAML: {exc}".replace("\n", " "),
                              param="name") from None
    if not isinstance(front, dict):
        raise PromptFileError(f"{path}: the front matter must be a YAML mapping.", param="name")
    body = text[end + len(FENCE) + 2 :]
    return front, body[:-1] if body.endswith("\n") else body


def parse_chat_body(body: str, path: str) -> list[dict[str, Any]]:
    """A chat body's messages (format_chat_body's inverse)."""
    blocks = _blocks(body, _MESSAGE, path, "::: <role>")
    messages = []
    for match, content, _line in blocks:
        message: dict[str, Any] = {"role": match["role"]}
        extra = _parse_attrs(match["attrs"], path)
        parts = _blocks(content, _PART, path, ":::: <type>") if content.startswith(":::: ") else None
        if "content" in extra:
            if content:
                raise PromptFileError(f"{path}: a message whose line sets `content` has no text below it.")
        elif parts is not None:
            message["content"] = [_part(part, text, path) for part, text, _ in parts]
        else:
            message["content"] = _unescaped(content)
        message.update(extra)
        messages.append(message)
    if not messages:
        raise PromptFileError(f"{path}: a chat template needs at least one `::: <role>` line "
                              "(or `template: text` for a text prompt).", param="template")
    return messages


def _blocks(text: str, header: re.Pattern[str], path: str, shape: str) -> list[tuple[re.Match[str], str, int]]:
    """(header match, text below it, line) for each header line; blocks are one empty line apart."""
    lines = text.split("\n")
    starts = [index for index, line in enumerate(lines) if header.match(line)]
    if text and (not starts or starts[0] != 0):
        raise PromptFileError(f"{path}: a chat template's body starts with a `{shape}` line; got {lines[0][:60]!r}. "
                              "(A text prompt says `template: text` in its front matter.)", param="template")
    found = []
    for position, start in enumerate(starts):
        end = starts[position + 1] if position + 1 < len(starts) else len(lines)
        chunk = "\n".join(lines[start + 1 : end])
        if position + 1 < len(starts):  # the empty line before the next header (and the newline ending this one)
            chunk = chunk[:-1] if chunk.endswith("\n") else chunk
        match = header.match(lines[start])
        assert match is not None
        found.append((match, chunk, start + 1))
    return found


def _parse_attrs(attrs: str | None, path: str) -> dict[str, Any]:
    if not attrs:
        return {}
    try:
        parsed = json.loads(attrs)
    except ValueError as exc:
        raise PromptFileError(f"{path}: {attrs[:60]!r} after a `:::` role or part type must be a JSON object: "
                              f"{exc}.") from None
    if not isinstance(parsed, dict):
        raise PromptFileError(f"{path}: {attrs[:60]!r} after a `:::` role or part type must be a JSON object.")
    return parsed


def _part(match: re.Match[str], text: str, path: str) -> dict[str, Any]:
    part: dict[str, Any] = {"type": match["type"]}
    extra = _parse_attrs(match["attrs"], path)
    if text or "text" not in extra and match["type"] == "text":
        part["text"] = _unescaped(text)
    part.update(extra)
    return part


def _unescaped(text: str) -> str:
    return "\n".join(line[1:] if line.startswith("\\") and _NEEDS_ESCAPE.match(line) else line
                     for line in text.split("\n"))
