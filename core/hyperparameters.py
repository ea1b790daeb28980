"""Hyperparameters of a prompt call: validation with OpenAI's bounds, request-body parsing, merging.

Validation only checks: callers always get back what they passed, so nothing a user stored is
silently changed (no coercion, no reordering). Unknown keys pass through unchecked, and `null` for
any field means "not given".
"""

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal, TypeAlias, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Strict,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.errors import InvalidRequest

__all__ = [
    "Hyperparameters",
    "PromptRequest",
    "merge_parameters",
    "parse_request_body",
    "validate_parameters",
]

SEED_MIN = -(2**63)
SEED_MAX = 2**63 - 1
MAX_TOOLS = 128
MAX_STOP_SEQUENCES = 4
NAME_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,64}")

# Request-body keys that are not hyperparameters: they control the call and never reach a provider.
REQUEST_ONLY_KEYS = ("variables", "stream", "strict")
# Only the request decides streaming: these are never taken from saved parameters.
STREAMING_KEYS = ("stream", "stream_options")


# --- field types ---------------------------------------------------------------------------


def _range_check(kind: Literal["integer", "number"], low: int | None, high: int | None) -> Callable[[Any], Any]:
    """An int (or, for "number", an int or float) within [low, high]; bools and strings rejected."""
    accepted = int if kind == "integer" else (int, float)
    if low is not None and high is not None:
        range_text = f"must be between {low} and {high}"
    elif low == 1 and kind == "integer":
        range_text = "must be a positive integer"
    else:
        range_text = f"must be at least {low}"

    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, accepted):
            raise PydanticCustomError("number_type", f"must be {'an integer' if kind == 'integer' else 'a number'}")
        in_range = not (isinstance(value, float) and math.isnan(value))
        in_range = in_range and (low is None or value >= low) and (high is None or value <= high)
        if not in_range:
            raise PydanticCustomError("out_of_range", range_text)
        return value

    return check


def _bounded(kind: Literal["integer", "number"], low: int | None, high: int | None) -> Any:
    """The field type whose one validator is `_RANGE_CHECKS`' check for these bounds."""
    schema: dict[str, Any] = {"type": kind}
    if low is not None:
        schema["minimum"] = low
    if high is not None:
        schema["maximum"] = high
    base = int if kind == "integer" else float
    return Annotated[base, PlainValidator(_RANGE_CHECKS[(kind, low, high)]), WithJsonSchema(schema)]


# The bounded fields' bounds, each with the one check pydantic runs for it (and the fast path below).
_BOUNDS: dict[str, tuple[Literal["integer", "number"], int | None, int | None]] = {
    "penalty": ("number", -2, 2),
    "bias": ("number", -100, 100),
    "temperature": ("number", 0, 2),
    "top_p": ("number", 0, 1),
    "token_count": ("integer", 1, None),
    "top_logprobs": ("integer", 0, 20),
    "choice_count": ("integer", 1, 128),
    "seed": ("integer", SEED_MIN, SEED_MAX),
}
_RANGE_CHECKS = {bounds: _range_check(*bounds) for bounds in _BOUNDS.values()}


def _check_name(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "must be a string")
    if not NAME_PATTERN.fullmatch(value):
        raise PydanticCustomError(
            "name_pattern", "must be 1 to 64 characters of a-z, A-Z, 0-9, underscores or dashes"
        )
    return value


def _by_json_type(value: Any) -> str | None:
    """Discriminator for `string | object` and `string | array` unions."""
    if isinstance(value, str):
        return "<string>"
    if isinstance(value, dict):
        return "<object>"
    if isinstance(value, list):
        return "<array>"
    return None


Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]
Object = Annotated[dict[str, Any], Strict()]
FunctionName = Annotated[
    str, PlainValidator(_check_name), WithJsonSchema({"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$"})
]
if TYPE_CHECKING:  # what the validators accept, as static types
    Penalty: TypeAlias = float
    Bias: TypeAlias = float
    Temperature: TypeAlias = float
    TopP: TypeAlias = float
    TokenCount: TypeAlias = int
    TopLogprobs: TypeAlias = int
    ChoiceCount: TypeAlias = int
    Seed: TypeAlias = int
