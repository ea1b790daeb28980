"""infra/eventbridge.py against botocore's Stubber: batching, retrying failed entries, error mapping."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from core.errors import PayloadTooLarge, StoreUnavailable
from core.models import DomainEvent
from infra.eventbridge import MAX_REQUEST_BYTES, EventBridgePublisher, entry_size
from infra.settings import Settings

BUS = "cuecard-events"


def make_events(count: int, *, padding: int = 0) -> list[DomainEvent]:
    return [DomainEvent("cuecard.prompts", "Prompt Published",
                        {"event_id": f"e{number}", "version": number, "note": "x" * padding})
            for number in range(count)]


@pytest.fixture
def client():
    client = boto3.session.Session().client("events", region_name="us-east-1", aws_access_key_id="test",
                                            aws_secret_access_key="test")
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def publisher(client, sleeps) -> EventBridgePublisher:
    return EventBridgePublisher(client, BUS, sleep=sleeps.append)


def ok(count: int, start: int = 0) -> dict:
    return {"FailedEntryCount": 0, "Entries": [{"EventId": f"id-{start + n}"} for n in range(count)]}


def expected_entries(events: list[DomainEvent]) -> list[dict]:
    return [{"EventBusName": BUS, "Source": event.source, "DetailType": event.detail_type,
             "Detail": json.dumps(dict(event.detail), separators=(",", ":"))} for event in events]


def test_23_events_go_out_in_three_calls_of_at_most_ten_in_order(client, publisher) -> None:
    events = make_events(23)
    for chunk in (events[0:10], events[10:20], events[20:23]):
        client.stubber.add_response("put_events", ok(len(chunk)), {"Entries": expected_entries(chunk)})
    publisher.publish(events)


def test_an_entry_is_what_eventbridge_expects(publisher) -> None:
    event = DomainEvent("cuecard.prompts", "Prompt Label Moved", {"label": "produção", "version": None})
    entry = publisher.entry(event)
    assert entry == {"EventBusName": BUS, "Source": "cuecard.prompts", "DetailType": "Prompt Label Moved",
                     "Detail": '{"label":"produção","version":null}'}
    assert entry_size(entry) == len("cuecard.prompts") + len("Prompt Label Moved") + len(entry["Detail"].encode())


def test_batches_also_stay_under_the_request_size_limit(client, publisher) -> None:
    events = make_events(5, padding=100_000)  # ~100 KB each: two fit in 256 KB, three do not
    for chunk in (events[0:2], events[2:4], events[4:5]):
        client.stubber.add_response("put_events", ok(len(chunk)), {"Entries": expected_entries(chunk)})
    publisher.publish(events)
    assert 2 * entry_size(publisher.entry(events[0])) <= MAX_REQUEST_BYTES < 3 * entry_size(publisher.entry(events[0]))


def test_an_event_too_large_on_its_own_is_refused_before_any_call(publisher) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        publisher.publish(make_events(1, padding=MAX_REQUEST_BYTES))
    assert "x" * 20 not in caught.value.message


def test_nothing_to_publish_makes_no_call(publisher) -> None:
    publisher.publish([])


def test_only_the_failed_entries_are_sent_again(client, publisher, sleeps) -> None:
    events = make_events(4)
    entries = expected_entries(events)
    client.stubber.add_response("put_events", {"FailedEntryCount": 2, "Entries": [
        {"EventId": "a"},
        {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
        {"EventId": "c"},
        {"ErrorCode": "InternalFailure", "ErrorMessage": "oops"},
    ]}, {"Entries": entries})
    client.stubber.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
        {"EventId": "b"}, {"ErrorCode": "InternalFailure", "ErrorMessage": "oops"}]},
        {"Entries": [entries[1], entries[3]]})
    client.stubber.add_response("put_events", ok(1), {"Entries": [entries[3]]})
    publisher.publish(events)
    assert len(sleeps) == 2


def test_entries_failing_every_attempt_raise_store_unavailable(client, sleeps) -> None:
    publisher = EventBridgePublisher(client, BUS, max_attempts=3, sleep=sleeps.append)
    events = make_events(2)
    entries = expected_entries(events)
    client.stubber.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
        {"EventId": "a"}, {"ErrorCode": "InternalFailure", "ErrorMessage": "detail quoted?"}]}, {"Entries": entries})
    for _ in range(2):
        client.stubber.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "oops"}]}, {"Entries": [entries[1]]})
    with pytest.raises(StoreUnavailable) as caught:
        publisher.publish(events)
    message = caught.value.message
    assert "1 of 2 events were not published after 3 attempt(s)" in message
    assert "internal error" in message
    assert len(sleeps) == 2


def test_a_non_retryable_entry_error_raises_at_once(client, publisher, sleeps) -> None:
    events = make_events(2)
    client.stubber.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
        {"EventId": "a"}, {"ErrorCode": "NotAuthorizedForSourceException", "ErrorMessage": "no"}]},
        {"Entries": expected_entries(events)})
    with pytest.raises(StoreUnavailable) as caught:
        publisher.publish(events)
    assert "may not put events with this source" in caught.value.message
    assert sleeps == []


def test_a_later_batch_is_not_sent_when_an_earlier_one_failed(client, sleeps) -> None:
    publisher = EventBridgePublisher(client, BUS, max_attempts=1, sleep=sleeps.append)
    events = make_events(12)
    client.stubber.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
        {"ErrorCode": "ThrottlingException"}, *[{"EventId": str(n)} for n in range(9)]]},
        {"Entries": expected_entries(events[:10])})
    with pytest.raises(StoreUnavailable):
        publisher.publish(events)


@pytest.mark.parametrize(("code", "phrase"), [
    ("ResourceNotFoundException", "event bus does not exist"),
    ("AccessDeniedException", "events:PutEvents"),
    ("ThrottlingException", "throttling"),
    ("SomethingNew", "event bus is unavailable"),
])
def test_a_failed_call_is_a_core_error(client, publisher, code, phrase) -> None:
    client.stubber.add_client_error("put_events", service_error_code=code, service_message="bus arn:... says no",
                                    expected_params={"Entries": ANY})
    with pytest.raises(StoreUnavailable) as caught:
        publisher.publish(make_events(1))
    assert phrase in caught.value.message
    assert "says no" not in caught.value.message


def test_from_settings_uses_the_configured_bus_and_builds_no_client_yet() -> None:
    publisher = EventBridgePublisher.from_settings(
        Settings(event_bus_name="my-bus", events_endpoint="http://127.0.0.1:9"))
    assert publisher.bus_name == "my-bus"
    assert publisher.entry(make_events(1)[0])["EventBusName"] == "my-bus"


def test_max_attempts_must_be_positive(client) -> None:
    with pytest.raises(ValueError):
        EventBridgePublisher(client, BUS, max_attempts=0)
