"""The botocore -> core.errors mapping, and how clients are configured."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from core.errors import Conflict, PayloadTooLarge, StoreUnavailable
from infra.aws_clients import MAX_ATTEMPTS, client, client_config
from infra.aws_errors import THROTTLING_CODES, translate, translated
from infra.dynamodb_client import dynamodb_client
from infra.dynamodb_table import DynamoTable
from infra.dynamodb_templates import DynamoTemplateStore


def client_error(code: str, message: str = "", **extra: object) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, **extra}, "TransactWriteItems")


def cancelled(*reasons: tuple[str, str]) -> ClientError:
    return client_error(
        "TransactionCanceledException",
        "Transaction cancelled",
        CancellationReasons=[{"Code": code, "Message": message} for code, message in reasons],
    )


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_throttling_is_store_unavailable(code: str) -> None:
    assert type(translate(client_error(code, "Rate exceeded"))) is StoreUnavailable


@pytest.mark.parametrize(
    "error, expected",
    [
        (client_error("ValidationException", "Item size has exceeded the maximum allowed size"), PayloadTooLarge),
        (client_error("ValidationException", "Item size to update has exceeded the maximum allowed size"), PayloadTooLarge),
        (cancelled(("None", ""), ("ValidationError", "Item size has exceeded the maximum allowed size")), PayloadTooLarge),
        (client_error("ValidationException", "Invalid UpdateExpression: syntax error"), StoreUnavailable),
        (cancelled(("ConditionalCheckFailed", "The conditional request failed"), ("None", "")), Conflict),
        (cancelled(("TransactionConflict", "Transaction is ongoing for the item")), Conflict),
        (cancelled(("ThrottlingError", "Throughput exceeds the current capacity")), StoreUnavailable),
        (client_error("ConditionalCheckFailedException", "The conditional request failed"), Conflict),
        (client_error("ResourceNotFoundException", "Requested resource not found"), StoreUnavailable),
        (client_error("InternalServerError", "Internal server error"), StoreUnavailable),
        (client_error("AccessDeniedException", "User arn:aws:iam::1:user/x is not authorized"), StoreUnavailable),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), StoreUnavailable),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), StoreUnavailable),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), StoreUnavailable),
    ],
)
def test_error_table(error: Exception, expected: type) -> None:
    translated_error = translate(error)
    assert type(translated_error) is expected
    assert "arn:aws" not in translated_error.message


def test_item_too_large_names_the_limit() -> None:
    error = translate(client_error("ValidationException", "Item size has exceeded the maximum allowed size"))
    assert "a template version must fit in a 400 kb dynamodb item" in error.message.lower()


def test_translated_wraps_and_chains() -> None:
    with pytest.raises(StoreUnavailable) as raised:
        with translated("get_item"):
            raise client_error("ProvisionedThroughputExceededException")
    assert isinstance(raised.value.__cause__, ClientError)


def test_a_real_oversized_write_is_payload_too_large(table: DynamoTable) -> None:
    with pytest.raises(PayloadTooLarge):
        with translated("put_item"):
            table.run(table.put({"pk": {"S": "x"}, "sk": {"S": "y"}, "blob": {"S": "z" * 420_000}}))


def test_an_unreachable_store_is_unavailable() -> None:
    from core.models import Kind
    from core.references import parse_reference

    store = DynamoTemplateStore(DynamoTable(dynamodb_client("us-east-1", "http://127.0.0.1:9"), "cuecard"))
    with pytest.raises(StoreUnavailable):
        store.resolve(Kind.PROMPT, parse_reference("pp-x-000000"))


def test_clients_use_standard_retries_and_timeouts() -> None:
    config = client_config()
    assert config.retries == {"mode": "standard", "max_attempts": MAX_ATTEMPTS}
    assert config.tcp_keepalive is True
    assert 0 < config.connect_timeout <= 5 and 0 < config.read_timeout <= 10

    others = [client(service, "eu-west-1", "http://127.0.0.1:9") for service in ("secretsmanager", "events", "sqs")]
    for made in (dynamodb_client("eu-west-1", "http://127.0.0.1:9"), *others):
        assert made.meta.config.retries["mode"] == "standard"
        assert made.meta.config.tcp_keepalive is True
        assert made.meta.region_name == "eu-west-1"
        credentials = made._request_signer._credentials  # dummy credentials for a local endpoint
        assert credentials.access_key == "cuecard-local"
