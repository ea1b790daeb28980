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

import base64
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping
from unittest.mock import patch

import botocore.session
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

from core.models import Entity
from infra import dynamo_items as items
from infra.attribute_codec import from_attr
from infra.dynamodb_virtual_keys import VIRTUAL_KEY_SK, binding_from_item
from infra.stores import Snapshot, StoredJob, StoredVersion

JOURNAL_NAME = "dynamodb-journal.jsonl"
_TARGET_PREFIXES = {"DynamoDB_20120810.": "dynamodb", "secretsmanager.": "secretsmanager"}
_TRANSACTION_WRITES = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}
_ENTITY_PREFIXES = ("prompt#", "partial#")
_JOB_SK = "JOB"  # infra/dynamodb_job_ledger.py
_FAKE_CREDENTIAL = "cuecard-journal-import"


class JournalDamaged(Exception):
    """A complete journal line is not a record, or a record no longer applies. Nothing was imported."""


class MigrationNeedsMoto(Exception):
    """moto, which replays the journal, is not installed."""


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
    scanned, secrets = _replay(path, records)
    snapshot = _snapshot(scanned, warnings)
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


# --- replaying into moto -------------------------------------------------------------------------


def _replay(path: Path, records: list[_Record], *, split_transactions: bool = True
            ) -> tuple[list[items.Item], dict[str, str | None]]:
    """Replays `records` into moto in process; every item of every table, and secret name -> SecretString."""
    try:
        from moto import mock_aws
        import moto.dynamodb.models  # noqa: F401 - fails here, not mid-replay, if their extras are missing
        import moto.secretsmanager.models  # noqa: F401
    except ImportError:
        raise MigrationNeedsMoto(
            f"Importing {path} needs moto: run pip install 'cuecard[migrate]' and start again "
            "(your data dir is untouched)."
        ) from None
    with _without_user_aws_config(), mock_aws():
        clients = _Clients()
        _check_empty(clients, records)
        for record in records:
            _apply(path, clients, record, split_transactions)
        regions: dict[str, set[str]] = {}
        for record in records:
            regions.setdefault(record.service, set()).add(record.region)
        scanned = [item for region in sorted(regions.get("dynamodb", ()))
                   for item in _scan_all(clients.get("dynamodb", region))]
        secrets: dict[str, str | None] = {}
        for region in sorted(regions.get("secretsmanager", ())):
            secrets.update(_live_secrets(clients.get("secretsmanager", region)))
    return scanned, secrets


@contextmanager
def _without_user_aws_config() -> Iterator[None]:
    """Hides the user's AWS profile and config files (an unknown AWS_PROFILE breaks moto's own sessions)."""
    with patch.dict(os.environ, {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}):
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(name, None)
        yield


class _Clients:
    """Clients inside the mock, one per service and region, on fake credentials and AWS's own endpoints."""

    def __init__(self) -> None:
        self._session = botocore.session.Session()
        self._config = Config(retries={"mode": "standard", "total_max_attempts": 1})
        self._clients: dict[tuple[str, str], Any] = {}

    def get(self, service: str, region: str) -> Any:
        client = self._clients.get((service, region))
        if client is None:
            client = self._session.create_client(
                service, region_name=region, endpoint_url=f"https://{service}.{region}.amazonaws.com",
                aws_access_key_id=_FAKE_CREDENTIAL, aws_secret_access_key=_FAKE_CREDENTIAL, config=self._config)
            self._clients[(service, region)] = client
        return client


def _check_empty(clients: _Clients, records: list[_Record]) -> None:
    for region in {record.region for record in records if record.service == "dynamodb"}:
        if clients.get("dynamodb", region).list_tables().get("TableNames"):
            raise RuntimeError("moto already holds tables in this process (another mock is active); "
                               "import the journal where moto is not otherwise in use")


def _apply(path: Path, clients: _Clients, record: _Record, split_transactions: bool) -> None:
    client = clients.get(record.service, record.region)
    try:
        if split_transactions and record.operation == "TransactWriteItems":
            calls = [(_TRANSACTION_WRITES[kind], request) for entry in record.params["TransactItems"]
                     for kind, request in entry.items() if kind in _TRANSACTION_WRITES]
        else:
            calls = [(xform_name(record.operation), record.params)]
        for method, params in calls:
            operation = client.meta.service_model.operation_model(client.meta.method_to_api_mapping[method])
            getattr(client, method)(**_from_wire(operation.input_shape, params))
    except Exception as exc:  # noqa: BLE001 - whatever moto or botocore refuse, the record does not apply
        # Neither the request nor the error text: a Secrets Manager record carries a provider key.
        reason = exc.response["Error"].get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        raise JournalDamaged(
            f"{path} line {record.line} ({record.service} {record.operation}) no longer applies ({reason}). "
            "Nothing was imported and the file was left as is."
        ) from None


