"""An embedded DynamoDB-compatible endpoint for `cuecard serve` and tests: moto's server in a thread.

It serves DynamoDB and Secrets Manager (the provider keys of virtual keys), nothing else. moto keeps
state in memory and is not atomic under threads, so its WSGI app is wrapped: every call runs under
one lock (conditional writes are atomic, journal order = apply order), and with a `data_dir` each
successful mutating call is appended to a journal and fsync'ed before the response leaves. On
start the journal is replayed, then compacted into a snapshot. moto's state is per process, so one
LocalDynamoDB may run per process.

The journal (mode 0600) holds Secrets Manager calls as sent, so it holds provider keys in plain
text: that is the local stand-in for Secrets Manager. A compaction keeps only live secrets.

    python -m infra.local_dynamodb --data-dir DIR [--port 0] [--table NAME]   # prints the endpoint URL
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

from infra import moto_transactions
from infra.journal import Journal

log = logging.getLogger(__name__)

JOURNAL_NAME = "dynamodb-journal.jsonl"
DYNAMODB_TARGET = "DynamoDB_20120810."
STREAMS_TARGET = "DynamoDBStreams_20120810."
SECRETS_TARGET = "secretsmanager."
SECRETS_SERVICE = "secretsmanager"
SERVED_TARGETS = (DYNAMODB_TARGET, STREAMS_TARGET, SECRETS_TARGET)
READ_ONLY_OPERATIONS = frozenset(
    {
        "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "ListTables",
        "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource", "DescribeEndpoints",
        "DescribeLimits", "ListBackups", "DescribeBackup", "ListGlobalTables", "DescribeGlobalTable",
        "DescribeKinesisStreamingDestination", "DescribeStream", "GetRecords", "GetShardIterator", "ListStreams",
    }
)  # everything else counts as mutating: journaled, which is safe even if it changed nothing
SECRETS_READ_ONLY_OPERATIONS = frozenset(
    {
        "GetSecretValue", "BatchGetSecretValue", "DescribeSecret", "ListSecrets", "ListSecretVersionIds",
        "GetRandomPassword", "GetResourcePolicy", "ValidateResourcePolicy",
    }
)
_CONTENT_TYPES = {"dynamodb": "application/x-amz-json-1.0", SECRETS_SERVICE: "application/x-amz-json-1.1"}
_REGION_IN_AUTH = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/")
_BATCH = 25

_running_lock = threading.Lock()
_running: LocalDynamoDB | None = None


class SerialisedDynamoDB:
    """WSGI middleware: DynamoDB and Secrets Manager calls only, one at a time, successful mutations journaled.

    A journal record is `{"target", "region", "body"}`, plus `"service": "secretsmanager"` for a
    Secrets Manager call (records without `service` are DynamoDB's).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], journal: Journal | None, default_region: str) -> None:
        self._app = app
        self._journal = journal
        self._default_region = default_region
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from werkzeug.wsgi import get_input_stream

        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(SERVED_TARGETS):
            start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0")])
            return [b'{"__type":"UnknownOperationException","message":"only DynamoDB and Secrets Manager are served here"}']
        body = get_input_stream(environ).read()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        region = _region_of(environ) or self._default_region
        operation = target.rpartition(".")[2]
        secrets = target.startswith(SECRETS_TARGET)
        mutating = operation not in (SECRETS_READ_ONLY_OPERATIONS if secrets else READ_ONLY_OPERATIONS)
        with self._lock:
            status, headers, payload = self._run(environ)
            if mutating and self._journal is not None and status.startswith("2"):
                record = {"target": target, "region": region, "body": body.decode("utf-8")}
                if secrets:
                    record["service"] = SECRETS_SERVICE
                self._journal.append(record)
        start_response(status, headers)
        return [payload]

    def call(self, target: str, region: str, body: bytes, service: str = "dynamodb") -> tuple[str, bytes]:
        """Runs one request in-process (replay, snapshot) without journaling it."""
        from werkzeug.test import EnvironBuilder

        builder = EnvironBuilder(
            method="POST",
            path="/",
            base_url="http://127.0.0.1/",
            headers={
                "X-Amz-Target": target,
                "Content-Type": _CONTENT_TYPES[service],
                "Authorization": (
                    f"AWS4-HMAC-SHA256 Credential=cuecard-local/20240101/{region}/{service}/aws4_request, "
                    "SignedHeaders=host;x-amz-target, Signature=0"
                ),
            },
            data=body,
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        with self._lock:
            status, _, payload = self._run(environ)
        return status, payload

    def _run(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return chunks.append

        result = self._app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
        return captured["status"], captured["headers"], b"".join(chunks)


class LocalDynamoDB:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, data_dir: str | Path | None = None, region: str = "us-east-1"
    ) -> None:
        self._host = host
        self._port = port
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._region = region
        self._journal: Journal | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalDynamoDB is not started")
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def journal_path(self) -> Path | None:
        return self._data_dir / JOURNAL_NAME if self._data_dir else None

    def start(self) -> LocalDynamoDB:
        global _running
        with _running_lock:
            if _running is not None:
                raise RuntimeError("a LocalDynamoDB is already running in this process (moto state is per process)")
            _running = self
        try:
            self._start()
        except BaseException:
            self._release()
            raise
        return self

    def _start(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        moto_transactions.install()
        _reset_moto_dynamodb()
        _reset_moto_secretsmanager()
        dispatcher = DomainDispatcherApplication(create_backend_app)
        if self.journal_path is not None:
            self._journal = Journal(self.journal_path)
            self._restore(SerialisedDynamoDB(dispatcher, None, self._region), self._journal)
            self._journal.open()
        app = SerialisedDynamoDB(dispatcher, self._journal, self._region)

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._server = make_server(self._host, self._port, app, threaded=True, request_handler=QuietHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-dynamodb", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._journal is not None:
            self._journal.close()
        self._server = self._thread = self._journal = None
        self._release()

    def _release(self) -> None:
        global _running
        with _running_lock:
            if _running is self:
                _running = None

    def __enter__(self) -> LocalDynamoDB:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _restore(self, app: SerialisedDynamoDB, journal: Journal) -> None:
        """Replays the journal, then rewrites it as a snapshot if that is shorter or drops a stale secret."""
        records = journal.read()
        for number, record in enumerate(records, start=1):
            service = record.get("service", "dynamodb")
            status, payload = app.call(record["target"], record["region"], record["body"].encode("utf-8"), service)
            if not status.startswith("2"):
                raise RuntimeError(f"{journal.path} record {number} no longer applies ({status}): {payload[:200]!r}")
        if records:
            regions = sorted({record["region"] for record in records if "service" not in record})
            secret_regions = sorted({record["region"] for record in records if record.get("service") == SECRETS_SERVICE})
            snapshot = [record for region in regions for record in _snapshot(app, region)]
            snapshot += [record for region in secret_regions for record in _secrets_snapshot(app, region)]
            if len(snapshot) < len(records) or _secret_records(records) != _secret_records(snapshot):
                journal.rewrite(snapshot)  # also whenever an old or deleted secret value would stay on disk
        log.info("local DynamoDB restored %d journal records from %s", len(records), journal.path)


def _region_of(environ: dict[str, Any]) -> str | None:
    match = _REGION_IN_AUTH.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else None


def _reset_moto_dynamodb() -> None:
    """A fresh in-memory backend, so a replay starts from nothing."""
    from moto.dynamodb.models import dynamodb_backends

    for account_backends in list(dynamodb_backends.values()):
        account_backends.reset()


def _reset_moto_secretsmanager() -> None:
    from moto.secretsmanager.models import secretsmanager_backends

    for account_backends in list(secretsmanager_backends.values()):
        account_backends.reset()


def _secrets_snapshot(app: SerialisedDynamoDB, region: str) -> list[dict[str, Any]]:
    """Journal records that rebuild the live secrets of `region` (current values only).

    Secrets scheduled for deletion are left out: locally their value leaves the disk at the next
    compaction rather than after the recovery window.
    """

    def call(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        status, payload = app.call(SECRETS_TARGET + operation, region, json.dumps(request).encode("utf-8"),
                                   SECRETS_SERVICE)
        if not status.startswith("2"):
            raise RuntimeError(f"snapshot {operation} failed ({status})")  # no payload: it may quote a secret
        return json.loads(payload or b"{}")

    records: list[dict[str, Any]] = []
    listing: dict[str, Any] = {}
    while True:
        page = call("ListSecrets", listing)
        for secret in page.get("SecretList", []):
            if secret.get("DeletedDate"):
                continue
            value = call("GetSecretValue", {"SecretId": secret["ARN"]})
            request: dict[str, Any] = {"Name": secret["Name"], "ClientRequestToken": value["VersionId"]}
            for field in ("SecretString", "SecretBinary"):
                if field in value:
                    request[field] = value[field]
            if secret.get("Description"):
                request["Description"] = secret["Description"]
            if secret.get("Tags"):
                request["Tags"] = secret["Tags"]
            records.append({"target": SECRETS_TARGET + "CreateSecret", "region": region, "body": json.dumps(request),
                            "service": SECRETS_SERVICE})
        if not page.get("NextToken"):
            return records
        listing["NextToken"] = page["NextToken"]


def _secret_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in records if record.get("service") == SECRETS_SERVICE]


def _snapshot(app: SerialisedDynamoDB, region: str) -> list[dict[str, Any]]:
    """Journal records that rebuild every table of `region`: CreateTable, TTL, then items in batches."""

    def call(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        status, payload = app.call(DYNAMODB_TARGET + operation, region, json.dumps(request).encode("utf-8"))
        if not status.startswith("2"):
            raise RuntimeError(f"snapshot {operation} failed ({status}): {payload[:200]!r}")
        return json.loads(payload or b"{}")

    def record(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        return {"target": DYNAMODB_TARGET + operation, "region": region, "body": json.dumps(request)}

    records: list[dict[str, Any]] = []
    for table_name in _paged(call, "ListTables", {}, "TableNames", "LastEvaluatedTableName", "ExclusiveStartTableName"):
        table = call("DescribeTable", {"TableName": table_name})["Table"]
        records.append(record("CreateTable", _create_table_request(table)))
        ttl = call("DescribeTimeToLive", {"TableName": table_name}).get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") == "ENABLED":
            spec = {"Enabled": True, "AttributeName": ttl["AttributeName"]}
            records.append(record("UpdateTimeToLive", {"TableName": table_name, "TimeToLiveSpecification": spec}))
        scan = {"TableName": table_name, "ConsistentRead": True}
        batch: list[dict[str, Any]] = []
        for item in _paged(call, "Scan", scan, "Items", "LastEvaluatedKey", "ExclusiveStartKey"):
            batch.append({"PutRequest": {"Item": item}})
            if len(batch) == _BATCH:
                records.append(record("BatchWriteItem", {"RequestItems": {table_name: batch}}))
                batch = []
        if batch:
            records.append(record("BatchWriteItem", {"RequestItems": {table_name: batch}}))
    return records


def _paged(call: Callable[[str, dict[str, Any]], dict[str, Any]], operation: str, request: dict[str, Any],
           field: str, next_field: str, start_field: str) -> Iterable[Any]:
    request = dict(request)
    while True:
        page = call(operation, request)
        yield from page.get(field, [])
        if not page.get(next_field):
            return
        request[start_field] = page[next_field]


def _create_table_request(table: dict[str, Any]) -> dict[str, Any]:
    billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    request: dict[str, Any] = {
        "TableName": table["TableName"],
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": table["AttributeDefinitions"],
        "BillingMode": billing,
    }

    def throughput(description: dict[str, Any]) -> dict[str, Any]:
        given = description.get("ProvisionedThroughput", {})
        return {"ReadCapacityUnits": given.get("ReadCapacityUnits") or 1,
                "WriteCapacityUnits": given.get("WriteCapacityUnits") or 1}

    if billing == "PROVISIONED":
        request["ProvisionedThroughput"] = throughput(table)
    for field in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = []
        for index in table.get(field, []):
            copy = {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"], "Projection": index["Projection"]}
            if field == "GlobalSecondaryIndexes" and billing == "PROVISIONED":
                copy["ProvisionedThroughput"] = throughput(index)
            indexes.append(copy)
        if indexes:
            request[field] = indexes
    stream = table.get("StreamSpecification")
    if stream and stream.get("StreamEnabled"):
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    return request


def ensure_table(endpoint_url: str | None, table_name: str, region: str = "us-east-1") -> bool:
    """Creates `table_name` from template.yaml's definition unless it exists; True if created."""
    from infra.dynamodb_client import dynamodb_client
    from infra.table_definition import create_table_kwargs

    client = dynamodb_client(region, endpoint_url)
    try:
        client.describe_table(TableName=table_name)
        return False
    except client.exceptions.ResourceNotFoundException:
        pass
    try:
        client.create_table(**create_table_kwargs(table_name))
    except client.exceptions.ResourceInUseException:
        return False
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the embedded DynamoDB endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--data-dir", default=None, help="persist to this directory (default: memory only)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--table", default=None, help="create this table from template.yaml if missing")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "cuecard-local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "cuecard-local-secret")
    server = LocalDynamoDB(args.host, args.port, data_dir=args.data_dir, region=args.region).start()
    if args.table:
        ensure_table(server.endpoint_url, args.table, args.region)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    print(server.endpoint_url, flush=True)
    stopped.wait()
    server.stop()


if __name__ == "__main__":
    main()
