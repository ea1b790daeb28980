"""Reads an old `cuecard serve` data dir: its DynamoDB journal, replayed into moto in process, as a Snapshot.

Until the SQLite store, `cuecard serve` kept `<data dir>/dynamodb-journal.jsonl`: one JSON line per
successful mutating DynamoDB or Secrets Manager call made against its embedded moto server,
`{"target": "DynamoDB_20120810.PutItem", "region": ..., "body": "<request JSON>"}` (plus
`"service": "secretsmanager"` for Secrets Manager), possibly compacted into a snapshot of
CreateTable/UpdateTimeToLive/BatchWriteItem/CreateSecret records (infra/local_dynamodb.py).

    result = read_journal(data_dir)      # JournalImport(snapshot, warnings, records, path)
    print(summary(result.snapshot.counts(), result.path))

The file is only read, never changed. A last line without its newline is a write that was never
acknowledged: it is skipped with a warning. Any complete line that is not a record, or a record that
no longer applies, raises JournalDamaged before anything is returned.

The records are replayed with boto3 into moto's in-process mock (`mock_aws`; no server, no port),
then every table is scanned and every live secret read. moto is imported only here
(MigrationNeedsMoto if it is missing). While the import runs every botocore call of the process goes
to moto, and `mock_aws` resets moto's per-process state when it starts and stops: run it before
anything else in the process uses AWS or moto (at startup).
TransactWriteItems are applied one operation at a time, in order, conditions kept: the journal holds
only transactions that succeeded, and one transaction never touches an item twice, so each
condition sees what it saw in the transaction. (moto's own transactions copy whole tables, O(table)
per record.) ConditionCheck entries write nothing and are skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from infra.stores import Snapshot

JOURNAL_NAME = "dynamodb-journal.jsonl"
_TARGET_PREFIXES = {"DynamoDB_20120810.": "dynamodb", "secretsmanager.": "secretsmanager"}


class JournalDamaged(Exception):
    """A complete journal line is not a record, or a record no longer applies. Nothing was imported."""


class MigrationNeedsMoto(Exception):
    """moto, which replays the journal, is not installed."""

    @classmethod
    def for_journal(cls, path: Path) -> MigrationNeedsMoto:
        return cls(f"Importing {path} needs moto: run pip install 'cuecard[migrate]' and start again "
                   "(your data dir is untouched).")


@dataclass(frozen=True)
class JournalImport:
    """What the journal held (`snapshot`), anything worth telling the user (`warnings`), and how many
    journal records were replayed (`records`) from which file (`path`)."""

    snapshot: Snapshot
    warnings: list[str] = field(default_factory=list)
    records: int = 0
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    service: str  # "dynamodb" or "secretsmanager"
    operation: str  # e.g. "PutItem"
    region: str
    params: dict[str, Any]


def journal_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / JOURNAL_NAME


def has_journal(data_dir: str | Path) -> bool:
    return journal_path(data_dir).is_file()


def read_journal(data_dir: str | Path) -> JournalImport:
    """The data dir's journal as a Snapshot. Raises JournalDamaged or MigrationNeedsMoto, never edits the file."""
    path = journal_path(data_dir)
    records, warnings = _read_records(path)
    if not records:
        return JournalImport(Snapshot(), warnings, 0, path)
    try:
        from infra.journal_replay import replay, snapshot_of  # botocore and moto: only for an old data dir
    except ModuleNotFoundError:
        raise MigrationNeedsMoto.for_journal(path) from None

    scanned, secrets = replay(path, records)
    snapshot = snapshot_of(scanned, warnings)
    for name, value in secrets.items():
        if value is None:
            warnings.append(f"The secret {name} holds no text value (SecretString); it was left out.")
        else:
            snapshot.secrets[name] = value
    return JournalImport(snapshot, warnings, len(records), path)


def summary(counts: Mapping[str, Any], source: str | Path | None = None) -> str:
    """One line: "Imported 3 prompts, 1 partial, ... and 0 job records from .cuecard/dynamodb-journal.jsonl."."""
    parts = [f"{count} {noun[:-1] if count == 1 and noun.endswith('s') else noun}" for noun, count in counts.items()]
    listing = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)
    return f"Imported {listing}" + (f" from {source}." if source is not None else ".")


# --- reading the file ----------------------------------------------------------------------------


def _read_records(path: Path) -> tuple[list[_Record], list[str]]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends in a newline
    warnings = []
    if tail:
        warnings.append(
            f"{path} ends in an incomplete record (line {len(lines) + 1}, {len(tail)} bytes, no newline): a write "
            "that was never acknowledged, left out of the import. The file was left as is."
        )
    return [_parse(path, number, line) for number, line in enumerate(lines, start=1)], warnings


def _parse(path: Path, number: int, line: bytes) -> _Record:
    def damaged(reason: str) -> JournalDamaged:
        return JournalDamaged(
            f"{path} line {number} {reason}. Nothing was imported and the file was left as is; "
            "restore it from a backup or remove that line, then start again."
        )

    try:
        record = json.loads(line)
        target, region, body = record["target"], record["region"], record["body"]
        params = json.loads(body) if body else {}
    except (ValueError, TypeError, KeyError):
        raise damaged("is not a journal record") from None
    if not (isinstance(target, str) and isinstance(region, str) and isinstance(params, dict)):
        raise damaged("is not a journal record")
    for prefix, service in _TARGET_PREFIXES.items():
        if target.startswith(prefix) and service == record.get("service", "dynamodb"):
            return _Record(number, service, target[len(prefix):], region, params)
    raise damaged(f"names an operation this import does not know ({target!r})")


