"""Render prompt templates the way Portkey's mustache.js fork does, minus its bugs.

Parsing is combustache's (a spec-complete Mustache). On top of it:
- lookups only index mappings and sequences (`SafeCtx`), so `{{items.pop}}` never calls a method;
- values stringify like JavaScript (`core.template_values`) and are never HTML-escaped;
- partials come from a dict resolved up front by `collect_partials`, so rendering cannot hang;
- template inheritance (`{{<parent}}`, `{{$block}}`) is rejected: Portkey has none;
- every render spends a `RenderBudget` as it goes (output bytes, section iterations, partial
  expansions, a deadline), so no template and no variables can make one render unbounded.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal, NoReturn, cast

from combustache import CombustacheError, Template
from combustache.ctx import MISSING, Ctx
from combustache.nodes import Ampersand, Block, Interpolation, Inverted, Parent, Partial, Section
from combustache.util import Opts

from core.errors import PartialCycle, PartialDepthExceeded, RenderedJSONInvalid, RenderLimitExceeded, TemplateError
from core.template_values import raw_value, text_value

Fetch = Callable[[str], tuple[str, str] | None]

_PARSE_CACHE_SIZE = 1024
_DYNAMIC = ">"  # `{{>>var}}`: combustache hands us the contents `>var`
# Arrays and objects inside one another in a chat template or a raw template's rendered JSON: a prompt needs a
# handful; the request body's own bound (64) plus room for the messages around a spliced variable.
MAX_JSON_DEPTH = 128
MAX_SECTION_DEPTH = 32  # sections inside sections; a prompt needs a few
# What parsing one text may cost (see `_check_parse_cost`): characters copied, and tags scanned (a tag inside
# n sections is scanned n + 1 times). A 1 MB template of 100,000 tags on short lines is well inside both.
_MAX_PARSE_COPIES = 32 * 1024 * 1024
_MAX_PARSE_VISITS = 400_000
_MAX_DELIMITERS = 8
MAX_INTEGER_DIGITS = 300  # in a template's JSON, as in a request body: below Python's 4,300-digit int() limit
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # how a lone surrogate gets into parsed JSON
_OPENS = "#^<$"  # the tags that open a section: combustache parses inheritance tags as sections too
_MAX_INDEX_DIGITS = 18  # `{{items.<n>}}`: a longer n is past any list's end (and int() refuses 4,300+ digits)


# --- limits ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """What one render may spend. The defaults are far above what real prompts use, and low enough that a
    hostile template or hostile variables cost a fraction of a second."""

    max_output_bytes: int = 2 * 1024 * 1024  # UTF-8 bytes of rendered text, every message of a chat together
    max_iterations: int = 10_000  # section bodies rendered: each item of a list, each truthy or inverted section
    max_partials: int = 1_000  # partial expansions; also the distinct partial references one render resolves
    timeout: float = 1.0  # seconds of wall time, partial lookups included

    def budget(self, clock: Callable[[], float] = time.monotonic) -> RenderBudget:
        return RenderBudget(self, clock)


DEFAULT_LIMITS = RenderLimits()


class RenderBudget:
    """What is left of one render's limits; spent by the nodes as they render, so a render stops as soon as it
    crosses a limit instead of after the damage. One budget covers every string of a chat template."""

    __slots__ = ("_clock", "deadline", "iterations", "limits", "max_output", "output", "partials", "references")

    def __init__(self, limits: RenderLimits = DEFAULT_LIMITS, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self.deadline = clock() + limits.timeout
        self.max_output = limits.max_output_bytes
        self.output = self.iterations = self.partials = self.references = 0

    def emit(self, text: str) -> None:
        """Counts `text` into the output. (The nodes below inline this: they run for every value.)"""
        self.output += utf8_size(text)
        if self.output > self.max_output:
            self.output_exceeded()

    def output_exceeded(self) -> NoReturn:
        raise _exceeded("max_output_bytes", f"{self.max_output} bytes", "the rendered text would be larger")

    def iterate(self) -> None:
        """One section body about to render."""
        self.iterations += 1
        self._within(self.iterations, "max_iterations", "section iterations", "sections would repeat more often")

    def expand_partial(self) -> None:
        """One partial about to render."""
        self.partials += 1
        self._within(self.partials, "max_partials", "partial expansions", "partials would be included more often")

    def resolve_partial(self) -> None:
        """One distinct partial reference about to be looked up."""
        self.references += 1
        self._within(self.references, "max_partials", "distinct partials",
                     "the template and its partials name more partials")

    def _within(self, spent: int, name: str, unit: str, what: str) -> None:
        limit = getattr(self.limits, name)
        if spent > limit:
            raise _exceeded(name, f"{limit} {unit}", what)
        self.check_time()

    def check_time(self) -> None:
        if self._clock() > self.deadline:
            raise _exceeded("timeout", f"{self.limits.timeout:g} s", "the render took longer")


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8 (a lone surrogate counts 3)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _exceeded(name: str, value: str, what: str) -> RenderLimitExceeded:
    return RenderLimitExceeded(f"Render limit {name} ({value}) exceeded: {what}. Send fewer or smaller values "
                               "for the template's sections, or render a smaller template.")


# --- lookups -----------------------------------------------------------------------------------


class SafeCtx(Ctx):
    """A context stack that only indexes data: no getattr, no calls, no mutation."""

    budget: RenderBudget  # set by `_render`, read by the nodes below
    texts: dict[tuple[int, Callable[[Any], str]], str]  # a list's or an object's text, made once per render

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
            if key.isascii() and key.isdigit() and len(key) <= _MAX_INDEX_DIGITS:
                index = int(key)
                return item[index] if index < len(item) else MISSING
        return MISSING


def lookup(variables: Mapping[str, Any], name: str) -> Any:
    """A (dotted) name in the top-level variables, or None."""
    value = SafeCtx([variables]).get(name)
    return None if value is MISSING else value


# --- parsing -----------------------------------------------------------------------------------
# combustache's node classes, swapped for ours after parsing: each spends the render's budget. Output is
# counted where it is made, literal text and values; sections and partials only join those.


_budget = cast(Callable[[Ctx], RenderBudget], attrgetter("budget"))  # a SafeCtx's; attrgetter: no Python frame
_texts = cast(Callable[[Ctx], dict[tuple[int, Callable[[Any], str]], str]], attrgetter("texts"))


def _missing(opts: Opts) -> str:
    text: str = opts["missing_data"]()
    return text


class _Template(Template):
    literal_bytes: int  # of the text between this list's tags, all of which every render of it emits

    def _render(self, ctx: Ctx, partials: dict[str, str], opts: Opts) -> str:
        budget = _budget(ctx)
        budget.output += self.literal_bytes
        if budget.output > budget.max_output:
            budget.output_exceeded()
        return "".join([node if type(node) is str else node.handle(ctx, partials, opts) for node in self._list])


class _Value(Interpolation):
    """`{{name}}`: the value's text, escaped by the escaper in `opts`. A list or an object is stringified once
    per render, however often a loop repeats it (`{{#items}}{{items}}{{/items}}` is linear, not quadratic)."""

    escaped = True

    def handle(self, ctx: Ctx, partials: dict[str, str], opts: Opts) -> str:
        data = ctx.get(self.contents)
        if data is MISSING:
            return _missing(opts)
        stringify = opts["stringify"]
        if type(data) is list or type(data) is dict:
            texts = _texts(ctx)
            key = (id(data), stringify)  # the value outlives the render: its id is not reused meanwhile
            text = texts.get(key)
            if text is None:
                text = texts[key] = stringify(data)
        else:
            text = stringify(data)
        if self.escaped:
            text = opts["escape"](text)
        budget = _budget(ctx)
        budget.output += len(text) if text.isascii() else utf8_size(text)
        if budget.output > budget.max_output:
            budget.output_exceeded()
        return text


class _Unescaped(_Value):
    """`{{{name}}}` and `{{&name}}`."""

    escaped = False


def _items(data: Any) -> Iterable[Any]:
    """What a section iterates: a list's items, else the value once (a string or an object is one item)."""
    return data if isinstance(data, Iterable) and not isinstance(data, str | bytes | Mapping) else (data,)


