"""The `cuecard` command itself: its help lists the commands and the exit codes, bad usage exits 2 with a short
message and no traceback, `main` returns exit codes instead of exiting, `--scopes` takes several words, and
`cuecard serve` on SQLite loads no AWS library and no rich."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from handlers import cli
from tests.e2e.conftest import run_cli, with_repo_on_path, without_aws

pytestmark = pytest.mark.e2e

COMMANDS = ("serve", "keys", "table", "diff", "render", "pull", "push")
NOT_ON_THE_SERVE_PATH = ("boto3", "botocore", "s3transfer", "mangum", "aws_lambda_powertools", "moto", "rich")

# `cuecard serve` up to the point it would listen: uvicorn.run is replaced by a report of the loaded modules.
SERVE_PROBE = """
import json, sys
import uvicorn

def report(*args, **kwargs):
    print("MODULES " + json.dumps(sorted({name.split(".")[0] for name in sys.modules})), flush=True)

uvicorn.run = report
from handlers.cli import main
raise SystemExit(main(["serve", "--data-dir", sys.argv[1], "--no-examples"]))
"""


def test_help_lists_the_commands_and_the_exit_codes(tmp_path: Path) -> None:
    done = run_cli("--help", cwd=tmp_path, env=without_aws())
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("Usage: cuecard [OPTIONS] COMMAND [ARGS]...")
    listed = [line.split()[0] for line in done.stdout.split("Commands:\n")[1].split("\n\n")[0].splitlines()]
    assert listed == list(COMMANDS)
    assert "exit codes:" in done.stdout
    for code in ("0    done", "1    push --check", "2    bad usage, an unreachable server", "130  interrupted"):
        assert code in done.stdout
    assert run_cli("-h", cwd=tmp_path, env=without_aws()).stdout == done.stdout


@pytest.mark.parametrize("command", ["diff", "render"])
def test_the_client_commands_help_has_the_exit_codes_and_the_server_options(command: str, tmp_path: Path) -> None:
    done = run_cli(command, "--help", cwd=tmp_path, env=without_aws())
    assert done.returncode == 0, done.stderr
    help_text = done.stdout
    assert "exit codes:" in help_text and "130  interrupted" in help_text
    assert "--url" in help_text and "$CUECARD_URL" in help_text and "--api-key" in help_text


@pytest.mark.parametrize("args, message", [
    (["diff", "summarize@1"], "Missing argument 'REF_B'."),
    (["serve", "--port", "eighty"], "'eighty' is not a valid integer"),
    (["keys", "create", "--scopes", "render"], "Missing option '--name'."),
    (["keys", "list", "--store", "postgres"], "'postgres' is not one of 'sqlite', 'dynamodb'"),
    (["no-such-command"], "No such command 'no-such-command'."),
])
def test_bad_usage_exits_2_with_a_short_message(tmp_path: Path, args: list[str], message: str) -> None:
    done = run_cli(*args, cwd=tmp_path, env=without_aws())
    assert done.returncode == 2 and done.stdout == ""
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) <= 4, done.stderr  # usage, the --help hint, a blank line, the error
    assert done.stderr.splitlines()[-1].startswith("Error: ")


def test_main_returns_the_exit_code_and_never_exits(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CUECARD_API_KEY", raising=False)
    assert cli.main(["--help"]) == 0
    assert cli.main(["diff"]) == 2
    assert cli.main(["render", "summarize@1", "--api-key", ""]) == 2  # an empty key is no key
    assert capsys.readouterr().err.splitlines()[-1] == "cuecard: no API key: pass --api-key or set CUECARD_API_KEY."


def test_an_error_is_one_line_and_ctrl_c_is_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CUECARD_STORE", raising=False)
    monkeypatch.delenv("CUECARD_TABLE", raising=False)
    assert cli.main(["keys", "list", "--store", "dynamodb"]) == 2
    assert capsys.readouterr().err == "cuecard: --store dynamodb needs --table NAME (or CUECARD_TABLE).\n"

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_settings", interrupted)
    assert cli.main(["keys", "list", "--data-dir", str(tmp_path / "data")]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_scopes_take_several_words_commas_or_both(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    env = without_aws()
    for name, scopes in [("spaced", ["render", "write"]), ("commas", ["render,write"]),
                         ("both", ["complete", "render,write"]), ("default", [])]:
        scope_args = ["--scopes", *scopes] if scopes else []
        done = run_cli("keys", "create", "--name", name, *scope_args, "--data-dir", data_dir, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
    done = run_cli("keys", "list", "--data-dir", data_dir, cwd=tmp_path, env=env)
    granted = {row["name"]: row["scopes"] for row in map(json.loads, done.stdout.splitlines())}
    assert granted == {"spaced": ["render", "write"], "commas": ["render", "write"],
                       "both": ["complete", "render", "write"], "default": ["render"]}


def test_serve_on_sqlite_loads_no_aws_library_and_no_rich(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SERVE_PROBE, str(tmp_path / "data")], cwd=tmp_path,
                          env=with_repo_on_path(without_aws()), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (report,) = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")]
    loaded = set(json.loads(report.removeprefix("MODULES ")))
    assert "handlers" in loaded and "uvicorn" in loaded
    assert not loaded & set(NOT_ON_THE_SERVE_PATH), sorted(loaded & set(NOT_ON_THE_SERVE_PATH))
    assert "cuecard stopped." in done.stdout

