"""The Lambda API function's cold path: `import handlers.lambda_api` and its first render, against the floor.

Every sample is a fresh Python process with the environment the Lambda function gets (a clean one, as
tests/handlers/test_cold_path.py uses), pointed at moto's DynamoDB on 127.0.0.1 (`python -m
tests.moto_server`, its own process), so the first render does what it does on AWS: a boto3 client,
the key lookup and the template read over HTTP, offline. In each round the variants run one after
another (interleaved), so machine noise hits them alike; medians over the rounds:

- `floor`: `import fastapi, mangum, boto3`, then a bare FastAPI+Mangum app's first call (a constant
  JSON body) with the same API Gateway v2 event (events/http-api-render.json). The issue's baseline.
  Its app is built after the import, so its "first call" column includes building it.
- `floor + client`: the same plus what any app on DynamoDB does before its first answer: a boto3
  DynamoDB client made at import and one GetItem in the call.
- `cuecard`: `import handlers.lambda_api` (which builds the container, its DynamoDB client and the app),
  then `handler(event, None)`: a render with a stored render key, both read from the table.

The ratios are cuecard's import (and import + first call) over the floor's, wall and CPU time (CPU
time is the steadier on a busy machine). `--against DIR` adds `cuecard @ DIR`, the same probe run on
another checkout (`git worktree add DIR <commit>`, say): a before and after in one run. `--importtime`
adds, from one `python -X importtime` run, the modules cuecard's import loads beyond the floor's.

    ./dev bench cold_import [--rounds 15] [--against DIR] [--importtime 25]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVENT = ROOT / "events" / "http-api-render.json"
TABLE = "bench-cold"
SLUG = "bench-prompt"
TEMPLATE = json.dumps([
    {"role": "system", "content": "You are a support agent for {{product}}. Answer in a {{tone}} tone."},
    {"role": "user", "content": "{{question}}"},
])

# Each probe prints one JSON line: seconds (wall, CPU) for the import, then for the first call.
_CLOCKS = "import time\nwall, cpu = time.perf_counter(), time.process_time()\n"
_SPLIT = "import_wall, import_cpu = time.perf_counter() - wall, time.process_time() - cpu\n"
_REPORT = """
import json as _json, sys as _sys
assert answer["statusCode"] == 200, answer
_sys.stdout.write(_json.dumps([import_wall, import_cpu, time.perf_counter() - wall - import_wall,
                               time.process_time() - cpu - import_cpu]) + "\\n")
"""
_BARE_APP = """
from fastapi import FastAPI
from fastapi.responses import JSONResponse
app = FastAPI()

@app.post("/v1/prompts/{prompt_id}/render")
async def constant(prompt_id: str) -> JSONResponse:
    BODY = {"success": True, "data": {"model": "gpt-4o-mini", "temperature": 0.1, "max_tokens": 300}}
    GET_ITEM
    return JSONResponse(BODY)

answer = mangum.Mangum(app, lifespan="off")(EVENT, None)
"""
PROBES = {
    "floor": (_CLOCKS + "import fastapi, mangum, boto3\n" + _SPLIT
              + _BARE_APP.replace("GET_ITEM", "pass") + _REPORT),
    "floor + client": (
        _CLOCKS + "import fastapi, mangum, boto3\nimport os\n"
        "client = boto3.client('dynamodb', endpoint_url=os.environ['CUECARD_DYNAMODB_ENDPOINT'])\n" + _SPLIT
        + _BARE_APP.replace("GET_ITEM", f"client.get_item(TableName={TABLE!r}, Key={{'pk': {{'S': 'none'}}, "
                                        "'sk': {'S': 'none'}})") + _REPORT),
    "cuecard": (_CLOCKS + "import handlers.lambda_api\n" + _SPLIT
                + "answer = handlers.lambda_api.handler(EVENT, None)\n" + _REPORT),
}
BASELINE = "floor"


def lambda_environment(endpoint: str, root: Path = ROOT) -> dict[str, str]:
    """What the function's process sees: its settings, a region, dummy credentials, nothing of this shell."""
    return {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "AWS_EC2_METADATA_DISABLED": "true", "CUECARD_TABLE": TABLE,
            "CUECARD_DYNAMODB_ENDPOINT": endpoint, "CUECARD_EVENT_BUS": "cuecard-events",
            "CUECARD_SECRET_PREFIX": "cuecard/bench/", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(root),
            "LANG": "C.UTF-8"}


