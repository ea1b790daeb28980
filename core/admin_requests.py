"""Bodies of the admin endpoints, as Portkey's SDK sends them. Unknown keys are a 400, never dropped.

Every model's validator is built on its first use (`defer_build`), not at import: a render uses none of them,
and building them at import took about 4 ms of the Lambda cold start (10.5 ms to import this module, 6.5 ms now).
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from core.errors import InvalidRequest
from core.models import API_VERSION_FIELDS
from core.references import RESERVED_KEYS

RESERVED_SLUGS = RESERVED_KEYS  # /v1/prompts/partials is the partials API
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}$")
T = TypeVar("T", bound="BaseModel")
_UUID_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _raw_flag(value: Any) -> Any:
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    return value


class VersionFields(_Body):
    string: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    model: StrictStr | None = None
    virtual_key: StrictStr | None = None
    functions: list[Any] | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None  # checked by validate_parameters, which names the param `tool_choice`
    version_description: StrictStr | None = None
    template_metadata: dict[str, Any] | None = None
    is_raw_template: StrictBool | None = None
    variables_schema: dict[str, Any] | None = None
    strict_variables: StrictBool | None = None

    _coerce_raw = field_validator("is_raw_template", mode="before")(_raw_flag)


# The request side of core.models' version fields: a field added there must be accepted here too.
if set(VersionFields.model_fields) != set(API_VERSION_FIELDS):
    raise TypeError(f"VersionFields must accept exactly {sorted(API_VERSION_FIELDS)}")


class CreatePrompt(VersionFields):
    name: StrictStr = Field(min_length=1, max_length=255)
    string: StrictStr
    collection_id: StrictStr = "default"
    workspace_id: StrictStr | None = None
    prompt_metadata: dict[str, Any] | None = None
    external_ids: list[Any] | None = None  # checked by core.references.check_external_ids (param `external_ids`)
    slug: StrictStr | None = None

    @field_validator("slug")
    @classmethod
    def _slug_shape(cls, value: str | None) -> str | None:
        if value is not None and (not SLUG_PATTERN.match(value) or _UUID_SHAPE.match(value)):
            raise ValueError("a slug is 3-64 lowercase letters, digits, '-' or '_', and must not look like a UUID")
        if value in RESERVED_SLUGS:
            raise ValueError(f"the slug {value!r} is reserved: /v1/prompts/{value} is a route of its own")
        return value


class UpdatePrompt(VersionFields):
    name: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    collection_id: StrictStr | None = None
    workspace_id: StrictStr | None = None
    prompt_metadata: dict[str, Any] | None = None
    external_ids: list[Any] | None = None  # replaces the list; [] clears it
    patch: StrictBool = False


def _whole_number(value: Any) -> Any:
    """Portkey's spec types a version number as `number`: a whole float (`2.0`) is that version."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class MakeDefault(_Body):
    version: StrictInt = Field(ge=1)

    _whole = field_validator("version", mode="before")(_whole_number)


class PublishPrompt(MakeDefault):
    force: StrictBool = False  # publish even if callers of the published version would break (core.variables)


class LabelVersion(_Body):
    label_id: StrictStr | None = Field(..., min_length=1)  # null takes every label off the version (the SDK's way)
    force: StrictBool = False  # move the label even if its callers would break (core.variables)


class CreateLabel(_Body):
    name: StrictStr
    description: StrictStr | None = None
    color_code: StrictStr | None = None
    workspace_id: StrictStr | None = None
    organisation_id: StrictStr | None = None  # the spec's spelling
    organization_id: StrictStr | None = None  # the SDK's spelling

    @property
    def organisation(self) -> str | None:
        """The label's organisation, under whichever spelling was sent."""
        return self.organisation_id or self.organization_id


class UpdateLabel(_Body):
    name: StrictStr | None = None
    description: StrictStr | None = None
    color_code: StrictStr | None = None


class CreateCollection(_Body):
    name: StrictStr = Field(min_length=1, max_length=255)
    workspace_id: StrictStr | None = None
    parent_collection_id: StrictStr | None = None  # an id or slug; stored as the parent's id


class UpdateCollection(_Body):
    name: StrictStr = Field(min_length=1, max_length=255)


class CreatePartial(_Body):
    name: StrictStr = Field(min_length=1, max_length=255)
    string: StrictStr
    workspace_id: StrictStr | None = None
    collection_id: StrictStr = "default"
    version_description: StrictStr | None = None
    slug: StrictStr | None = None

    _slug_shape = field_validator("slug")(CreatePrompt._slug_shape.__func__)  # type: ignore[attr-defined]


class UpdatePartial(_Body):
    name: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    string: StrictStr | None = None
    description: StrictStr | None = None
    version_description: StrictStr | None = None
    status: Literal["active", "archived"] | None = None


