"""DynamoTable: the one table on one low-level client, and what every DynamoDB adapter does with it.

The adapters (dynamodb_templates, dynamodb_labels, dynamodb_api_keys, dynamodb_virtual_keys,
dynamodb_job_ledger) each take a DynamoTable; infra/dynamodb_stores.py builds one and hands it to all
of them, so they share the client, its connection pool and its call counter.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

from botocore.exceptions import ClientError

from infra.aws_errors import cancellation_codes, error_code, translate
from infra.call_counter import CallCounter
from infra.dynamo_items import Item
from infra.settings import Settings

CONDITION_FAILED = "ConditionalCheckFailed"
RETRYABLE_REASONS = frozenset({CONDITION_FAILED, "TransactionConflict"})
TRUE, FALSE, ONE = {"BOOL": True}, {"BOOL": False}, {"N": "1"}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DynamoTable:
    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.calls = CallCounter().attach(client)  # every call through this client: the read budget's meter

    @classmethod
    def from_settings(cls, settings: Settings, *, max_pool_connections: int = 10) -> DynamoTable:
        from infra.dynamodb_client import dynamodb_client

        client = dynamodb_client(settings.region, settings.dynamodb_endpoint, max_pool_connections=max_pool_connections)
        return cls(client, settings.table_name)

    def get(self, key: Item) -> Item | None:
        """One consistent GetItem."""
        return self.client.get_item(TableName=self.name, Key=key, ConsistentRead=True).get("Item")

    def query(self, **kwargs: Any) -> Iterator[Item]:
        """Every item a Query finds, page after page."""
        request = {"TableName": self.name, **kwargs}
        while True:
            page = self.client.query(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def transact_or_reasons(self, transaction: list[dict[str, Any]]) -> list[str]:
        """Runs a transaction; [] on success, else the per-item reason codes of a cancellation caused by a
        condition or a conflict. Any other failure is raised as a core error."""
        try:
            self.client.transact_write_items(TransactItems=transaction)
            return []
        except ClientError as exc:
            codes = cancellation_codes(exc) if error_code(exc) == "TransactionCanceledException" else []
            if not RETRYABLE_REASONS & set(codes):
                raise translate(exc) from exc
            return codes

    # --- operations: for a transaction, or `run` alone ------------------------------------------

    def run(self, operation: dict[str, Any], **options: Any) -> dict[str, Any]:
        """Runs one operation built by put, update or delete on its own, outside a transaction."""
        [(kind, request)] = operation.items()
        call = {"Put": self.client.put_item, "Update": self.client.update_item, "Delete": self.client.delete_item}[kind]
        return call(**request, **options)

    def put(self, item: Item, condition: str | None = None, *, values: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"Put": self._operation({"Item": item}, condition, None, values)}

    def update(
        self,
        key: Item,
        expression: str,
        condition: str | None = None,
        *,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {"Update": self._operation({"Key": key, "UpdateExpression": expression}, condition, names, values)}

    def delete(
        self,
        key: Item,
        condition: str | None = None,
        *,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {"Delete": self._operation({"Key": key}, condition, names, values)}

    def _operation(
        self, body: dict[str, Any], condition: str | None, names: dict[str, str] | None, values: dict[str, Any] | None
    ) -> dict[str, Any]:
        operation = {"TableName": self.name, **body}
        if condition:
            operation["ConditionExpression"] = condition
        if names:
            operation["ExpressionAttributeNames"] = names
        if values:
            operation["ExpressionAttributeValues"] = values
        return operation