class _Section(Section):
    """combustache's section without lambdas (SafeCtx never yields callables), counting each iteration."""

    def handle(self, ctx: Ctx, partials: dict[str, str], opts: Opts) -> str:
        data = ctx.get(self.contents)
        if data is MISSING:
            return _missing(opts)
        if not data:
            return ""
        budget = _budget(ctx)
        parts = []
        for item in _items(data):
            budget.iterate()
            ctx.append(item)
            parts.append(self.inside._render(ctx, partials, opts))
            ctx.pop()
        return "".join(parts)


class _Inverted(Inverted):
    def handle(self, ctx: Ctx, partials: dict[str, str], opts: Opts) -> str:
        data = ctx.get(self.contents)
        if data is not MISSING and data:
            return ""
        _budget(ctx).iterate()
        text: str = self.inside._render(ctx, partials, opts)
        return text


class _CachedPartial(Partial):
    """A partial looked up by its tag contents only, its text parsed through the cache."""

    def handle(self, ctx: Ctx, partials: dict[str, str], opts: Opts) -> str:
        text = partials.get(self.contents)
        if text is None:
            return _missing(opts)
        _budget(ctx).expand_partial()
        if self.is_standalone:
            text = "\n".join(bool(line) * self.before + line for line in text.split("\n"))
        rendered: str = parse(text)._render(ctx, partials, opts)
        return rendered


