"""Bodies of the admin endpoints, as Portkey's SDK sends them. Unknown keys are a 400, never dropped."""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from core.errors import InvalidRequest

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}$")
T = TypeVar("T", bound="BaseModel")
_UUID_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    _coerce_raw = field_validator("is_raw_template", mode="before")(_raw_flag)


class CreatePrompt(VersionFields):
    name: StrictStr = Field(min_length=1, max_length=255)
    string: StrictStr
    collection_id: StrictStr = "default"
    workspace_id: StrictStr | None = None
    prompt_metadata: dict[str, Any] | None = None
    slug: StrictStr | None = None

    @field_validator("slug")
    @classmethod
    def _slug_shape(cls, value: str | None) -> str | None:
        if value is not None and (not SLUG_PATTERN.match(value) or _UUID_SHAPE.match(value)):
            raise ValueError("a slug is 3-64 lowercase letters, digits, '-' or '_', and must not look like a UUID")
        return value


class UpdatePrompt(VersionFields):
    name: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    collection_id: StrictStr | None = None
    workspace_id: StrictStr | None = None
    prompt_metadata: dict[str, Any] | None = None
    patch: StrictBool = False


class MakeDefault(_Body):
    version: StrictInt = Field(ge=1)


class LabelVersion(_Body):
    label_id: StrictStr = Field(min_length=1)


class CreateLabel(_Body):
    name: StrictStr
    description: StrictStr | None = None
    color_code: StrictStr | None = None
    workspace_id: StrictStr | None = None
    organization_id: StrictStr | None = None


class UpdateLabel(_Body):
    name: StrictStr | None = None
    description: StrictStr | None = None
    color_code: StrictStr | None = None


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


class ListQuery(_Body):
    model_config = ConfigDict(extra="ignore", frozen=True)
    collection_id: str | None = None
    workspace_id: str | None = None
    search: str | None = None
    current_page: int = Field(default=0, ge=0)
    page_size: int = Field(default=100, ge=1, le=1000)


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
    error = exc.errors(include_url=False)[0]
    param = ".".join(str(part) for part in error["loc"]) or None
    if error["type"] == "extra_forbidden":
        return InvalidRequest(f"Unknown field {param!r}.", param=param, code="unknown_parameter")
    if error["type"] == "missing":
        return InvalidRequest(f"Missing required field {param!r}.", param=param, code="missing_required_parameter")
    message = str(error["msg"]).removeprefix("Value error, ")
    return InvalidRequest(f"{param}: {message}.", param=param)
