"""The one reader of JSON request bodies, and the check on the other text a request carries.

Every way a body or a URL value can be bad ends in a `core.errors` class (a 4xx that the HTTP layer
maps to the OpenAI error shape), never in a Python error that would surface as a 500:

- the body is read as it streams in and reading stops as soon as it passes `limit` bytes, with or
  without a Content-Length, so an oversized chunked body is never held in memory (413
  `request_too_large`);
- the body must be UTF-8 JSON (400 `invalid_json`); messages give the position, never the text around
  it, which may be a provider key;
- arrays and objects nest at most `MAX_JSON_DEPTH` deep (400 `json_too_deep`), checked on the text
  without recursion before it is parsed;
- numbers must be finite: `NaN`, `Infinity`, `-Infinity` and literals such as `1e400` that overflow a
  double are refused, as are integers longer than `MAX_INTEGER_DIGITS` digits (400
  `number_out_of_range`), so every accepted number also converts to a finite float;
- strings and keys must be valid Unicode: a lone surrogate escape such as `"\\ud800"` is refused,
  with its JSON path as `param` (400 `invalid_unicode`);
- path and query values (`check_request_text`) are at most `MAX_TEXT_PARAM_CHARS` characters
  (400 `value_too_long`) and valid Unicode (400 `invalid_unicode`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any, Protocol

from core.errors import InvalidRequest, PayloadTooLarge

MAX_JSON_DEPTH = 64  # arrays and objects inside one another; a prompt body needs a handful
MAX_INTEGER_DIGITS = 300  # below Python's 4,300-digit limit, and every such integer is a finite double
MAX_TEXT_PARAM_CHARS = 1024  # one path segment or query value; ids, slugs and references are far shorter

_SURROGATE = re.compile("[\ud800-\udfff]")
# A `\uD800`-`\uDFFF` escape in the raw text: the only way a lone surrogate gets into a parsed value.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Every byte but quotes and brackets, deleted to get a body's structure, braces read as brackets (depth is
# all that counts). UTF-8 multi-byte characters hold no ASCII bytes, so this works on the raw bytes.
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'[]{}"')
_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
# Digits as `0`, exponent marks as `e`, plus signs as `+`, anything else a space: to spot large literals.
_NUMBER_SHAPES = bytes(ord("0") if byte in b"0123456789" else ord("e") if byte in b"eE" else ord("+") if byte == ord("+")
                       else ord(" ") for byte in range(256))
_MAX_PARAM_PATH = 200


class _Request(Protocol):
    """What the reader uses of a Starlette request."""

    def stream(self) -> Any: ...


async def read_json_body(request: _Request, limit: int, *, default: Any = None) -> Any:
    """The request's body parsed as strict JSON; `default` for an empty body when given, else a 400."""
    return parse_json_body(await read_body(request, limit), default=default)


async def read_body(request: _Request, limit: int) -> bytes:
    """The raw body, read chunk by chunk and abandoned (413) as soon as it passes `limit` bytes.

    A Content-Length over the limit is refused by the edge (handlers/asgi_edge.py) before the app runs."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_body(raw: bytes | str, *, default: Any = None) -> Any:
    """`raw` parsed under the rules in this module's docstring; `default` (or a 400) for an empty body."""
    text = _decoded(raw)
    if not text.strip():
        if default is not None:
            return default
        raise InvalidRequest("The request body must be a JSON object.")
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    _check_depth(data)
    # A Python call per number costs: numbers are checked one by one only if one could be out of range.
    large = _may_hold_large_numbers(data)
    try:
        value = (_CHECKING_NUMBERS if large else _DECODER).decode(text)
    except json.JSONDecodeError as exc:
        # Position only: the parser's context could quote a secret from the body.
        raise InvalidRequest(
            f"We could not parse the JSON body of your request ({exc.msg} at line {exc.lineno}, column {exc.colno}). "
            "The body must be valid JSON.", code="invalid_json") from None
    if large or b"NaN" in data or b"Infinity" in data or _SURROGATE_ESCAPE.search(text):
        _check_values(value)
    return value


def check_text(value: str, *, param: str, max_chars: int = MAX_TEXT_PARAM_CHARS) -> str:
    """`value` (a path or query value named `param`) if it is valid Unicode of at most `max_chars` characters."""
    if len(value) > max_chars:
        raise InvalidRequest(f"{_safe(param)} is longer than {max_chars} characters.", param=_safe(param),
                             code="value_too_long")
    if _SURROGATE.search(value):
        raise InvalidRequest(f"{_safe(param)} holds a lone surrogate (such as \\ud800), which is not valid Unicode.",
                             param=_safe(param), code="invalid_unicode")
    return value


