"""Render prompt templates the way Portkey's mustache.js fork does, minus its bugs.

Parsing is combustache's (a spec-complete Mustache). On top of it:
- lookups only index mappings and sequences (`SafeCtx`), so `{{items.pop}}` never calls a method;
- values stringify like JavaScript (`core.template_values`) and are never HTML-escaped;
- partials come from a dict resolved up front by `collect_partials`, so rendering cannot hang;
- template inheritance (`{{<parent}}`, `{{$block}}`) is rejected: Portkey has none.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, Literal

from combustache import CombustacheError, Template
from combustache.ctx import MISSING, Ctx
from combustache.nodes import Block, Interpolation, Parent, Partial, Section
from combustache.util import Opts

from core.errors import PartialCycle, PartialDepthExceeded, RenderedJSONInvalid, TemplateError
from core.template_values import raw_value, text_value

Fetch = Callable[[str], tuple[str, str] | None]

_PARSE_CACHE_SIZE = 1024
_DYNAMIC = ">"  # `{{>>var}}`: combustache hands us the contents `>var`


# --- lookups -----------------------------------------------------------------------------------


class SafeCtx(Ctx):
    """A context stack that only indexes data: no getattr, no calls, no mutation."""

    def get(self, key: str) -> Any:
        value = self.stack[-1] if key == "." else super().get(key)
        return MISSING if callable(value) else value

    @staticmethod
    def deep_get(item: Any, key: str) -> Any:
        if type(item) is dict or isinstance(item, Mapping):
            return item[key] if key in item else MISSING  # `in` first: never creates a defaultdict key
        if isinstance(item, Sequence) and not isinstance(item, bytes | bytearray):
            if key == "length":  # JS: `{{#items.length}}` is the usual "non-empty" test
                return len(item)
            if key.isascii() and key.isdigit():
                index = int(key)
                return item[index] if index < len(item) else MISSING
        return MISSING


def lookup(variables: Mapping[str, Any], name: str) -> Any:
    """A (dotted) name in the top-level variables, or None."""
    value = SafeCtx([variables]).get(name)
    return None if value is MISSING else value


# --- parsing -----------------------------------------------------------------------------------


class _CachedPartial(Partial):
    """A partial looked up by its tag contents only, its text parsed through the cache."""

    def handle(self, ctx: Ctx, partials: dict[str, str], opts: Opts) -> str:
        text = partials.get(self.contents)
        if text is None:
            return opts["missing_data"]()
        if self.is_standalone:
            text = "\n".join(bool(line) * self.before + line for line in text.split("\n"))
        return parse(text)._render(ctx, partials, opts)


def _adapt(template: Template) -> None:
    """Swap combustache's partial nodes for ours and reject inheritance tags, recursively."""
    for node in template._list:
        if isinstance(node, Parent | Block):
            raise TemplateError(
                f"template inheritance tags such as {node.tag_string!r} are not supported; use partials"
            )
        if isinstance(node, Partial):
            node.__class__ = _CachedPartial
            if node.contents.startswith(_DYNAMIC):
                node.contents = _DYNAMIC + node.contents[len(_DYNAMIC) :].strip()
        elif isinstance(node, Section):
            _adapt(node.inside)


@functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)
def parse(text: str) -> Template:
    """Parse once per distinct text; raises `TemplateError`. Treat the result as read-only."""
    try:
        template = Template(text)
    except CombustacheError as exc:
        raise TemplateError(f"invalid template: {exc}") from None
    except RecursionError:
        raise TemplateError("invalid template: sections nest too deeply") from None
    _adapt(template)
    return template


def _nodes(template: Template) -> Iterator[Any]:
    """Every tag node in source order, section contents included."""
    for node in template._list:
        if isinstance(node, str):
            continue
        yield node
        if isinstance(node, Section):
            yield from _nodes(node.inside)


# --- rendering ---------------------------------------------------------------------------------


def _render(
    text: str,
    variables: Mapping[str, Any],
    partials: Mapping[str, str] | None,
    stringify: Callable[[Any], str],
    escape: Callable[[str], str],
) -> str:
    opts: Opts = {"stringify": stringify, "escape": escape, "missing_data": lambda: ""}
    template = parse(text)
    try:
        return template._render(SafeCtx([variables or {}]), partials or {}, opts)
    except RecursionError:
        raise TemplateError("template or partials nest too deeply") from None


def _no_escape(text: str) -> str:
    return text


def render_text(template: str, variables: Mapping[str, Any], partials: Mapping[str, str] | None = None) -> str:
    """Render with no HTML escaping and JavaScript-style values."""
    return _render(template, variables, partials, text_value, _no_escape)


def render_raw(
    template: str, variables: Mapping[str, Any], partials: Mapping[str, str] | None = None, *, source: str
) -> Any:
    """Render the whole JSON text with JSON-escaped values, then parse it."""
    rendered = _render(template, variables, partials, raw_value, _no_escape)
    try:
        # strict=False: a literal newline inside a string (e.g. from a partial) is accepted.
        return json.loads(rendered, strict=False)
    except json.JSONDecodeError as exc:
        raise RenderedJSONInvalid(
            f"{source}: the rendered raw template is not valid JSON: "
            f"{exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})"
        ) from None


