"""How variable values become text inside a rendered template, the way Portkey's mustache.js fork does it.

Two flavours: `text_value` for plain text (chat strings, text prompts) and `raw_value` for raw
templates, whose rendered text must still parse as JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

_EXACT_INT_LIMIT = 2**53  # below this an integral float prints exactly as an int


def js_number(value: float) -> str:
    """`Number.prototype.toString()`: 1.0 -> "1", 1e21 -> "1e+21", 1e-7 -> "1e-7"."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < _EXACT_INT_LIMIT:
        return str(int(value))
    sign = "-" if value < 0 else ""
    # repr gives the shortest round-tripping digits, as JS does; only the layout differs.
    _, digit_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = k + int(exponent)  # value = 0.digits * 10**n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        mantissa = digits[0] + (f".{digits[1:]}" if k > 1 else "")
        body = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + body


def _jsonable(value: Any) -> Any:
    """Floats as `JSON.stringify` writes them: 1.0 -> 1, NaN/Infinity -> null."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) < _EXACT_INT_LIMIT:
            return int(value)
        return value
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if _is_list(value):
        return [_jsonable(item) for item in value]
    return value


def compact_json(value: Any) -> str:
    return json.dumps(_jsonable(value), separators=(",", ":"), ensure_ascii=False, default=str)


def _is_list(value: Any) -> bool:
    if type(value) is list:
        return True
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def _scalar_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return js_number(value)
    return str(value)


def text_value(value: Any) -> str:
    """Plain-text stringification: objects as compact JSON, lists joined by `,`."""
    if type(value) is str:  # the common case, before the abc checks below
        return value
    if isinstance(value, Mapping):
        return compact_json(value)
    if _is_list(value):
        return ",".join(compact_json(item) if _is_container(item) else text_value(item) for item in value)
    return _scalar_text(value)


def raw_value(value: Any) -> str:
    """Like `text_value`, but strings are escaped as JSON string content (no quotes added)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if isinstance(value, Mapping):
        return compact_json(value)
    if _is_list(value):
        return ",".join(compact_json(item) if _is_container(item) else raw_value(item) for item in value)
    return _scalar_text(value)


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping) or _is_list(value)