def check_request_text(request: Any) -> None:
    """Checks every path parameter and every query key and value of a Starlette request with `check_text`."""
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_text(value, param=name)
    for name, value in request.query_params.multi_items():
        check_text(name, param="query parameter name")
        check_text(value, param=name)


# --- the strict decoding ------------------------------------------------------------------------------


def _decoded(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid UTF-8 (byte {exc.start}). The body must be UTF-8 JSON.",
                             code="invalid_json") from None


def _check_depth(data: bytes) -> None:
    """Refuses nesting past MAX_JSON_DEPTH without recursion; brackets inside strings do not count."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return  # cannot nest deeper than it has brackets: the common case costs two C-speed counts
    brackets = left = _brackets(data)
    for _ in range(MAX_JSON_DEPTH):  # each pass removes the innermost level of nesting, and only that
        shorter = left.replace(b"[]", b"")
        if len(shorter) == len(left):
            break
        left = shorter
    if left and _deepest(brackets) > MAX_JSON_DEPTH:  # left over: too deep, or unbalanced (invalid JSON)
        raise InvalidRequest(f"The JSON body nests arrays and objects more than {MAX_JSON_DEPTH} deep.",
                             code="json_too_deep")


def _brackets(data: bytes) -> bytes:
    """The brackets outside strings, in order, braces as brackets. Escaped backslashes go first, then escaped quotes, then all but
    quotes and brackets; what is left alternates outside and inside strings at each quote. An unterminated
    string runs to the end, where the parser stops too: it never nests past what this sees."""
    skeleton = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(_BRACES_AS_BRACKETS, _NOT_STRUCTURE)
    return b"".join(skeleton.split(b'"')[::2])


def _deepest(brackets: bytes) -> int:
    """How deep `brackets` nest, stopping once past the bound (for a suspect body only)."""
    depth = 0
    for byte in brackets:
        if byte == 0x5B:  # [
            depth += 1
            if depth > MAX_JSON_DEPTH:
                break
        else:
            depth -= 1
    return depth


def _may_hold_large_numbers(data: bytes) -> bool:
    """Whether a literal could be out of range: 20 or more digits in a row, or an exponent of 3 digits or more.
    With neither, a number stays below 1e119 and an integer has at most 19 digits."""
    shapes = data.translate(_NUMBER_SHAPES)
    return b"0" * 20 in shapes or b"e000" in shapes or b"e+000" in shapes


class _Refused:
    """Stands in for a number the parser refused, so the walk can name where it was."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _refuse_constant(name: str) -> _Refused:
    return _Refused(f"The JSON body holds {name}, which is not a number JSON allows; numbers must be finite.")


def _bounded_int(literal: str) -> int | _Refused:
    if len(literal) > MAX_INTEGER_DIGITS and len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        return _Refused(f"The JSON body holds an integer of more than {MAX_INTEGER_DIGITS} digits.")
    return int(literal)


def _finite_float(literal: str) -> float | _Refused:
    value = float(literal)
    if not math.isfinite(value):
        return _Refused("The JSON body holds a number too large for a double; numbers must be finite.")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_CHECKING_NUMBERS = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_bounded_int, parse_float=_finite_float)


def _check_values(value: Any) -> None:
    """Walks the parsed value in document order, without recursion: the first refused number, or string or key
    with a lone surrogate, is a 400 naming its JSON path."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                _refuse_surrogate(path)
        elif isinstance(item, _Refused):
            raise InvalidRequest(item.message, param=_json_path(path), code="number_out_of_range")
        elif isinstance(item, dict):
            for key in item:
                if _SURROGATE.search(key):
                    _refuse_surrogate(path, in_key=True)
            stack.extend((child, (*path, key)) for key, child in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((item[index], (*path, index)) for index in range(len(item) - 1, -1, -1))


def _refuse_surrogate(path: tuple[str | int, ...], *, in_key: bool = False) -> None:
    param = _json_path(path)
    where = f"a key of {param}" if in_key and param else "a key" if in_key else param or "the body"
    raise InvalidRequest(f"The JSON body holds a lone surrogate (such as \\ud800) in {where}; strings must be valid "
                         "Unicode.", param=param, code="invalid_unicode")


def _json_path(path: Iterable[str | int]) -> str | None:
    """`variables.name`, `messages[0].content`: where a value sits, printable even if a key is not."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{_safe(part)}" for part in path)
    return text[1 if text.startswith(".") else 0:][:_MAX_PARAM_PATH] or None


def _safe(text: str) -> str:
    """`text` with lone surrogates as `\\udXXX` escapes, so it can be written out as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def body_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than {limit} bytes.")


__all__ = ["MAX_INTEGER_DIGITS", "MAX_JSON_DEPTH", "MAX_TEXT_PARAM_CHARS", "body_too_large", "check_request_text",
           "check_text", "parse_json_body", "read_body", "read_json_body"]