def start_moto() -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONSAFEPATH", None)
    process = subprocess.Popen([sys.executable, "-m", "tests.moto_server", "--port", "0"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    endpoint = process.stdout.readline().strip()
    if not endpoint.startswith("http://"):
        process.kill()
        raise RuntimeError("moto did not start")
    return process, endpoint


def seed(endpoint: str) -> dict[str, object]:
    """The table, one prompt and one render key; the event the probes send, with that key."""
    from dataclasses import replace

    from core.auth import mint_key
    from core.models import Scope
    from handlers.container import build_container
    from infra.settings import Settings
    from infra.table_definition import ensure_table

    settings = replace(Settings.from_env(lambda_environment(endpoint)), dynamodb_endpoint=endpoint)
    ensure_table(settings)
    container = build_container(settings)
    container.service.create_prompt({"name": "Bench", "slug": SLUG, "model": "gpt-4o-mini", "string": TEMPLATE,
                                     "parameters": {"temperature": 0.3, "max_tokens": 300}})
    minted = mint_key("bench", frozenset({Scope.RENDER}), "2026-01-01T00:00:00.000Z")
    container.stores.api_keys.put_key(minted.record)
    event: dict[str, object] = json.loads(EVENT.read_text())
    path = f"/v1/prompts/{SLUG}/render"
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path  # type: ignore[index]
    event["headers"]["x-portkey-api-key"] = minted.key  # type: ignore[index]
    return event


def run_probe(name: str, event_file: Path, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    code = f"import json\nEVENT = json.load(open({str(event_file)!r}))\n" + PROBES[name.split(" @ ")[0]]
    done = subprocess.run([sys.executable, *flags, "-c", code], cwd=env["PYTHONPATH"], env=env, capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr}")
    return done


def sample(name: str, event_file: Path, env: dict[str, str]) -> list[float]:
    return [float(value) for value in json.loads(run_probe(name, event_file, env).stdout.splitlines()[-1])]


def import_profile(event_file: Path, env: dict[str, str], top: int) -> None:
    """The modules cuecard's import adds to the floor's, by cumulative import time (one run: indicative)."""
    def modules(name: str) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        for line in run_probe(name, event_file, env, "-X", "importtime").stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, total, module = line.removeprefix("import time:").split("|")
            found.setdefault(module.strip(), (int(own), int(total)))
        return found

    floor, ours = modules(BASELINE), modules("cuecard")
    extra = {name: times for name, times in ours.items() if name not in floor}
    print(f"\nimports cuecard adds to the floor (python -X importtime, one run): {len(extra)} modules, "
          f"{sum(own for own, _ in extra.values()) / 1000:.1f} ms of their own (handlers.lambda_api's own time "
          "is building the container and the app); cumulative times include modules the floor loads too")
    print(f"{'module':48}{'self':>9}{'cumulative':>12}")
    for name, (own, total) in sorted(extra.items(), key=lambda item: -item[1][1])[:top]:
        print(f"{name:48}{own / 1000:>7.1f}ms{total / 1000:>10.1f}ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (each a fresh process per variant)")
    parser.add_argument("--against", type=Path, metavar="DIR", help="also probe the cuecard checkout in DIR")
    parser.add_argument("--importtime", type=int, default=0, metavar="N",
                        help="also list the N largest imports cuecard adds to the floor")
    args = parser.parse_args()

    moto, endpoint = start_moto()
    try:
        event = seed(endpoint)
        env = lambda_environment(endpoint)
        environments = {name: env for name in PROBES}
        if args.against:
            environments[f"cuecard @ {args.against}"] = lambda_environment(endpoint, args.against.resolve())
        with tempfile.TemporaryDirectory() as scratch:
            event_file = Path(scratch) / "event.json"
            event_file.write_text(json.dumps(event))
            for name, name_env in environments.items():  # warm-up: bytecode caches, the page cache, moto's first calls
                sample(name, event_file, name_env)
            samples: dict[str, list[list[float]]] = {name: [] for name in environments}
            for _ in range(args.rounds):
                for name, name_env in environments.items():
                    samples[name].append(sample(name, event_file, name_env))
            if args.importtime:
                import_profile(event_file, env, args.importtime)
    finally:
        moto.terminate()
        moto.wait(timeout=30)

    def median(name: str, *columns: int) -> float:
        return statistics.median(sum(row[column] for column in columns) for row in samples[name])

    print(f"\n{args.rounds} interleaved rounds, a fresh process each; medians in ms (wall / CPU), "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    width = max(18, *(len(name) + 2 for name in samples))
    print(f"{'':{width}}{'import':>16}{'first call':>16}{'import + call':>16}")
    for name in samples:
        cells = [f"{median(name, *wall) * 1e3:>7.0f} / {median(name, *cpu) * 1e3:<5.0f}"
                 for wall, cpu in (((0,), (1,)), ((2,), (3,)), ((0, 2), (1, 3)))]
        print(f"{name:{width}}{cells[0]:>16}{cells[1]:>16}{cells[2]:>16}")
    for other in [name for name in samples if name != BASELINE]:
        print(f"{other} / {BASELINE}: import {median(other, 0) / median(BASELINE, 0):.2f} wall, "
              f"{median(other, 1) / median(BASELINE, 1):.2f} CPU; import + first call "
              f"{median(other, 0, 2) / median(BASELINE, 0, 2):.2f} wall, "
              f"{median(other, 1, 3) / median(BASELINE, 1, 3):.2f} CPU")
    print("target: cuecard's import at most 1.15x the floor's")


if __name__ == "__main__":
    main()
