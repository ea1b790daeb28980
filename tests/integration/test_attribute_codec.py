"""JSON values <-> DynamoDB attribute values, and item sizes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import InvalidRequest
from infra.attribute_codec import MAX_DEPTH, from_attr, item_size, to_attr


@pytest.mark.parametrize(
    "value",
    [0.5, 1, 0, -3, 0.1, 1e-7, 123456789012345678, 2.5e-100, "", "text", True, False, None, [], {}, [1, "a", None],
     {"a": {"b": [0.25, {"c": False}]}}],
)
def test_json_values_round_trip(value: object) -> None:
    decoded = from_attr(to_attr(value))
    assert decoded == value and type(decoded) is type(value)


def test_normalised_numbers_read_back_as_int_when_integral() -> None:
    assert from_attr({"N": "1.0"}) == 1 and type(from_attr({"N": "1.0"})) is int
    assert from_attr({"N": "1E+2"}) == 100
    assert type(from_attr(to_attr(2.0))) is int
    assert from_attr(to_attr(Decimal("0.50"))) == 0.5


@pytest.mark.parametrize("value", [float("nan"), float("-inf"), 1e200, 1e-200, 10**40 + 1, Decimal("NaN"), object()])
def test_unstorable_values_are_invalid_requests(value: object) -> None:
    with pytest.raises(InvalidRequest):
        to_attr({"temperature": value}, name="parameters")


def test_empty_map_keys_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="non-empty"):
        to_attr({"tools": [{"": 1}]}, name="tools")


def test_nesting_beyond_dynamodbs_limit_is_refused() -> None:
    deep: object = "leaf"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    to_attr(deep)
    with pytest.raises(InvalidRequest, match="nested"):
        to_attr([deep])


def test_item_size_counts_names_and_values() -> None:
    assert item_size({"pk": {"S": "abc"}}) == 5
    assert item_size({"s": {"S": "é"}}) == 3
    assert item_size({"m": {"M": {"k": {"S": "v" * 10}}}}) > 12
