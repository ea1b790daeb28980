"""The sample events in events/ (the ones `sam local invoke` uses), fed to the real Lambda handler."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from handlers.container import build_container
from handlers.local_seed import load_examples
from infra.table_definition import load_template
from tests.e2e.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ENV = json.loads((EVENTS / "env.json").read_text())["ApiFunction"]


@pytest.fixture
def lambda_module(settings, monkeypatch):
    """handlers.lambda_api imported fresh, as a cold start would, against a seeded table."""
    monkeypatch.setenv("CUECARD_DYNAMODB_ENDPOINT", settings.dynamodb_endpoint)
    monkeypatch.setenv("CUECARD_TABLE", settings.table_name)
    monkeypatch.setenv("CUECARD_ADMIN_KEY", ENV["CUECARD_ADMIN_KEY"])
    container = build_container(settings)
    load_examples(container.service, ROOT / "examples" / "prompts", container.virtual_keys.service)
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


def _functions() -> dict[str, dict]:
    return {name: resource for name, resource in load_template()["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"}


def test_every_python_handler_in_the_template_imports(lambda_module) -> None:
    handlers = {name: r["Properties"]["Handler"] for name, r in _functions().items() if r["Properties"]["Handler"] != "run.sh"}
    assert "ApiFunction" in handlers
    for name, handler in handlers.items():
        module_name, _, attribute = handler.rpartition(".")
        module = lambda_module if module_name == "handlers.lambda_api" else importlib.import_module(module_name)
        assert callable(getattr(module, attribute)), name


def test_the_streaming_function_entry_point_serves_the_app(lambda_module, settings, tmp_path) -> None:
    """run.sh, started as the Lambda Web Adapter starts it, answers the readiness check and renders."""
    stream = _functions()["StreamFunction"]["Properties"]
    assert stream["Handler"] == "run.sh" and os.access(ROOT / "run.sh", os.X_OK)
    port = free_port()
    env = {**os.environ, "AWS_LWA_PORT": str(port), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    log = open(tmp_path / "run.log", "wb")
    process = subprocess.Popen(["sh", str(ROOT / "run.sh")], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + stream["Environment"]["Variables"]["AWS_LWA_READINESS_CHECK_PATH"]).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.1)
        event = json.loads((EVENTS / "http-api-render.json").read_text())
        response = httpx.post(f"{base}/v1/prompts/support-reply@production/render", content=event["body"],
                              headers={"x-portkey-api-key": ENV["CUECARD_ADMIN_KEY"]})
        assert response.status_code == 200, response.text
        assert response.json()["data"]["temperature"] == 0.1
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
