"""`cuecard diff` and `cuecard render` against a real `cuecard serve`: output for people and for scripts, and
exit codes (0 also when versions differ; 2 with one `cuecard: ...` line when the API refuses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.conftest import ADMIN_KEY, Server, call, ok, run_cli, serve_env, start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The samples, plus a second version of `summarize` with another temperature and a `tone` variable."""
    server = start_server(tmp_path_factory.mktemp("diff") / "data")
    try:
        first = ok(call(server, "GET", "/prompts/summarize?version=1", ADMIN_KEY))
        template = json.loads(first["string"])
        template[-1]["content"] += " Tone: {{tone}}."
        ok(call(server, "PUT", "/prompts/summarize", ADMIN_KEY, {
            "string": json.dumps(template), "parameters": {"temperature": 0.7}, "model": first["model"],
            "virtual_key": first["virtual_key"]}))
        yield server
    finally:
        stop_server(server)


def cli(server: Server, tmp_path: Path, *args: str, key: str = ADMIN_KEY):
    env = {**serve_env(), "CUECARD_URL": server.base_url, "CUECARD_API_KEY": key}
    return run_cli(*args, cwd=tmp_path, env=env)


def test_diff_for_people(server: Server, tmp_path: Path) -> None:
    done = cli(server, tmp_path, "diff", "summarize@1", "summarize@latest")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[:2] == ["--- summarize@1", "+++ summarize@latest"]
    assert any(line.startswith("+") and "Tone: {{tone}}." in line for line in out)
    assert "Changes from summarize@1 (version 1) to summarize@latest (version 2):" in out
    assert '  parameters: {"temperature": 0.0} -> {"temperature": 0.7}' in out
    assert "  variables added: tone" in out
    assert done.stderr == ""


def test_diff_json_with_rendered_bodies(server: Server, tmp_path: Path) -> None:
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps({"sentences": 2, "text": "Long text.", "tone": "dry"}))
    done = cli(server, tmp_path, "diff", "summarize@1", "summarize@2", "--variables", str(variables), "--json")
    assert done.returncode == 0, done.stderr
    diff = json.loads(done.stdout)
    assert diff["from"]["version"] == 1 and diff["to"]["version"] == 2
    assert diff["changed"]["parameters"] == {"from": {"temperature": 0.0}, "to": {"temperature": 0.7}}
    assert diff["added_variables"] == ["tone"]
    rendered = diff["rendered_diff"].splitlines()
    assert rendered[:2] == ["--- summarize@1 (rendered)", "+++ summarize@2 (rendered)"]
    assert '-  "temperature": 0.0' in rendered and '+  "temperature": 0.7' in rendered
    assert any(line.startswith("+") and "Tone: dry." in line for line in rendered)


def test_diff_errors_exit_2_with_one_line(server: Server, tmp_path: Path) -> None:
    wrong_key = cli(server, tmp_path, "diff", "summarize@1", "summarize@2", key="cck_not-a-real-key")
    assert wrong_key.returncode == 2 and wrong_key.stdout == ""
    assert len(wrong_key.stderr.splitlines()) == 1 and wrong_key.stderr.startswith("cuecard: ")
    assert "Traceback" not in wrong_key.stderr
    missing = cli(server, tmp_path, "diff", "summarize@1", "summarize@99")
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1
    assert missing.stderr.startswith("cuecard: ") and "99" in missing.stderr
    two = cli(server, tmp_path, "diff", "summarize@1", "support-reply@1")
    assert two.returncode == 2 and "same prompt" in two.stderr


def test_render(server: Server, tmp_path: Path) -> None:
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps({"text": "Long text.", "sentences": 3}))
    done = cli(server, tmp_path, "render", "summarize@2", "--variables", str(variables), "--var", "tone=dry",
               "--var", "sentences=1")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert done.stdout.startswith("{\n  ")  # indented for people
    assert body["temperature"] == 0.7 and body["model"]
    assert "Summarize in 1 sentences" in body["messages"][-1]["content"]
    assert body["messages"][-1]["content"].endswith("Tone: dry.")

    scripted = cli(server, tmp_path, "render", "summarize@1", "--var", "text=x", "--json")
    assert scripted.returncode == 0, scripted.stderr
    answer = json.loads(scripted.stdout)
    assert answer["slug"] == "summarize" and answer["version"] == 1 and answer["body"]["temperature"] == 0.0

    refused = cli(server, tmp_path, "render", "summarize@1", key="cck_not-a-real-key")
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith("cuecard: ")
