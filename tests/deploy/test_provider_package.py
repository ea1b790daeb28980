"""The HTTP providers call upstreams from what the Lambda build ships: the first completion imports the adapters and
their HTTP client (aiohttp), which no entry point imports at a cold start, so tests/deploy/test_lambda_package.py
alone would not notice it missing."""

from __future__ import annotations

from pathlib import Path

from tests.deploy import test_lambda_package

artifact = test_lambda_package.artifact  # the fixture: the function code as the Makefile copies it

PROBE = """
import asyncio, json, sys, threading
sys.path[:0] = [{artifact!r}, {package!r}]
assert not any('site-packages' in p for p in sys.path), sys.path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        body = json.dumps({{"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{{"index": 0, "message": {{"role": "assistant", "content": "from upstream"}},
                                        "finish_reason": "stop"}}]}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
threading.Thread(target=server.serve_forever, daemon=True).start()

from core.models import VirtualKey
from core.providers import ProviderCall
from infra.providers import ProviderRegistry
import infra.providers.anthropic, infra.providers.azure_openai

vk = VirtualKey(id="vk", slug="vk", name="probe", provider="openai", created_at="2024-01-01T00:00:00Z",
                updated_at="2024-01-01T00:00:00Z", custom_host=f"http://127.0.0.1:{{server.server_port}}/v1")
call = ProviderCall(body={{"model": "m", "messages": [{{"role": "user", "content": "hi"}}]}}, binding=vk,
                    secret="sk-probe", stream=False, request_id="probe")
answer = asyncio.run(ProviderRegistry().provider("openai").complete(call))
assert answer["choices"][0]["message"]["content"] == "from upstream", answer
assert "aiohttp" in sys.modules and {{"moto", "yaml", "pytest"}}.isdisjoint(sys.modules)
server.shutdown()
"""


def test_a_completion_calls_its_upstream_from_the_lambda_build_alone(artifact: Path, lambda_package: Path) -> None:
    code = PROBE.format(artifact=str(artifact), package=str(lambda_package))
    result = test_lambda_package._run_alone(code, artifact)
    assert result.returncode == 0, result.stderr
