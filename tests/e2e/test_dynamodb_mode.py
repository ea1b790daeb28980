"""`cuecard table create` and `cuecard serve --store dynamodb` against a DynamoDB endpoint in a process of
its own (`python -m tests.moto_server`), with no AWS account: `--dynamodb-endpoint` is all they need."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.conftest import (
    SAMPLE_SLUGS,
    Server,
    call,
    ok,
    render,
    run_cli,
    slugs_listed,
    start_server,
    stop_server,
    without_aws,
)

pytestmark = pytest.mark.e2e

TABLE = "cuecard-dynamodb-mode-e2e"


@dataclass(frozen=True)
class Table:
    endpoint: str
    cwd: Path
    stdout: str  # what `table create` printed
    stderr: str

    @property
    def admin_key(self) -> str:
        return self.stdout.strip()


@pytest.fixture(scope="module")
def table(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Table:
    cwd = tmp_path_factory.mktemp("dynamodb-mode")
    done = run_cli("table", "create", "--table", TABLE, "--dynamodb-endpoint", moto_endpoint, cwd=cwd,
                   env=without_aws())
    assert done.returncode == 0, done.stderr
    return Table(moto_endpoint, cwd, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def served(table: Table) -> Iterator[Server]:
    server = start_server(None, admin_key=None, scrub_aws=True, cwd=table.cwd, log_dir=table.cwd,
                          store_args=("--store", "dynamodb", "--table", TABLE, "--dynamodb-endpoint", table.endpoint))
    yield server
    stop_server(server)


def test_table_create_prints_only_an_admin_key_on_stdout(table: Table) -> None:
    lines = table.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cck_"), table.stdout
    assert f"Table {TABLE} created." in table.stderr and "Loaded 3 sample prompts" in table.stderr
    assert table.admin_key not in table.stderr


def test_table_create_again_changes_nothing_and_prints_no_key(table: Table) -> None:
    done = run_cli("table", "create", "--table", TABLE, "--dynamodb-endpoint", table.endpoint, cwd=table.cwd,
                   env=without_aws())
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "already exists" in done.stderr


def test_serve_on_the_table_serves_the_samples_with_that_key(table: Table, served: Server) -> None:
    key = table.admin_key
    assert f"DynamoDB table {TABLE}" in served.output()
    assert sorted(slugs_listed(served, key)) == sorted(SAMPLE_SLUGS)
    assert render(served, key).status_code == 200
    completed = ok(call(served, "POST", "/prompts/support-reply@production/completions", key,
                        {"variables": {"product": "Acme", "tone": "warm", "question": "Hi?"}}))
    assert completed["choices"][0]["message"]["content"].startswith("[mock]")
    assert render(served, key + "x").status_code == 401
    assert not (table.cwd / ".cuecard").exists()  # no local data dir was made
