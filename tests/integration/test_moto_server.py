"""tests/moto_server.py answers a retried TransactWriteItems (same ClientRequestToken) as DynamoDB does:
with the first call's outcome, not by applying it twice. botocore reuses the token when it retries."""

from __future__ import annotations

from infra.dynamodb_client import dynamodb_client
from infra.settings import Settings


def test_a_transaction_retried_with_its_token_is_not_applied_twice(settings: Settings) -> None:
    client = dynamodb_client(settings.region, settings.dynamodb_endpoint)
    put = {"Put": {"TableName": settings.table_name, "ConditionExpression": "attribute_not_exists(pk)",
                   "Item": {"pk": {"S": "retry#probe"}, "sk": {"S": "PROBE"}}}}
    client.transact_write_items(TransactItems=[put], ClientRequestToken="retry-probe-token")
    client.transact_write_items(TransactItems=[put], ClientRequestToken="retry-probe-token")  # a retry: same answer
    other = put | {"Put": {**put["Put"], "Item": {"pk": {"S": "retry#other"}, "sk": {"S": "PROBE"}}}}
    client.transact_write_items(TransactItems=[other], ClientRequestToken="another-token")
    assert client.get_item(TableName=settings.table_name, Key=put["Put"]["Item"])["Item"]
