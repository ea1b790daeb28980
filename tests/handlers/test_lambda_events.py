"""The sample events in events/ (the ones `sam local invoke` uses), fed to the real Lambda handler."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from handlers.container import build_container
from handlers.local_seed import load_examples
from infra.table_definition import load_template

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ENV = json.loads((EVENTS / "env.json").read_text())["ApiFunction"]


@pytest.fixture
def lambda_module(settings, monkeypatch):
    """handlers.lambda_api imported fresh, as a cold start would, against a seeded table."""
    monkeypatch.setenv("CUECARD_DYNAMODB_ENDPOINT", settings.dynamodb_endpoint)
    monkeypatch.setenv("CUECARD_TABLE", settings.table_name)
    monkeypatch.setenv("CUECARD_ADMIN_KEY", ENV["CUECARD_ADMIN_KEY"])
    load_examples(build_container(settings).service, ROOT / "examples" / "prompts")
    sys.modules.pop("handlers.lambda_api", None)
    module = importlib.import_module("handlers.lambda_api")
    yield module
    sys.modules.pop("handlers.lambda_api", None)


@pytest.mark.parametrize("event_file", ["http-api-render.json", "http-api-stage-render.json", "rest-api-render.json"])
def test_sample_event_renders_through_the_handler(lambda_module, event_file) -> None:
    event = json.loads((EVENTS / event_file).read_text())
    response = lambda_module.handler(event, None)
    assert response["statusCode"] == 200, response
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = values[0]
    assert headers["content-type"] == "application/json"
    assert headers["x-portkey-request-id"]
    assert headers["x-cuecard-prompt-slug"] == "support-reply"
    assert headers["x-cuecard-prompt-version"] == "2"
    body = json.loads(response["body"])
    assert body["success"] is True
    assert body["data"]["temperature"] == 0.1  # the event's root override
    assert body["data"]["messages"][0]["content"].startswith("You are a support agent for Acme.")


def test_errors_through_the_handler_keep_the_openai_shape(lambda_module) -> None:
    event = json.loads((EVENTS / "http-api-render.json").read_text())
    event["body"] = '{"variables": '
    response = lambda_module.handler(event, None)
    assert response["statusCode"] == 400
    assert set(json.loads(response["body"])["error"]) == {"message", "type", "param", "code"}
    event["headers"]["x-portkey-api-key"] = "cck_wrong"
    assert lambda_module.handler(event, None)["statusCode"] == 401


def test_every_function_handler_in_the_template_imports(lambda_module) -> None:
    functions = {name: resource for name, resource in load_template()["Resources"].items()
                 if resource["Type"] == "AWS::Serverless::Function"}
    assert functions
    for name, resource in functions.items():
        module_name, _, attribute = resource["Properties"]["Handler"].rpartition(".")
        module = lambda_module if module_name == "handlers.lambda_api" else importlib.import_module(module_name)
        assert callable(getattr(module, attribute)), name
