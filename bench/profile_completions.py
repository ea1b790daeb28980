"""Where `cuecard serve` spends its CPU on completions under load: py-spy samples, summed by function.

Prepares a data dir as bench/peers.py does (a chat prompt with a 400-character variable, bound to an `openai`
virtual key whose custom_host is bench/fast_upstream.py), starts `cuecard serve` pinned to the last core and
the upstream and load on the others, drives completions with wrk at c=16 (or a Python client if wrk is
missing), and samples the server with py-spy (`pip install py-spy`; root or ptrace rights) meanwhile. Prints
the server's CPU a completion and the functions with the largest share of samples, by own time and with
what they call (only samples of the thread holding the GIL: Python's CPU, not threads waiting or the loop
polling); writes the collapsed stacks for a flame graph.

    ./dev bench profile_completions [--seconds 20] [--stream] [--top 40]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import clean_env, cuecard_argv, filler, free_port, prepare, stop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def wait_for(url: str, body: bytes, headers: dict[str, str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer")
        time.sleep(0.1)


def pinned(cpus: set[int] | None):  # noqa: ANN201 - a preexec_fn
    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
    return pin


def summarize(collapsed: Path, top: int) -> str:
    """Own and inclusive shares of samples by function, from py-spy's collapsed stacks ("a;b;c count")."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        frames = [f for f in frames if f]
        total += count
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    packages: collections.Counter[str] = collections.Counter()
    for name, n in own.items():
        packages[_package(name)] += n
    lines = [f"{total} samples", "", "| own % | package or module |", "|---|---|"]
    lines += [f"| {100 * n / total:.1f} | {name} |" for name, n in packages.most_common()]
    lines += ["", f"| own % | function (top {top} by own time) |", "|---|---|"]
    lines += [f"| {100 * n / total:.1f} | {name} |" for name, n in own.most_common(top)]
    lines += ["", f"| incl. % | function (top {top} by time including callees) |", "|---|---|"]
    lines += [f"| {100 * n / total:.1f} | {name} |" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _package(name: str) -> str:
    """`aiohttp/client.py:f` -> `aiohttp`; `threading.py:f` -> `threading` (the standard library by module)."""
    path = name.split(":", 1)[0]
    head = path.split("/", 1)[0]
    return head[:-3] if head.endswith(".py") else head


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """`func (path/to/site-packages/pkg/mod.py:12)` -> `pkg/mod.py:func`."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", "/lib/python3", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    path = re.sub(r"^\.\d+/", "", path)
    return f"{path}:{match.group('func')}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--stream", action="store_true", help="streaming completions instead")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples a second")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "cuecard-profile"))
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    wrk = shutil.which("wrk")
    if not Path(py_spy).exists():
        print("profile: py-spy is missing (pip install py-spy)", file=sys.stderr)
        return 2
    ncpu = os.cpu_count() or 1
    server_cpus, other_cpus = ({ncpu - 1}, set(range(ncpu - 1))) if ncpu >= 2 else (None, None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="cuecard-profile-") as tmp:
            up_port, port = free_port(), free_port()
            started.append(subprocess.Popen([sys.executable, str(ROOT / "bench" / "fast_upstream.py"), "--port",
                                             str(up_port), "--tokens", "32", "--token-delay-ms", "0"],
                                            preexec_fn=pinned(other_cpus), start_new_session=True))
            slug, key = prepare(Path(tmp) / "data", f"http://127.0.0.1:{up_port}/v1")
            server = subprocess.Popen([*cuecard_argv(), "serve", "--host", "127.0.0.1", "--port", str(port),
                                       "--data-dir", str(Path(tmp) / "data"), "--log-level", args.log_level,
                                       "--no-examples"], env=clean_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                                      preexec_fn=pinned(server_cpus), start_new_session=True)
            started.append(server)
            url = f"http://127.0.0.1:{port}/v1/prompts/{slug}/completions"
            body = {"variables": {"q": filler(400)}}
            if args.stream:
                body["stream"] = True
            data = json.dumps(body).encode()
            headers = {"content-type": "application/json", "x-portkey-api-key": key}
            wait_for(url, data, headers)
            load = _load_command(wrk, url, data, headers, args.conc, args.seconds, Path(tmp))
            subprocess.run(_load_command(wrk, url, data, headers, args.conc, 3, Path(tmp)), capture_output=True,
                           timeout=120, preexec_fn=pinned(other_cpus))  # warm-up
            collapsed = out / ("stream" if args.stream else "complete") / "collapsed.txt"
            collapsed.parent.mkdir(parents=True, exist_ok=True)
            cpu0 = cpu_seconds(server.pid)
            spy = subprocess.Popen([py_spy, "record", "--pid", str(server.pid), "--rate", str(args.rate),
                                    "--duration", str(int(args.seconds)), "--format", "raw", "--nonblocking", "--gil",
                                    "--output", str(collapsed)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, preexec_fn=pinned(other_cpus))
            started.append(spy)
            done = subprocess.run(load, capture_output=True, text=True, timeout=args.seconds + 120,
                                  preexec_fn=pinned(other_cpus))
            cpu = cpu_seconds(server.pid) - cpu0
            spy.wait(timeout=args.seconds + 60)
            requests = _requests(done.stdout)
    finally:
        for process in reversed(started):
            if process.poll() is None:
                stop(process)
    print(f"{'streaming' if args.stream else 'non-streaming'} completions, c={args.conc}, {args.seconds:g} s, "
          f"{requests} requests ({requests / args.seconds:,.0f}/s): server CPU {cpu * 1e6 / max(requests, 1):,.0f} µs "
          "a completion (py-spy's --nonblocking sampling included)")
    print(summarize(collapsed, args.top))
    print(f"\ncollapsed stacks: {collapsed} (flame graph: inferno-flamegraph or speedscope)")
    return 0


def _load_command(wrk: str | None, url: str, data: bytes, headers: dict[str, str], conc: int, seconds: float,
                  tmp: Path) -> list[str]:
    if wrk:
        script = tmp / "load.lua"
        script.write_text('wrk.method = "POST"\nwrk.body = [==[' + data.decode() + ']==]\n'
                          + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
                          + 'done = function(s, l, r) io.write(string.format("REQUESTS %d\\n", s.requests)) end\n')
        return [wrk, "-t1", f"-c{conc}", f"-d{max(1, int(seconds))}s", "-s", str(script), url]
    code = (
        "import http.client, json, sys, threading, time, urllib.parse\n"
        f"u = urllib.parse.urlsplit({url!r}); body = {data!r}; headers = {headers!r}\n"
        f"stop = time.time() + {seconds}; count = [0]\n"
        "def work():\n"
        "    c = http.client.HTTPConnection(u.hostname, u.port)\n"
        "    while time.time() < stop:\n"
        "        c.request('POST', u.path, body, headers); c.getresponse().read(); count[0] += 1\n"
        f"ts = [threading.Thread(target=work) for _ in range({conc})]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]; print('REQUESTS', count[0])\n")
    return [sys.executable, "-c", code]


def _requests(output: str) -> int:
    match = re.search(r"REQUESTS (\d+)", output)
    return int(match.group(1)) if match else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
