"""What the Lambda API function builds at its cold start, and what it leaves to the requests that need it; its
SnapStart hooks. No timings here: `./dev bench cold_import` measures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route

from core.auth import Authenticator
from core.service import PromptService
from handlers.http_app import _flat_routes, create_app
from tests.handlers.test_cold_path import ENVIRONMENT, ROOT
from tests.scoped_keys import key_per_scope
from tests.unit.fakes import InMemoryStore

ADMIN_MODELS = ("CreatePrompt", "UpdatePrompt", "MakeDefault", "CreateLabel", "CreateCollection", "CreateVirtualKey",
                "ListQuery")
BUILT = f"""
import json, sys
import handlers.lambda_api as lambda_api
from core import admin_requests, hyperparameters
built = {{name: getattr(admin_requests, name).__pydantic_complete__ for name in {ADMIN_MODELS!r}}}
built["Hyperparameters"] = hyperparameters.Hyperparameters.__pydantic_complete__
routes = [type(route).__name__ for route in lambda_api.app.app.api.router.routes]  # edge, /mcp, FastAPI
print(json.dumps({{"modules": sorted(sys.modules), "built": built, "routes": sorted(set(routes))}}))
"""


def run(code: str, *, path: Path | None = None) -> dict:
    env = {**ENVIRONMENT, "PYTHONPATH": f"{path}:{ROOT}" if path else str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_cold_start_builds_no_fastapi_route_and_no_admin_model() -> None:
    """FastAPI's APIRoutes (and the pydantic.v1 import they make) and the request models cost about 60 ms of a cold
    start that serves renders; they are built by the first request that uses them."""
    seen = run(BUILT)
    assert "pydantic.v1" not in seen["modules"] and "core.diffs" not in seen["modules"]
    assert seen["routes"] == ["Route"]  # FastAPI's own pages included: all plain Starlette routes
    assert not any(seen["built"].values()), seen["built"]


def test_a_render_with_plain_hyperparameters_builds_no_model_and_a_write_builds_its_own(tmp_path: Path) -> None:
    code = """
import asyncio, json, sys
from dataclasses import replace
from pathlib import Path
import httpx
from core import admin_requests, hyperparameters
from handlers.container import build_container
from handlers.local_store import open_data_dir
from infra.settings import Settings

settings = replace(Settings.from_env({}), store="sqlite", data_dir=sys.argv[1], admin_key="probe-admin")
container = build_container(settings, open_data_dir(Path(sys.argv[1]), settings))
app = container.asgi_app()

async def main():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cuecard.test") as client:
        auth = {"x-portkey-api-key": "probe-admin"}
        created = await client.post("/v1/prompts", headers=auth, json={"name": "Probe", "slug": "probe",
                                                                         "string": "Hi {{who}}"})
        written = admin_requests.CreatePrompt.__pydantic_complete__
        rendered = await client.post("/v1/prompts/probe/render", headers=auth,
                                     json={"variables": {"who": "you"}, "temperature": 0.5, "max_tokens": 9})
        print(json.dumps({"statuses": [created.status_code, rendered.status_code], "written": written,
                          "data": rendered.json()["data"],
                          "hyperparameters": hyperparameters.Hyperparameters.__pydantic_complete__}))

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["statuses"] == [200, 200] and seen["written"] is True
    assert seen["data"] == {"temperature": 0.5, "max_tokens": 9, "prompt": "Hi you"}
    # A create validates its (absent) parameters on the fast path too; nothing so far needed the model.
    assert seen["hyperparameters"] is False


def test_snapstart_hooks_register_with_the_runtime_and_do_their_work(tmp_path: Path) -> None:
    """The runtime's `snapshot_restore_py` (stood in for here) gets both hooks at import. Before the snapshot the
    deferred models are built; after a restore `random` draws anew, so copies of one snapshot do not share jitter."""
    (tmp_path / "snapshot_restore_py.py").write_text(
        "before, after = [], []\n"
        "def register_before_snapshot(func, *args, **kwargs):\n    before.append(func)\n"
        "def register_after_restore(func, *args, **kwargs):\n    after.append(func)\n")
    code = f"""
import json, random
import snapshot_restore_py as runtime
import handlers.lambda_api as lambda_api
from core import admin_requests, hyperparameters
registered = [[f.__name__ for f in runtime.before], [f.__name__ for f in runtime.after]]
for hook in runtime.before:
    hook()
built = [getattr(admin_requests, name).__pydantic_complete__ for name in {ADMIN_MODELS!r}]
built.append(hyperparameters.Hyperparameters.__pydantic_complete__)
random.seed(7)
snapshot_state = random.getstate()
draws = []
for _ in range(2):  # two environments restored from one snapshot
    random.setstate(snapshot_state)
    for hook in runtime.after:
        hook()
    draws.append(random.random())
print(json.dumps({{"registered": registered, "built": built, "draws": draws}}))
"""
    seen = run(code, path=tmp_path)
    assert seen["registered"] == [["prepare_snapshot"], ["after_restore"]]
    assert all(seen["built"])
    assert seen["draws"][0] != seen["draws"][1]


def test_admin_routes_are_plain_routes_answering_only_their_methods() -> None:
    """As APIRoutes did: a GET route does not answer HEAD (405, naming the methods served)."""
    store = InMemoryStore()
    app = create_app(PromptService(store, store), Authenticator(store, ttl=0))
    routes = app.app.router.routes
    assert len(routes) == len(_flat_routes(app.app)) > 30  # nothing nested: every route is in the app's list
    assert all(isinstance(route, Route) and not isinstance(route, APIRoute) for route in routes)
    client = TestClient(app, raise_server_exceptions=False)
    headers = {"x-portkey-api-key": key_per_scope(store)["admin"]}
    for path, allow in (("/v1/prompts", "GET, POST"), ("/labels/some-label", "DELETE, GET, PUT"),
                        ("/v1/health", "GET")):
        response = client.head(path, headers=headers)
        assert response.status_code == 405 and response.headers["allow"] == allow, path
    assert client.get("/v1/labels", headers=headers).status_code == 200
    assert client.get("/health").json() == {"status": "ok"}
