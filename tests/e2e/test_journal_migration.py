"""A data dir of cuecard 0.1 (its `dynamodb-journal.jsonl` and `served` marker) is imported into
cuecard.db by the first `cuecard serve` on it, once, and the journal is left byte for byte as it was.

The journals in tests/fixtures/journals/ were written by cuecard 0.1 (see the README there): one
appended record by record, one compacted into a snapshot; both hold the same data. Without moto
(the `migrate` extra) the import cannot run: the command says what to install and changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import signal
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.conftest import (
    ADMIN_KEY,
    DATABASE_NAME,
    REPO_ROOT,
    Server,
    call,
    free_port,
    ok,
    run_cli,
    serve_env,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.e2e

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "journals"
JOURNAL = "dynamodb-journal.jsonl"
COUNT_LINE = re.compile(r"^Imported 3 prompts, 1 partial, 9 versions, 1 label, 2 API keys, 1 virtual key, "
                        r"1 provider key and 2 job records from \S+/dynamodb-journal\.jsonl\.$", re.MULTILINE)
VARIABLES = {"product": "Acme", "question": "Hi?", "team": "Ops", "n": "5", "text": "hello"}


def old_data_dir(root: Path, fixture: str) -> Path:
    """A data dir as cuecard 0.1 left it: 0755, its journal (0600) and the `served` marker."""
    data_dir = root / "data"
    data_dir.mkdir(mode=0o755)
    shutil.copyfile(FIXTURES / f"{fixture}.jsonl", data_dir / JOURNAL)
    (data_dir / JOURNAL).chmod(0o600)
    (data_dir / "served").touch()
    return data_dir


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Migrated:
    data_dir: Path
    journal_digest: str  # before anything ran
    servers: list[Server] = field(default_factory=list)

    @property
    def server(self) -> Server:
        return self.servers[-1]


@pytest.fixture(scope="module", params=["appended", "compacted"])
def migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    data_dir = old_data_dir(tmp_path_factory.mktemp(request.param), request.param)
    state = Migrated(data_dir, digest(FIXTURES / f"{request.param}.jsonl"))
    assert digest(data_dir / JOURNAL) == state.journal_digest
    state.servers.append(start_server(data_dir, extra_env={"CUECARD_AUTH_CACHE_TTL": "0"}))
    yield state
    for server in state.servers:
        stop_server(server)


@pytest.fixture(scope="module")
def restarted(migrated: Migrated) -> Migrated:
    if len(migrated.servers) == 1:
        assert stop_server(migrated.server, signal.SIGINT) == 0, migrated.server.output()
        migrated.servers.append(start_server(migrated.data_dir, extra_env={"CUECARD_AUTH_CACHE_TTL": "0"}))
    return migrated


def rendered(server: Server, ref: str, key: str = ADMIN_KEY) -> list[str]:
    """The rendered messages' contents (a chat template) or the rendered prompt (a completion one)."""
    data = ok(call(server, "POST", f"/prompts/{ref}/render", key, {"variables": VARIABLES}))["data"]
    return [message["content"] for message in data["messages"]] if "messages" in data else [data["prompt"]]


def test_the_first_start_imports_the_journal_once_and_keeps_it(migrated: Migrated) -> None:
    output = migrated.servers[0].output()
    assert len(COUNT_LINE.findall(output)) == 1, output
    assert f"{JOURNAL} is kept as it was" in output
    assert "Traceback" not in output and "Loaded" not in output  # no samples on a served data dir
    assert digest(migrated.data_dir / JOURNAL) == migrated.journal_digest


def test_the_imported_prompts_render_by_slug_and_label(migrated: Migrated) -> None:
    server = migrated.server
    assert rendered(server, "support-reply")[0] == "You help with Acme. Be brief."  # published: v2
    assert rendered(server, "support-reply@beta")[0] == "You help with Acme."  # v1
    assert rendered(server, "support-reply@staging")[0].startswith("You help with Acme. Be brief.\n")  # v3
    assert rendered(server, "support-reply@staging")[0].endswith("Ops team")  # with the imported partial
    assert rendered(server, "summarize@production") == ["Summarize in 5 words:\nhello"]
    assert rendered(server, "summarize@beta") == ["Summarize in at most 5 words:\nhello"]
    assert call(server, "POST", "/prompts/old-idea/render", ADMIN_KEY, {"variables": VARIABLES}).status_code == 404
    labels = {label["name"] for label in ok(call(server, "GET", "/labels", ADMIN_KEY))["data"]}
    assert "beta" in labels
    assert ok(call(server, "GET", "/virtual-keys/openai-main", ADMIN_KEY))["provider"] == "openai"


def test_the_imported_api_keys_keep_their_scopes_and_the_revoked_one_stays_revoked(migrated: Migrated) -> None:
    # The fixtures keep only the keys' hashes (README), so the revoked key cannot be presented over HTTP.
    done = run_cli("keys", "list", "--data-dir", str(migrated.data_dir), cwd=migrated.data_dir.parent,
                   env=serve_env(admin_key=None))
    assert done.returncode == 0, done.stderr
    listed = {key["name"]: (key["scopes"], key["revoked"]) for key in map(json.loads, done.stdout.splitlines())}
    assert listed == {"laptop": (["admin", "write"], True), "ci": (["render"], False)}


def test_only_the_live_provider_key_is_imported(migrated: Migrated) -> None:
    with contextlib.closing(sqlite3.connect(f"{(migrated.data_dir / DATABASE_NAME).as_uri()}?mode=ro", uri=True)) as db:
        assert [row[0] for row in db.execute("SELECT value FROM secrets")] == ["sk-test-fixture-not-a-real-key"]


def test_a_restart_does_not_import_again(restarted: Migrated) -> None:
    output = restarted.server.output()
    assert not COUNT_LINE.search(output) and "Importing" not in output, output
    assert rendered(restarted.server, "support-reply@beta")[0] == "You help with Acme."
    assert digest(restarted.data_dir / JOURNAL) == restarted.journal_digest


def test_without_moto_the_import_says_what_to_install_and_changes_nothing(tmp_path: Path) -> None:
    data_dir = old_data_dir(tmp_path, "appended")
    before = digest(data_dir / JOURNAL)
    no_moto = tmp_path / "no-moto"
    (no_moto / "moto").mkdir(parents=True)
    (no_moto / "moto" / "__init__.py").write_text("raise ImportError('moto is not installed here')\n")
    env = serve_env()
    env["PYTHONPATH"] = str(no_moto)  # ahead of site-packages (run_cli adds the checkout, which holds no moto)
    done = run_cli("serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data-dir", str(data_dir),
                   cwd=tmp_path, env=env, timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "serving on" not in done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cuecard: ") and "cuecard[migrate]" in lines[0], done.stderr
    assert digest(data_dir / JOURNAL) == before
