"""`cuecard serve` on its SQLite store: restart time against history, warm render against DynamoDB (moto), memory.

One run, everything on 127.0.0.1, every server a `cuecard serve` subprocess stopped by pid:
1. Restart time (process start to `GET /v1/health` answering 200, and to the first authenticated
   render of a sample prompt) on data dirs holding the samples only, then 100, 1,000 and 10,000
   more stored versions, as ratios to the samples-only one; interleaved rounds, medians. The server's
   own CPU time up to the first render is reported too: unlike wall time, other load barely moves it.
   Target: a restart at 10,000 versions within 1.5x of an empty one.
2. Warm render latency on SQLite against `--store dynamodb` on a moto endpoint (standing in for
   DynamoDB), same prompt and request, a sequential keep-alive httpx client, interleaved rounds;
   with the default pointer cache and with CUECARD_POINTER_CACHE_TTL=0.
3. RSS of the SQLite server after start and after 10,000 renders.
The data dirs are filled in this process through PromptService on `open_data_dir` (the bench's
own connection runs with synchronous=OFF to fill fast; the file format is the same). No CPU pinning.

    ./dev bench store [--restart-rounds 9] [--rounds 5] [--calls 1000] [--renders 10000] [--sizes 100,1000,10000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import queue
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import free_port, with_repo_on_path, without_aws  # noqa: E402

ADMIN_KEY = "cck_bench-store-admin"
AUTH = {"x-portkey-api-key": ADMIN_KEY}
PROMPT = "support-reply"  # a sample prompt (examples/prompts/)
BODY = {"variables": {"product": "Cuecard", "tone": "friendly", "question": "How do I reset my password?"}}
TABLE = "bench-store"
DATABASE = "cuecard.db"

# Used when tests/moto_server.py has no command line of its own: moto on a free port, its URL on stdout.
MOTO_HELPER = """
import signal, sys
sys.path.insert(0, sys.argv[1])
from tests.moto_server import MotoServer
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
server = MotoServer().start()
print(server.endpoint_url, flush=True)
signal.sigwait({signal.SIGINT, signal.SIGTERM})
server.stop()
"""


# --- processes -----------------------------------------------------------------------------------


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """No AWS_* or CUECARD_* from our environment (as the e2e tests run), the bench's admin key on top."""
    return with_repo_on_path({**without_aws(), "CUECARD_ADMIN_KEY": ADMIN_KEY, **(extra or {})})


@dataclass
class Served:
    process: subprocess.Popen
    base: str
    log: Path
    health_s: float  # process start to the first 200 from /health
    render_s: float  # process start to the first render's answer
    render_body: dict
    rss_at_health_kib: int  # VmRSS once /health answered, before the first render
    cpu_s: float  # the server's user+system CPU time up to the first render (insensitive to other load)