def _adapt(template: Template) -> None:
    """Swap combustache's template, section and partial classes for ours and reject inheritance tags, recursively."""
    template.__class__ = _Template
    template.literal_bytes = sum(utf8_size(node) for node in template._list if type(node) is str)
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
            node.__class__ = _Inverted if isinstance(node, Inverted) else _Section
            _adapt(node.inside)
        elif isinstance(node, Interpolation):
            node.__class__ = _Unescaped if isinstance(node, Ampersand) else _Value  # Triple is an Ampersand


@functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)
def parse(text: str) -> Template:
    """Parse once per distinct text; raises `TemplateError`. Treat the result as read-only."""
    _check_parse_cost(text)
    try:
        template = Template(text)
    except CombustacheError as exc:
        raise TemplateError(f"invalid template: {exc}") from None
    except RecursionError:
        raise TemplateError("invalid template: sections nest too deeply") from None
    _adapt(template)
    return template


def _check_parse_cost(text: str) -> None:
    """Refuses, before combustache parses it, a template whose parsing would cost too much:

    - each tag keeps copies of the text before and after it on its line, so memory grows as the tags on
      a line times the line's length (a 1 MB one-line template with 100,000 tags: tens of GB);
    - each section scans its contents for its closing tag, and then parses them, so time grows as the
      tags times the sections around them (a 600 kB template 16 sections deep: seconds).
    Tags are found by their left delimiters: `{{` and any a set-delimiter tag switches to (text that only
    looks like a tag is counted too, which errs on the safe side).
    """
    if "{{" not in text:
        return
    lefts = _left_delimiters(text)
    tags = text.count("{{")
    sections = sum(text.count("{{" + kind) for kind in _OPENS)
    if (len(lefts) == 1 and sections <= MAX_SECTION_DEPTH and tags * len(text) <= _MAX_PARSE_COPIES
            and tags * (1 + sections) <= _MAX_PARSE_VISITS):
        return  # the common case, in a few C-speed counts
    opener = re.compile("(?:" + "|".join(map(re.escape, lefts)) + ")([#^<$/]?)")
    depth = copies = visits = 0
    for line in text.split("\n"):
        on_line = 0
        for match in opener.finditer(line):
            on_line += 1
            kind = match.group(1)
            depth += (kind in _OPENS) - (kind == "/") if kind else 0
            if depth > MAX_SECTION_DEPTH:
                raise TemplateError(f"invalid template: sections nest more than {MAX_SECTION_DEPTH} deep")
            visits += 1 + max(depth, 0)
        copies += on_line * len(line)
    if copies > _MAX_PARSE_COPIES:
        raise TemplateError("invalid template: too many tags on long lines (each tag costs the length of its line "
                            "to parse); put the tags on more, shorter lines")
    if visits > _MAX_PARSE_VISITS:
        raise TemplateError("invalid template: too many tags inside nested sections; nest fewer sections "
                            "around long parts, or split the template into partials")


def _left_delimiters(text: str) -> list[str]:
    """`{{` and every left delimiter a set-delimiter tag (`{{=<% %>=}}`) may switch to."""
    lefts = ["{{"]
    for left in lefts:  # grows while it is walked
        for match in re.finditer(re.escape(left) + r"=\s*(\S+)\s", text):
            if match.group(1) not in lefts:
                lefts.append(match.group(1))
                if len(lefts) > _MAX_DELIMITERS:
                    raise TemplateError(f"invalid template: more than {_MAX_DELIMITERS} different tag delimiters")
    return lefts


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
    budget: RenderBudget | None = None,
) -> str:
    opts: Opts = {"stringify": stringify, "escape": escape, "missing_data": lambda: ""}
    template = parse(text)
    ctx = SafeCtx([variables or {}])
    ctx.budget = budget or RenderBudget()
    ctx.texts = {}
    try:
        rendered: str = template._render(ctx, partials or {}, opts)
        return rendered
    except RecursionError:
        raise TemplateError("the template, its partials or the variables nest too deeply") from None