def _from_wire(shape: Any, value: Any) -> Any:
    """A JSON-protocol request body as botocore params: the same, except blobs are base64 on the wire."""
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        return {name: _from_wire(shape.members.get(name), item) for name, item in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_from_wire(shape.member, item) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {name: _from_wire(shape.value, item) for name, item in value.items()}
    if shape.type_name == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def _pages(call: Any, request: dict[str, Any], field_: str, next_field: str, start_field: str) -> Iterator[Any]:
    request = dict(request)
    while True:
        page = call(**request)
        yield from page.get(field_, [])
        if not page.get(next_field):
            return
        request[start_field] = page[next_field]


def _scan_all(client: Any) -> Iterator[items.Item]:
    for table in _pages(client.list_tables, {}, "TableNames", "LastEvaluatedTableName", "ExclusiveStartTableName"):
        yield from _pages(client.scan, {"TableName": table, "ConsistentRead": True}, "Items", "LastEvaluatedKey",
                          "ExclusiveStartKey")


def _live_secrets(client: Any) -> Iterator[tuple[str, str | None]]:
    """(name, SecretString) of every secret not scheduled for deletion."""
    for secret in _pages(client.list_secrets, {}, "SecretList", "NextToken", "NextToken"):
        if not secret.get("DeletedDate"):
            yield secret["Name"], client.get_secret_value(SecretId=secret["ARN"]).get("SecretString")


# --- items -> domain records ---------------------------------------------------------------------


def _snapshot(scanned: list[items.Item], warnings: list[str]) -> Snapshot:
    snapshot = Snapshot()
    heads, labels, unknown = [], [], 0
    for item in scanned:
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if sk == items.HEAD_SK and pk.startswith(_ENTITY_PREFIXES):
            heads.append(item)
        elif sk.startswith(items.VERSION_PREFIX):
            snapshot.versions.append(StoredVersion(items.version_from_item(item), items.is_deleted(item),
                                                   items.actor_of(item)))
        elif sk == items.LABEL_SK:
            labels.append(item)
            snapshot.labels.append(items.label_from_item(item))
        elif sk == items.API_KEY_SK:
            snapshot.api_keys.append(items.api_key_from_item(item))
        elif sk == VIRTUAL_KEY_SK:
            binding = binding_from_item(item)
            snapshot.virtual_keys.append(binding)
            if items.actor_of(item) is not None:
                snapshot.virtual_key_actors[binding.id] = items.actor_of(item)
        elif sk == _JOB_SK:
            snapshot.jobs.append(_job_from_item(item))
        elif not sk.startswith((items.POINTER_PREFIX, items.VERSION_ID_PREFIX)) and sk != items.GUARD_SK:
            unknown += 1  # pointers, version ids and guards are derived from the rest
    if unknown:
        warnings.append(f"{unknown} table item(s) of an unknown kind were left out of the import.")
    renames = _pending_renames(labels)
    for head in heads:
        entity = items.entity_from_item(head)
        entity = _finish_renames(entity, renames.get(head["pk"]["S"], {}), warnings)
        snapshot.entities.append(entity)
        actor = items.actor_of(head)
        if actor is not None:
            snapshot.entity_actors[(entity.kind.value, entity.id)] = actor
    snapshot.entities.sort(key=lambda entity: (entity.kind.value, entity.created_at, entity.id))
    snapshot.versions.sort(key=lambda stored: (stored.version.kind.value, stored.version.entity_id,
                                               stored.version.version))
    snapshot.labels.sort(key=lambda label: (label.created_at, label.id))
    snapshot.api_keys.sort(key=lambda record: (record.created_at, record.key_id))
    snapshot.virtual_keys.sort(key=lambda binding: (binding.created_at, binding.id))
    snapshot.jobs.sort(key=lambda job: job.job_id)
    return snapshot


def _pending_renames(labels: list[items.Item]) -> dict[str, dict[str, str]]:
    """Entity pk -> {old label name: current name} for renames the old store had not finished moving."""
    renames: dict[str, dict[str, str]] = {}
    for label in labels:
        for old in sorted(items.string_set(label, "pending_renames")):
            for pk in items.string_set(label, "used_by"):
                renames.setdefault(pk, {})[old] = label["name"]["S"]
    return renames


def _finish_renames(entity: Entity, renames: Mapping[str, str], warnings: list[str]) -> Entity:
    """Moves label pointers kept under an old name to the current one; one already under the new name wins."""
    if not renames.keys() & entity.labels.keys():
        return entity
    labels = {name: version for name, version in entity.labels.items() if name not in renames}
    for old, version in sorted(entity.labels.items()):
        if old in renames:
            labels.setdefault(renames[old], version)
            warnings.append(f"{entity.kind.value} {entity.slug}: label {old} was being renamed to {renames[old]}; "
                            "its pointer is imported under the new name.")
    return replace(entity, labels=labels)


def _job_from_item(item: Mapping[str, Any]) -> StoredJob:
    def get(name: str) -> Any:
        attr = item.get(name)
        return None if attr is None else from_attr(attr)

    lease_until, expires_at = get("lease_until"), get("expires_at")
    return StoredJob(
        job_id=get("job_id") or item["pk"]["S"].removeprefix("job#"),
        state=get("job_state"),
        fingerprint=get("fingerprint"),
        expires_at=float(expires_at or 0),
        claim_token=get("claim_token"),
        lease_until=None if lease_until is None else float(lease_until),
        result=get("result"),
        status=get("job_status"),
    )
