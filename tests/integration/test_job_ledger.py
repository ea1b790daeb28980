"""DynamoJobLedger against moto's DynamoDB: claims are atomic, leases expire, results are kept."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from core.errors import Conflict, StoreUnavailable
from core.models import Kind
from infra.dynamodb_client import dynamodb_client
from infra.dynamodb_job_ledger import DynamoJobLedger, job_key
from infra.dynamodb_table import DynamoTable

MESSAGE = {"job_id": "j-1", "status": "succeeded", "mode": "render", "prompt_id": "p", "prompt_version": 2,
           "result": {"success": True, "data": {"messages": [{"role": "user", "content": "héllo"}], "n": 1.5}}}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(table: DynamoTable, clock: Clock) -> DynamoJobLedger:
    return DynamoJobLedger(table, ttl_seconds=3600, clock=clock)


def test_claim_complete_and_replay(ledger) -> None:
    claim = ledger.claim("j-1", "fp", lease_seconds=60)
    assert claim.state == "claimed" and claim.token
    assert ledger.claim("j-1", "fp", lease_seconds=60).state == "running"
    ledger.complete("j-1", claim.token, MESSAGE)
    done = ledger.claim("j-1", "fp", lease_seconds=60)
    assert done.state == "done" and done.message == MESSAGE and done.fingerprint == "fp"


def test_the_item_has_the_ttl_attribute_and_stays_out_of_the_indexes(ledger, table, templates, clock) -> None:
    claim = ledger.claim("j-1", "fp", lease_seconds=60)
    ledger.complete("j-1", claim.token, MESSAGE)
    item = table.get(job_key("j-1"))
    assert item["pk"] == {"S": "job#j-1"} and item["sk"] == {"S": "JOB"}
    assert int(item["expires_at"]["N"]) == int(clock.now) + 3600
    assert item["job_status"] == {"S": "succeeded"} and "claim_token" not in item and "lease_until" not in item
    assert "entity_type" not in item and "alias" not in item
    assert templates.list_entities(Kind.PROMPT) == []


def test_an_abandoned_claim_is_taken_over_after_its_lease(ledger, clock) -> None:
    first = ledger.claim("j-1", "fp", lease_seconds=60)
    clock.now += 61
    second = ledger.claim("j-1", "fp", lease_seconds=60)
    assert second.state == "claimed" and second.token != first.token
    with pytest.raises(Conflict):
        ledger.complete("j-1", first.token, MESSAGE)  # the first delivery lost its claim
    ledger.complete("j-1", second.token, MESSAGE)


def test_an_expired_result_counts_as_absent(ledger, clock) -> None:
    claim = ledger.claim("j-1", "fp", lease_seconds=60)
    ledger.complete("j-1", claim.token, MESSAGE)
    clock.now += 3601
    assert ledger.claim("j-1", "fp", lease_seconds=60).state == "claimed"


def test_release_frees_only_its_own_claim(ledger) -> None:
    claim = ledger.claim("j-1", "fp", lease_seconds=60)
    ledger.release("j-1", "someone-else")
    assert ledger.claim("j-1", "fp", lease_seconds=60).state == "running"
    ledger.release("j-1", claim.token)
    assert ledger.claim("j-1", "fp", lease_seconds=60).state == "claimed"
    ledger.release("never-claimed", "x")  # nothing to give up: no error


def test_concurrent_claims_have_one_winner(settings, clock) -> None:
    ledgers = [DynamoJobLedger(DynamoTable.from_settings(settings), clock=clock) for _ in range(8)]
    results: list[str] = []
    barrier = threading.Barrier(len(ledgers))

    def claim(ledger: DynamoJobLedger) -> None:
        barrier.wait()
        results.append(ledger.claim("j-race", "fp", lease_seconds=60).state)

    threads = [threading.Thread(target=claim, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["claimed"] + ["running"] * 7


def test_a_missing_table_is_store_unavailable(table) -> None:
    ledger = DynamoJobLedger(DynamoTable(table.client, "no-such-table"))
    with pytest.raises(StoreUnavailable):
        ledger.claim("j-1", "fp", lease_seconds=60)


def test_from_settings_uses_the_job_idempotency_ttl(settings, table, clock) -> None:
    ledger = DynamoJobLedger.from_settings(dataclasses.replace(settings, job_idempotency_ttl=120))
    claim = ledger.claim("j-1", "fp", lease_seconds=60)
    item = table.get(job_key("j-1"))
    assert claim.state == "claimed" and 0 < int(item["expires_at"]["N"]) - time.time() <= 120


def test_a_condition_failure_without_the_old_item_reads_it(settings) -> None:
    """Not every DynamoDB-compatible store answers ReturnValuesOnConditionCheckFailure: the ledger then reads."""
    from botocore.stub import ANY, Stubber

    client = dynamodb_client(settings.region, settings.dynamodb_endpoint)
    ledger = DynamoJobLedger(DynamoTable(client, "t"))
    with Stubber(client) as stub:
        stub.add_client_error("put_item", "ConditionalCheckFailedException", expected_params=None)
        stub.add_response("get_item", {"Item": {**job_key("j-1"), "job_state": {"S": "running"},
                                                "fingerprint": {"S": "fp"}}},
                          {"TableName": "t", "Key": job_key("j-1"), "ConsistentRead": True})
        assert ledger.claim("j-1", "fp", lease_seconds=60).state == "running"
        stub.add_client_error("put_item", "ConditionalCheckFailedException")
        stub.add_response("get_item", {}, {"TableName": "t", "Key": ANY, "ConsistentRead": True})
        stub.add_response("put_item", {})  # gone in between: claimed on the next attempt
        assert ledger.claim("j-1", "fp", lease_seconds=60).state == "claimed"
