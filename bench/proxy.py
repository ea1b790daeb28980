"""Completion overhead: through `cuecard serve` (uvicorn) against calling the same upstream directly.

One run, one fake OpenAI-compatible upstream on 127.0.0.1 (tests/fake_upstream.py), measured in
interleaved rounds so machine noise hits both paths alike:
- non-streaming: p50 and p99 latency of a completion, through cuecard and direct;
- streaming: time to the first content token, through cuecard and direct.
Targets: median overhead at most 1 ms non-streaming and 2 ms to the first token.

    ./dev bench proxy [--calls 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import free_port  # noqa: E402
from tests.fake_upstream import FakeUpstream  # noqa: E402

ADMIN_KEY = "cck_bench-proxy-admin"
MESSAGES = [{"role": "user", "content": "Tell me about the weather in Paris today please"}]


def start_cuecard(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "CUECARD_ADMIN_KEY": ADMIN_KEY, "CUECARD_POINTER_CACHE_TTL": "60"}
    process = subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "serve", "--port", str(port), "--data-dir", str(data_dir),
         "--log-level", "warning", "--no-examples"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("cuecard serve did not start")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed_completion(client: httpx.Client, url: str, body: dict, headers: dict) -> float:
    start = time.perf_counter()
    response = client.post(url, json=body, headers=headers)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text
    return elapsed


def time_to_first_token(client: httpx.Client, url: str, body: dict, headers: dict) -> float:
    start = time.perf_counter()
    with client.stream("POST", url, json=body, headers=headers) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: {") and _has_content(json.loads(line[6:])):
                elapsed = time.perf_counter() - start
                break
        else:
            raise AssertionError("no content token")
        for _ in lines:
            pass
    return elapsed


def _has_content(chunk: dict) -> bool:
    return any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per path per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with FakeUpstream() as upstream, tempfile.TemporaryDirectory() as tmp:
        process, base = start_cuecard(Path(tmp) / "data")
        try:
            admin = {"x-portkey-api-key": ADMIN_KEY}
            with httpx.Client(timeout=30) as setup:
                binding = setup.post(f"{base}/virtual-keys", headers=admin, json={
                    "name": "fake", "provider": "openai", "key": "sk-bench", "custom_host": upstream.base_url})
                assert binding.status_code == 200, binding.text
                prompt = setup.post(f"{base}/prompts", headers=admin, json={
                    "name": "bench", "model": "gpt-fake", "virtual_key": binding.json()["slug"],
                    "string": json.dumps([{"role": "user", "content": "{{q}}"}]), "parameters": {}})
                assert prompt.status_code == 200, prompt.text
            slug = prompt.json()["slug"]
            through = (f"{base}/prompts/{slug}/completions", admin)
            direct = (f"{upstream.base_url}/chat/completions", {"authorization": "Bearer sk-bench"})
            plain = {"variables": {"q": MESSAGES[0]["content"]}}
            direct_plain = {"model": "gpt-fake", "messages": MESSAGES}

            results: dict[str, list[float]] = {"through": [], "direct": [], "ttft_through": [], "ttft_direct": []}
            with httpx.Client(timeout=30) as client:
                for _ in range(30):  # warm-up: connections, caches
                    timed_completion(client, through[0], plain, through[1])
                    timed_completion(client, direct[0], direct_plain, direct[1])
                for _ in range(args.rounds):
                    for _ in range(args.calls):
                        results["through"].append(timed_completion(client, through[0], plain, through[1]))
                        results["direct"].append(timed_completion(client, direct[0], direct_plain, direct[1]))
                    for _ in range(args.calls // 3):
                        results["ttft_through"].append(
                            time_to_first_token(client, through[0], {**plain, "stream": True}, through[1]))
                        results["ttft_direct"].append(
                            time_to_first_token(client, direct[0], {**direct_plain, "stream": True}, direct[1]))
        finally:
            os.kill(process.pid, signal.SIGINT)
            process.wait(timeout=30)

    ms = {name: [s * 1000 for s in samples] for name, samples in results.items()}
    print(f"{len(ms['through'])} completions and {len(ms['ttft_through'])} streams per path, {args.rounds} rounds")
    print(f"{'':32}{'p50':>9}{'p99':>9}")
    for name, label in (("direct", "upstream directly"), ("through", "through cuecard"),
                        ("ttft_direct", "first token, directly"), ("ttft_through", "first token, through cuecard")):
        print(f"{label:32}{statistics.median(ms[name]):>7.2f}ms{percentile(ms[name], 0.99):>7.2f}ms")
    overhead = statistics.median(ms["through"]) - statistics.median(ms["direct"])
    ttft_overhead = statistics.median(ms["ttft_through"]) - statistics.median(ms["ttft_direct"])
    print(f"median overhead, non-streaming: {overhead:.2f} ms (target <= 1 ms)")
    print(f"median overhead, first token:   {ttft_overhead:.2f} ms (target <= 2 ms)")


if __name__ == "__main__":
    main()
