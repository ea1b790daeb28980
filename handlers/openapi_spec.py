"""The OpenAPI document served at `/openapi.json` (and shown at `/docs`), written out route by route.

FastAPI's generator cannot describe this API as it is: every route is a plain Starlette route (an
`APIRoute` costs about 30 µs a call in dependency solving, a third of a warm render; handlers/http_app.py),
and every handler reads its own body, so FastAPI would see no bodies and advertise 422s that never
happen. So each route the app serves under `/v1` has an entry in `OPERATIONS`: its request body (the
pydantic models in `core.hyperparameters` and `core.admin_requests`, with the rules their validators
add written into the schema), its query and path parameters, its scope and the error statuses it
really answers, all in the OpenAI error shape. `build_openapi` walks the app's routes and fails on a
route without an entry, so the document cannot silently fall behind.

Built on the first request for the document, never at import: the Lambda cold path does not pay for it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable

from pydantic import BaseModel

from core import admin_requests as bodies
from core.hyperparameters import Hyperparameters
from core.models import PROVIDERS
from core.references import MAX_EXTERNAL_IDS, RESERVED_KEYS

DOCUMENTED_PREFIX = "/v1"
MAX_TEXT = 1024  # handlers.json_body.MAX_TEXT_PARAM_CHARS: a longer path or query value is a 400
SCHEMAS = "#/components/schemas/"
SECURITY = [{"PortkeyApiKey": []}, {"BearerAuth": []}]

# --- parameter shapes -----------------------------------------------------------------------------

_KEY = r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}"  # an id, a slug or an external id (core.references)
# A label name as core.references.check_label_name takes it: not all digits, not a reserved name.
_LABEL = (r"(?![0-9]+$)(?!(?:[Ll][Aa][Tt][Ee][Ss][Tt]|[Dd][Ee][Ff][Aa][Uu][Ll][Tt]|"
          r"[Pp][Uu][Bb][Ll][Ii][Ss][Hh][Ee][Dd])$)[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
LABEL_NAME_PATTERN = f"^{_LABEL}$"
# `id`, `id@12`, `id@latest`, `id@<label>` (core.references.parse_reference); versions are 1 to 10^12.
REFERENCE_PATTERN = f"^{_KEY}(?:@(?:latest|0*[1-9][0-9]{{0,11}}|{_LABEL}))?$"


def _text(**extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": MAX_TEXT, **extra}


def _key_parameter(description: str, *examples: str, **schema: Any) -> dict[str, Any]:
    """An id, slug or number in the path; the sample data holds each example (the fuzzer starts from them)."""
    return {"description": description, "schema": _text(minLength=1, **schema),
            "examples": {f"example{index}": {"value": value} for index, value in enumerate(examples)}}


PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "prompt_ref": {
        "description": "The prompt's id, slug or external id (`pmpt_...`), optionally with a version: `id`, `id@12`, "
                       "`id@latest` or `id@<label>`. Without one, the published version.",
        "schema": {"type": "string", "pattern": REFERENCE_PATTERN},
        "examples": {"slug": {"value": "support-reply"}, "number": {"value": "support-reply@2"},
                     "label": {"value": "support-reply@production"}, "latest": {"value": "summarize@latest"},
                     "raw": {"value": "chat-with-history"}},
    },
    "prompt_id": _key_parameter("The prompt's id, slug or external id.", "support-reply", "summarize"),
    "partial_id": _key_parameter("The partial's id or slug.", "house-style"),
    "version_id": _key_parameter("A version number (from 1) or a version id (`prompt_version_id`).", "1", "2",
                                 pattern="^(?!0+$)"),
    "label_id": _key_parameter("The label's id, or the name of a built-in label.", "staging"),
    "key": _key_parameter("The virtual key's id or slug.", "mock"),
    "collection_id": _key_parameter("The collection's id or slug; `default` always exists.", "default"),
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


LIST_QUERY = (
    _query("collection_id", _text(), "Only entries of this collection."),
    _query("workspace_id", _text(), "Only entries of this workspace."),
    _query("search", _text(), "Only entries whose name or slug contains this text."),
    _query("current_page", {"type": "integer", "minimum": 0}, "The page, from 0."),
    _query("page_size", {"type": "integer", "minimum": 1, "maximum": 1000}, "Entries a page (default 100)."),
)
COLLECTION_QUERY = tuple(query for query in LIST_QUERY if query["name"] != "collection_id")
VERSION_QUERY = (_query("version", _text(pattern="^0*[1-9][0-9]*$"), "A version number; default: the published one."),)
_SELECTOR = _text(pattern=f"^(?:latest|0*[1-9][0-9]{{0,11}}|{_LABEL})$")
DIFF_QUERY = tuple(
    {**_query(name, _SELECTOR, f"The {side} version: a version number, `latest` or a label name."), "required": True,
     "examples": {"number": {"value": example}, "latest": {"value": "latest"}}}
    for name, side, example in (("from", "old", "1"), ("to", "new", "1"))
)
FORCE_QUERY = (_query("force", {"type": "boolean"},
                      "Delete even if published, labelled or latest prompt versions use the partial."),)

# --- operations -----------------------------------------------------------------------------------

_AUTH = (400, 401, 403, 414, 500, 503)  # every authenticated route: bad text in the URL, the key, the store
_READ_ONE = (*_AUTH, 404)
_WRITE = (*_AUTH, 409, 413)
_WRITE_ONE = (*_WRITE, 404)
_DELETE = (*_AUTH, 404, 409)
_INFERENCE = (*_AUTH, 404, 413, 422)
_COMPLETE = (*_INFERENCE, "4XX", 502, 504)


@dataclass(frozen=True)
class Operation:
    operation_id: str
    summary: str
    tag: str
    scope: str | None  # None: no key needed
    errors: tuple[int | str, ...] = ()
    body: str | None = None  # a component schema name
    body_required: bool = True
    query: tuple[dict[str, Any], ...] = ()
    path_kinds: dict[str, str] = field(default_factory=dict)  # path parameter -> PATH_PARAMETERS entry
    ok: str = "Object"  # the 200 answer's component schema
    ok_headers: tuple[str, ...] = ()
    stream: bool = False
    description: str = ""
    deprecated: bool = False


_PROMPT_HEADERS = ("x-cuecard-prompt-id", "x-cuecard-prompt-slug", "x-cuecard-prompt-version")
_BREAKING = ("the version's variables schema (explicit or inferred) requires, without a default, a variable the "
             "current one did not, or narrows a variable's type, which would break; `\"force\": true` overrides. "
             "The guard protects")
_REF = {"prompt_id": "prompt_ref"}
_TAKEN = ("an external id another live prompt holds, as an external id or as its slug; the message names that "
          "prompt's slug.")

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/prompts/{prompt_id}/render"): Operation(
        "createPromptRender", "Render a prompt", "Prompts", "render", _INFERENCE, "PromptRequest", False,
        path_kinds=_REF, ok="RenderResponse", ok_headers=_PROMPT_HEADERS,
        description="Fills the template with `variables` and returns the request body a chat call would send: the "
                    "saved model and parameters, overridden by hyperparameters given at the root of the body. "
                    "An empty body renders with no variables. Defaults in the version's `variables_schema` fill in "
                    "variables not sent. A strict render (`\"strict\": true`, or the version's `strict_variables` "
                    "unless the body says `\"strict\": false`) first checks the variables against the version's "
                    "schema: 400 `invalid_variables` lists every missing, unknown and mistyped one. 422: a raw "
                    "template that does not render to a JSON array of messages, or a render past the server's limits "
                    "(`render_limit_exceeded`)."),
    ("POST", "/prompts/{prompt_id}/completions"): Operation(
        "createPromptCompletion", "Run a prompt", "Prompts", "complete", _COMPLETE, "PromptRequest", False,
        path_kinds=_REF, ok="Object", ok_headers=_PROMPT_HEADERS, stream=True,
        description="Renders the prompt as the render route does (`strict` included) and sends it to the provider "
                    "of its virtual key. With `\"stream\": true` "
                    "the answer is server-sent events (`data: {chunk}` frames, then `data: [DONE]`). A provider's "
                    "4xx passes through with its status and message; its failures are 502, its timeouts 504."),
    ("POST", "/prompts/{prompt_id}/generate"): Operation(
        "createPromptGeneration", "Run a prompt (deprecated alias of completions)", "Prompts", "complete", _COMPLETE,
        "PromptRequest", False, path_kinds=_REF, ok="Object", ok_headers=_PROMPT_HEADERS, stream=True, deprecated=True,
        description="Portkey's deprecated generations API, which older SDKs call: the same call, body and answer as "
                    "`POST /prompts/{prompt_id}/completions`. Use completions."),
    ("POST", "/prompts"): Operation(
        "createPrompt", "Create a prompt", "Prompts", "write", _WRITE, "CreatePrompt",
        description=f"409 `external_id_taken`: {_TAKEN}"),
    ("GET", "/prompts"): Operation("listPrompts", "List prompts", "Prompts", "write", _AUTH, query=LIST_QUERY),
    ("GET", "/prompts/{prompt_id}"): Operation("getPrompt", "Get a prompt", "Prompts", "write", _READ_ONE,
                                               query=VERSION_QUERY, ok="Prompt"),
    ("PUT", "/prompts/{prompt_id}"): Operation(
        "updatePrompt", "Update a prompt (a new version)", "Prompts", "write", _WRITE_ONE, "UpdatePrompt",
        description="Version fields create a new version; without `\"patch\": true` it must carry `string` and "
                    "`parameters`. `name`, `collection_id`, `workspace_id`, `prompt_metadata` and `external_ids` "
                    "change the prompt without a new version; `external_ids` replaces the list (`[]` clears it). "
                    f"409 `external_id_taken`: {_TAKEN}"),
    ("DELETE", "/prompts/{prompt_id}"): Operation("deletePrompt", "Delete a prompt", "Prompts", "write", _DELETE),
    ("PUT", "/prompts/{prompt_id}/makeDefault"): Operation(
        "updatePromptDefault", "Publish a version", "Prompts", "write", _WRITE_ONE, "PublishPrompt",
        description=f"409 `incompatible_variables`: {_BREAKING} the published version's callers."),
    ("GET", "/prompts/{prompt_id}/versions"): Operation(
        "getPromptVersions", "List a prompt's versions", "Prompts", "write", _READ_ONE, ok="PromptVersionList"),
    ("GET", "/prompts/{prompt_id}/diff"): Operation(
        "getPromptDiff", "Diff two versions of a prompt", "Prompts", "write", _READ_ONE, query=DIFF_QUERY,
        ok="PromptDiff",
        description="Resolves `id@from` and `id@to` and answers `template_diff` (a unified diff of the templates; a "
                    "JSON chat template is diffed indented), `changed` (`{field: {from, to}}` for model, parameters, "
                    "tools, tool_choice, functions, template_metadata, is_raw_template, virtual_key, variables, "
                    "variables_schema (as stored: null for an inferred one) and strict_variables), "
                    "`added_variables`, `removed_variables`, and each side's `version` and `prompt_version_id`. "
                    "404: no such prompt, version or label."),
    ("GET", "/prompts/{prompt_id}/versions/{version_id}"): Operation(
        "getPromptByVersion", "Get one version of a prompt", "Prompts", "write", _READ_ONE, ok="Prompt"),
    ("PUT", "/prompts/{prompt_id}/versions/{version_id}"): Operation(
        "updatePromptVersion", "Put a label on a version", "Prompts", "write", _WRITE_ONE, "LabelVersion",
        description=f"`\"label_id\": null` takes every label off the version. 409 `incompatible_variables`: "
                    f"{_BREAKING} the callers of the version the label is on now."),
    ("POST", "/prompts/partials"): Operation(
        "createPromptPartial", "Create a partial", "Partials", "write", _WRITE, "CreatePartial"),
    ("GET", "/prompts/partials"): Operation(
        "listPromptPartials", "List partials", "Partials", "write", _AUTH, query=LIST_QUERY),
    ("GET", "/prompts/partials/{partial_id}"): Operation(
        "getPromptPartial", "Get a partial", "Partials", "write", _READ_ONE, query=VERSION_QUERY, ok="Partial"),
    ("PUT", "/prompts/partials/{partial_id}"): Operation(
        "updatePromptPartial", "Update a partial", "Partials", "write", _WRITE_ONE, "UpdatePartial"),
    ("DELETE", "/prompts/partials/{partial_id}"): Operation(
        "deletePromptPartial", "Delete a partial", "Partials", "write", _DELETE, query=FORCE_QUERY,
        description="409 lists the prompts whose published, labelled or latest version uses the partial, "
                    "unless `force=true`."),
    ("GET", "/prompts/partials/{partial_id}/versions"): Operation(
        "getPromptPartialVersions", "List a partial's versions", "Partials", "write", _READ_ONE,
        ok="PartialVersionList"),
    ("PUT", "/prompts/partials/{partial_id}/makeDefault"): Operation(
        "updatePromptPartialDefault", "Publish a partial version", "Partials", "write", _WRITE_ONE, "MakeDefault"),
    ("POST", "/labels"): Operation("createLabel", "Create a label", "Labels", "write", _WRITE, "CreateLabel"),
    ("GET", "/labels"): Operation("listLabels", "List labels", "Labels", "write", _AUTH, query=LIST_QUERY),
    ("GET", "/labels/{label_id}"): Operation("getLabel", "Get a label", "Labels", "write", _READ_ONE),
    ("PUT", "/labels/{label_id}"): Operation(
        "updateLabel", "Update a label", "Labels", "write", _WRITE_ONE, "UpdateLabel",
        description="The built-in labels cannot be changed (400 `builtin_label`)."),
    ("DELETE", "/labels/{label_id}"): Operation(
        "deleteLabel", "Delete a label", "Labels", "write", _DELETE,
        description="The built-in labels cannot be deleted (400 `builtin_label`)."),
    ("POST", "/collections"): Operation(
        "createCollection", "Create a collection", "Collections", "write", (*_WRITE, 404), "CreateCollection",
        description="Answers `{id, slug, object}`. The slug comes from the name and never changes. 404: no such "
                    "`parent_collection_id`."),
    ("GET", "/collections"): Operation(
        "listCollections", "List collections", "Collections", "write", _AUTH, query=COLLECTION_QUERY,
        description="`default` first, then the others oldest first, each with `collection_details`."),
    ("GET", "/collections/{collection_id}"): Operation(
        "getCollection", "Get a collection", "Collections", "write", _READ_ONE,
        description="The collection with `collection_details` and its `child_collections`."),
    ("PUT", "/collections/{collection_id}"): Operation(
        "updateCollection", "Rename a collection", "Collections", "write", _WRITE_ONE, "UpdateCollection",
        description="The default collection cannot be renamed (409 `default_collection`)."),
    ("DELETE", "/collections/{collection_id}"): Operation(
        "deleteCollection", "Delete a collection", "Collections", "write", _DELETE,
        description="409 `collection_not_empty` while live prompts or partials are in it (the message says how "
                    "many); the default collection cannot be deleted (409 `default_collection`)."),
    ("POST", "/virtual-keys"): Operation(
        "createVirtualKey", "Create a virtual key", "Virtual keys", "admin", _WRITE, "CreateVirtualKey"),
    ("GET", "/virtual-keys"): Operation(
        "listVirtualKeys", "List virtual keys", "Virtual keys", "admin", _AUTH, query=LIST_QUERY),
    ("GET", "/virtual-keys/{key}"): Operation("getVirtualKey", "Get a virtual key", "Virtual keys", "admin", _READ_ONE),
    ("PUT", "/virtual-keys/{key}"): Operation(
        "updateVirtualKey", "Update a virtual key", "Virtual keys", "admin", _WRITE_ONE, "UpdateVirtualKey"),
    ("DELETE", "/virtual-keys/{key}"): Operation(
        "deleteVirtualKey", "Delete a virtual key", "Virtual keys", "admin", _DELETE),
    ("GET", "/health"): Operation("health", "Liveness", "Health", None, (414,)),
}

_STATUS_TEXT: dict[int | str, str] = {
    400: "Bad input: malformed or non-finite JSON, an unknown field, a value out of range, a bad reference, "
         "template, variables schema or URL value, or variables a strict render refuses.",
    401: "No API key, or not a valid one.",
    403: "The API key lacks the scope this route needs.",
    414: "The URL (path and query) is longer than the server's limit.",
    404: "No such prompt, partial, version, label, collection or virtual key.",
    409: "Conflicts with stored data: a slug, external id or name in use, a concurrent write, a partial still in use, a "
         "collection not empty, the built-in default collection, or a publish or label move that would break "
         "callers' variables (`incompatible_variables`).",
    413: "The body is larger than the server's limit.",
    422: "The prompt cannot be rendered with these variables: a raw template that does not render to a JSON "
         "array of messages, or a render past the server's limits.",
    "4XX": "The provider refused the request: its status and message pass through.",
    500: "An unexpected server error, or a damaged store.",
    502: "The provider failed, refused the connection or broke the protocol.",
    503: "The store is unavailable; retry shortly.",
    504: "The provider did not answer in time.",
}

# --- schemas --------------------------------------------------------------------------------------

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["message", "type", "param", "code"],
        "properties": {
            "message": {"type": "string"},
            "type": {"type": "string", "examples": ["invalid_request_error"]},
            "param": {"type": ["string", "null"], "description": "The field or parameter at fault, if one is."},
            "code": {"type": ["string", "null"], "examples": ["invalid_json"]},
        },
    }},
    "description": "OpenAI's error shape.",
}
_NULL = {"type": "null"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, _NULL]}


def _model_schemas(models: Iterable[type[BaseModel]]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=SCHEMAS + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _component_schemas() -> dict[str, Any]:
    schemas = _model_schemas([
        Hyperparameters, bodies.CreatePrompt, bodies.UpdatePrompt, bodies.MakeDefault, bodies.PublishPrompt,
        bodies.LabelVersion,
        bodies.CreateLabel, bodies.UpdateLabel, bodies.CreatePartial, bodies.UpdatePartial,
        bodies.CreateCollection, bodies.UpdateCollection,
        bodies.CreateVirtualKey, bodies.UpdateVirtualKey,
    ])
    hyper = schemas["Hyperparameters"]
    # The rules Hyperparameters' validators add, and logit_bias' keys (token ids only).
    hyper["allOf"] = [
        {"if": {"required": ["top_logprobs"], "properties": {"top_logprobs": {"type": "integer"}}},
         "then": {"required": ["logprobs"], "properties": {"logprobs": {"const": True}}}},
        {"if": {"required": ["stream_options"], "properties": {"stream_options": {"type": "object"}}},
         "then": {"required": ["stream"], "properties": {"stream": {"const": True}}}},
    ]
    hyper["properties"]["logit_bias"]["anyOf"][0]["additionalProperties"] = False
    hyper["description"] = ("OpenAI's chat hyperparameters with their bounds; `null` means not given, and other "
                            "keys pass through to the provider unchecked.")
    schemas["ResponseFormat"]["allOf"] = [{
        "if": {"required": ["type"], "properties": {"type": {"const": "json_schema"}}},
        "then": {"required": ["json_schema"], "properties": {"json_schema": {"$ref": SCHEMAS + "JsonSchemaFormat"}}},
    }]
    tool_fields = {name: hyper["properties"][name] for name in ("tools", "functions", "tool_choice")}
    slug = _nullable({"type": "string", "pattern": bodies.SLUG_PATTERN.pattern,
                      "not": {"anyOf": [{"pattern": f"^{_UUID}$"}, {"enum": sorted(bodies.RESERVED_SLUGS)}]}})
    for name in ("CreatePrompt", "UpdatePrompt"):
        properties = schemas[name]["properties"]
        properties["parameters"] = _nullable({"$ref": SCHEMAS + "Hyperparameters"})
        properties.update(copy.deepcopy(tool_fields))
        # `_raw_flag`: 0 and 1 are read as false and true (the SDK's examples send integers).
        properties["is_raw_template"] = {"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}, _NULL]}
        properties["string"] = {**properties["string"],
                                "description": "The template: Mustache, a JSON array of messages for a chat prompt."}
        properties["variables_schema"] = _nullable(VARIABLES_SCHEMA)
        properties["external_ids"] = _nullable(EXTERNAL_IDS)
        properties["strict_variables"] = _nullable({
            "type": "boolean", "description": "Renders check the variables against the schema unless a call says "
                                              "`\"strict\": false`."})
    schemas["UpdatePrompt"]["if"] = {"required": ["patch"], "properties": {"patch": {"const": True}}}
    schemas["UpdatePrompt"]["else"] = {
        "required": ["string", "parameters"],
        "properties": {"string": {"type": "string"}, "parameters": {"$ref": SCHEMAS + "Hyperparameters"}},
    }
    for name in ("CreatePrompt", "CreatePartial", "CreateVirtualKey"):
        schemas[name]["properties"]["slug"] = slug
    schemas["CreateVirtualKey"]["properties"]["provider"] = {"type": "string", "enum": list(PROVIDERS)}
    schemas["UpdateVirtualKey"]["properties"]["provider"] = _nullable({"type": "string", "enum": list(PROVIDERS)})
    # `_whole_number`: Portkey's spec types the version as `number`; a whole float (`2.0`) is that version.
    for name in ("MakeDefault", "PublishPrompt"):
        schemas[name]["properties"]["version"] = {
            "type": "number", "minimum": 1, "multipleOf": 1,
            "description": "The version number to publish; a whole number, `2` or `2.0`."}
    force = {"type": "boolean", "description": "Do it even if callers' variables would break (409 "
                                               "`incompatible_variables` otherwise)."}
    schemas["PublishPrompt"]["properties"]["force"] = schemas["LabelVersion"]["properties"]["force"] = force
    schemas["CreateLabel"]["properties"]["name"] = {"type": "string", "pattern": LABEL_NAME_PATTERN}
    schemas["UpdateLabel"]["properties"]["name"] = _nullable({"type": "string", "pattern": LABEL_NAME_PATTERN})
    schemas["PromptRequest"] = {
        "description": "`variables` for the template, `stream`, and hyperparameters at the root, which override the "
                       "saved ones.",
        "allOf": [
            {"$ref": SCHEMAS + "Hyperparameters"},
            {"type": "object", "properties": {
                "variables": _nullable({"type": "object", "additionalProperties": True,
                                        "description": "Values for the template's variables."}),
                "strict": _nullable({"type": "boolean",
                                     "description": "Check the variables against the version's schema before "
                                                    "rendering (400 `invalid_variables`); default: the version's "
                                                    "`strict_variables`. Never sent to the provider."}),
            }},
        ],
    }
    schemas["RenderResponse"] = {
        "type": "object", "required": ["success", "data"],
        "properties": {"success": {"type": "boolean"},
                       "data": {"type": "object", "description": "The request body a chat call would send."}},
    }
    schemas["CompletionEvent"] = {
        "type": "object", "required": ["data"],
        "properties": {
            "event": {"enum": ["message", "error"],
                      "description": "`message` (SSE's default, no `event:` line) for chunks and `[DONE]`; `error` on a "
                                     "failure after the stream began, and the stream ends."},
            "data": {"type": "string", "description": "A `chat.completion.chunk` as JSON, then `[DONE]`; after "
                                                      "`event: error`, OpenAI's error shape as JSON."},
        },
    }
    side = {"type": "object", "required": ["ref", "version", "prompt_version_id"],
            "properties": {"ref": {"type": "string"}, "version": {"type": "integer"},
                           "prompt_version_id": {"type": "string"}}}
    schemas["PromptDiff"] = {
        "type": "object",
        "required": ["object", "prompt_id", "slug", "from", "to", "identical", "template_diff", "changed",
                     "added_variables", "removed_variables"],
        "properties": {
            "object": {"const": "prompt.diff"}, "prompt_id": {"type": "string"}, "slug": {"type": "string"},
            "from": side, "to": side, "identical": {"type": "boolean"},
            "template_diff": {"type": "string", "description": "A unified diff; empty when the templates match."},
            "changed": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["from", "to"], "properties": {"from": {}, "to": {}}}},
            "added_variables": {"type": "array", "items": {"type": "string"}},
            "removed_variables": {"type": "array", "items": {"type": "string"}},
        },
    }
    schemas.update(_version_view_schemas())
    schemas["Object"] = {"type": "object"}
    schemas["ErrorResponse"] = _ERROR
    return schemas


EXTERNAL_IDS = {
    "type": "array", "maxItems": MAX_EXTERNAL_IDS, "uniqueItems": True,
    "items": {"type": "string", "pattern": f"^{_KEY}$",
              "not": {"anyOf": [{"pattern": f"^{_UUID}$"}, {"enum": sorted(RESERVED_KEYS)}]}},
    "description": "Other systems' ids of the prompt, such as OpenAI's stored-prompt ids (`pmpt_...`): each names the "
                   "prompt wherever its id or slug does (`/v1/prompts/pmpt_abc@3/render`). Each names one live prompt "
                   "and is no prompt's slug; deleting the prompt, or an update that leaves one out, frees it. An "
                   "update replaces the list; `[]` clears it; neither makes a version.",
}
VARIABLES_SCHEMA = {
    "type": "object", "required": ["type"],
    "properties": {"type": {"const": "object"},
                   "properties": {"type": "object", "additionalProperties": {"type": ["object", "boolean"]}},
                   "required": {"type": "array", "items": {"type": "string"}}},
    "description": "A JSON Schema (draft 2020-12) of the variables: an object schema whose properties may carry "
                   "`type`, `description` and `default` (which must match its property). Defaults fill in variables "
                   "not sent; a strict render refuses missing, unknown (not in `properties`) and mistyped ones.",
}
_CONTENT_HASH = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$",
                 "description": "SHA-256 of the version's canonical content: the same content, the same hash."}


def _version_view_schemas() -> dict[str, Any]:
    """What retrieving a prompt or partial, or listing their versions, answers beyond Portkey's fields."""
    prompt_version = {
        "type": "object", "required": ["variables_schema", "variables_schema_inferred", "strict_variables",
                                       "content_hash"],
        "properties": {
            "variables_schema": {**VARIABLES_SCHEMA, "description": "The version's schema of its variables: its own, "
                                 "else one inferred from the template (every variable a property, those used outside "
                                 "sections required)."},
            "variables_schema_inferred": {"type": "boolean", "description": "Whether `variables_schema` is inferred."},
            "strict_variables": {"type": "boolean"},
            "content_hash": _CONTENT_HASH,
        },
    }
    partial = {"type": "object", "required": ["content_hash"], "properties": {"content_hash": _CONTENT_HASH}}

    def listing(item: str) -> dict[str, Any]:
        return {"type": "object", "required": ["object", "total", "data"],
                "properties": {"object": {"const": "list"}, "total": {"type": "integer"},
                               "data": {"type": "array", "items": {"$ref": SCHEMAS + item}}}}

    return {
        "PromptVersion": prompt_version,
        "Prompt": {"allOf": [{"$ref": SCHEMAS + "PromptVersion"}], "type": "object",
                   "required": ["id", "slug", "external_ids", "prompt_version", "prompt_version_id", "string"],
                   "properties": {"id": {"type": "string"}, "slug": {"type": "string"},
                                  "external_ids": {"type": "array", "items": {"type": "string"},
                                                   "description": EXTERNAL_IDS["description"]},
                                  "prompt_version": {"type": "integer"}, "prompt_version_id": {"type": "string"},
                                  "string": {"type": "string"}}},
        "PromptVersionList": listing("PromptVersion"),
        "Partial": partial,
        "PartialVersionList": listing("Partial"),
    }


