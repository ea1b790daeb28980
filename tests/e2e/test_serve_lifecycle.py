"""`cuecard serve` as a user runs it: first start, `kill -9`, restart, Ctrl-C, restart, on one data dir.

The stages build on each other through module-scoped fixtures, so any single test can run alone:

    first       fresh data dir, no CUECARD_ADMIN_KEY, no AWS_* anywhere: prints the URL and an admin
                key once, loads the samples; the test then stores a prompt with 2 versions, publishes
                v2 and puts a custom label on v1 over HTTP
    after_kill  the first server is SIGKILLed; a new one on the same data dir has everything back,
                prints no key, loads no samples again
    after_stop  Ctrl-C (SIGINT) stops that one with exit code 0 and releases its port; `cuecard keys
                create` then runs on the data dir with no server; a third server (with
                CUECARD_ADMIN_KEY set this time) still has everything, and serves that key too

The data dir holds one SQLite file (cuecard.db, with its -wal/-shm) and the `served` marker: no
journal, no lock or endpoint file, no second listener.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    ADMIN_KEY,
    DATABASE_NAME,
    KEY_LINE_PATTERN,
    SAMPLE_SLUGS,
    Server,
    call,
    ok,
    run_cli,
    start_server,
    stop_server,
    without_aws,
)

pytestmark = pytest.mark.e2e

SLUG = "lifecycle-greeting"
LABEL = "canary"
KEY_LINE = re.compile(KEY_LINE_PATTERN, re.MULTILINE)
URL_LINE = re.compile(r"cuecard is serving on (http://\S+/v1)")


def chat(word: str) -> str:
    return json.dumps([{"role": "user", "content": f"{word} {{{{name}}}}"}])


@dataclass
class Story:
    data_dir: Path
    cwd: Path
    servers: list[Server] = field(default_factory=list)
    admin_key: str = ""  # the generated one, parsed from the first start's stdout
    prompt_id: str = ""
    first_listing: list[dict] = field(default_factory=list)
    later_prompt_id: str = ""  # created by the server started after kill -9
    write_key: str = ""  # made by `cuecard keys create` while no server ran
    stop_output: str = ""  # what the Ctrl-C'ed server printed
    files_after_stop: set[str] = field(default_factory=set)  # the data dir's, with no server running
    port_released: bool | None = None

    @property
    def server(self) -> Server:
        return self.servers[-1]

    def start(self, **kwargs) -> Server:
        server = start_server(self.data_dir, scrub_aws=True, cwd=self.cwd, **kwargs)
        self.servers.append(server)
        return server


def rendered_text(server: Server, key: str, ref: str) -> str:
    data = ok(call(server, "POST", f"/prompts/{ref}/render", key, {"variables": {"name": "Ada"}}))["data"]
    return data["messages"][0]["content"]


def listing(server: Server, key: str) -> list[dict]:
    return ok(call(server, "GET", "/prompts?page_size=1000", key))["data"]


def assert_story_is_stored(story: Story, server: Server, key: str) -> None:
    """Everything the first server stored, read back by `server`."""
    assert rendered_text(server, key, SLUG) == "Hi v2 Ada"  # the published version
    assert rendered_text(server, key, story.prompt_id) == "Hi v2 Ada"
    assert rendered_text(server, key, f"{SLUG}@1") == "Hello Ada"
    assert rendered_text(server, key, f"{SLUG}@2") == "Hi v2 Ada"
    assert rendered_text(server, key, f"{SLUG}@latest") == "Hi v2 Ada"
    assert rendered_text(server, key, f"{SLUG}@{LABEL}") == "Hello Ada"
    versions = ok(call(server, "GET", f"/prompts/{SLUG}/versions", key))
    assert versions["total"] == 2
    assert [v["prompt_version"] for v in versions["data"]] == [2, 1]
    assert [v["prompt_version_description"] for v in versions["data"]] == ["second", "first"]
    assert [(v["is_published"], LABEL in v["labels"]) for v in versions["data"]] == [(True, False), (False, True)]
    labels = {label["name"] for label in ok(call(server, "GET", "/labels", key))["data"]}
    assert LABEL in labels
    # The samples and our prompt, each exactly once, the same as the first server listed them.
    now = listing(server, key)
    slugs = [p["slug"] for p in now]
    extra = {story.later_prompt_id} if story.later_prompt_id else set()
    assert len(slugs) == len(set(slugs)) == len(SAMPLE_SLUGS) + 1 + len(extra)
    assert SAMPLE_SLUGS | {SLUG} <= set(slugs)
    assert {p["id"] for p in now} == {p["id"] for p in story.first_listing} | extra
    assert rendered_text(server, key, "support-reply@production").startswith("You are a support agent for")


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (SO_REUSEADDR: leftover TIME_WAIT connections do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lifecycle")
    (root / "cwd").mkdir()
    made = Story(data_dir=root / "data", cwd=root / "cwd")
    yield made
    for server in made.servers:
        stop_server(server)


@pytest.fixture(scope="module")
def first(story: Story) -> Story:
    server = story.start(admin_key=None)
    keys = KEY_LINE.findall(server.output())
    assert len(keys) == 1, server.output()
    story.admin_key = keys[0]
    key = story.admin_key

    created = ok(call(server, "POST", "/prompts", key, {
        "name": "Lifecycle greeting", "slug": SLUG, "string": chat("Hello"), "model": "gpt-4o-mini",
        "version_description": "first",
    }))
    story.prompt_id = created["id"]
    updated = ok(call(server, "PUT", f"/prompts/{SLUG}", key, {
        "string": chat("Hi v2"), "version_description": "second", "patch": True,
    }))
    assert updated["version"] == 2
    ok(call(server, "PUT", f"/prompts/{SLUG}/makeDefault", key, {"version": 2}))
    label = ok(call(server, "POST", "/labels", key, {"name": LABEL}))
    v1 = next(v for v in ok(call(server, "GET", f"/prompts/{SLUG}/versions", key))["data"] if v["prompt_version"] == 1)
    ok(call(server, "PUT", f"/prompts/{SLUG}/versions/{v1['id']}", key, {"label_id": label["id"]}))
    story.first_listing = listing(server, key)
    return story


@pytest.fixture(scope="module")
def after_kill(first: Story) -> Story:
    killed = first.server
    assert stop_server(killed, signal.SIGKILL) == -signal.SIGKILL
    server = first.start(admin_key=None)
    # A write after the restart, on a prompt of its own (the first prompt's state stays as stored above).
    later = ok(call(server, "POST", "/prompts", first.admin_key, {"name": "Later", "string": chat("Later")}))
    ok(call(server, "PUT", f"/prompts/{later['id']}", first.admin_key, {"string": chat("Later v2"), "patch": True}))
    first.later_prompt_id = later["id"]
    return first


@pytest.fixture(scope="module")
def after_stop(after_kill: Story) -> Story:
    story = after_kill
    server = story.server
    assert stop_server(server, signal.SIGINT) == 0, server.output()
    story.stop_output = server.output()
    story.files_after_stop = {path.name for path in story.data_dir.iterdir()}
    story.port_released = port_is_free(server.port)

    made = run_cli("keys", "create", "--name", "offline-writer", "--scopes", "write", "--data-dir", str(story.data_dir),
                   cwd=story.cwd, env=without_aws())
    assert made.returncode == 0, made.stderr
    story.write_key = made.stdout.strip()
    story.start(admin_key=ADMIN_KEY)
    return story


# --- first start --------------------------------------------------------------------------------


def test_first_start_prints_the_base_url(first: Story) -> None:
    assert URL_LINE.findall(first.servers[0].output()) == [first.servers[0].base_url]


def test_first_start_prints_a_generated_admin_key_once_and_it_is_an_admin_key(first: Story) -> None:
    output = first.servers[0].output()
    assert output.count(first.admin_key) == 1
    assert "CUECARD_ADMIN_KEY" not in output
    # An admin key: the admin API (labels, prompts) worked in the fixture; keys are not hashed into the log.
    assert ok(call(first.servers[0], "GET", "/labels", first.admin_key))["total"] >= 4
    assert hashlib.sha256(first.admin_key.encode()).hexdigest() not in output


def test_first_start_loads_the_sample_prompts(first: Story) -> None:
    assert "Loaded 3 sample prompts" in first.servers[0].output()
    slugs = [p["slug"] for p in first.first_listing]
    assert sorted(slugs) == sorted(SAMPLE_SLUGS | {SLUG})


def test_first_server_serves_what_it_stored(first: Story) -> None:
    assert_story_is_stored(first, first.servers[0], first.admin_key)


def test_no_key_and_a_wrong_key_are_refused(first: Story) -> None:
    server = first.servers[0]
    assert call(server, "GET", "/prompts", "").status_code == 401
    assert call(server, "GET", "/prompts", first.admin_key + "x").status_code == 401


# --- after kill -9 ------------------------------------------------------------------------------


def test_everything_survives_kill_9(after_kill: Story) -> None:
    assert_story_is_stored(after_kill, after_kill.server, after_kill.admin_key)


def test_restart_prints_no_key_and_loads_no_samples_again(after_kill: Story) -> None:
    output = after_kill.server.output()
    assert not KEY_LINE.search(output) and after_kill.admin_key not in output
    assert "Loaded" not in output
    assert URL_LINE.findall(output) == [after_kill.server.base_url]
    slugs = [p["slug"] for p in listing(after_kill.server, after_kill.admin_key)]
    assert len(slugs) == len(set(slugs)) == 5  # 3 samples, ours, and the one written after the restart


def test_restarted_server_takes_new_writes(after_kill: Story) -> None:
    assert rendered_text(after_kill.server, after_kill.admin_key, f"{after_kill.later_prompt_id}@2") == "Later v2 Ada"


# --- after Ctrl-C -------------------------------------------------------------------------------


def test_ctrl_c_stops_cleanly_and_releases_the_port(after_stop: Story) -> None:
    assert "cuecard stopped." in after_stop.stop_output
    assert "Traceback" not in after_stop.stop_output
    # Checked before the third server started: the port is free, and the data dir holds the store (with
    # its -wal and -shm, unless the last connection removed them on closing) and the marker, nothing else.
    assert after_stop.port_released
    assert {DATABASE_NAME, "served"} <= after_stop.files_after_stop <= {
        DATABASE_NAME, f"{DATABASE_NAME}-wal", f"{DATABASE_NAME}-shm", "served"}


def test_everything_survives_ctrl_c(after_stop: Story) -> None:
    server = after_stop.server
    assert_story_is_stored(after_stop, server, after_stop.admin_key)
    assert rendered_text(server, after_stop.admin_key, f"{after_stop.later_prompt_id}@latest") == "Later v2 Ada"


def test_env_admin_key_and_stored_generated_key_both_work_after_restart(after_stop: Story) -> None:
    output = after_stop.server.output()
    assert "CUECARD_ADMIN_KEY is an admin key." in output
    assert not KEY_LINE.search(output) and "Loaded" not in output
    for key in (ADMIN_KEY, after_stop.admin_key):
        assert call(after_stop.server, "GET", "/labels", key).status_code == 200


def test_key_created_offline_works_on_the_next_start(after_stop: Story) -> None:
    server, key = after_stop.server, after_stop.write_key
    assert key.startswith("cck_")
    created = ok(call(server, "POST", "/prompts", key, {"name": "Written offline", "string": chat("Yo")}))
    assert rendered_text(server, key, f"{created['id']}@1") == "Yo Ada"