else:
    Penalty = _bounded(*_BOUNDS["penalty"])
    Bias = _bounded(*_BOUNDS["bias"])
    Temperature = _bounded(*_BOUNDS["temperature"])
    TopP = _bounded(*_BOUNDS["top_p"])
    TokenCount = _bounded(*_BOUNDS["token_count"])
    TopLogprobs = _bounded(*_BOUNDS["top_logprobs"])
    ChoiceCount = _bounded(*_BOUNDS["choice_count"])
    Seed = _bounded(*_BOUNDS["seed"])
TokenId = Annotated[str, Strict(), Field(pattern=r"^[0-9]+$")]


class _Open(BaseModel):
    """Strict types, unknown keys kept. Built on first use (`defer_build`): a render whose hyperparameters are plain
    scalars never needs it (`_plainly_valid`), so a cold start skips it."""

    model_config = ConfigDict(strict=True, extra="allow", defer_build=True)


class Message(_Open):
    role: Str
    content: Any = None


class FunctionDefinition(_Open):
    name: FunctionName
    description: Str | None = None
    parameters: Object | None = None


class ToolFunction(FunctionDefinition):
    strict: Bool | None = None


class Tool(_Open):
    type: Literal["function"]
    function: ToolFunction


class NamedFunctionCall(_Open):
    name: Str


class NamedToolChoice(_Open):
    type: Literal["function"]
    function: NamedFunctionCall


class JsonSchemaFormat(_Open):
    name: FunctionName
    description: Str | None = None
    schema_: Object | None = Field(default=None, alias="schema")
    strict: Bool | None = None


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _json_schema_given(self) -> "ResponseFormat":
        if self.type == "json_schema" and self.json_schema is None:
            raise PydanticCustomError(
                "requires_field", "is required when type is 'json_schema'", {"at": "json_schema"}
            )
        return self


class StreamOptions(_Open):
    include_usage: Bool | None = None


FunctionCall = Annotated[
    Union[Annotated[Literal["none", "auto"], Tag("<string>")], Annotated[NamedFunctionCall, Tag("<object>")]],
    Discriminator(
        _by_json_type,
        custom_error_type="choice",
        custom_error_message="must be 'none', 'auto' or an object naming a function",
    ),
]
ToolChoice = Annotated[
    Union[
        Annotated[Literal["none", "auto", "required"], Tag("<string>")],
        Annotated[NamedToolChoice, Tag("<object>")],
    ],
    Discriminator(
        _by_json_type,
        custom_error_type="choice",
        custom_error_message="must be 'none', 'auto', 'required' or an object naming a function",
    ),
]
Stop = Annotated[
    Union[
        Annotated[Str, Tag("<string>")],
        Annotated[list[Str], Field(max_length=MAX_STOP_SEQUENCES), Tag("<array>")],
    ],
    Discriminator(
        _by_json_type,
        custom_error_type="choice",
        custom_error_message=f"must be a string or an array of at most {MAX_STOP_SEQUENCES} strings",
    ),
]
# Fields whose type is a tagged union: pydantic puts the tag into the error location.
_UNION_FIELDS = frozenset({"function_call", "tool_choice", "stop"})
_UNION_TAGS = frozenset({"<string>", "<object>", "<array>"})


class Hyperparameters(_Open):
    """Every hyperparameter OpenAI's chat API documents, with its bounds. Unknown keys pass through."""

    model: Str | None = None
    messages: list[Message] | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    function_call: FunctionCall | None = None
    functions: Annotated[list[FunctionDefinition], Field(max_length=MAX_TOOLS)] | None = None
    logit_bias: dict[TokenId, Bias] | None = None
    logprobs: Bool | None = None
    top_logprobs: TopLogprobs | None = None
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
    n: ChoiceCount | None = None
    parallel_tool_calls: Bool | None = None
    response_format: ResponseFormat | None = None
    seed: Seed | None = None
    stop: Stop | None = None
    stream: Bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    tool_choice: ToolChoice | None = None
    tools: Annotated[list[Tool], Field(max_length=MAX_TOOLS)] | None = None
    user: Str | None = None

    @model_validator(mode="after")
    def _dependent_fields(self) -> "Hyperparameters":
        if self.top_logprobs is not None and self.logprobs is not True:
            raise PydanticCustomError("requires_field", "is only allowed when logprobs is true", {"at": "top_logprobs"})
        if self.stream_options is not None and self.stream is not True:
            raise PydanticCustomError("requires_field", "is only allowed when stream is true", {"at": "stream_options"})
        return self


