"""What `/v1/responses` costs over `/v1/prompts/{id}/completions` for the same prompt: the Responses request
parsing, the chat translation both ways and the Response object. Both run in-process (ASGI, no sockets) on a
SQLite store with the mock provider, interleaved in rounds; prints medians and the difference.

    ./dev bench responses_api [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from handlers.container import build_container  # noqa: E402
from handlers.local_store import first_serve, open_data_dir  # noqa: E402
from infra.settings import Settings  # noqa: E402

KEY = "bench-admin-key"
VARIABLES = {"sentences": "2", "text": "x" * 400}
CALLS = {
    "completions": ("/v1/prompts/summarize/completions", {"variables": VARIABLES}),
    "responses": ("/v1/responses", {"prompt": {"id": "summarize", "variables": VARIABLES}}),
}


async def timed(client: httpx.AsyncClient, path: str, body: dict, calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        response = await client.post(path, json=body)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return samples


async def run(calls: int, rounds: int) -> dict[str, list[float]]:
    data_dir = Path(tempfile.mkdtemp(prefix="cuecard-bench-"))
    settings = replace(Settings.from_env(), store="sqlite", data_dir=str(data_dir), admin_key=KEY)
    stores = open_data_dir(data_dir, settings)
    container = build_container(settings, stores)
    first_serve(data_dir, container, load_samples=True)
    transport = httpx.ASGITransport(app=container.asgi_app(inline_renders=True))
    samples: dict[str, list[float]] = {name: [] for name in CALLS}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                 headers={"x-portkey-api-key": KEY}) as client:
        for path, body in CALLS.values():
            await timed(client, path, body, 200)  # warm-up
        for round_number in range(rounds):
            order = list(CALLS.items())[:: 1 if round_number % 2 == 0 else -1]
            for name, (path, body) in order:
                samples[name] += await timed(client, path, body, calls)
    stores.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("CUECARD_LOG_LEVEL", "WARNING")
    samples = asyncio.run(run(args.calls, args.rounds))
    medians = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    for name, median in medians.items():
        print(f"{name:12s} median {median:8.1f} µs over {len(samples[name])} calls")
    print(f"responses - completions: {medians['responses'] - medians['completions']:+.1f} µs "
          f"(ratio {medians['responses'] / medians['completions']:.2f})")


if __name__ == "__main__":
    main()
