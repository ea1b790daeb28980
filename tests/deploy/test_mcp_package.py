"""The `/mcp` endpoint serves from what the Lambda build ships: its first request imports the `mcp` SDK, which no
entry point imports at a cold start, so tests/deploy/test_lambda_package.py alone would not notice it missing."""

from __future__ import annotations

from pathlib import Path

from tests.deploy import test_lambda_package

artifact = test_lambda_package.artifact  # the fixture: the function code as the Makefile copies it

PROBE = """
import asyncio, json, sys
sys.path[:0] = [{artifact!r}, {package!r}]
assert not any('site-packages' in p for p in sys.path), sys.path
from dataclasses import replace
from pathlib import Path
from handlers.container import build_container
from infra.settings import Settings

Path({data!r}).mkdir()
settings = replace(Settings.from_env({{}}), store="sqlite", data_dir={data!r}, admin_key="probe-admin")
container = build_container(settings)
container.service.create_prompt({{"name": "probe", "slug": "probe", "string": "Hi {{{{who}}}}"}})
app = container.asgi_app()
body = json.dumps({{"jsonrpc": "2.0", "id": 1, "method": "prompts/get",
                   "params": {{"name": "probe", "arguments": {{"who": "Lambda"}}}}}}).encode()
headers = [(b"x-portkey-api-key", b"probe-admin"), (b"content-type", b"application/json"),
           (b"accept", b"application/json, text/event-stream"), (b"mcp-protocol-version", b"2025-11-25"),
           (b"host", b"abcdef.execute-api.us-east-1.amazonaws.com")]
sent = []

async def receive():
    return {{"type": "http.request", "body": body, "more_body": False}}

async def send(message):
    sent.append(message)

scope = {{"type": "http", "method": "POST", "path": "/v1/mcp", "raw_path": b"/v1/mcp", "query_string": b"",
         "headers": headers, "http_version": "1.1", "scheme": "https", "root_path": ""}}
asyncio.run(app(scope, receive, send))
assert sent[0]["status"] == 200, sent
answer = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
assert answer["result"]["messages"][0]["content"]["text"] == "Hi Lambda", answer
assert {{"moto", "yaml", "pytest"}}.isdisjoint(sys.modules)
"""


def test_the_mcp_endpoint_serves_from_the_lambda_build_alone(artifact: Path, lambda_package: Path,
                                                             tmp_path: Path) -> None:
    code = PROBE.format(artifact=str(artifact), package=str(lambda_package), data=str(tmp_path / "data"))
    result = test_lambda_package._run_alone(code, artifact)
    assert result.returncode == 0, result.stderr
