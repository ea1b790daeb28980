"""The `mcp` SDK (about half a second of imports) loads on the first `/mcp` request only: never at a cold start of
the Lambda API function, and never for a render."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.handlers.test_cold_path import ENVIRONMENT, PROBE, ROOT

MCP_PACKAGES = {"mcp", "mcp_types", "httpx2", "sse_starlette", "jwt", "cryptography"}  # what only the SDK loads

SERVED = """
import asyncio, json, sys
from dataclasses import replace
from pathlib import Path

import httpx

from handlers.container import build_container
from handlers.local_store import open_data_dir
from infra.settings import Settings

settings = replace(Settings.from_env({}), store="sqlite", data_dir=sys.argv[1], admin_key="probe-admin")
container = build_container(settings, open_data_dir(Path(sys.argv[1]), settings))
container.service.create_prompt({"name": "probe", "slug": "probe", "string": "Hi {{who}}"})
app = container.asgi_app()


def loaded():
    return sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[2].split(",")))


async def main():
    seen = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cuecard.test") as client:
        auth = {"x-portkey-api-key": "probe-admin"}
        rendered = await client.post("/v1/prompts/probe/render", headers=auth, json={"variables": {"who": "you"}})
        seen["render"] = [rendered.status_code, loaded()]
        listed = await client.post("/mcp", headers={**auth, "accept": "application/json, text/event-stream",
                                                    "mcp-protocol-version": "2025-11-25"},
                                   json={"jsonrpc": "2.0", "id": 1, "method": "prompts/list"})
        seen["mcp"] = [listed.status_code, loaded(), [p["name"] for p in listed.json()["result"]["prompts"]]]
    print(json.dumps(seen))


asyncio.run(main())
"""


def test_importing_the_lambda_handler_loads_no_mcp_library() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=ENVIRONMENT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = {name.split(".")[0] for name in json.loads(done.stdout.splitlines()[-1])}
    assert "handlers" in loaded and not loaded & MCP_PACKAGES, sorted(loaded & MCP_PACKAGES)


def test_a_render_loads_no_mcp_library_and_the_first_mcp_request_does(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SERVED, str(tmp_path / "data"), ",".join(sorted(MCP_PACKAGES))],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["render"] == [200, []]
    status, loaded, names = seen["mcp"]
    assert status == 200 and {"mcp", "mcp_types"} <= set(loaded) and names == ["probe"]
