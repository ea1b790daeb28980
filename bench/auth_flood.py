"""Legitimate render latency through a real `cuecard serve` while random API keys flood it.

Starts `cuecard serve` on 127.0.0.1 as the e2e tests do (SQLite store; `--store dynamodb`: a table on
moto's server, in a process of its own, where a key lookup is a network read), creates a render key
with `cuecard keys create`, then times renders of the sample `support-reply@production` from this process
in three phases, interleaved in rounds so machine noise hits them alike:

- baseline: no other traffic;
- flood, well-formed: a second process sends `--rate` requests a second, each with a fresh random key
  of the minted shape (`cck_` + 43 characters), so every one is unknown to the store;
- flood, malformed: the same rate of random keys of the wrong shape.

Prints each phase's median and p95 and the ratio of its median to the baseline's (target: close to 1).
The processes are stopped by pid.

    ./dev bench auth_flood [--seconds 4] [--rounds 3] [--rate 120] [--store sqlite|dynamodb]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from infra.settings import Settings
from tests.e2e.conftest import (
    SAMPLE_VARIABLES,
    Server,
    dynamodb_env,
    run_cli,
    serve_env,
    start_server,
    stop_process,
    stop_server,
    with_repo_on_path,
    without_aws,
)

RENDER_PATH = "/prompts/support-reply@production/render"


def well_formed_key() -> str:
    return "cck_" + secrets.token_urlsafe(32)


def malformed_key() -> str:
    return "sk-" + secrets.token_hex(24)


FLOOD_KEYS = {"well-formed": well_formed_key, "malformed": malformed_key}


def flood(base_url: str, kind: str, rate: float, stop: multiprocessing.synchronize.Event, counts: dict) -> None:
    """Sends `rate` requests a second, each with a new random key, until `stop` is set; tallies statuses."""
    make_key = FLOOD_KEYS[kind]
    interval = 1.0 / rate
    sent: dict[int, int] = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        next_at = time.perf_counter()
        while not stop.is_set():
            response = client.post(RENDER_PATH, headers={"x-portkey-api-key": make_key()},
                                   json={"variables": SAMPLE_VARIABLES})
            sent[response.status_code] = sent.get(response.status_code, 0) + 1
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    counts.update(sent)


def time_renders(client: httpx.Client, key: str, seconds: float) -> list[float]:
    """Back-to-back renders for `seconds`; each one's latency."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        response = client.post(RENDER_PATH, headers={"x-portkey-api-key": key}, json={"variables": SAMPLE_VARIABLES})
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return samples


def run_phase(client: httpx.Client, base_url: str, key: str, seconds: float, kind: str | None, rate: float,
              manager: multiprocessing.managers.SyncManager, tally: dict[str, dict[int, int]],
              elapsed: dict[str, float]) -> list[float]:
    if kind is None:
        return time_renders(client, key, seconds)
    stop, counts = manager.Event(), manager.dict()
    flooder = multiprocessing.Process(target=flood, args=(base_url, kind, rate, stop, counts))
    flooder.start()
    try:
        time.sleep(0.5)  # let the flood reach its rate
        started = time.perf_counter()
        samples = time_renders(client, key, seconds)
    finally:
        stop.set()
        flooder.join(30)
        if flooder.is_alive():
            flooder.kill()
            flooder.join()
    elapsed[kind] = elapsed.get(kind, 0.0) + time.perf_counter() - started + 0.5
    statuses = tally.setdefault(kind, {})
    for status, count in counts.items():
        statuses[status] = statuses.get(status, 0) + count
    return samples


@contextlib.contextmanager
def moto_endpoint(cwd: Path) -> Iterator[str]:
    """`python -m tests.moto_server --port 0` in a process of its own; its URL."""
    process = subprocess.Popen([sys.executable, "-m", "tests.moto_server", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, cwd=cwd, env=with_repo_on_path(without_aws()))
    try:
        yield process.stdout.readline().strip()
    finally:
        stop_process(process, signal.SIGTERM)
        process.stdout.close()


@contextlib.contextmanager
def served(store: str, tmp: Path, log_level: str) -> Iterator[tuple[Server, str]]:
    """A running `cuecard serve` on `store` with the sample prompts, and a render key for it."""
    # The e2e tests turn the pointer cache off; a bench measures what a deployment runs.
    cached = {"CUECARD_POINTER_CACHE_TTL": str(Settings.from_env({}).pointer_cache_ttl)}
    with contextlib.ExitStack() as stack:
        if store == "sqlite":
            data_dir = tmp / "data"
            server = start_server(data_dir, admin_key=None, log_dir=tmp, log_level=log_level, extra_env=cached)
            target, env = ("--data-dir", str(data_dir)), serve_env(admin_key=None)
        else:
            endpoint = stack.enter_context(moto_endpoint(tmp))
            target, env = ("--table", "bench", "--dynamodb-endpoint", endpoint), dynamodb_env()
            done = run_cli("table", "create", *target, cwd=tmp, env=env)
            assert done.returncode == 0, done.stderr
            server = start_server(None, admin_key=None, scrub_aws=True, cwd=tmp, log_dir=tmp, log_level=log_level,
                                  extra_env=cached, store_args=("--store", "dynamodb", *target))
        stack.callback(stop_server, server)
        created = run_cli("keys", "create", "--name", "bench", "--scopes", "render", *target, cwd=tmp, env=env)
        assert created.returncode == 0, created.stderr
        yield server, created.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each phase in each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=120.0, help="flood requests a second")
    parser.add_argument("--log-level", default="info", help="the server's (serve's default: info)")
    parser.add_argument("--store", choices=("sqlite", "dynamodb"), default="sqlite")
    args = parser.parse_args()

    phases: dict[str | None, list[float]] = {None: [], "well-formed": [], "malformed": []}
    tally: dict[str, dict[int, int]] = {}
    elapsed: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cuecard-bench-") as tmp, served(args.store, Path(tmp), args.log_level) as (
            server, key), multiprocessing.Manager() as manager, httpx.Client(base_url=server.base_url, timeout=30) as client:
        time_renders(client, key, 0.5)  # warm up: the key and the prompt are cached after this
        for _ in range(args.rounds):
            for kind, samples in phases.items():
                samples.extend(run_phase(client, server.base_url, key, args.seconds, kind, args.rate, manager,
                                         tally, elapsed))

    baseline = statistics.median(phases[None])
    print(f"legitimate renders through `cuecard serve` ({args.store}), {args.rounds} rounds x {args.seconds:.0f} s a phase;"
          f" flood target {args.rate:.0f} req/s")
    print("| phase | flood req/s (statuses) | renders | median ms | p95 ms | median / baseline |")
    print("|---|---|---:|---:|---:|---:|")
    for kind, samples in phases.items():
        median = statistics.median(samples)
        if kind is None:
            flood_cell = "none"
        else:
            sent = sum(tally.get(kind, {}).values())
            statuses = ", ".join(f"{status}: {count}" for status, count in sorted(tally.get(kind, {}).items()))
            flood_cell = f"{sent / elapsed[kind]:.0f} ({statuses})"
        print(f"| {kind or 'baseline'} | {flood_cell} | {len(samples)} | {median * 1000:.2f} | {statistics.quantiles(samples, n=20)[-1] * 1000:.2f} |"
              f" {median / baseline:.2f} |")


if __name__ == "__main__":
    main()
