"""The table stream of moto's DynamoDB, read as Lambda would receive it.

The server is moto running in this test process, and moto keeps a stream shard per table
with streams enabled (template.yaml enables NEW_AND_OLD_IMAGES): one record per item written, also
inside transactions. `StreamTap` reads the records appended since it was opened and reshapes them
into Lambda's DynamoDB stream event records, so tests feed the change-events handler exactly what
the store's real writes produce.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
STREAM_LABEL = "2026-11-22T20:59:59.000"


def _table(table_name: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    for regions in dynamodb_backends.values():
        for backend in regions.values():
            if table_name in backend.tables:
                return backend.tables[table_name]
    raise LookupError(f"no table {table_name} in moto's DynamoDB")


def stream_arn(table_name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table_name}/stream/{STREAM_LABEL}"


def lambda_record(raw: dict[str, Any], table_name: str) -> dict[str, Any]:
    """moto's stream record in the shape of a Lambda event record (epoch-seconds creation time, ARN)."""
    record = copy.deepcopy(raw)
    stream = record["dynamodb"]
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        moment = created if created.tzinfo else created.replace(tzinfo=timezone.utc)
        stream["ApproximateCreationDateTime"] = int(moment.timestamp())
    record["eventVersion"] = "1.1"
    record["eventSourceARN"] = stream_arn(table_name)
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record["eventVersion"],
        "eventSource": record["eventSource"],
        "awsRegion": record["awsRegion"],
        "dynamodb": {name: stream[name] for name in (
            "ApproximateCreationDateTime", "Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes",
            "StreamViewType") if name in stream},
        "eventSourceARN": record["eventSourceARN"],
    }


class StreamTap:
    """The table's stream records written after this tap was opened."""

    def __init__(self, table_name: str) -> None:
        self._table_name = table_name
        shard = _table(table_name).stream_shard
        if shard is None:
            raise LookupError(f"table {table_name} has no stream; template.yaml should enable NEW_AND_OLD_IMAGES")
        self._start = len(shard.items)

    def records(self) -> list[dict[str, Any]]:
        shard = _table(self._table_name).stream_shard
        return [lambda_record(item.to_json(), self._table_name) for item in shard.items[self._start:]]

    def event(self) -> dict[str, Any]:
        """The records so far as one Lambda event, and moves the tap past them."""
        records = self.records()
        self._start += len(records)
        return {"Records": records}