class AzureDeployment(BaseModel):
    """One entry of Portkey's `deploymentConfig` (Azure OpenAI)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    apiVersion: StrictStr | None = None
    deploymentName: StrictStr | None = None
    alias: StrictStr | None = None
    is_default: StrictBool | None = None


class VirtualKeyFields(_Body):
    """What create and update share. Portkey's limit fields are stored and returned, not enforced.

    Built on first use (`defer_build`), not at import: a cold start that never manages bindings skips it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, protected_namespaces=(),
                              populate_by_name=False)

    name: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    key: StrictStr | None = Field(default=None, max_length=8192)  # the provider secret: to the secret store only
    note: StrictStr | None = Field(default=None, max_length=2000)
    custom_host: StrictStr | None = Field(default=None, max_length=2048)
    headers: dict[str, StrictStr] | None = None
    api_version: StrictStr | None = Field(default=None, max_length=64)
    apiVersion: StrictStr | None = Field(default=None, max_length=64)
    deployment_name: StrictStr | None = Field(default=None, max_length=255)
    deploymentName: StrictStr | None = Field(default=None, max_length=255)
    resource_name: StrictStr | None = Field(default=None, max_length=255)
    resourceName: StrictStr | None = Field(default=None, max_length=255)
    region: StrictStr | None = Field(default=None, max_length=64)
    awsRegion: StrictStr | None = Field(default=None, max_length=64)
    anthropic_version: StrictStr | None = Field(default=None, max_length=64)
    anthropicVersion: StrictStr | None = Field(default=None, max_length=64)
    deploymentConfig: list[AzureDeployment] | None = None
    # Portkey's fields (core.virtual_keys.PORTKEY_FIELDS): stored and returned as sent, not enforced by cuecard.
    workspace_id: StrictStr | None = None
    usage_limits: dict[str, Any] | None = None
    rate_limits: list[Any] | None = None
    expires_at: StrictStr | None = None
    reset_usage: StrictInt | StrictFloat | None = None
    model_config_: dict[str, Any] | None = Field(default=None, alias="model_config")  # pydantic owns `model_config`
    secret_mappings: list[dict[str, Any]] | None = None


class CreateVirtualKey(VirtualKeyFields):
    name: StrictStr = Field(min_length=1, max_length=255)
    provider: StrictStr
    slug: StrictStr | None = None

    _slug_shape = field_validator("slug")(CreatePrompt._slug_shape.__func__)  # type: ignore[attr-defined]


class UpdateVirtualKey(VirtualKeyFields):
    provider: StrictStr | None = None  # only its current value: a binding never changes provider


class ListQuery(_Body):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    collection_id: str | None = None
    workspace_id: str | None = None
    search: str | None = None
    current_page: int = Field(default=0, ge=0)
    page_size: int = Field(default=100, ge=1, le=1000)

    def in_workspace(self, own: str | None) -> bool:
        """The one workspace rule of every list (prompts, partials, labels, virtual keys): `workspace_id=W`
        keeps what belongs to W and what belongs to no workspace. cuecard serves one workspace, and Portkey's
        SDK creates prompts without a workspace_id: those are in every workspace, as the built-in labels are."""
        return not self.workspace_id or own is None or own == self.workspace_id


def parse_body(model: type[T], body: Any) -> T:
    """Validates `body` against `model`; the first problem becomes a 400 naming its field."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _first_problem(exc) from None


def parse_query(model: type[T], query: dict[str, str]) -> T:
    try:
        return model.model_validate(query)
    except ValidationError as exc:
        raise _first_problem(exc) from None


def _first_problem(exc: ValidationError) -> InvalidRequest:
    """The first problem as a 400 that names the field and what is wrong, never the value sent: people
    paste provider keys into the wrong field. pydantic's messages for the types used here quote no
    input; one that would (a future type or validator) is replaced by a generic message."""
    error = exc.errors(include_url=False, include_input=True, include_context=False)[0]
    param = ".".join(str(part) for part in error["loc"]) or None
    if error["type"] == "extra_forbidden":
        return InvalidRequest(f"Unknown field {param!r}.", param=param, code="unknown_parameter")
    if error["type"] == "missing":
        return InvalidRequest(f"Missing required field {param!r}.", param=param, code="missing_required_parameter")
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] not in _MESSAGES_WITHOUT_INPUT and _quotes(message, error.get("input")):
        message = "invalid value"
    return InvalidRequest(f"{param}: {message}.", param=param)


# pydantic error types whose message states the rule (type, length, bound, allowed literals), never the input.
_MESSAGES_WITHOUT_INPUT = frozenset({
    "string_type", "string_too_short", "string_too_long", "bool_type", "bool_parsing", "int_type", "int_parsing",
    "int_parsing_size", "int_from_float", "float_type", "float_parsing", "finite_number", "dict_type", "list_type",
    "model_type", "model_attributes_type", "literal_error", "greater_than", "greater_than_equal", "less_than",
    "less_than_equal",
})
_QUOTABLE_LENGTH = 4  # a shorter fragment (a digit, `true`) in a message says nothing about a secret
_QUOTE_CHECK_BUDGET = 10_000  # values looked at, at most: a body's nesting and size are bounded elsewhere


def _quotes(message: str, value: Any) -> bool:
    """Whether `message` quotes `value`, or a string or number inside it (keys included). Past the budget
    it answers yes: a generic message is always safe."""
    pending, budget = [value], _QUOTE_CHECK_BUDGET
    while pending:
        budget -= 1
        if budget < 0:
            return True
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
        elif isinstance(item, str):
            if len(item) >= _QUOTABLE_LENGTH and item in message:
                return True
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            try:
                text = repr(item)
            except ValueError:  # an int too long to print: no message quotes it either
                continue
            if len(text) >= _QUOTABLE_LENGTH and text in message:
                return True
    return False
