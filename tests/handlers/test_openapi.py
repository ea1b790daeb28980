"""The served `/openapi.json` tells the truth: every route, its body, its auth, the errors it really answers."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from core.auth import Authenticator
from core.completions import CompletionService
from core.service import PromptService
from handlers.http_app import _flat_routes, create_app
from handlers.openapi_spec import OPERATIONS, served_operations
from tests.unit.fakes import InMemoryStore
from tests.unit.test_completions import Providers, Recording
from tests.unit.virtual_key_fakes import InMemorySecretStore, InMemoryVirtualKeyStore

UNDOCUMENTED = {"/openapi.json", "/docs", "/docs/oauth2-redirect"}  # FastAPI's own pages
# Routes whose entry lives beside OPERATIONS (handlers.openapi_responses adds `POST /responses` to the document).
DOCUMENTED_ELSEWHERE = {("POST", "/v1/responses")}
RUNS_A_MODEL = ("/completions", "/generate", "/responses")  # a provider behind them: 4XX, 502, 504


@pytest.fixture(scope="module")
def app():
    store = InMemoryStore()
    service = PromptService(store, store)
    completions = CompletionService(service, InMemoryVirtualKeyStore(), InMemorySecretStore(), Providers(Recording()))
    return create_app(service, Authenticator(store, ttl=0), completions=completions)


@pytest.fixture(scope="module")
def spec(app) -> dict:
    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_the_document_is_valid_openapi(spec) -> None:
    validate(spec)


def test_every_route_served_under_v1_is_documented_and_nothing_else(app, spec) -> None:
    routes = _flat_routes(app.app)
    served = {(method, "/v1" + path) for method, path in served_operations(routes)}
    documented = {(method, path) for method, path, _ in operations(spec)}
    assert served == documented
    assert ("POST", "/v1/prompts/{prompt_id}/render") in documented
    assert ("POST", "/v1/prompts/{prompt_id}/completions") in documented
    # The same routes answer at the root too; FastAPI's pages are all that is left undocumented.
    unprefixed = {route.path for route in routes if not route.path.startswith("/v1/")}
    assert unprefixed - UNDOCUMENTED == {path.removeprefix("/v1") for _, path in documented}
    assert {(method, "/v1" + path) for method, path in OPERATIONS} | DOCUMENTED_ELSEWHERE >= documented


def test_render_and_completions_bodies_are_variables_plus_hyperparameters(spec) -> None:
    schemas = spec["components"]["schemas"]
    for kind in ("render", "completions"):
        operation = spec["paths"][f"/v1/prompts/{{prompt_id}}/{kind}"]["post"]
        body = operation["requestBody"]
        assert body["required"] is False  # an empty body renders with no variables
        assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PromptRequest"}
        parameter = operation["parameters"][0]
        assert parameter["name"] == "prompt_id" and "support-reply@production" in str(parameter["examples"])
    request = schemas["PromptRequest"]["allOf"]
    assert request[0] == {"$ref": "#/components/schemas/Hyperparameters"}
    assert "variables" in request[1]["properties"]
    assert schemas["Hyperparameters"]["properties"]["temperature"]["anyOf"][0] == {"type": "number", "minimum": 0,
                                                                                   "maximum": 2}
    assert spec["paths"]["/v1/prompts/{prompt_id}/completions"]["post"]["responses"]["200"]["content"].keys() == {
        "application/json", "text/event-stream"}


def test_admin_bodies_are_the_request_models(spec) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["CreatePrompt"]["additionalProperties"] is False
    assert set(schemas["CreatePrompt"]["required"]) == {"name", "string"}
    assert schemas["CreatePrompt"]["properties"]["parameters"]["anyOf"][0] == {
        "$ref": "#/components/schemas/Hyperparameters"}
    create = spec["paths"]["/v1/prompts"]["post"]["requestBody"]
    assert create["required"] is True
    assert create["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CreatePrompt"}


def test_security_is_declared_on_every_route_but_health(spec) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["PortkeyApiKey"] == {**schemes["PortkeyApiKey"], "type": "apiKey", "in": "header",
                                        "name": "x-portkey-api-key"}
    assert schemes["BearerAuth"]["type"] == "http" and schemes["BearerAuth"]["scheme"] == "bearer"
    for method, path, operation in operations(spec):
        if path == "/v1/health":
            assert operation["security"] == []
        else:
            assert operation["security"] == [{"PortkeyApiKey": []}, {"BearerAuth": []}], (method, path)
            assert {"401", "403"} <= operation["responses"].keys()


def test_errors_are_the_openai_shape_and_422_only_where_it_happens(spec) -> None:
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error = spec["components"]["schemas"]["ErrorResponse"]["properties"]["error"]
    assert set(error["required"]) == {"message", "type", "param", "code"}
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status != "200":
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
        has_422 = "422" in operation["responses"]
        assert has_422 == path.endswith(("/render", *RUNS_A_MODEL)), (method, path)
        assert ("413" in operation["responses"]) == ("requestBody" in operation), (method, path)
        assert ("502" in operation["responses"]) == path.endswith(RUNS_A_MODEL), (method, path)


def test_the_docs_page_is_served(app) -> None:
    response = TestClient(app).get("/docs")
    assert response.status_code == 200 and "/openapi.json" in response.text


def test_without_completions_the_route_is_neither_served_nor_documented() -> None:
    store = InMemoryStore()
    app = create_app(PromptService(store, store), Authenticator(store, ttl=0))
    client = TestClient(app)
    assert "/v1/prompts/{prompt_id}/completions" not in client.get("/openapi.json").json()["paths"]
    response = client.post("/v1/prompts/x/completions", json={})
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_url"


def test_make_default_takes_a_number_as_portkeys_spec_says(spec) -> None:
    version = spec["components"]["schemas"]["MakeDefault"]["properties"]["version"]
    assert version["type"] == "number" and version["multipleOf"] == 1 and version["minimum"] == 1


def test_the_generations_alias_is_deprecated_and_nothing_else_is(spec) -> None:
    deprecated = {(method, path) for method, path, operation in operations(spec) if operation.get("deprecated")}
    assert deprecated == {("POST", "/v1/prompts/{prompt_id}/generate")}


def test_typed_variables_are_documented(spec) -> None:
    schemas = spec["components"]["schemas"]
    for name in ("CreatePrompt", "UpdatePrompt"):
        properties = schemas[name]["properties"]
        assert properties["variables_schema"]["anyOf"][0]["properties"]["type"] == {"const": "object"}
        assert properties["strict_variables"]["anyOf"][0]["type"] == "boolean"
    assert schemas["PromptRequest"]["allOf"][1]["properties"]["strict"]["anyOf"][0]["type"] == "boolean"
    publish = spec["paths"]["/v1/prompts/{prompt_id}/makeDefault"]["put"]
    label = spec["paths"]["/v1/prompts/{prompt_id}/versions/{version_id}"]["put"]
    for operation, body in ((publish, "PublishPrompt"), (label, "LabelVersion")):
        assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(body)
        assert schemas[body]["properties"]["force"]["type"] == "boolean"
        assert "409" in operation["responses"] and "incompatible_variables" in operation["description"]
    assert "force" not in schemas["MakeDefault"]["properties"]  # a partial's publish has no guard
    shown = schemas["PromptVersion"]["required"]
    assert shown == ["variables_schema", "variables_schema_inferred", "strict_variables", "content_hash"]
    assert spec["paths"]["/v1/prompts/{prompt_id}"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/Prompt"}
    assert "invalid_variables" in spec["paths"]["/v1/prompts/{prompt_id}/render"]["post"]["description"]


# No trailing newline: Python's `$` (jsonschema's) matches before one, ECMA's (the document's) does not.
EXTERNAL_ID_SAMPLES = [
    [], ["pmpt_68b0d5f3e1a48190b7e9bb6ce0e2a54e"], ["legacy:greet.v2", "A-b_c"], ["p" * 128], ["p" * 129], [""],
    ["pmpt_a@2"], ["_pmpt"], ["-x"], [".."], ["a b"], ["a/b"], ["partials"], ["partials2"],
    ["0b9d4a1e-4d0c-4b8a-9b1e-2f3c4d5e6f70"], ["0B9D4A1E-4D0C-4B8A-9B1E-2F3C4D5E6F70"], ["x0b9d4a1e-4d0c-4b8a-9b1e-2f3c4d5e6f70"],
    ["a", "a"], [f"p{n}" for n in range(20)], [f"p{n}" for n in range(21)], [1], [None], "pmpt_a", ["é"],
]


def test_external_ids_are_documented_as_the_core_checks_them(spec) -> None:
    from jsonschema import Draft202012Validator

    from core.errors import InvalidRequest
    from core.references import check_external_ids

    schemas = spec["components"]["schemas"]
    documented = schemas["CreatePrompt"]["properties"]["external_ids"]
    assert documented == schemas["UpdatePrompt"]["properties"]["external_ids"]
    assert documented["anyOf"][1] == {"type": "null"}
    validator = Draft202012Validator(documented["anyOf"][0])
    for sample in EXTERNAL_ID_SAMPLES:
        try:
            check_external_ids(sample)
            accepted = True
        except InvalidRequest:
            accepted = False
        assert validator.is_valid(sample) == accepted, sample
    prompt = schemas["Prompt"]
    assert "external_ids" in prompt["required"] and prompt["properties"]["external_ids"]["type"] == "array"
    update = spec["paths"]["/v1/prompts/{prompt_id}"]["put"]
    assert "external_id_taken" in update["description"] and "409" in update["responses"]
    assert "external_id_taken" in spec["paths"]["/v1/prompts"]["post"]["description"]
    render = spec["paths"]["/v1/prompts/{prompt_id}/render"]["post"]["parameters"][0]
    assert "external id" in render["description"]
    assert re.fullmatch(render["schema"]["pattern"].strip("^$"), "pmpt_abc:v2@3")