# --- validation ----------------------------------------------------------------------------

_TYPE_PREDICATES = {
    "string_type": "must be a string",
    "bool_type": "must be a boolean",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be an array",
}
_CUSTOM_TYPES = frozenset({"number_type", "out_of_range", "name_pattern", "choice", "requires_field"})


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_bool(value: Any) -> bool:
    return type(value) is bool


def _in_range(check: Callable[[Any], Any]) -> Callable[[Any], bool]:
    def passes(value: Any) -> bool:
        try:
            check(value)
        except PydanticCustomError:
            return False
        return True

    return passes


# Hyperparameters' scalar fields, each with a test that passes only values its validator accepts (strict
# `str` and `bool` take exact types here; a subclass goes to pydantic).
_SCALAR_FIELDS: dict[str, Callable[[Any], bool]] = {
    "model": _is_str,
    "user": _is_str,
    "logprobs": _is_bool,
    "parallel_tool_calls": _is_bool,
    "stream": _is_bool,
    "frequency_penalty": _in_range(_RANGE_CHECKS[_BOUNDS["penalty"]]),
    "presence_penalty": _in_range(_RANGE_CHECKS[_BOUNDS["penalty"]]),
    "temperature": _in_range(_RANGE_CHECKS[_BOUNDS["temperature"]]),
    "top_p": _in_range(_RANGE_CHECKS[_BOUNDS["top_p"]]),
    "max_tokens": _in_range(_RANGE_CHECKS[_BOUNDS["token_count"]]),
    "max_completion_tokens": _in_range(_RANGE_CHECKS[_BOUNDS["token_count"]]),
    "top_logprobs": _in_range(_RANGE_CHECKS[_BOUNDS["top_logprobs"]]),
    "n": _in_range(_RANGE_CHECKS[_BOUNDS["choice_count"]]),
    "seed": _in_range(_RANGE_CHECKS[_BOUNDS["seed"]]),
}
_FIELDS = frozenset(Hyperparameters.model_fields)  # collected at class creation; reading them builds nothing
if not _FIELDS >= set(_SCALAR_FIELDS):
    raise TypeError("_SCALAR_FIELDS names a field Hyperparameters does not have")


def _plainly_valid(data: Mapping[str, Any]) -> bool:
    """True only if `Hyperparameters` accepts `data` for sure: each of its fields present is null or a scalar its
    validator takes, and `top_logprobs` comes with `logprobs: true`. False means "ask pydantic", which then
    accepts or names the problem. A render's overrides are usually such scalars, or none."""
    for key, value in data.items():
        if value is None:
            continue
        passes = _SCALAR_FIELDS.get(key)
        if passes is None:
            if key in _FIELDS:  # a structured field (messages, tools, response_format, ...): pydantic's to check
                return False
            continue  # an unknown key passes through unchecked, as `extra="allow"` lets it
        if not passes(value):
            return False
    return data.get("top_logprobs") is None or data.get("logprobs") is True


def validate_parameters(params: Any, *, prefix: str = "") -> dict[str, Any]:
    """Check `params` against `Hyperparameters`; return it unchanged or raise `InvalidRequest`.

    `prefix` is prepended to the reported `param`, e.g. "parameters" gives `parameters.temperature`.
    """
    if not isinstance(params, Mapping):
        subject = prefix or "Hyperparameters"
        raise InvalidRequest(f"{subject} must be a JSON object; got {_describe(params)}.", param=prefix or None)
    data = params if isinstance(params, dict) else dict(params)
    if _plainly_valid(data):
        return data
    try:
        Hyperparameters.model_validate(data)
    except ValidationError as exc:
        # Report the error on the key the caller wrote first, not pydantic's field order.
        key_order = {key: index for index, key in enumerate(data)}
        first = min(exc.errors(), key=lambda error: key_order.get(error["loc"][0] if error["loc"] else None, -1))
        raise _to_invalid_request(first, prefix) from None
    return data