def render_chat(
    template: str, variables: Mapping[str, Any], partials: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Parse the JSON messages first, then render each text-carrying string in them."""
    messages = _parse_messages(template)
    if messages is None:
        raise TemplateError("a chat template must be a JSON array of message objects")
    for where, holder, key, use_json_escaping in _chat_slots(messages):
        stringify = raw_value if use_json_escaping else text_value
        try:
            holder[key] = _render(holder[key], variables, partials, stringify, _no_escape)
        except TemplateError as exc:
            raise type(exc)(f"{where}: {exc.message}") from None
    return messages


def _parse_messages(template: str) -> list[dict[str, Any]] | None:
    try:
        parsed = json.loads(template)
    except (json.JSONDecodeError, TypeError):
        return None
    if isinstance(parsed, list) and all(isinstance(message, dict) for message in parsed):
        return parsed
    return None


def _chat_slots(messages: list[dict[str, Any]]) -> Iterator[tuple[str, MutableMapping[str, Any], str, bool]]:
    """(location, holder, key, json_escaped) for every string `render_chat` renders.

    `tool_calls[].function.arguments` holds JSON text, so values go in JSON-escaped there.
    """
    for i, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, str):
            yield f"messages[{i}].content", message, "content", False
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict):
                    continue
                where = f"messages[{i}].content[{j}]"
                if part.get("type") == "text" and isinstance(part.get("text"), str):
                    yield f"{where}.text", part, "text", False
                image = part.get("image_url")
                if part.get("type") == "image_url" and isinstance(image, dict) and isinstance(image.get("url"), str):
                    yield f"{where}.image_url.url", image, "url", False
        tool_calls = message.get("tool_calls")
        for j, call in enumerate(tool_calls if isinstance(tool_calls, list) else []):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                yield f"messages[{i}].tool_calls[{j}].function.arguments", function, "arguments", True


# --- inspection --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)
def template_kind(template: str) -> Literal["chat", "text"]:
    """`chat` for a JSON array of message objects, else `text` (a text-completion prompt).

    For a raw template, decide after rendering: its text need not be JSON before that.
    """
    return "chat" if _parse_messages(template) is not None else "text"


def _sources(template: str, raw: bool) -> list[str]:
    """The texts that get rendered: the whole template, or a chat template's message strings."""
    messages = None if raw else _parse_messages(template)
    if messages is None:
        return [template]
    return [holder[key] for _, holder, key, _ in _chat_slots(messages)]


def _dedupe(names: Iterator[str]) -> list[str]:
    return list(dict.fromkeys(names))


def template_variables(template: str, *, raw: bool = False) -> list[str]:
    """Variable names in first-appearance order, dotted names as written.

    Walks combustache's parse tree (so set-delimiter tags are honoured). Names used inside a
    section are included even if they are fields of the section's items. Partials are not followed.
    """

    def names() -> Iterator[str]:
        for source in _sources(template, raw):
            for node in _nodes(parse(source)):
                if isinstance(node, Partial):
                    if node.contents.startswith(_DYNAMIC):
                        yield node.contents[len(_DYNAMIC) :]
                elif isinstance(node, Interpolation | Section) and node.contents != ".":
                    yield node.contents

    return _dedupe(names())


def partial_tags(template: str, *, raw: bool = False) -> list[str]:
    """Partial tag contents (`slug`, `slug@5`, `>var`) in first-appearance order."""
    return list(_partial_tags(template, raw))


@functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)
def _partial_tags(template: str, raw: bool) -> tuple[str, ...]:
    return tuple(_dedupe(
        node.contents
        for source in _sources(template, raw)
        for node in _nodes(parse(source))
        if isinstance(node, Partial)
    ))


# --- partials ----------------------------------------------------------------------------------


def collect_partials(
    template: str,
    variables: Mapping[str, Any],
    fetch: Fetch,
    *,
    max_depth: int = 8,
    raw: bool = False,
) -> dict[str, str]:
    """Resolve every partial the template needs, transitively, keyed by tag contents.

    `fetch(reference)` returns `(identity, text)` or None when the partial does not exist (it then
    renders empty). Identities detect cycles. Raises `PartialCycle`, `PartialDepthExceeded`, or
    `TemplateError` for a partial that does not parse.
    """
    fetched: dict[str, tuple[str, str] | None] = {}
    resolved: dict[str, str] = {}
    heights: dict[str, int] = {}  # identity -> nesting levels it adds, itself included

    def fetch_once(reference: str) -> tuple[str, str] | None:
        if reference not in fetched:
            fetched[reference] = fetch(reference)
        return fetched[reference]

    def reference_of(tag: str) -> str | None:
        if not tag.startswith(_DYNAMIC):
            return tag
        value = lookup(variables, tag[len(_DYNAMIC) :])
        return value if isinstance(value, str) and value else None

    def visit(tags: list[str], chain: list[str]) -> int:
        height = 0
        for tag in tags:
            reference = reference_of(tag)
            found = fetch_once(reference) if reference is not None else None
            if found is None:
                continue
            identity, text = found
            resolved[tag] = text
            if identity in chain:
                cycle = chain[chain.index(identity) :] + [identity]
                raise PartialCycle(f"partials include each other: {' -> '.join(cycle)}")
            if identity not in heights:
                if len(chain) + 1 > max_depth:
                    raise _too_deep(chain + [identity], max_depth)
                heights[identity] = 1 + visit(partial_tags(text), chain + [identity])
            if len(chain) + heights[identity] > max_depth:
                raise _too_deep(chain + [identity], max_depth)
            height = max(height, heights[identity])
        return height

    visit(partial_tags(template, raw=raw), [])
    return resolved


def _too_deep(chain: list[str], max_depth: int) -> PartialDepthExceeded:
    return PartialDepthExceeded(f"partials nest more than {max_depth} levels deep: {' -> '.join(chain)} -> ...")
