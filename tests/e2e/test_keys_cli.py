"""`cuecard keys create | list | revoke` as a user runs them, against a local data dir and a "deployed" table.

Local: every command runs with no AWS_* variable and no AWS config file (`without_aws`), first on a
data dir no server has ever served, then while `cuecard serve` runs on it: both processes open the
same SQLite file, so a key made by the command works on the running server at once, and a revoke
reaches it within CUECARD_AUTH_CACHE_TTL (0 here). Deployed: `--table` reaches whatever
CUECARD_DYNAMODB_ENDPOINT names, here `python -m tests.moto_server` in a subprocess; the table is
made by `cuecard table create`.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.e2e.conftest import (
    DATABASE_NAME,
    KEY_LINE_PATTERN,
    SAMPLE_SLUGS,
    Server,
    call,
    dynamodb_env,
    render,
    run_cli,
    slugs_listed,
    start_server,
    stop_server,
    without_aws,
)

pytestmark = pytest.mark.e2e

CREATED = re.compile(r"^Created key ([0-9a-f]+) \((.+); scopes: ([a-z,]+)\)\. It is shown once:$", re.MULTILINE)
ADMIN_KEY_LINE = re.compile(KEY_LINE_PATTERN, re.MULTILINE)
CHAT = json.dumps([{"role": "user", "content": "Hello {{name}}"}])
TABLE = "cuecard-deployed-e2e"


@dataclass(frozen=True)
class Made:
    key: str
    key_id: str
    stdout: str
    stderr: str


def create_key(name: str, *scopes: str, cwd: Path, env: dict[str, str], target: tuple[str, ...] = ()) -> Made:
    """`cuecard keys create`; checks the key is printed once, alone on stdout, and named on stderr by its id."""
    done = run_cli("keys", "create", "--name", name, "--scopes", *scopes, *target, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cck_"), done.stdout
    key = lines[0]
    assert key not in done.stderr
    created = CREATED.search(done.stderr)
    assert created and created.group(2) == name, done.stderr
    return Made(key, created.group(1), done.stdout, done.stderr)


def list_keys(*target: str, cwd: Path, env: dict[str, str]) -> tuple[list[dict], str]:
    done = run_cli("keys", "list", *target, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], done.stdout + done.stderr


def new_prompt(name: str) -> dict:
    return {"name": name, "string": CHAT, "model": "gpt-4o-mini"}


# --- a local data dir ---------------------------------------------------------------------------


@dataclass
class Local:
    cwd: Path  # the data dir is the default one, ./.cuecard in here
    env: dict[str, str]
    offline: Made  # created before any server ran on the data dir
    server: Server | None = None
    admin_key: str = ""  # printed by the server's first start

    @property
    def data_dir(self) -> Path:
        return self.cwd / ".cuecard"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory):
    cwd = tmp_path_factory.mktemp("keys")
    env = without_aws()
    offline = create_key("before-serve", "render", cwd=cwd, env=env, target=("--data-dir", str(cwd / ".cuecard")))
    state = Local(cwd=cwd, env=env, offline=offline)
    yield state
    if state.server is not None:
        stop_server(state.server)


@pytest.fixture(scope="module")
def served(local: Local) -> Local:
    """`cuecard serve` on the data dir, started after the offline key; no auth cache, so a revoke shows at once."""
    local.server = start_server(local.data_dir, admin_key=None, scrub_aws=True, cwd=local.cwd,
                                extra_env={"CUECARD_AUTH_CACHE_TTL": "0"})
    found = ADMIN_KEY_LINE.findall(local.server.output())  # checked by the first-serve test below
    local.admin_key = found[0] if found else ""
    return local


def test_create_with_no_server_and_no_aws_credentials(local: Local) -> None:
    assert local.offline.key.startswith("cck_")
    assert stat.S_IMODE(local.data_dir.stat().st_mode) == 0o700  # made private, by the command too
    assert stat.S_IMODE((local.data_dir / DATABASE_NAME).stat().st_mode) == 0o600
    assert not (local.data_dir / "served").exists()  # a key alone does not make the data dir "served"
    listed, printed = list_keys("--data-dir", str(local.data_dir), cwd=local.cwd, env=local.env)
    assert [(k["key_id"], k["name"], k["scopes"]) for k in listed] == [(local.offline.key_id, "before-serve", ["render"])]
    assert local.offline.key not in printed


def test_key_created_before_first_serve_works_on_the_server(served: Local) -> None:
    assert render(served.server, served.offline.key).status_code == 200
    assert call(served.server, "POST", "/prompts", served.offline.key, new_prompt("no")).status_code == 403


def test_first_serve_after_keys_create_still_loads_samples_and_prints_an_admin_key(served: Local) -> None:
    output = served.server.output()
    assert "Loaded 3 sample prompts" in output
    assert len(ADMIN_KEY_LINE.findall(output)) == 1 and served.admin_key, output
    listed, _ = list_keys(cwd=served.cwd, env=served.env)
    assert [k["scopes"] for k in listed if k["name"] == "local-admin"] == [["admin"]]
    assert call(served.server, "GET", "/labels", served.admin_key).status_code == 200
    assert sorted(slugs_listed(served.server, served.admin_key)) == sorted(SAMPLE_SLUGS)


def test_create_while_serving_works_on_the_running_server_at_once(served: Local) -> None:
    # The default data dir (./.cuecard), no --data-dir: the same SQLite file the server has open.
    made = create_key("renderer", "render", cwd=served.cwd, env=served.env)
    assert not (served.data_dir / "endpoint").exists()
    # Never presented before this line, so no negative lookup is cached: it must work at once.
    assert render(served.server, made.key).status_code == 200
    forbidden = call(served.server, "POST", "/prompts", made.key, new_prompt("no"))
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["message"] == "This API key lacks the 'write' scope."


def test_write_key_can_create_and_render(served: Local) -> None:
    made = create_key("writer", "write", cwd=served.cwd, env=served.env, target=("--data-dir", str(served.data_dir)))
    created = call(served.server, "POST", "/prompts", made.key, new_prompt("By the writer"))
    assert created.status_code == 200, created.text
    rendered = render(served.server, made.key, created.json()["id"])
    assert rendered.status_code == 200
    assert rendered.json()["data"]["messages"][0]["content"] == "Hello Ada"


def test_scopes_comma_or_space_separated(served: Local) -> None:
    made = create_key("both", "render,write", "admin", cwd=served.cwd, env=served.env)
    assert CREATED.search(made.stderr).group(3) == "admin,render,write"
    assert call(served.server, "GET", "/labels", made.key).status_code == 200


def test_unknown_scope_is_refused_with_a_clear_message(served: Local) -> None:
    before, _ = list_keys(cwd=served.cwd, env=served.env)
    done = run_cli("keys", "create", "--name", "bad", "--scopes", "render,superuser", cwd=served.cwd, env=served.env)
    assert done.returncode != 0
    assert done.stdout == ""
    assert "Unknown scope 'superuser'" in done.stderr and "render" in done.stderr
    assert "Traceback" not in done.stderr
    after, _ = list_keys(cwd=served.cwd, env=served.env)
    assert len(after) == len(before)


def test_list_shows_id_name_prefix_and_scopes_never_the_key(served: Local) -> None:
    made = create_key("listed", "render", cwd=served.cwd, env=served.env)
    listed, printed = list_keys(cwd=served.cwd, env=served.env)
    mine = [k for k in listed if k["key_id"] == made.key_id]
    assert len(mine) == 1
    assert mine[0]["name"] == "listed" and mine[0]["scopes"] == ["render"] and mine[0]["revoked"] is False
    assert mine[0]["prefix"] == made.key[:8] and mine[0]["created_at"]
    assert set(mine[0]) == {"key_id", "name", "prefix", "scopes", "created_at", "revoked"}
    for key in filter(None, (made.key, served.offline.key, served.admin_key)):
        assert key not in printed
        assert hashlib.sha256(key.encode()).hexdigest() not in printed
    assert "before-serve" in {k["name"] for k in listed}


def test_revoke_makes_the_key_401(served: Local) -> None:
    made = create_key("short-lived", "render", cwd=served.cwd, env=served.env)
    assert render(served.server, made.key).status_code == 200
    done = run_cli("keys", "revoke", made.key_id, cwd=served.cwd, env=served.env)
    assert done.returncode == 0, done.stderr
    refused = render(served.server, made.key)
    assert refused.status_code == 401
    assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
    listed, _ = list_keys(cwd=served.cwd, env=served.env)
    assert next(k for k in listed if k["key_id"] == made.key_id)["revoked"] is True
    assert render(served.server, served.offline.key).status_code == 200  # the others still work


def test_revoking_an_unknown_key_id_fails_cleanly(served: Local) -> None:
    done = run_cli("keys", "revoke", "0123456789abcdef", cwd=served.cwd, env=served.env)
    assert done.returncode != 0
    assert "0123456789abcdef" in done.stderr and "Traceback" not in done.stderr


# --- a deployed table (moto in a process of its own standing in for AWS) ----------------------------


@dataclass(frozen=True)
class Deployed:
    endpoint: str
    cwd: Path
    env: dict[str, str]  # what a user with AWS credentials and CUECARD_DYNAMODB_ENDPOINT would have


@pytest.fixture(scope="module")
def deployed(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    cwd = tmp_path_factory.mktemp("deployed")
    env = dynamodb_env(moto_endpoint)
    done = run_cli("table", "create", "--table", TABLE, "--no-examples", cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    return Deployed(moto_endpoint, cwd, env)


def scan_table(deployed: Deployed) -> str:
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=deployed.endpoint,
                          aws_access_key_id="e2e-local", aws_secret_access_key="e2e-local-secret")
    items = [item for page in client.get_paginator("scan").paginate(TableName=TABLE) for item in page["Items"]]
    assert items
    return json.dumps(items)


def test_create_on_a_deployed_table_stores_only_the_hash(deployed: Deployed) -> None:
    made = create_key("ops", "admin", cwd=deployed.cwd, env=deployed.env,
                      target=("--table", TABLE, "--region", "us-east-1"))
    stored = scan_table(deployed)
    assert made.key not in stored
    assert made.key[4:] not in stored  # not even without its cck_ prefix
    assert hashlib.sha256(made.key.encode()).hexdigest() in stored
    assert made.key_id in stored
    assert not (deployed.cwd / ".cuecard").exists()  # no local data dir was touched


def test_list_and_revoke_on_a_deployed_table(deployed: Deployed) -> None:
    made = create_key("ci", "write", cwd=deployed.cwd, env=deployed.env, target=("--table", TABLE))
    listed, printed = list_keys("--table", TABLE, cwd=deployed.cwd, env=deployed.env)
    assert made.key not in printed
    assert {"key_id": made.key_id, "name": "ci", "prefix": made.key[:8], "scopes": ["write"], "revoked": False}.items() \
        <= next(k for k in listed if k["key_id"] == made.key_id).items()
    done = run_cli("keys", "revoke", made.key_id, "--table", TABLE, cwd=deployed.cwd, env=deployed.env)
    assert done.returncode == 0, done.stderr
    listed, _ = list_keys("--table", TABLE, cwd=deployed.cwd, env=deployed.env)
    assert next(k for k in listed if k["key_id"] == made.key_id)["revoked"] is True
    assert not (deployed.cwd / ".cuecard").exists()


def test_table_options_with_store_sqlite_are_refused(deployed: Deployed) -> None:
    done = run_cli("keys", "list", "--store", "sqlite", "--table", TABLE, "--dynamodb-endpoint", deployed.endpoint,
                   cwd=deployed.cwd, env=deployed.env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("cuecard: ") and len(done.stderr.splitlines()) == 1, done.stderr
    assert "--store dynamodb" in done.stderr
    assert not (deployed.cwd / ".cuecard").exists()


def test_create_on_a_missing_table_fails_cleanly_and_prints_no_key(deployed: Deployed) -> None:
    done = run_cli("keys", "create", "--name", "lost", "--table", "no-such-table", cwd=deployed.cwd, env=deployed.env)
    assert done.returncode != 0
    assert done.stdout == ""  # a key that was not stored is never shown
    assert "table does not exist" in done.stderr and "Traceback" not in done.stderr