def _error_loc(error: Mapping[str, Any]) -> tuple[Any, ...]:
    loc = tuple(error["loc"])
    if len(loc) >= 2 and loc[0] in _UNION_FIELDS and loc[1] in _UNION_TAGS:
        loc = loc[:1] + loc[2:]
    at = (error.get("ctx") or {}).get("at")
    return loc + (at,) if at else loc


def _to_invalid_request(error: Mapping[str, Any], prefix: str) -> InvalidRequest:
    loc = _error_loc(error)
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc = loc[:-1]
    param = _join_path(prefix, loc)
    subject = param or "Hyperparameters"
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = f"; got {_describe(error.get('input'))}"

    if is_key:
        return InvalidRequest(f"{subject} is not a valid token ID; logit_bias keys must be integers as strings.", param=param)
    if kind == "missing":
        return InvalidRequest(f"{subject} is required.", param=param)
    if kind == "requires_field":
        return InvalidRequest(f"{subject} {error['msg']}.", param=param)
    if kind in _CUSTOM_TYPES:
        predicate = error["msg"]
    elif kind == "literal_error":
        predicate = f"must be {ctx.get('expected')}"
    elif kind == "too_long":
        predicate = f"must have at most {ctx.get('max_length')} items"
    elif kind in _TYPE_PREDICATES:
        predicate = _TYPE_PREDICATES[kind]
    else:
        predicate = f"is invalid ({error['msg']})"
    return InvalidRequest(f"{subject} {predicate}{got}.", param=param)


def _join_path(prefix: str, loc: tuple[Any, ...]) -> str | None:
    path = prefix.rstrip(".")
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path or None


def _describe(value: Any) -> str:
    """A short JSON-ish rendering of a rejected value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 40 else f"an integer of {len(text.lstrip('-'))} digits"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return f"an array of {len(value)} item{'' if len(value) == 1 else 's'}"
    return type(value).__name__


# --- request body and merging --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromptRequest:
    """A parsed `/render` or `/completions` body."""

    variables: dict[str, Any]
    stream: bool
    overrides: dict[str, Any]
    strict: bool | None = None  # check the variables against the schema; None: as the version's strict_variables


def parse_request_body(body: Any) -> PromptRequest:
    """Split a request body into variables, the stream and strict flags and validated hyperparameter overrides.

    A root-level `strict` is the render's (core.variables); `strict` inside `response_format` or a tool is the
    provider's, passed through."""
    if not isinstance(body, Mapping):
        raise InvalidRequest(f"The request body must be a JSON object; got {_describe(body)}.")

    variables = body.get("variables")
    if variables is None:
        variables = {}
    elif not isinstance(variables, Mapping):
        raise InvalidRequest(f"variables must be an object; got {_describe(variables)}.", param="variables")

    stream = bool(_flag(body, "stream"))
    strict = _flag(body, "strict")

    overrides = {key: value for key, value in body.items() if key not in REQUEST_ONLY_KEYS}
    validate_parameters({**overrides, "stream": stream})
    return PromptRequest(
        variables=dict(variables),
        stream=stream,
        overrides={key: value for key, value in overrides.items() if value is not None},
        strict=strict,
    )


def _flag(body: Mapping[str, Any], name: str) -> bool | None:
    """A boolean control field of a request body; None when absent or null."""
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be a boolean; got {_describe(value)}.", param=name)
    return value


def merge_parameters(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Saved `defaults` with the request's `overrides` on top, as a new dict.

    `None` in overrides never overrides; `stream` and `stream_options` come only from overrides.
    Order: `model`, then the saved keys in saved order, then keys new in overrides.
    """
    merged = {key: value for key, value in defaults.items() if key not in STREAMING_KEYS}
    for key, value in overrides.items():
        if value is not None:
            merged[key] = value
    if "model" in merged:
        merged = {"model": merged.pop("model"), **merged}
    return merged
