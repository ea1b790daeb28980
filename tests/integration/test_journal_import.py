"""infra/journal_import.py on journals written by the old DynamoDB-on-moto `cuecard serve` (tests/fixtures/journals)."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest

from core.models import Entity, Kind
from infra import journal_import, journal_replay
from infra.journal_import import (
    JOURNAL_NAME,
    JournalDamaged,
    MigrationNeedsMoto,
    has_journal,
    read_journal,
    summary,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "journals"
PROVIDER_KEY = "sk-test-fixture-not-a-real-key"
COUNTS = {"prompts": 3, "partials": 1, "versions": 9, "labels": 1, "API keys": 2, "virtual keys": 1,
          "provider keys": 1, "job records": 2}
CHAT_V1 = '[{"role": "system", "content": "You help with {{product}}."}, {"role": "user", "content": "{{question}}"}]'
CHAT_V2 = ('[{"role": "system", "content": "You help with {{product}}. Be brief."}, '
           '{"role": "user", "content": "{{question}}"}]')
CHAT_V3 = ('[{"role": "system", "content": "You help with {{product}}. Be brief.\\n{{>signature}}"}, '
           '{"role": "user", "content": "{{question}}"}]')
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
# slug@version -> (string, model, parameters, description, virtual_key, tools, template_metadata, variables)
VERSIONS = {
    "signature@1": ("-- {{team}} team", None, {}, "first", None, None, {}, ("team",)),
    "signature@2": ("Best,\n{{team}} team", None, {}, "friendlier", None, None, {}, ("team",)),
    "summarize@1": ("Summarize in {{n}} words:\n{{text}}", "gpt-4o-mini", {"max_tokens": 100}, None, None, None, {},
                    ("n", "text")),
    "summarize@2": ("Summarize in at most {{n}} words:\n{{text}}", "gpt-4o", {"max_tokens": 120, "top_p": 0.9}, None,
                    None, None, {}, ("n", "text")),
    "support-reply@1": (CHAT_V1, "gpt-4o-mini", {"temperature": 0.2, "max_tokens": 256}, "v1", "openai-main", None, {},
                        ("product", "question")),
    "support-reply@2": (CHAT_V2, "gpt-4o-mini", {"temperature": 0.5}, "shorter", "openai-main", None, {},
                        ("product", "question")),
    "support-reply@3": (CHAT_V3, "gpt-4o-mini", {"temperature": 0.5}, None, "openai-main", TOOLS, {"owner": "ana"},
                        ("product", "question")),
    "old-idea@1": ("Tell me about {{topic}}.", None, {}, None, None, None, {}, ("topic",)),
    "old-idea@2": ("Tell me more about {{topic}}.", None, {}, None, None, None, {}, ("topic",)),
}
LABELS = {"support-reply": {"staging": 3, "beta": 1}, "summarize": {"production": 1, "beta": 2}, "signature": {},
          "old-idea": {}}


def data_dir_with(tmp_path: Path, content: bytes) -> Path:
    (tmp_path / JOURNAL_NAME).write_bytes(content)
    return tmp_path


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.jsonl").read_bytes()


@pytest.fixture(scope="module", params=["appended", "compacted"])
def imported(request, tmp_path_factory) -> journal_import.JournalImport:
    return read_journal(data_dir_with(tmp_path_factory.mktemp(request.param), fixture_bytes(request.param)))


def entities(result: journal_import.JournalImport) -> dict[str, Entity]:
    return {entity.slug: entity for entity in result.snapshot.entities}


# --- the fixtures, imported --------------------------------------------------------------------------


def test_counts_are_exact(imported) -> None:
    assert imported.snapshot.counts() == COUNTS
    assert imported.warnings == []
    assert summary(imported.snapshot.counts(), ".cuecard/dynamodb-journal.jsonl") == (
        "Imported 3 prompts, 1 partial, 9 versions, 1 label, 2 API keys, 1 virtual key, 1 provider key and "
        "2 job records from .cuecard/dynamodb-journal.jsonl.")


def test_every_version_holds_what_was_written(imported) -> None:
    found = {f"{stored.version.slug}@{stored.version.version}": stored for stored in imported.snapshot.versions}
    assert set(found) == set(VERSIONS)
    for name, stored in found.items():
        version = stored.version
        assert (version.string, version.model, dict(version.parameters), version.description, version.virtual_key,
                version.tools, dict(version.template_metadata), version.variables) == VERSIONS[name], name
        assert stored.actor == "system"
        assert stored.deleted == name.startswith("old-idea@")


def test_entities_keep_pointers_and_the_deleted_prompt(imported) -> None:
    found = entities(imported)
    assert {slug: dict(entity.labels) for slug, entity in found.items()} == LABELS
    assert [slug for slug, entity in found.items() if entity.deleted] == ["old-idea"]
    assert found["old-idea"].latest_version == 2
    assert (found["support-reply"].published_version, found["support-reply"].latest_version) == (2, 3)
    assert found["signature"].kind is Kind.PARTIAL
    assert found["support-reply"].metadata == {"team": "support"}
    assert set(imported.snapshot.entity_actors.values()) == {"system"}
    assert set(imported.snapshot.entity_actors) == {(entity.kind.value, entity.id) for entity in found.values()}
    assert imported.snapshot.virtual_key_actors == {binding.id: "system" for binding in imported.snapshot.virtual_keys}


def test_the_renamed_label_comes_out_under_its_new_name(imported) -> None:
    (label,) = imported.snapshot.labels
    assert (label.name, label.description, label.color_code, label.builtin) == (
        "beta", "renamed from canary", "#ffaa00", False)


def test_api_keys_virtual_key_and_its_secret(imported) -> None:
    keys = {record.name: record for record in imported.snapshot.api_keys}
    assert {name: record.revoked for name, record in keys.items()} == {"ci": False, "laptop": True}
    assert {scope.value for scope in keys["laptop"].scopes} == {"admin", "write"}
    (binding,) = imported.snapshot.virtual_keys
    assert (binding.slug, binding.provider, binding.note) == ("openai-main", "openai", "fixture")
    assert imported.snapshot.secrets == {binding.secret_ref: PROVIDER_KEY}  # the replaced and the deleted key are gone


def test_job_records(imported) -> None:
    done, running = imported.snapshot.jobs
    assert (done.job_id, done.state, done.status, done.claim_token, done.lease_until) == (
        "job-done-1", "done", "succeeded", None, None)
    assert json.loads(done.result) == {"job_id": "job-done-1", "status": "succeeded", "result": {"text": "hi"}}
    assert (running.job_id, running.state, running.fingerprint, running.result) == (
        "job-running-1", "running", "e" * 64, None)
    assert running.claim_token and running.lease_until < running.expires_at


# --- the file: read-only, torn tails, damage ---------------------------------------------------------


def test_has_journal(tmp_path) -> None:
    assert not has_journal(tmp_path)
    assert has_journal(data_dir_with(tmp_path, b""))
    assert read_journal(tmp_path).snapshot.counts()["versions"] == 0


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path) -> None:
    lines = fixture_bytes("appended").splitlines(keepends=True)
    torn = b"".join(lines[:-1]) + lines[-1][:40]  # the running job's claim, cut mid-write
    data_dir = data_dir_with(tmp_path, torn)
    result = read_journal(data_dir)
    assert result.snapshot.counts() == {**COUNTS, "job records": 1}
    (warning,) = result.warnings
    assert f"line {len(lines)}" in warning and "never acknowledged" in warning
    assert (data_dir / JOURNAL_NAME).read_bytes() == torn


@pytest.mark.parametrize("where", ["last", "middle"])
def test_a_garbled_complete_line_raises_and_the_file_is_untouched(tmp_path, where) -> None:
    lines = fixture_bytes("appended").splitlines(keepends=True)
    number = len(lines) if where == "last" else 5
    lines[number - 1] = lines[number - 1][:30] + b"\n"
    damaged = b"".join(lines)
    data_dir = data_dir_with(tmp_path, damaged)
    with pytest.raises(JournalDamaged) as caught:
        read_journal(data_dir)
    message = str(caught.value)
    assert f"{data_dir / JOURNAL_NAME} line {number}" in message
    assert "Nothing was imported" in message and "left as is" in message
    assert (data_dir / JOURNAL_NAME).read_bytes() == damaged


def test_a_record_that_is_json_but_not_a_record_raises(tmp_path) -> None:
    data_dir = data_dir_with(tmp_path, fixture_bytes("compacted") + b'{"target": "DynamoDB_20120810.PutItem"}\n')
    with pytest.raises(JournalDamaged, match="line 5 is not a journal record"):
        read_journal(data_dir)


def test_an_interrupted_label_rename_moves_pointers_to_the_new_name(tmp_path) -> None:
    lines = fixture_bytes("appended").splitlines(keepends=True)
    rename = next(number for number, line in enumerate(lines) if b"ADD pending_renames" in line)
    result = read_journal(data_dir_with(tmp_path, b"".join(lines[: rename + 1])))  # died before moving pointers
    found = entities(result)
    assert dict(found["support-reply"].labels) == {"staging": 3, "beta": 1}
    assert dict(found["summarize"].labels) == {"production": 1, "beta": 2}
    assert [label.name for label in result.snapshot.labels] == ["beta"]
    assert len(result.warnings) == 2 and all("canary was being renamed to beta" in w for w in result.warnings)


def test_a_pointer_already_under_the_new_name_wins() -> None:
    entity = Entity(kind=Kind.PROMPT, id="id", slug="p", name="p", created_at="t", updated_at="t", latest_version=3,
                    published_version=1, labels={"canary": 1, "beta": 3, "staging": 2})
    warnings: list[str] = []
    moved = journal_replay._finish_renames(entity, {"canary": "beta"}, warnings)
    assert dict(moved.labels) == {"beta": 3, "staging": 2}
    assert len(warnings) == 1


# --- the replay ------------------------------------------------------------------------------------


def test_per_operation_transactions_give_what_moto_transactions_give(tmp_path) -> None:
    path = data_dir_with(tmp_path, fixture_bytes("appended")) / JOURNAL_NAME
    records, _ = journal_import._read_records(path)

    def replayed(split: bool) -> tuple[list, dict]:
        items, secrets = journal_replay.replay(path, records, split_transactions=split)
        return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"])), secrets

    per_operation = replayed(True)
    assert per_operation == replayed(False)
    assert len(per_operation[0]) > 30


def test_blobs_are_decoded_and_condition_checks_skipped(tmp_path) -> None:
    def record(operation: str, body: dict) -> bytes:
        return json.dumps({"target": f"DynamoDB_20120810.{operation}", "region": "eu-west-1",
                           "body": json.dumps(body)}).encode() + b"\n"

    key = {"pk": {"S": "x"}, "sk": {"S": "y"}}
    journal = (
        record("CreateTable", {"TableName": "t", "BillingMode": "PAY_PER_REQUEST",
                               "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                             {"AttributeName": "sk", "KeyType": "RANGE"}],
                               "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                                        {"AttributeName": "sk", "AttributeType": "S"}]})
        + record("TransactWriteItems", {"TransactItems": [
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "other"}, "sk": {"S": "z"}},
                                "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": "t", "Item": {**key, "blob": {"B": base64.b64encode(b"\x00\x01hi").decode()}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ]})
    )
    path = data_dir_with(tmp_path, journal) / JOURNAL_NAME
    records, _ = journal_import._read_records(path)
    (item,), _ = journal_replay.replay(path, records)
    assert item == {**key, "blob": {"B": b"\x00\x01hi"}}


def test_a_record_that_no_longer_applies_raises(tmp_path) -> None:
    lines = fixture_bytes("compacted").splitlines(keepends=True)
    data_dir = data_dir_with(tmp_path, b"".join(lines[1:]))  # items without their CreateTable
    with pytest.raises(JournalDamaged, match=r"line 1 \(dynamodb BatchWriteItem\) no longer applies"):
        read_journal(data_dir)


def test_without_moto_the_user_is_told_to_install_the_extra(tmp_path, monkeypatch) -> None:
    data_dir = data_dir_with(tmp_path, fixture_bytes("compacted"))
    monkeypatch.setitem(sys.modules, "moto", None)
    with pytest.raises(MigrationNeedsMoto) as caught:
        read_journal(data_dir)
    message = str(caught.value)
    assert "\n" not in message
    assert "pip install 'cuecard[migrate]'" in message and "untouched" in message


def test_summary_wording() -> None:
    assert summary({"prompts": 1, "API keys": 0}) == "Imported 1 prompt and 0 API keys."
    assert summary({"prompts": 2}, Path("d/j.jsonl")) == "Imported 2 prompts from d/j.jsonl."



def test_the_users_aws_settings_do_not_matter(tmp_path, monkeypatch) -> None:
    (tmp_path / "aws-config").write_text("[default\nbroken")
    for name, value in {"AWS_PROFILE": "no-such-profile", "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
                        "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "xx-nowhere-1"}.items():
        monkeypatch.setenv(name, value)
    result = read_journal(data_dir_with(tmp_path, fixture_bytes("compacted")))
    assert result.snapshot.counts() == COUNTS
    assert os.environ["AWS_PROFILE"] == "no-such-profile"
