"""Warm render through the Lambda (Mangum) handler, against a bare FastAPI+Mangum baseline.

The baseline is a FastAPI app whose one route returns a constant JSON body of the same size as the
render's answer, behind the same Mangum adapter, fed the same API Gateway v2 event. Both are timed
in the same run, interleaved in rounds, so machine noise hits both alike. Prints the ratio of
medians (target: 1.5 or below).

    ./dev bench render [--calls 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

from fastapi import FastAPI  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from mangum import Mangum  # noqa: E402

from core.auth import mint_key  # noqa: E402
from core.models import Scope  # noqa: E402
from handlers.container import build_container  # noqa: E402
from infra.settings import Settings  # noqa: E402
from infra.table_definition import ensure_table  # noqa: E402
from tests.moto_server import MotoServer  # noqa: E402

EVENT = Path(__file__).resolve().parent.parent / "events" / "http-api-render.json"
TEMPLATE = json.dumps([
    {"role": "system", "content": "You are a support agent for {{product}}. Answer in a {{tone}} tone."},
    {"role": "user", "content": "{{question}}"},
])


def baseline_handler(body: dict) -> Mangum:
    app = FastAPI()

    @app.post("/v1/prompts/{prompt_id}/render")
    async def constant(prompt_id: str) -> JSONResponse:
        return JSONResponse(body)

    return Mangum(app, lifespan="off")


def time_calls(handler, event: dict, calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        response = handler(copy.copy(event), None)
        samples.append(time.perf_counter() - start)
        assert response["statusCode"] == 200, response
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per handler per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    local = MotoServer().start()  # DynamoDB as the Lambda function sees it; warm renders read none of it
    try:
        settings = replace(Settings.from_env(), dynamodb_endpoint=local.endpoint_url, table_name="bench")
        ensure_table(settings)
        container = build_container(settings)
        created = container.service.create_prompt({
            "name": "Bench", "slug": "bench-prompt", "model": "gpt-4o-mini", "string": TEMPLATE,
            "parameters": {"temperature": 0.3, "max_tokens": 300},
        })
        minted = mint_key("bench", frozenset({Scope.RENDER}), "2026-01-01T00:00:00.000Z")
        container.stores.api_keys.put_key(minted.record)

        event = json.loads(EVENT.read_text())
        event["rawPath"] = event["requestContext"]["http"]["path"] = f"/v1/prompts/{created['slug']}/render"
        event["headers"]["x-portkey-api-key"] = minted.key
        cuecard = Mangum(container.asgi_app(), lifespan="off")
        first = cuecard(copy.copy(event), None)
        assert first["statusCode"] == 200, first
        baseline = baseline_handler(json.loads(first["body"]))
        size = len(first["body"])

        for handler in (cuecard, baseline):  # warm-up: caches, imports, first-call paths
            time_calls(handler, event, 300)
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(args.rounds):
            ours += time_calls(cuecard, event, args.calls)
            theirs += time_calls(baseline, event, args.calls)
    finally:
        local.stop()

    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    print(f"response body: {size} bytes; {len(ours)} calls each, {args.rounds} interleaved rounds")
    print(f"{'':24}{'median':>10}{'p99':>10}")
    print(f"{'cuecard render':24}{ours_median * 1e6:>8.0f}µs{percentile(ours, 0.99) * 1e6:>8.0f}µs")
    print(f"{'bare FastAPI+Mangum':24}{theirs_median * 1e6:>8.0f}µs{percentile(theirs, 0.99) * 1e6:>8.0f}µs")
    print(f"ratio of medians: {ours_median / theirs_median:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
