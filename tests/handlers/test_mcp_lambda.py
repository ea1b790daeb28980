"""`/mcp` on the Lambda API function: API Gateway HTTP API events through handlers.lambda_api's handler (Mangum),
against a seeded table on moto. Each event is one stateless JSON-RPC exchange answered with JSON."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.handlers import test_lambda_events
from tests.handlers.test_lambda_events import EVENTS

lambda_module = test_lambda_events.lambda_module  # the fixture: handlers.lambda_api on a seeded table

MODERN = "2026-07-28"
LEGACY = "2025-11-25"


def mcp_event(message: dict[str, Any], *, path: str = "/v1/mcp", headers: dict[str, str] | None = None,
              method: str = "POST", query: str = "", template: str = "http-api-render.json") -> dict[str, Any]:
    event = copy.deepcopy(json.loads((EVENTS / template).read_text()))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    event["headers"].update({"accept": "application/json, text/event-stream", **(headers or {})})
    event["body"] = json.dumps(message)
    return event


def rpc(method: str, params: dict[str, Any] | None = None, *, modern: bool = False) -> dict[str, Any]:
    params = dict(params or {})
    if modern:
        params["_meta"] = {"io.modelcontextprotocol/protocolVersion": MODERN,
                           "io.modelcontextprotocol/clientCapabilities": {}}
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}


def answer(response: dict[str, Any], status: int = 200) -> dict[str, Any]:
    assert response["statusCode"] == status, response
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    assert headers["content-type"].startswith("application/json")
    assert headers["x-portkey-request-id"]
    return json.loads(response["body"])


def call(module: Any, message: dict[str, Any], *, modern: bool = False, **options: Any) -> dict[str, Any]:
    headers = {"mcp-protocol-version": MODERN if modern else LEGACY, **options.pop("headers", {})}
    if modern:
        headers["mcp-method"] = message["method"]
    return module.handler(mcp_event(message, headers=headers, **options), None)


def test_initialize_list_and_get_through_the_handler(lambda_module) -> None:
    init = answer(lambda_module.handler(mcp_event(rpc("initialize", {
        "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}})), None))
    assert init["result"]["serverInfo"]["name"] == "cuecard"
    assert init["result"]["capabilities"]["prompts"]["listChanged"] is False

    listed = answer(call(lambda_module, rpc("prompts/list")))["result"]
    prompts = {prompt["name"]: prompt for prompt in listed["prompts"]}
    assert set(prompts) == {"chat-with-history", "summarize", "support-reply"}
    assert prompts["support-reply"]["title"] == "Support reply"
    assert prompts["support-reply"]["_meta"] == {"cuecard/prompt_id": prompts["support-reply"]["_meta"][
        "cuecard/prompt_id"], "cuecard/version": 2, "cuecard/label": "production"}
    assert {a["name"]: a["required"] for a in prompts["summarize"]["arguments"]} == {"sentences": True, "text": True}

    got = answer(call(lambda_module, rpc("prompts/get", {"name": "summarize",
                                                          "arguments": {"sentences": "2", "text": "Some text"}})))
    messages = got["result"]["messages"]
    assert messages[0] == {"role": "user", "content": {"type": "text", "text": "Be concise. Use plain words. "
                                                                                  "Never invent facts."}}
    assert messages[1]["content"]["text"] == "Summarize in 2 sentences:\n\nSome text"


def test_the_label_comes_from_the_header_or_the_query(lambda_module) -> None:
    development = answer(call(lambda_module, rpc("prompts/get", {"name": "support-reply", "arguments": {
        "product": "Acme", "tone": "calm", "question": "Hi?"}}), query="label=development"))
    assert development["result"]["_meta"]["cuecard/version"] == 1
    staging = answer(call(lambda_module, rpc("prompts/list"), headers={"x-cuecard-label": "staging"}))
    assert {p["name"]: p["_meta"]["cuecard/label"] for p in staging["result"]["prompts"]}["support-reply"] == "staging"
    unknown = answer(call(lambda_module, rpc("prompts/list"), query="label=nope"))
    assert unknown["error"]["code"] == -32602 and "label nope not found" in unknown["error"]["message"]


def test_a_missing_argument_is_an_mcp_error_naming_it(lambda_module) -> None:
    error = answer(call(lambda_module, rpc("prompts/get", {"name": "summarize", "arguments": {"text": "x"}})))["error"]
    assert error["code"] == -32602
    assert error["message"] == "Missing required argument: sentences."
    assert error["data"]["param"] == "arguments.sentences"


def test_the_modern_protocol_works_but_offers_no_listen_behind_mangum(lambda_module) -> None:
    discovered = answer(call(lambda_module, rpc("server/discover", modern=True), modern=True))["result"]
    assert MODERN in discovered["supportedVersions"]
    assert discovered["capabilities"]["prompts"]["listChanged"] is False  # no stream: nothing to notify on
    listen = call(lambda_module, rpc("subscriptions/listen", {"notifications": {"promptsListChanged": True}},
                                     modern=True), modern=True)
    assert json.loads(listen["body"])["error"]["code"] == -32601  # method not found: the answer is buffered
    listed = answer(call(lambda_module, rpc("prompts/list", modern=True), modern=True))["result"]
    assert len(listed["prompts"]) == 3


def test_the_stage_prefix_is_stripped(lambda_module) -> None:
    response = call(lambda_module, rpc("prompts/list"), path="/prod/v1/mcp", template="http-api-stage-render.json")
    assert len(answer(response)["result"]["prompts"]) == 3


@pytest.mark.parametrize("key, code", [(None, "missing_api_key"), ("cck_wrong", "invalid_api_key")])
def test_no_key_or_a_bad_key_is_a_401_before_any_mcp(lambda_module, key, code) -> None:
    event = mcp_event(rpc("prompts/list"))
    del event["headers"]["x-portkey-api-key"]
    if key:
        event["headers"]["authorization"] = f"Bearer {key}"
    error = answer(lambda_module.handler(event, None), 401)["error"]
    assert error["code"] == code and error["type"] == "authentication_error"


def test_a_bearer_key_works_and_get_is_refused_with_405(lambda_module) -> None:
    event = mcp_event(rpc("prompts/list"), headers={"mcp-protocol-version": LEGACY})
    event["headers"]["authorization"] = "Bearer " + event["headers"].pop("x-portkey-api-key")
    assert len(answer(lambda_module.handler(event, None))["result"]["prompts"]) == 3
    refused = lambda_module.handler(mcp_event({}, method="GET"), None)
    assert refused["statusCode"] == 405 and refused["headers"]["allow"] == "POST"



def test_a_label_that_cannot_be_a_label_name_is_a_400(lambda_module) -> None:
    error = answer(call(lambda_module, rpc("prompts/list"), headers={"x-cuecard-label": "latest"}), 400)["error"]
    assert error["code"] == "invalid_label_name" and error["param"] == "x-cuecard-label"
