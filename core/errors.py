"""Typed domain errors. Each carries what the OpenAI error shape needs; handlers map them to HTTP.

The hierarchy follows httpx's `_exceptions.py`: one base, a few families, leaf classes that name
what went wrong. `status` and `type` live on the class so the HTTP layer needs one mapping only.
"""

from __future__ import annotations


class CuecardError(Exception):
    """Base of every error cuecard raises on purpose."""

    status: int = 500
    type: str = "api_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code

    def to_body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# --- 4xx: the caller can fix it -------------------------------------------------------------


class InvalidRequest(CuecardError):
    """Malformed or out-of-range input (400)."""

    status = 400
    type = "invalid_request_error"
    default_code = "invalid_request"


class InvalidReference(InvalidRequest):
    """A prompt or partial reference such as `id@x y` that cannot be parsed."""

    default_code = "invalid_prompt_reference"


class InvalidLabelName(InvalidRequest):
    default_code = "invalid_label_name"


class TemplateError(InvalidRequest):
    """A template that cannot be parsed or rendered, such as an unclosed section."""

    default_code = "template_error"


class PartialCycle(TemplateError):
    default_code = "partial_cycle"


class PartialDepthExceeded(TemplateError):
    default_code = "partial_depth_exceeded"


class InvalidVariablesSchema(InvalidRequest):
    """A `variables_schema` that is no JSON Schema of an object, or whose defaults break it."""

    default_code = "invalid_variables_schema"


class InvalidVariables(InvalidRequest):
    """A strict render's variables that do not match the version's schema: missing, unknown or mistyped."""

    default_code = "invalid_variables"


class RenderedJSONInvalid(CuecardError):
    """A raw template whose rendered text is not valid JSON (422)."""

    status = 422
    type = "invalid_request_error"
    default_code = "rendered_json_invalid"


class RenderLimitExceeded(CuecardError):
    """A render that would exceed one of its limits (output size, section iterations, partials, time) (422).

    422, like `RenderedJSONInvalid`: the request is well formed, but this template with these variables
    cannot be rendered within the server's limits. Retrying it unchanged fails the same way.
    """

    status = 422
    type = "invalid_request_error"
    default_code = "render_limit_exceeded"


class Unauthenticated(CuecardError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(CuecardError):
    status = 403
    type = "permission_error"
    default_code = "insufficient_scope"


class NotFound(CuecardError):
    status = 404
    type = "not_found_error"
    default_code = "not_found"


class PromptNotFound(NotFound):
    default_code = "prompt_not_found"


class VersionNotFound(NotFound):
    default_code = "version_not_found"


class LabelNotFound(NotFound):
    default_code = "label_not_found"


class PartialNotFound(NotFound):
    default_code = "partial_not_found"


def entity_not_found(kind: str, key: str) -> NotFound:
    """A prompt or partial that does not exist (or was deleted), by the key the caller used."""
    error = PromptNotFound if kind == "prompt" else PartialNotFound
    return error(f"{kind} {key} not found")


def reference_not_found(kind: str, slug: str, selector: str, *, number: int | None = None, label: str | None = None,
                        label_exists: bool = True) -> NotFound:
    """Why a reference to a live prompt or partial found no version: the label, or the version, is missing."""
    if selector == "number":
        return VersionNotFound(f"{kind} {slug} has no version {number}")
    if selector == "label":
        if not label_exists:
            return LabelNotFound(f"label {label} not found")
        return VersionNotFound(f"{kind} {slug} has no version labelled {label}")
    return VersionNotFound(f"{kind} {slug} has no {selector} version")


class Conflict(CuecardError):
    """The write lost to a concurrent one, or would duplicate a unique name (409)."""

    status = 409
    type = "invalid_request_error"
    default_code = "conflict"


class ExternalIdTaken(Conflict):
    """An external id (OpenAI's `pmpt_...`) that another live prompt already holds, as an external id or as its
    slug (409). The message names that prompt by its slug."""

    default_code = "external_id_taken"


def external_id_taken(external_id: str, holder_slug: str) -> ExternalIdTaken:
    """The one wording of a taken external id, whichever store found it."""
    return ExternalIdTaken(
        f"external id {external_id} already names prompt {holder_slug}; remove it there first "
        f"(PUT /v1/prompts/{holder_slug} with the external_ids it keeps).",
        param="external_ids",
    )


class PartialInUse(Conflict):
    """Deleting a partial that live prompts or partials still include (409)."""

    default_code = "partial_in_use"


class IncompatibleVariables(Conflict):
    """Publishing a version, or moving a label to it, that would break the callers of the version there now:
    it requires a variable that one did not, or narrows a variable's type (409; `force` overrides)."""

    default_code = "incompatible_variables"


class PayloadTooLarge(CuecardError):
    status = 413
    type = "invalid_request_error"
    default_code = "request_too_large"


# --- 5xx: ours or a dependency's -----------------------------------------------------------


class StoreUnavailable(CuecardError):
    """The store failed or throttled beyond its retries (503)."""

    status = 503
    type = "api_error"
    default_code = "store_unavailable"


class StoreDamaged(CuecardError):
    """The store's data is damaged or not cuecard's: reported loudly, never repaired silently (500)."""

    status = 500
    type = "api_error"
    default_code = "store_damaged"


# --- the LLM provider behind a completion ----------------------------------------------------


class UpstreamError(CuecardError):
    """The provider refused the request (its 4xx): the status and message pass through."""

    type = "invalid_request_error"
    default_code = "upstream_error"

    def __init__(self, message: str, *, status: int, type_: str | None = None, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, param=param, code=code)
        self.status = status
        if type_:
            self.type = type_


class BadGateway(CuecardError):
    """The provider failed (5xx), refused the connection, or broke the protocol (502)."""

    status = 502
    type = "api_error"
    default_code = "bad_gateway"


class GatewayTimeout(CuecardError):
    """The provider did not answer in time (504)."""

    status = 504
    type = "api_error"
    default_code = "gateway_timeout"


class VirtualKeyNotFound(NotFound):
    default_code = "virtual_key_not_found"
