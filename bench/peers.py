"""cuecard side by side with Portkey's gateway and LiteLLM, through the shared harness (issue 12).

The harness (/work/shared/bench/peers/run.py, or $CUECARD_PEERS_HARNESS) starts a fake OpenAI-compatible
upstream, the peers and, through `--target-cmd`, `cuecard serve`: every gateway is pinned to the same one
core and driven by the same clients (keep-alive http.client at c=1, wrk at c=16, SSE at c=1), interleaved,
in one run. This script only
1. prepares a cuecard data dir: a chat prompt (system message + `{{q}}`, max_tokens 64, temperature 0,
   the same body the harness sends the others) bound to an `openai` virtual key whose `custom_host` is the
   harness's upstream, and an API key with the `complete` scope;
2. runs the harness with cuecard as a target (`/v1/prompts/{id}/completions`, body
   `{"variables": {"q": <400 characters>}}`; the stream body is the same with `"stream": true`);
3. prints the issue's table from the harness's results JSON.

    ./dev bench peers [--quick] [--peers baseline,portkey,litellm] [--compare NAME=REF[:PATH,...]]
                      [--timeout 1500] [-- more harness args]

`--compare before=HEAD:infra/providers` adds a second cuecard target, run from a copy of the working tree whose
`infra/providers` is the one at git HEAD: a change measured against what it replaces, in the same run. Without
paths the copy is the whole of core/, infra/ and handlers/ at REF.

Every process this script starts is stopped by its pid; the harness stops what it starts the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("CUECARD_PEERS_HARNESS", "/work/shared/bench/peers/run.py"))
ADMIN_KEY = "cck_bench-peers-admin"  # only for the preparation server, never given to the measured one
PROMPT_CHARS = 400  # the harness's default --prompt-chars
SYSTEM = "You are a benchmark."  # what the harness's own body carries, so the upstream sees the same request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def filler(chars: int) -> str:
    """The harness's user message (run.py's make_body)."""
    return ("lorem ipsum dolor sit amet " * (chars // 27 + 1))[:max(chars, 1)]


PACKAGES = ("core", "infra", "handlers")  # what `cuecard serve` runs from


def cuecard_argv() -> list[str]:
    script = Path(sys.executable).parent / "cuecard"
    return [str(script)] if script.exists() else [sys.executable, "-m", "handlers.cli"]


def tree_at(ref: str, paths: list[str], into: Path) -> Path:
    """A copy of the working tree's packages with `paths` (default: all of them) as they are at git `ref`."""
    into.mkdir(parents=True)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__"))
    for path in paths or list(PACKAGES):
        shutil.rmtree(into / path, ignore_errors=True)
        archive = subprocess.run(["git", "archive", ref, path], cwd=ROOT, capture_output=True, check=True,
                                 timeout=60).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True, timeout=60)
    return into