def serve(store_args: list[str], log: Path, extra_env: dict[str, str] | None = None, timeout: float = 120) -> Served:
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    command = [sys.executable, "-m", "handlers.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", *store_args]
    with open(log, "ab") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=server_env(extra_env), stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(timeout=10) as client:
            deadline = start + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"cuecard serve exited early:\n{log.read_text(errors='replace')}")
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"cuecard serve did not answer in {timeout}s:\n{log.read_text(errors='replace')}")
                try:
                    if client.get(f"{base}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.005)
            health = time.perf_counter() - start
            rss_at_health = rss_kib(process.pid)
            response = client.post(f"{base}/prompts/{PROMPT}/render", json=BODY, headers=AUTH)
            rendered = time.perf_counter() - start
            cpu = cpu_seconds(process.pid)
            if response.status_code != 200:
                raise RuntimeError(f"first render answered {response.status_code}: {response.text}")
    except BaseException:
        stop(process)
        raise
    return Served(process, base, log, health, rendered, response.json(), rss_at_health, cpu)


def stop(process: subprocess.Popen, sig: int = signal.SIGINT) -> None:
    if process.poll() is None:
        os.kill(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def start_moto(log: Path) -> tuple[subprocess.Popen, str]:
    """moto (tests/moto_server.py) in a subprocess of its own: `python -m tests.moto_server --port 0` if it has
    that command line, else a small helper around MotoServer."""
    commands = [[sys.executable, "-c", MOTO_HELPER, str(ROOT)]]
    if "__main__" in (ROOT / "tests" / "moto_server.py").read_text():
        commands.insert(0, [sys.executable, "-m", "tests.moto_server", "--port", "0"])
    for command in commands:
        with open(log, "ab") as err:
            process = subprocess.Popen(command, cwd=ROOT, env=with_repo_on_path(without_aws()), stdout=subprocess.PIPE,
                                       stderr=err, text=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def drain(stream=process.stdout, sink=lines) -> None:  # keeps the pipe from filling after the URL
            for line in stream:
                sink.put(line)
            sink.put(None)

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            found = re.search(r"http://127\.0\.0\.1:\d+", line)
            if found:
                return process, found.group(0)
        stop(process)
    raise RuntimeError(f"moto did not start:\n{log.read_text(errors='replace')}")


# --- data dirs -----------------------------------------------------------------------------------


def fill_data_dirs(tmp: Path, sizes: list[int]) -> tuple[dict[int, Path], float]:
    """A samples-only data dir (as a first `cuecard serve` leaves it), then one per size with that many more
    versions, appended round-robin to the sample prompts through PromptService. Returns the dirs and fill time."""
    from handlers.container import build_container
    from handlers.local_store import first_serve, open_data_dir
    from infra.settings import Settings

    started = time.perf_counter()
    work = tmp / "filling"
    settings = replace(Settings.from_env({"CUECARD_ADMIN_KEY": ADMIN_KEY}), store="sqlite", data_dir=str(work))
    stores = open_data_dir(work, settings)
    dirs: dict[int, Path] = {}
    try:
        stores.templates._db._connection().execute("PRAGMA synchronous = OFF")  # this connection only: fill fast
        container = build_container(settings, stores)
        with contextlib.redirect_stdout(io.StringIO()):
            first_serve(work, container, load_samples=True)
        slugs = [prompt["slug"] for prompt in container.service.list_prompts({})["data"]]
        appended = 0
        for size in sorted({0, *sizes}):
            for number in range(appended, size):
                container.service.update_prompt(slugs[number % len(slugs)],
                                                {"patch": True, "version_description": f"bench version {number}"})
            appended = size
            stores.close()  # the last connection out checkpoints the WAL into the file
            dirs[size] = tmp / f"versions-{size}"
            shutil.copytree(work, dirs[size])
            stores = open_data_dir(work, settings)
            stores.templates._db._connection().execute("PRAGMA synchronous = OFF")
            container = build_container(settings, stores)
    finally:
        stores.close()
    shutil.rmtree(work)
    return dirs, time.perf_counter() - started


def stored_versions(data_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(data_dir / DATABASE)) as connection:
        return connection.execute("SELECT count(*) FROM versions").fetchone()[0]


# --- measurements --------------------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def restarts(dirs: dict[int, Path], rounds: int, logs: Path) -> dict[int, dict[str, list[float]]]:
    sizes = sorted(dirs)
    results = {size: {"health": [], "render": [], "cpu": [], "rss": []} for size in sizes}
    for size in sizes:  # warm-up: page cache, .pyc files, and each data dir served once already
        stop(serve(["--data-dir", str(dirs[size])], logs / f"restart-{size}.log").process)
    for number in range(rounds):
        shift = number % len(sizes)
        for size in sizes[shift:] + sizes[:shift]:
            served = serve(["--data-dir", str(dirs[size])], logs / f"restart-{size}.log")
            try:
                results[size]["rss"].append(rss_kib(served.process.pid))
            finally:
                stop(served.process)
            results[size]["health"].append(served.health_s)
            results[size]["render"].append(served.render_s)
            results[size]["cpu"].append(served.cpu_s)
    return results


def timed_render(client: httpx.Client, url: str) -> float:
    start = time.perf_counter()
    response = client.post(url, json=BODY, headers=AUTH)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text
    return elapsed


def warm_renders(servers: dict[str, Served], rounds: int, calls: int) -> dict[str, list[float]]:
    names = list(servers)
    samples: dict[str, list[float]] = {name: [] for name in names}
    clients = {name: httpx.Client(timeout=30) for name in names}
    urls = {name: f"{servers[name].base}/prompts/{PROMPT}/render" for name in names}
    try:
        for name in names:  # warm-up: connections, caches, first-call paths
            for _ in range(200):
                timed_render(clients[name], urls[name])
        for number in range(rounds):
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name] += [timed_render(clients[name], urls[name]) for _ in range(calls)]
    finally:
        for client in clients.values():
            client.close()
    return samples


def memory(data_dir: Path, renders: int, log: Path) -> dict[str, int]:
    served = serve(["--data-dir", str(data_dir)], log)
    try:
        pid = served.process.pid
        result = {"right after start (/health answered)": served.rss_at_health_kib,
                  "after the first render": rss_kib(pid)}
        with httpx.Client(timeout=30) as client:
            url = f"{served.base}/prompts/{PROMPT}/render"
            for _ in range(renders - 1):
                timed_render(client, url)
        result[f"after {renders:,} renders"] = rss_kib(pid)
        result["peak (VmHWM)"] = rss_kib(pid, "VmHWM")
    finally:
        stop(served.process)
    return result


# --- report --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restart-rounds", type=int, default=9, help="interleaved rounds of restarts (one per size)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of warm renders")
    parser.add_argument("--calls", type=int, default=1000, help="renders per server per round")
    parser.add_argument("--renders", type=int, default=10_000, help="renders before the last RSS reading")
    parser.add_argument("--sizes", default="100,1000,10000", help="stored versions beyond the samples")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    began = time.perf_counter()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    with tempfile.TemporaryDirectory(prefix="cuecard-bench-store-") as tmp_name:
        tmp = Path(tmp_name)
        logs = tmp / "logs"
        logs.mkdir()

        dirs, fill_s = fill_data_dirs(tmp, sizes)
        versions = {size: stored_versions(path) for size, path in dirs.items()}
        file_kib = {size: (path / DATABASE).stat().st_size // 1024 for size, path in dirs.items()}
        print(f"filled {len(dirs)} data dirs in {fill_s:.1f} s: "
              + ", ".join(f"{versions[size]:,} versions ({file_kib[size]:,} KiB)" for size in sorted(dirs)), flush=True)

        restart_started = time.perf_counter()
        restart = restarts(dirs, args.restart_rounds, logs)
        print(f"restarts: {args.restart_rounds} rounds x {len(dirs)} data dirs in {time.perf_counter() - restart_started:.1f} s",
              flush=True)

        render_started = time.perf_counter()
        moto, endpoint = start_moto(logs / "moto.log")
        servers: dict[str, Served] = {}
        try:
            created = subprocess.run(
                [sys.executable, "-m", "handlers.cli", "table", "create", "--table", TABLE, "--dynamodb-endpoint", endpoint],
                cwd=ROOT, env=server_env(), capture_output=True, text=True, timeout=120)
            if created.returncode != 0 or not created.stdout.strip():
                raise RuntimeError(f"cuecard table create failed:\n{created.stdout}{created.stderr}")
            dynamodb = ["--store", "dynamodb", "--table", TABLE, "--dynamodb-endpoint", endpoint]
            for cache, extra in (("cached", {}), ("uncached", {"CUECARD_POINTER_CACHE_TTL": "0"})):
                data_dir = tmp / f"render-{cache}"
                shutil.copytree(dirs[0], data_dir)
                servers[f"sqlite {cache}"] = serve(["--data-dir", str(data_dir)], logs / f"sqlite-{cache}.log", extra)
                servers[f"dynamodb {cache}"] = serve(dynamodb, logs / f"dynamodb-{cache}.log", extra)
            bodies = {name: served.render_body for name, served in servers.items()}
            assert len({repr(body) for body in bodies.values()}) == 1, f"renders differ: {bodies}"
            latency = warm_renders(servers, args.rounds, args.calls)
        finally:
            for served in servers.values():
                stop(served.process)
            stop(moto)
        render_s = time.perf_counter() - render_started
        print(f"warm renders: {args.rounds} rounds x {args.calls} calls x {len(servers)} servers in {render_s:.1f} s",
              flush=True)

        rss = memory(dirs[max(dirs)], args.renders, logs / "memory.log")

    total_s = time.perf_counter() - began
    base = {key: statistics.median(restart[0][key]) for key in ("health", "render", "cpu")}
    print()
    print(f"### Restart: `cuecard serve` start to answer (median of {args.restart_rounds} interleaved rounds)")
    print()
    print("| stored versions | file | to /health 200 | ratio | to first render | ratio | server CPU to first render "
          "| ratio | RSS after first render |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in sorted(dirs):
        health, render, cpu = (statistics.median(restart[size][key]) for key in ("health", "render", "cpu"))
        label = f"{versions[size]:,} (samples only)" if size == 0 else f"{versions[size]:,} (samples + {size:,})"
        print(f"| {label} | {file_kib[size]:,} KiB | {health * 1000:.0f} ms | {health / base['health']:.2f} "
              f"| {render * 1000:.0f} ms | {render / base['render']:.2f} "
              f"| {cpu * 1000:.0f} ms | {cpu / base['cpu']:.2f} "
              f"| {statistics.median(restart[size]['rss']) / 1024:.1f} MiB |")
    worst = statistics.median(restart[max(dirs)]["render"]) / base["render"]
    print(f"\nRestart at {versions[max(dirs)]:,} versions: {worst:.2f}x the samples-only one "
          f"(target <= 1.5x: {'met' if worst <= 1.5 else 'NOT met'}).")
    print()
    print(f"### Warm render through `cuecard serve`, sequential keep-alive client "
          f"({args.rounds} interleaved rounds x {args.calls} calls)")
    print()
    print("| | p50 | p99 |")
    print("|---|---|---|")
    for cache, label in (("cached", "pointer cache 5 s (default)"), ("uncached", "CUECARD_POINTER_CACHE_TTL=0")):
        ours, theirs = latency[f"sqlite {cache}"], latency[f"dynamodb {cache}"]
        print(f"| SQLite, {label} | {statistics.median(ours) * 1e3:.2f} ms | {percentile(ours, 0.99) * 1e3:.2f} ms |")
        print(f"| DynamoDB (moto), {label} | {statistics.median(theirs) * 1e3:.2f} ms "
              f"| {percentile(theirs, 0.99) * 1e3:.2f} ms |")
        print(f"| **SQLite / DynamoDB (moto)** | **{statistics.median(ours) / statistics.median(theirs):.2f}** "
              f"| **{percentile(ours, 0.99) / percentile(theirs, 0.99):.2f}** |")
    print()
    print(f"### Memory of `cuecard serve` on SQLite ({versions[max(dirs)]:,} versions)")
    print()
    print("| | VmRSS |")
    print("|---|---|")
    for label, kib in rss.items():
        print(f"| {label} | {kib / 1024:.1f} MiB |")
    print()
    print(f"Machine: nproc {os.cpu_count()} (affinity {len(os.sched_getaffinity(0))}), Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}, {when}; no CPU pinning. "
          f"Whole bench {total_s:.0f} s (fill {fill_s:.1f} s).")


if __name__ == "__main__":
    main()