def _no_escape(text: str) -> str:
    return text


def render_text(template: str, variables: Mapping[str, Any], partials: Mapping[str, str] | None = None, *,
                budget: RenderBudget | None = None) -> str:
    """Render with no HTML escaping and JavaScript-style values."""
    return _render(template, variables, partials, text_value, _no_escape, budget)


def render_raw(
    template: str, variables: Mapping[str, Any], partials: Mapping[str, str] | None = None, *, source: str,
    budget: RenderBudget | None = None,
) -> Any:
    """Render the whole JSON text with JSON-escaped values, then parse it."""
    rendered = _render(template, variables, partials, raw_value, _no_escape, budget)
    too_deep = RenderedJSONInvalid(
        f"{source}: the rendered raw template nests arrays and objects more than {MAX_JSON_DEPTH} deep")
    try:
        # strict=False: a literal newline inside a string (e.g. from a partial) is accepted.
        parsed = _strict_loads(rendered, strict=False)
    except json.JSONDecodeError as exc:
        raise RenderedJSONInvalid(
            f"{source}: the rendered raw template is not valid JSON: "
            f"{exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})"
        ) from None
    except Unrepresentable as exc:
        raise RenderedJSONInvalid(f"{source}: the rendered raw template holds {exc}") from None
    except RecursionError:
        raise too_deep from None
    if _nests_deeper(rendered, parsed, MAX_JSON_DEPTH):
        raise too_deep
    return parsed


class Unrepresentable(ValueError):
    """JSON that parses, but that no answer can carry: NaN, Infinity, a number past a double's range, an
    integer of more than MAX_INTEGER_DIGITS digits, a lone surrogate escape. The message says which, never
    the text."""


def _strict_loads(text: str, *, strict: bool = True) -> Any:
    """`json.loads`, refusing what `Unrepresentable` lists. Raises JSONDecodeError, Unrepresentable or
    RecursionError."""
    value = (_STRICT if strict else _STRICT_ALLOWING_CONTROL_CHARACTERS).decode(text)
    if _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(value):
        raise Unrepresentable("a lone surrogate escape such as \\ud800, which is no Unicode text")
    return value