# --- the document ---------------------------------------------------------------------------------

_REQUEST_ID = {"description": "This request's id, on every answer.", "required": True,
               "schema": {"type": "string"}}


def _error_response(status: int | str) -> dict[str, Any]:
    return {"description": _STATUS_TEXT[status], "headers": {"x-portkey-request-id": _REQUEST_ID},
            "content": {"application/json": {"schema": {"$ref": SCHEMAS + "ErrorResponse"}}}}


def _operation(operation: Operation, path: str) -> dict[str, Any]:
    ok_headers = {"x-portkey-request-id": _REQUEST_ID}
    for name in operation.ok_headers:
        ok_headers[name] = {"description": "Which template version served the call.", "required": True,
                            "schema": {"type": "string"}}
    ok_content: dict[str, Any] = {"application/json": {"schema": {"$ref": SCHEMAS + operation.ok}}}
    if operation.stream:
        # Before OpenAPI 3.2 (`itemSchema`), a text/event-stream schema describes each event.
        ok_content["text/event-stream"] = {"schema": {"$ref": SCHEMAS + "CompletionEvent"}}
    doc: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "responses": {"200": {"description": "OK", "headers": ok_headers, "content": ok_content}},
    }
    description = operation.description
    if operation.scope:
        description = f"Scope: `{operation.scope}`. {description}".strip()
        doc["security"] = SECURITY
    else:
        doc["security"] = []
    if description:
        doc["description"] = description
    if operation.deprecated:
        doc["deprecated"] = True
    parameters = []
    for name in _path_names(path):
        kind = PATH_PARAMETERS[operation.path_kinds.get(name, name)]
        parameters.append({"name": name, "in": "path", "required": True, **copy.deepcopy(kind)})
    parameters.extend(copy.deepcopy(list(operation.query)))
    if parameters:
        doc["parameters"] = parameters
    if operation.body:
        doc["requestBody"] = {"required": operation.body_required,
                              "content": {"application/json": {"schema": {"$ref": SCHEMAS + operation.body}}}}
    for status in operation.errors:
        doc["responses"][str(status)] = _error_response(status)
    return doc


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def served_operations(routes: Iterable[Any]) -> list[tuple[str, str]]:
    """(method, path below /v1) of every route (with its full path) served under /v1, HEAD aside."""
    served = []
    for route in routes:
        path = getattr(route, "path", "")
        if not path.startswith(DOCUMENTED_PREFIX + "/"):
            continue
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                served.append((method, path[len(DOCUMENTED_PREFIX):]))
    return served


def build_openapi(routes: Iterable[Any], *, title: str, version: str) -> dict[str, Any]:
    """The document for the routes served under /v1; a route without an entry in OPERATIONS is a KeyError."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in served_operations(routes):
        operation = OPERATIONS[(method, path)]
        paths.setdefault(DOCUMENTED_PREFIX + path, {})[method.lower()] = _operation(operation, path)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Portkey's Prompts API, self-hosted. Every route also answers without the `/v1` prefix. "
                           "Send the API key as `x-portkey-api-key: <key>` or `Authorization: Bearer <key>`; "
                           "each route names the scope it needs. Every error is OpenAI's error shape. Integers are JSON integers: "
                           "`2.0` is refused where an integer is expected, except a makeDefault `version`, "
                           "which Portkey's spec types as a number.",
        },
        "paths": paths,
        "components": {
            "schemas": _component_schemas(),
            "securitySchemes": {
                "PortkeyApiKey": {"type": "apiKey", "in": "header", "name": "x-portkey-api-key",
                                  "description": "A cuecard API key (`cuecard keys create`)."},
                "BearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "The same key as `Authorization: Bearer <key>`."},
            },
        },
    }


__all__ = ["OPERATIONS", "build_openapi", "served_operations"]
