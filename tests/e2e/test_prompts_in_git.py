"""`cuecard pull` and `cuecard push` against a real `cuecard serve`: lossless round trips on every sample prompt,
one version per edited file and none for the rest, the --check drift gate, labels and publishing, the
breaking-change guard, and output for people (progress, tables) and scripts (--json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.conftest import ADMIN_KEY, Server, call, ok, run_cli, serve_env, start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("git") / "data")
    try:
        yield server
    finally:
        stop_server(server)


def cli(server: Server, cwd: Path, *args: str, key: str = ADMIN_KEY):
    env = {**serve_env(), "CUECARD_URL": server.base_url, "CUECARD_API_KEY": key}
    return run_cli(*args, cwd=cwd, env=env)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.relative_to(directory).as_posix(): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def versions(server: Server) -> dict[str, int]:
    prompts = ok(call(server, "GET", "/prompts", ADMIN_KEY))["data"]
    partials = ok(call(server, "GET", "/prompts/partials", ADMIN_KEY))["data"]
    return {**{p["slug"]: p["latest_version"] for p in prompts}, **{f"partial:{p['slug']}": p["latest_version"]
                                                                     for p in partials}}


def pushed(server: Server, cwd: Path, directory: Path, *args: str) -> dict:
    done = cli(server, cwd, "push", str(directory), "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_pull_writes_readable_files_and_push_then_changes_nothing(server: Server, tmp_path: Path) -> None:
    repo = tmp_path / "prompts"
    done = cli(server, tmp_path, "pull", str(repo))
    assert done.returncode == 0, done.stderr
    files = snapshot(repo)
    assert {"summarize.prompt", "support-reply.prompt", "chat-with-history.prompt", "house-style.partial"} <= set(files)
    summarize = files["summarize.prompt"].decode()
    assert summarize.startswith("---\nname: Summarize\nmodel: mock-1\nprovider: mock\n")
    assert "template: chat\n---\n::: system\n{{>house-style}}\n\n::: user\nSummarize in {{sentences}} sentences:\n\n" \
           "{{text}}\n" in summarize
    assert "pulled" in done.stdout.lower() and "summarize.prompt" in done.stdout

    before = versions(server)
    plan = pushed(server, tmp_path, repo)
    assert plan["summary"] == {"new": 0, "changed": 0, "unchanged": len(files)}
    assert versions(server) == before, "pull then push must make no version"

    again = cli(server, tmp_path, "pull", str(repo), "--json")
    assert again.returncode == 0, again.stderr
    assert snapshot(repo) == files, "push then pull must write the same bytes"
    assert not any(item["written"] for item in json.loads(again.stdout)["files"])


def test_editing_one_file_makes_exactly_one_version(server: Server, tmp_path: Path) -> None:
    repo = tmp_path / "prompts"
    assert cli(server, tmp_path, "pull", str(repo)).returncode == 0
    target = repo / "support-reply.prompt"
    target.write_text(target.read_text().replace("::: user\n", "::: user\nPlease be brief.\n", 1))
    edited = snapshot(repo)
    before = versions(server)

    check = cli(server, tmp_path, "push", str(repo), "--check")
    assert check.returncode == 1, check.stderr
    assert "+Please be brief." in check.stdout and "support-reply.prompt" in check.stdout
    dry = pushed(server, tmp_path, repo, "--dry-run")
    assert [f["path"] for f in dry["files"] if f["status"] != "unchanged"] == ["support-reply.prompt"]
    assert dry["applied"] is False and "+Please be brief." in dry["files"][-1]["diff"] or any(
        "+Please be brief." in f["diff"] for f in dry["files"])
    assert versions(server) == before, "--check and --dry-run write nothing"

    result = pushed(server, tmp_path, repo)
    assert result["applied"] is True
    changed = [f for f in result["files"] if f["status"] == "changed"]
    assert [(f["path"], f["from_version"], f["version"]) for f in changed] == [
        ("support-reply.prompt", before["support-reply"], before["support-reply"] + 1)]
    after = versions(server)
    assert after == {**before, "support-reply": before["support-reply"] + 1}

    assert cli(server, tmp_path, "push", str(repo), "--check").returncode == 0
    shutil.rmtree(repo)
    assert cli(server, tmp_path, "pull", str(repo)).returncode == 0
    assert snapshot(repo) == edited, "the edited file comes back byte for byte"


def test_new_files_and_folders_create_prompts_and_collections(server: Server, tmp_path: Path) -> None:
    repo = tmp_path / "prompts"
    folder = repo / "marketing"
    folder.mkdir(parents=True)
    (folder / "tagline.prompt").write_text(
        "---\nname: Tagline\nmodel: mock-1\nprovider: mock\nparameters:\n  temperature: 0.5\ntemplate: chat\n"
        "external_ids:\n- pmpt_tagline01\n---\n"
        "::: system\n{{>tone}}\n\n::: user\nA tagline for {{product}}.\n")
    (folder / "tone.partial").write_text("---\nname: Tone\n---\nUpbeat, never pushy.\n")
    result = pushed(server, tmp_path, repo)
    assert [(f["path"], f["status"], f["version"]) for f in result["files"]] == [
        ("marketing/tone.partial", "new", 1), ("marketing/tagline.prompt", "new", 1)]
    collection = ok(call(server, "GET", "/collections/marketing", ADMIN_KEY))
    prompt = ok(call(server, "GET", "/prompts/tagline", ADMIN_KEY))
    assert prompt["collection_id"] == collection["id"]
    assert prompt["external_ids"] == ["pmpt_tagline01"]
    rendered = ok(call(server, "POST", "/prompts/pmpt_tagline01/render", ADMIN_KEY, {"variables": {"product": "cuecard"}}))
    assert rendered["data"]["messages"][0]["content"] == "Upbeat, never pushy."

    written = snapshot(repo)
    pulled = tmp_path / "pulled"
    assert cli(server, tmp_path, "pull", str(pulled), "--collection", "marketing").returncode == 0
    assert snapshot(pulled) == written
    assert pushed(server, tmp_path, repo)["summary"]["unchanged"] == 2

    tagline = folder / "tagline.prompt"  # a head field: no new version
    tagline.write_text(tagline.read_text().replace("- pmpt_tagline01\n", "- pmpt_tagline01\n- pmpt_tagline02\n"))
    (change,) = [f for f in pushed(server, tmp_path, repo)["files"] if f["status"] == "changed"]
    assert (change["head_changes"], change["new_version"], change["version"]) == (["external_ids"], False, 1)
    assert ok(call(server, "GET", "/prompts/pmpt_tagline02", ADMIN_KEY))["external_ids"] == [
        "pmpt_tagline01", "pmpt_tagline02"]


def test_label_and_publish_move_to_the_pushed_versions(server: Server, tmp_path: Path) -> None:
    repo = tmp_path / "prompts"
    assert cli(server, tmp_path, "pull", str(repo)).returncode == 0
    target = repo / "summarize.prompt"
    target.write_text(target.read_text().replace("temperature: 0.0", "temperature: 0.3"))
    result = pushed(server, tmp_path, repo, "--label", "staging", "--publish")
    version = next(f["version"] for f in result["files"] if f["path"] == "summarize.prompt")
    summary = ok(call(server, "GET", "/prompts/summarize", ADMIN_KEY))
    assert summary["published_version"] == version and summary["labels"]["staging"] == version
    for item in ok(call(server, "GET", "/prompts", ADMIN_KEY))["data"]:  # unchanged files: their latest version
        assert item["labels"].get("staging") == item["latest_version"] == item["published_version"], item["slug"]
    before = versions(server)
    assert pushed(server, tmp_path, repo, "--label", "staging", "--publish")["summary"]["changed"] == 0
    assert versions(server) == before


def test_people_get_progress_and_a_table(server: Server, tmp_path: Path) -> None:
    repo = tmp_path / "prompts"
    pulled = cli(server, tmp_path, "pull", str(repo))
    assert "Reading" in pulled.stderr and "━" in pulled.stderr  # rich's progress bar
    done = cli(server, tmp_path, "push", str(repo), "--dry-run")
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if "status" in line)
    assert all(word in header for word in ("status", "kind", "file", "version"))
    assert "summarize.prompt" in done.stdout and "unchanged" in done.stdout


def test_bad_files_and_refusals_exit_2_with_one_line(server: Server, tmp_path: Path) -> None:
    repo = tmp_path / "prompts"
    repo.mkdir()
    (repo / "broken.prompt").write_text("---\nname: Broken\ntemprature: 1\n---\n::: user\nhi\n")
    done = cli(server, tmp_path, "push", str(repo))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("cuecard: broken.prompt: unknown front matter key(s) temprature")
    assert len(done.stderr.strip().splitlines()) == 1
    (repo / "broken.prompt").write_text("---\nname: Broken\nprovider: no-such-binding\n---\n::: user\nhi\n")
    refused = cli(server, tmp_path, "push", str(repo))
    assert refused.returncode == 2 and "virtual_key" in refused.stderr and "Traceback" not in refused.stderr
    missing = cli(server, tmp_path, "push", str(repo / "nowhere"))
    assert missing.returncode == 2 and "not a folder" in missing.stderr


def test_the_breaking_change_guard_warns_refuses_and_yields_to_force(server: Server, tmp_path: Path) -> None:
    repo = tmp_path / "prompts"
    assert cli(server, tmp_path, "pull", str(repo)).returncode == 0
    target = repo / "support-reply.prompt"
    schema = ("variables_schema:\n  properties:\n    order_id:\n      type: string\n    question:\n      type: string\n"
              "  required:\n  - order_id\n  - question\n  type: object\n")
    target.write_text(target.read_text().replace("template: chat\n", schema + "template: chat\n")
                      .replace("{{question}}", "{{question}} (order {{order_id}})"))
    production = ok(call(server, "GET", "/prompts/support-reply", ADMIN_KEY))["labels"]["production"]

    dry = pushed(server, tmp_path, repo, "--dry-run", "--label", "production")
    (change,) = [f for f in dry["files"] if f["status"] != "unchanged"]
    assert any(w.startswith(f"moving label production to it would break callers of version {production}") and
               "order_id is now required" in w for w in change["warnings"]), change["warnings"]
    people = cli(server, tmp_path, "push", str(repo), "--dry-run", "--label", "production")
    assert "warning" in people.stdout and "order_id is now required" in people.stdout

    refused = cli(server, tmp_path, "push", str(repo), "--label", "production")
    assert refused.returncode == 2, refused.stdout
    error = refused.stderr.strip().splitlines()[-1]  # after the progress bars
    assert error.startswith("cuecard: support-reply.prompt: Moving label production to version")
    assert "order_id is now required" in error and "Traceback" not in refused.stderr
    assert ok(call(server, "GET", "/prompts/support-reply", ADMIN_KEY))["labels"]["production"] == production

    forced = pushed(server, tmp_path, repo, "--label", "production", "--force")
    assert forced["summary"]["changed"] == 0, "the version was made by the refused run; only the label was left"
    prompt = ok(call(server, "GET", "/prompts/support-reply", ADMIN_KEY))
    assert prompt["labels"]["production"] == prompt["latest_version"] > production
    strict = call(server, "POST", "/prompts/support-reply@production/render", ADMIN_KEY,
                  {"variables": {"question": "Where?"}, "strict": True})
    assert strict.status_code == 400 and strict.json()["error"]["code"] == "invalid_variables"
    assert strict.json()["error"]["param"] == "variables.order_id"
    diff = cli(server, tmp_path, "diff", f"support-reply@{production}", "support-reply@production")
    assert diff.returncode == 0, diff.stderr
    assert '  variables_schema: null -> {"properties": {"order_id": {"type": "string"}' in diff.stdout
    assert "  variables added: order_id" in diff.stdout
