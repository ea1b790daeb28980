"""validate_parameters skips pydantic for plain scalar hyperparameters (`_plainly_valid`); it must answer exactly as
pydantic does, for every field and every kind of value, valid or not."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from core import hyperparameters
from core.errors import InvalidRequest
from core.hyperparameters import Hyperparameters, _plainly_valid, validate_parameters

SEED_MAX = 2**63 - 1


class Text(str):
    pass


VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 2, 3, 20, 21, 100, 128, 129, 0.0, 0.5, 1.0, 1.5, 2.0, 2.0001, -2, -2.0, -2.5, -100.5,
    SEED_MAX, SEED_MAX + 1, -SEED_MAX - 1, -SEED_MAX - 2, math.nan, math.inf, -math.inf, "", "x", "gpt-4o", Text("x"),
    [], ["a"], {}, {"a": 1},
]
# Keys outside the model pass through unchecked; some look like pydantic's own names.
UNKNOWN_KEYS = ["reasoning_effort", "model_config", "model_fields", "_private", "__class__", "schema", "schema_"]


def through_pydantic(params: dict[str, Any]) -> Any:
    """What validate_parameters answers without its fast path: the dict back, or the InvalidRequest's fields."""
    original = hyperparameters._plainly_valid
    hyperparameters._plainly_valid = lambda data: False  # type: ignore[assignment]
    try:
        return answer(params)
    finally:
        hyperparameters._plainly_valid = original


def answer(params: dict[str, Any]) -> Any:
    try:
        return ("ok", validate_parameters(params))
    except InvalidRequest as error:
        return ("error", error.status, error.message, error.param, error.code)


def same(left: Any, right: Any) -> bool:
    """Equal, NaN included (a NaN value comes back as the same object, but `nan != nan`)."""
    return repr(left) == repr(right)


@pytest.mark.parametrize("field", sorted(Hyperparameters.model_fields))
def test_each_field_answers_as_pydantic_does_for_every_kind_of_value(field: str) -> None:
    for value in VALUES:
        params = {field: value}
        assert same(answer(params), through_pydantic(params)), params


@pytest.mark.parametrize("key", UNKNOWN_KEYS)
def test_unknown_keys_pass_through_as_pydantic_lets_them(key: str) -> None:
    for value in (None, 1, "x", {"nested": [1]}):
        params = {key: value, "temperature": 0.5}
        assert _plainly_valid(params)
        assert same(answer(params), through_pydantic(params)) and answer(params)[0] == "ok"


def test_dependent_fields_answer_as_pydantic_does() -> None:
    scalars = {"logprobs": [None, True, False], "top_logprobs": [None, 0, 20, 21], "stream": [None, True, False],
               "stream_options": [None, {"include_usage": True}]}
    for combination in itertools.product(*scalars.values()):
        params = dict(zip(scalars, combination, strict=True))
        assert same(answer(params), through_pydantic(params)), params


def test_pairs_of_fields_answer_as_pydantic_does() -> None:
    """The first error is the one on the key written first, whichever path finds it."""
    samples = [("temperature", 3), ("top_p", 0.5), ("n", 0), ("model", 1), ("user", "u"), ("seed", 1.5),
               ("tools", []), ("max_tokens", True)]
    for (first, one), (second, other) in itertools.permutations(samples, 2):
        params = {first: one, second: other}
        assert same(answer(params), through_pydantic(params)), params


def test_plain_scalars_never_build_the_model() -> None:
    """A render with scalar overrides (the usual case) stays off pydantic, so a cold start never builds it."""
    assert _plainly_valid({"temperature": 0.1, "max_tokens": 300, "stream": False, "model": "gpt-4o-mini",
                           "seed": 7, "user": "u", "logprobs": True, "top_logprobs": 3})
    assert not _plainly_valid({"tools": []})  # structured fields are pydantic's
    assert not _plainly_valid({"temperature": 3})  # and so is every refusal, for its message