def clean_env() -> dict[str, str]:
    """Ours without AWS_* and CUECARD_* (the measured server is the local SQLite one, configured below)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CUECARD_"))}


def call(method: str, url: str, key: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"x-portkey-api-key": key, "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def prepare(data_dir: Path, upstream_v1: str) -> tuple[str, str]:
    """(prompt slug, API key with the complete scope) in a fresh data dir."""
    key = subprocess.run([*cuecard_argv(), "keys", "create", "--name", "bench-peers", "--scopes", "complete",
                          "--data-dir", str(data_dir)], env=clean_env(), cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip()
    port = free_port()
    env = {**clean_env(), "CUECARD_ADMIN_KEY": ADMIN_KEY}
    server = subprocess.Popen([*cuecard_argv(), "serve", "--port", str(port), "--data-dir", str(data_dir),
                               "--log-level", "warning", "--no-examples"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                call("GET", f"{base}/health", ADMIN_KEY)
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the preparation server did not start") from None
                time.sleep(0.1)
        binding = call("POST", f"{base}/virtual-keys", ADMIN_KEY, {
            "name": "fake-upstream", "provider": "openai", "key": "sk-fake", "custom_host": upstream_v1})
        prompt = call("POST", f"{base}/prompts", ADMIN_KEY, {
            "name": "bench-peers", "model": "fake-gpt", "virtual_key": binding["slug"],
            "string": json.dumps([{"role": "system", "content": SYSTEM}, {"role": "user", "content": "{{q}}"}]),
            "parameters": {"max_tokens": 64, "temperature": 0}})
        return str(prompt["slug"]), key
    finally:
        stop(server)


def run_harness(argv: list[str], env: dict[str, str], timeout: float) -> int:
    """The harness in its own session; on timeout or Ctrl-C it gets SIGTERM (it stops its own children)."""
    process = subprocess.Popen(argv, env=env, start_new_session=True)
    try:
        return process.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        print(f"bench peers: stopping the harness (pid {process.pid})", file=sys.stderr)
        stop(process)
        return 124


def fmt(value: Any, digits: int = 2, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:,.{digits}f}"


def summary(results: dict[str, Any]) -> str:
    """The issue's table: overhead p50/p99 at c=1, req/s at c=16, CPU µs a completion, TTFT overhead, RSS."""
    targets = results["targets"]
    base = targets.get("baseline", {})
    bl, bs = base.get("lat", {}), base.get("stream", {})
    meta = results["meta"]
    lines = [f"{meta['when']}  {meta['cpu']} x{meta['ncpu']}; {meta['pinning']}; {meta['versions']}",
             "CPU used by other processes (% of a core): " + ", ".join(
                 f"{phase} {load['foreign_pct']:.0f}%" for phase, load in meta.get("load", {}).items()),
             "",
             "| target | ovh p50 c=1 | ovh p99 c=1 | req/s c=16 | CPU µs/completion (c=16) | CPU µs/req (c=1) "
             "| stream TTFT ovh p50 | RSS MB (peak) | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, t in targets.items():
        lat, tput, stream = t.get("lat", {}), t.get("tput", {}), t.get("stream", {})
        errors = sum(x.get("errors", 0) or 0 for x in (lat, tput, stream) if x)
        is_base = name == "baseline"
        lines.append("| " + " | ".join([
            name,
            "-" if is_base else fmt(lat.get("p50", float("nan")) - bl.get("p50", float("nan")), 2, sign=True) + " ms",
            "-" if is_base else fmt(lat.get("p99", float("nan")) - bl.get("p99", float("nan")), 2, sign=True) + " ms",
            fmt(tput.get("rps"), 0),
            fmt(tput.get("upstream_cpu_us_per_req") if is_base else tput.get("cpu_us_per_req"), 0)
            + (" (upstream)" if is_base else ""),
            fmt(lat.get("cpu_us_per_req"), 0),
            "-" if is_base else fmt(stream.get("ttft_p50", float("nan")) - bs.get("ttft_p50", float("nan")), 2,
                                    sign=True) + " ms",
            f"{fmt(t.get('rss_mb'), 0)} ({fmt(t.get('hwm_mb'), 0)})",
            str(errors),
        ]) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Arguments after -- go to the harness as they are.")
    parser.add_argument("--quick", action="store_true", help="the harness's smoke run (about a minute)")
    parser.add_argument("--peers", default="baseline,portkey,litellm", help="the harness's built-in peers")
    parser.add_argument("--name", default="cuecard", help="cuecard's name in the tables")
    parser.add_argument("--port", type=int, default=0, help="cuecard's port (default: a free one)")
    parser.add_argument("--upstream-port", type=int, default=18080)
    parser.add_argument("--log-level", default="warning", help="cuecard serve --log-level (info logs each request)")
    parser.add_argument("--json", help="results JSON (default: a new file in $TMPDIR/cuecard-peers/)")
    parser.add_argument("--timeout", type=float, default=1500.0, help="seconds before the harness is stopped")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=REF[:PATH,...]",
                        help="also run cuecard from the working tree with PATHs (default: core, infra, handlers) "
                             "at git REF, as target NAME")
    parser.add_argument("--summary-only", metavar="JSON", help="print the table of an earlier results file")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]

    if args.summary_only:
        print(summary(json.loads(Path(args.summary_only).read_text())))
        return 0
    if not HARNESS.exists():
        print(f"bench peers: no harness at {HARNESS} (set CUECARD_PEERS_HARNESS)", file=sys.stderr)
        return 2

    out = Path(args.json) if args.json else (
        Path(tempfile.gettempdir()) / "cuecard-peers" / (time.strftime("%Y%m%d-%H%M%S") + ".json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    upstream_v1 = f"http://127.0.0.1:{args.upstream_port}/v1"
    port = args.port or free_port()
    with tempfile.TemporaryDirectory(prefix="cuecard-peers-") as tmp:
        data_dir = Path(tmp) / "data"
        slug, key = prepare(data_dir, upstream_v1)
        body = json.dumps({"variables": {"q": filler(PROMPT_CHARS)}})
        argv = [sys.executable, str(HARNESS), "--peers", args.peers, "--upstream-port", str(args.upstream_port),
                "--json", str(out)]
        targets = [(args.name, port, data_dir, "")]
        for number, spec in enumerate(args.compare):
            name, _, source = spec.partition("=")
            ref, _, paths = source.partition(":")
            tree = tree_at(ref, [p for p in paths.split(",") if p], Path(tmp) / f"tree-{number}")
            shutil.copytree(data_dir, Path(tmp) / f"data-{number}")
            targets.append((name, free_port(), Path(tmp) / f"data-{number}", f"env PYTHONPATH={tree} "))
        for name, target_port, target_data, prefix in targets:
            serve = prefix + " ".join([*cuecard_argv(), "serve", "--host", "127.0.0.1", "--port", "{PORT}",
                                       "--data-dir", str(target_data), "--log-level", args.log_level,
                                       "--no-examples"])
            argv += ["--target", f"{name}=http://127.0.0.1:{target_port}/v1/prompts/{slug}/completions",
                     "--target-cmd", f"{name}={serve}",
                     "--target-header", f"{name}=x-portkey-api-key: {key}",
                     "--target-body", f"{name}={body}"]
        if args.quick:
            argv.append("--quick")
        argv += extra
        print(f"bench peers: {', '.join(f'{t[0]} on 127.0.0.1:{t[1]}' for t in targets)}, prompt {slug}, "
              f"upstream {upstream_v1}", flush=True)
        status = run_harness(argv, clean_env(), args.timeout)
    if status != 0 or not out.exists():
        print(f"bench peers: the harness failed (exit {status})", file=sys.stderr)
        return status or 1
    print()
    print(summary(json.loads(out.read_text())))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
