"""What a running `cuecard serve` exposes, and to whom: one listener (the API port), a data dir only its
owner can read, and provider keys that stay in the store and out of every response and log line.

One server for the module, on a fresh data dir under a world-traversable folder (so the `nobody`
user reaches the data dir itself and is stopped there, not further up). A second, short-lived one
shows that a data dir an older cuecard left 0755 (with a 0644 `served` marker) is tightened.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.e2e.conftest import (
    ADMIN_KEY,
    DATABASE_NAME,
    SAMPLE_VARIABLES,
    Server,
    call,
    ok,
    render,
    start_server,
    stop_server,
)
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.e2e

STORE_FILES = {DATABASE_NAME, f"{DATABASE_NAME}-wal", f"{DATABASE_NAME}-shm", "served"}
NOBODY = 65534
CANARY = f"sk-cuecard-canary-{secrets.token_hex(12)}"  # a provider key no response or log may carry
HIDDEN = CANARY[4:-4]  # what the mask (sk-c****************wxyz) hides


def listening_ports(pid: int) -> list[int]:
    """The TCP ports process `pid` listens on: LISTEN rows (state 0A) of /proc/<pid>/net/tcp{,6} whose
    socket inode is one of the process's open files."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    ports = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if path.exists():
            for row in path.read_text().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:
                    ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def modes(data_dir: Path) -> dict[str, str]:
    """The data dir's permission bits ("." for the dir itself) and each file's, as octal strings."""
    found = {".": oct(stat.S_IMODE(data_dir.stat().st_mode))}
    found.update({path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in data_dir.iterdir()})
    return found


@pytest.fixture(scope="module")
def open_parent() -> Iterator[Path]:
    """A 0755 folder in /tmp: every user may look inside (pytest's own tmp folders are 0700)."""
    parent = Path(tempfile.mkdtemp(prefix="cuecard-e2e-privacy-"))
    parent.chmod(0o755)
    try:
        yield parent
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def served(open_parent: Path) -> Iterator[Server]:
    server = start_server(open_parent / "data", log_level="info", scrub_aws=True)
    try:
        ok(call(server, "POST", "/prompts", ADMIN_KEY, {"name": "Privacy", "string": "Hi {{name}}"}))  # a write
        yield server
    finally:
        stop_server(server)


def test_nothing_listens_but_the_api_port(served: Server) -> None:
    assert listening_ports(served.process.pid) == [served.port]
    assert not (served.data_dir / "endpoint").exists() and not (served.data_dir / "lock").exists()


def test_data_dir_is_0700_and_every_file_in_it_0600(served: Server) -> None:
    found = modes(served.data_dir)
    assert set(found) == {".", *STORE_FILES}  # -wal and -shm exist while the server has the file open
    assert found == {".": "0o700", **{name: "0o600" for name in STORE_FILES}}


def test_an_older_0755_data_dir_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    (data_dir / "served").touch(mode=0o644)  # as cuecard 0.1 left it
    (data_dir / "served").chmod(0o644)
    server = start_server(data_dir)
    try:
        ok(call(server, "POST", "/prompts", ADMIN_KEY, {"name": "Tight", "string": "Hi"}))
        found = modes(data_dir)
    finally:
        stop_server(server)
    assert found == {".": "0o700", **{name: "0o600" for name in STORE_FILES}}


def test_another_local_user_can_neither_list_the_data_dir_nor_open_the_store(served: Server) -> None:
    if os.geteuid() != 0:
        pytest.skip("switching to the nobody user needs root")
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 the nobody user can run")
    probe = (
        "import json, os, sys\n"
        "parent, data_dir, db = sys.argv[1:]\n"
        "def attempt(action):\n"
        "    try:\n"
        "        action()\n"
        "        return 'ok'\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
        "print(json.dumps({'list parent': attempt(lambda: os.listdir(parent)),\n"
        "                  'list data dir': attempt(lambda: os.listdir(data_dir)),\n"
        "                  'open store': attempt(lambda: open(db, 'rb').read(16))}))\n"
    )

    def become_nobody() -> None:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    data_dir = served.data_dir
    done = subprocess.run([python, "-c", probe, str(data_dir.parent), str(data_dir), str(data_dir / DATABASE_NAME)],
                          preexec_fn=become_nobody, capture_output=True, text=True, cwd="/",
                          env={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"list parent": "ok", "list data dir": "PermissionError",
                                       "open store": "PermissionError"}


def test_a_provider_key_stays_out_of_every_response_and_log_line(served: Server) -> None:
    responses: list[httpx.Response] = []

    def send(method: str, path: str, body: dict | None = None) -> httpx.Response:
        responses.append(call(served, method, path, ADMIN_KEY, body))
        return responses[-1]

    with FakeUpstream() as upstream:
        created = ok(send("POST", "/virtual-keys", {"name": "Canary", "provider": "openai", "key": CANARY,
                                                    "custom_host": upstream.base_url}))
        slug = created["slug"]
        assert ok(send("GET", "/virtual-keys"))["total"] >= 2  # the samples' mock binding and ours
        assert ok(send("GET", f"/virtual-keys/{slug}"))["slug"] == slug
        ok(send("PUT", f"/virtual-keys/{slug}", {"name": "Canary renamed"}))
        refused = send("PUT", f"/virtual-keys/{slug}", {"key": CANARY, "custom_host": "not a url"})
        assert refused.status_code == 400
        send("POST", "/virtual-keys", {"name": "Bad", "provider": "no-such-provider", "key": CANARY})
        chat = json.dumps([{"role": "user", "content": "{{q}}"}])
        prompt = ok(send("POST", "/prompts", {"name": "Canary prompt", "string": chat, "model": "gpt-fake",
                                              "virtual_key": slug}))
        ok(send("POST", f"/prompts/{prompt['id']}/render", {"variables": {"q": "hi"}}))
        ok(send("POST", f"/prompts/{prompt['id']}/completions", {"variables": {"q": "hi"}}))
        streamed = send("POST", f"/prompts/{prompt['id']}/completions", {"variables": {"q": "hi"}, "stream": True})
        assert streamed.status_code == 200 and "[DONE]" in streamed.text
        # The key does its job: it reached the provider, and only the provider.
        assert upstream.last_request.headers["authorization"] == f"Bearer {CANARY}"
    mock = ok(send("POST", "/prompts/support-reply@production/completions", {"variables": SAMPLE_VARIABLES}))
    assert mock["choices"][0]["message"]["content"].startswith("[mock]")
    responses.append(render(served, ADMIN_KEY))

    leaked = [f"{r.request.method} {r.request.url.path}" for r in responses
              if HIDDEN in r.text or any(HIDDEN in value for value in r.headers.values())]
    assert leaked == []
    assert HIDDEN not in served.output() and "POST /v1/virtual-keys" in served.output()  # info logs, no key
    with contextlib.closing(sqlite3.connect(f"{(served.data_dir / DATABASE_NAME).as_uri()}?mode=ro", uri=True)) as db:
        stored = [row[0] for row in db.execute("SELECT value FROM secrets")]
    assert CANARY in stored  # where it lives, in a 0600 file (above)
