"""The heavy half of infra/journal_import.py: the replay into moto in process, and the scan back into
a Snapshot. Imported only when a data dir holds a journal, so `cuecard serve` loads no botocore otherwise."""

from __future__ import annotations

import base64
import os
from contextlib import contextmanager
from dataclasses import replace
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
from infra.journal_import import JournalDamaged, MigrationNeedsMoto, _Record
from infra.stores import Snapshot, StoredJob, StoredVersion

_TRANSACTION_WRITES = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}
_ENTITY_PREFIXES = ("prompt#", "partial#")
_JOB_SK = "JOB"  # infra/dynamodb_job_ledger.py
_FAKE_CREDENTIAL = "cuecard-journal-import"


# --- replaying into moto -------------------------------------------------------------------------


def replay(path: Path, records: list[_Record], *, split_transactions: bool = True
            ) -> tuple[list[items.Item], dict[str, str | None]]:
    """Replays `records` into moto in process; every item of every table, and secret name -> SecretString."""
    try:
        import moto.dynamodb.models  # noqa: F401 - fails here, not mid-replay, if their extras are missing
        import moto.secretsmanager.models  # noqa: F401
        from moto import mock_aws
    except ImportError:
        raise MigrationNeedsMoto.for_journal(path) from None
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


def snapshot_of(scanned: list[items.Item], warnings: list[str]) -> Snapshot:
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
            actor = items.actor_of(item)
            if actor is not None:
                snapshot.virtual_key_actors[binding.id] = actor
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
