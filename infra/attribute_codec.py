"""JSON-like Python values <-> DynamoDB AttributeValues, and DynamoDB's item-size arithmetic.

Numbers are stored as DynamoDB numbers (exact decimal text) and come back as `int` when integral,
`float` otherwise: 0.5 -> 0.5, 1 -> 1, and 1.0 -> 1 (DynamoDB normalises numbers, so an integral
float cannot be told from an int once stored; the two are equal in JSON).
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from core.errors import InvalidRequest

MAX_DEPTH = 32  # DynamoDB's nesting limit for lists and maps
_MAX_DIGITS = 38
_MIN_EXPONENT, _MAX_EXPONENT = -130, 125


def to_attr(value: Any, *, name: str = "value", depth: int = 0) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"{name} is nested more than {MAX_DEPTH} levels deep, which cannot be stored.")
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": _number_text(value, name)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        encoded: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise InvalidRequest(f"{name} has the key {key!r}; DynamoDB stores only non-empty string keys.")
            encoded[key] = to_attr(item, name=name, depth=depth + 1)
        return {"M": encoded}
    if isinstance(value, (list, tuple)):
        return {"L": [to_attr(item, name=name, depth=depth + 1) for item in value]}
    raise InvalidRequest(f"{name} holds a {type(value).__name__}, which is not a JSON value.")


def from_attr(attr: Mapping[str, Any]) -> Any:
    (tag, raw), = attr.items()
    if tag == "S":
        return raw
    if tag == "N":
        return _number_value(raw)
    if tag == "BOOL":
        return bool(raw)
    if tag == "NULL":
        return None
    if tag == "M":
        return {key: from_attr(item) for key, item in raw.items()}
    if tag == "L":
        return [from_attr(item) for item in raw]
    if tag == "SS":
        return set(raw)
    if tag == "NS":
        return {_number_value(item) for item in raw}
    raise ValueError(f"unsupported DynamoDB attribute type {tag}")


def _number_text(value: int | float | Decimal, name: str) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(f"{name} holds {value!r}, which is not a finite number.")
        number = Decimal(repr(value))
    else:
        number = Decimal(value)
    if not number.is_finite():
        raise InvalidRequest(f"{name} holds {value!r}, which is not a finite number.")
    if number.is_zero():
        return "0"
    significant = "".join(map(str, number.as_tuple().digits)).strip("0")
    if len(significant) > _MAX_DIGITS or not _MIN_EXPONENT <= number.adjusted() <= _MAX_EXPONENT:
        raise InvalidRequest(f"{name} holds {value!r}, outside the numbers DynamoDB can store (38 digits, 1e-130..1e125).")
    return str(value) if isinstance(value, int) else str(number)


def _number_value(text: str) -> int | float:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a DynamoDB number: {text!r}") from None
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes DynamoDB counts for an item (attribute names plus values), rounded up where AWS is vague."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def _value_size(attr: Mapping[str, Any]) -> int:
    (tag, raw), = attr.items()
    if tag in ("S", "B"):
        return len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)
    if tag == "N":
        return len(raw) // 2 + 2
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "M":
        return 3 + sum(1 + len(key.encode("utf-8")) + _value_size(item) for key, item in raw.items())
    if tag == "L":
        return 3 + sum(1 + _value_size(item) for item in raw)
    if tag in ("SS", "BS"):
        return sum(len(item.encode("utf-8")) if isinstance(item, str) else len(item) for item in raw)
    if tag == "NS":
        return sum(len(item) // 2 + 2 for item in raw)
    raise ValueError(f"unsupported DynamoDB attribute type {tag}")