def _no_constant(name: str) -> Any:
    raise Unrepresentable(f"{name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Unrepresentable("a number too large for a double")
    return value


def _bounded_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INTEGER_DIGITS:
        raise Unrepresentable(f"an integer of more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _holds_lone_surrogate(value: Any) -> bool:
    """Whether any string or key in parsed JSON `value` holds a lone surrogate; without recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _nests_deeper(text: str, value: Any, limit: int) -> bool:
    """Whether parsed JSON `value` (from `text`) has arrays and objects more than `limit` deep. Without
    recursion; skipped when the text has too few brackets to nest that deep."""
    if text.count("[") + text.count("{") <= limit:
        return False
    level: list[tuple[Any, int]] = [(value, 1)]
    while level:
        item, depth = level.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        level.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def render_chat(
    template: str, variables: Mapping[str, Any], partials: Mapping[str, str] | None = None, *,
    budget: RenderBudget | None = None,
) -> list[dict[str, Any]]:
    """Parse the JSON messages first, then render each text-carrying string in them, all on one budget."""
    try:
        parsed = _strict_loads(template)
    except Unrepresentable as exc:  # stored before writes checked it (`check_prompt_template`)
        raise TemplateError(f"the chat template holds {exc}") from None
    except (json.JSONDecodeError, RecursionError):
        parsed = None
    messages: list[dict[str, Any]] | None = parsed if _is_messages(parsed) else None
    if messages is None:
        raise TemplateError("a chat template must be a JSON array of message objects")
    budget = budget or RenderBudget()
    for where, holder, key, use_json_escaping in _chat_slots(messages):
        stringify = raw_value if use_json_escaping else text_value
        try:
            holder[key] = _render(holder[key], variables, partials, stringify, _no_escape, budget)
        except TemplateError as exc:
            raise type(exc)(f"{where}: {exc.message}") from None
    return messages


def _parse_messages(template: str) -> list[dict[str, Any]] | None:
    """The messages of a chat template, for their strings: numbers and constants come back as None, so a
    number no answer can carry (refused by `render_chat`) does not make the template a text prompt."""
    try:
        parsed = _STRUCTURE.decode(template)
    except (json.JSONDecodeError, TypeError, RecursionError):
        return None
    return parsed if _is_messages(parsed) else None


def _ignored(_text: str) -> None:
    return None


# Built once: json.loads with any option builds a decoder on every call.
_STRICT = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)
_STRICT_ALLOWING_CONTROL_CHARACTERS = json.JSONDecoder(
    parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int, strict=False)
_STRUCTURE = json.JSONDecoder(parse_constant=_ignored, parse_float=_ignored, parse_int=_ignored)


def _is_messages(parsed: Any) -> bool:
    return isinstance(parsed, list) and all(isinstance(message, dict) for message in parsed)


_TEXT_PROMPT_HINT = (
    "A text prompt that starts with '[' begins with a Mustache comment instead, such as {{! text }}[INST] ...; "
    "a template whose JSON is built by Mustache tags needs is_raw_template."
)


def check_prompt_template(template: str) -> None:
    """Refuses a (non-raw) prompt template that looks like a chat template but is not one.

    A template whose first non-space character is `[` must be a JSON array of message objects, nesting at
    most MAX_JSON_DEPTH deep; otherwise TemplateError (400) says where the JSON breaks. Without this check
    a typo would turn the whole JSON text into one text prompt.
    """
    if not template.lstrip().startswith("["):
        return
    problem = "a template starting with '[' is a chat template: a JSON array of message objects"
    try:
        parsed = _strict_loads(template)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{problem}, but this is not valid JSON: {exc.msg} at line {exc.lineno} column "
                            f"{exc.colno} (char {exc.pos}). {_TEXT_PROMPT_HINT}", code="invalid_chat_template") from None
    except Unrepresentable as exc:
        raise TemplateError(f"{problem}, but it holds {exc}.", code="invalid_chat_template") from None
    except RecursionError:
        parsed = None
    if parsed is None or _nests_deeper(template, parsed, MAX_JSON_DEPTH):
        raise TemplateError(f"{problem}, nesting arrays and objects at most {MAX_JSON_DEPTH} deep.",
                            code="invalid_chat_template")
    for index, message in enumerate(parsed):
        if not isinstance(message, dict):
            raise TemplateError(f"{problem}, but item {index} is {type(message).__name__}, not an object. "
                                + _TEXT_PROMPT_HINT, code="invalid_chat_template")


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
    return _dedupe(name for source in _sources(template, raw) for name in _named(_nodes(parse(source)), sections=True))


def unsectioned_variables(template: str, *, raw: bool = False) -> list[str]:
    """The names `template_variables` lists that are interpolated (`{{name}}`, `{{{name}}}`, `{{>>name}}`)
    outside every section, in first-appearance order. A name used only inside a section may be a field of
    the section's items, and a section's own name may be missing (it then renders as false): neither is here."""
    return _dedupe(name for source in _sources(template, raw) for name in _named(parse(source)._list, sections=False))


def _named(nodes: Iterable[Any], *, sections: bool) -> Iterator[str]:
    """The variable each tag node names: interpolations, dynamic partials (`{{>>name}}`), and with `sections`
    the sections' own names."""
    for node in nodes:
        if isinstance(node, Partial):
            if node.contents.startswith(_DYNAMIC):
                yield node.contents[len(_DYNAMIC) :]
        elif (isinstance(node, Interpolation) or (sections and isinstance(node, Section))) and node.contents != ".":
            yield node.contents


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
    budget: RenderBudget | None = None,
) -> dict[str, str]:
    """Resolve every partial the template needs, transitively, keyed by tag contents.

    `fetch(reference)` returns `(identity, text)` or None when the partial does not exist (it then
    renders empty). Identities detect cycles. Raises `PartialCycle`, `PartialDepthExceeded`, or
    `TemplateError` for a partial that does not parse; `RenderLimitExceeded` past the budget's
    `max_partials` distinct references, or its deadline.
    """
    fetched: dict[str, tuple[str, str] | None] = {}
    resolved: dict[str, str] = {}
    heights: dict[str, int] = {}  # identity -> nesting levels it adds, itself included
    spend = budget or RenderBudget()

    def fetch_once(reference: str) -> tuple[str, str] | None:
        if reference not in fetched:
            spend.resolve_partial()
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
