"""handlers/change_events.py: the sample stream batch and real writes' stream records through the real handler."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from fastapi.testclient import TestClient

from core.auth import mint_key
from core.change_events import DETAIL_FIELDS
from core.models import Scope
from core.service import utc_now
from handlers import change_events
from handlers.change_events import build_handler
from infra.stream_records import decode_image, stored_change
from tests.handlers.stream_sample import ROLES, SAMPLE, TEMPLATE_V1, TEMPLATE_V2, capture, role_of
from tests.stream_capture import StreamTap
from tests.unit.event_fakes import RecordingPublisher

SAMPLE_ACTOR = "api-key:a0089912dc639fb5 (ci-deployer)"
SUPPORT_REPLY = "8d55fe4c-15c2-41cb-92d6-e1fe13b1b61c"
LEGACY_GREETING = "94245300-6404-4b31-9429-e8cdea095d82"


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text())


def sequence_numbers(event: dict[str, Any]) -> list[str]:
    return [record["dynamodb"]["SequenceNumber"] for record in event["Records"]]


def details(publisher: RecordingPublisher) -> list[tuple[str, dict]]:
    return [(event.detail_type, dict(event.detail)) for event in publisher.events]


# --- the sample event (what `sam local invoke ChangeEventsFunction -e ...` takes) -----------------


def test_the_sample_batch_publishes_exactly_these_events() -> None:
    publisher = RecordingPublisher()
    assert build_handler(publisher)(sample(), None) == {"batchItemFailures": []}
    assert {event.source for event in publisher.events} == {"cuecard.prompts"}
    assert details(publisher) == [
        ("Prompt Version Created", {
            "event_id": "acc3f960-bc13-5a80-aaa5-d999d8af684d", "kind": "prompt", "prompt_id": SUPPORT_REPLY,
            "slug": "support-reply", "version": 2, "previous_version": 1, "label": None,
            "version_id": "31cc64e7-29a1-44aa-a2b4-47d9e5d2928d", "revision": None, "actor": SAMPLE_ACTOR,
            "at": "2026-11-22T22:02:34.409Z"}),
        ("Prompt Published", {
            "event_id": "99441aeb-a8f6-5b31-9d06-0743fd63b81b", "kind": "prompt", "prompt_id": SUPPORT_REPLY,
            "slug": "support-reply", "version": 2, "previous_version": 1, "label": None, "version_id": None,
            "revision": 4, "actor": SAMPLE_ACTOR, "at": "2026-11-22T22:02:34.427Z"}),
        ("Prompt Label Moved", {
            "event_id": "cba96c6e-304c-559b-b58e-8bf5fbee0c54", "kind": "prompt", "prompt_id": SUPPORT_REPLY,
            "slug": "support-reply", "version": 2, "previous_version": 1, "label": "production", "version_id": None,
            "revision": 5, "actor": SAMPLE_ACTOR, "at": "2026-11-22T22:02:34.566Z"}),
        ("Prompt Deleted", {
            "event_id": "11f52734-445a-53ed-9278-124cf8092343", "kind": "prompt", "prompt_id": LEGACY_GREETING,
            "slug": "legacy-greeting", "version": None, "previous_version": 1, "label": None, "version_id": None,
            "revision": 2, "actor": SAMPLE_ACTOR, "at": "2026-11-22T22:02:34.596Z"}),
    ]
    assert publisher.calls == 4  # one PutEvents per record with events; the pointer record publishes nothing
    text = json.dumps([detail for _, detail in details(publisher)])
    for content in ("support agent", "{{product}}", "{{question}}", "Hello {{name}}", "gpt-4o-mini", "temperature"):
        assert content not in text


def test_the_sample_matches_what_the_store_writes_today(settings) -> None:
    """The sample's records have the layout of a fresh capture of the same writes (regenerate: stream_sample.py)."""
    fresh = {role_of(record): record for record in capture(settings)["Records"]}
    stored = {role_of(record): record for record in sample()["Records"]}
    assert set(stored) == set(fresh) == set(ROLES)
    for role in ROLES:
        ours, theirs = stored[role], fresh[role]
        assert set(ours) == set(theirs), role
        assert set(ours["dynamodb"]) == set(theirs["dynamodb"]), role
        assert ours["eventName"] == theirs["eventName"], role
        for part in ("Keys", "NewImage", "OldImage"):
            assert shape(ours["dynamodb"].get(part)) == shape(theirs["dynamodb"].get(part)), (role, part)
    for record in sample()["Records"]:
        for part in ("NewImage", "OldImage"):
            decode_image(record["dynamodb"].get(part))  # every attribute decodes with the store's codecs
        stored_change(record)
    versions = [record for record in sample()["Records"] if role_of(record) == "version-created"]
    assert decode_image(versions[0]["dynamodb"]["NewImage"])["string"] == TEMPLATE_V2


def shape(value: Any) -> Any:
    """Attribute names and DynamoDB type tags, recursively; values left out (ids and times differ)."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("S", "N", "BOOL", "NULL", "SS", "NS", "B"):
            return next(iter(value))
        return {name: shape(item) for name, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return value


def test_the_deployed_entry_point_publishes_the_sample_to_the_configured_bus(monkeypatch) -> None:
    recorded = RecordingPublisher()
    build_handler(recorded)(sample(), None)
    client = boto3.session.Session().client("events", region_name="us-east-1", aws_access_key_id="test",
                                            aws_secret_access_key="test")
    stubber = Stubber(client)
    for batch in recorded.batches:
        entries = [{"EventBusName": "cuecard-test-bus", "Source": event.source, "DetailType": event.detail_type,
                    "Detail": json.dumps(dict(event.detail), separators=(",", ":"))} for event in batch]
        stubber.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "x"}] * len(batch)},
                             {"Entries": entries})
    built = []
    monkeypatch.setenv("CUECARD_EVENT_BUS", "cuecard-test-bus")
    monkeypatch.setattr("infra.aws_clients.client", lambda *args: built.append(args) or client)
    monkeypatch.setattr(change_events, "_handler", None)
    with stubber:
        assert change_events.handler(sample(), None) == {"batchItemFailures": []}
        stubber.assert_no_pending_responses()
    assert len(built) == 1  # one client, built on first publish


# --- failures: the failed record and every later one are reported --------------------------------


def test_a_failed_publish_reports_that_record_and_all_later_ones() -> None:
    event = sample()
    numbers = sequence_numbers(event)
    publisher = RecordingPublisher(fail_on={2})  # the second record's "Prompt Published"
    response = build_handler(publisher)(event, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": number} for number in numbers[1:]]}
    assert [event.detail_type for event in publisher.events] == ["Prompt Version Created"]
    assert publisher.calls == 2  # later records were not tried

    # Lambda retries from the first reported record: the rest is published, with the same event ids.
    retry = {"Records": [record for record in event["Records"] if record["dynamodb"]["SequenceNumber"] in numbers[1:]]}
    healthy = RecordingPublisher()
    assert build_handler(healthy)(retry, None) == {"batchItemFailures": []}
    everything = RecordingPublisher()
    build_handler(everything)(sample(), None)
    assert publisher.events + healthy.events == everything.events


def test_a_batch_that_fails_entirely_is_reported_not_raised() -> None:
    event = sample()
    response = build_handler(RecordingPublisher(fail_on={1}))(event, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": number} for number in sequence_numbers(event)]}


def test_an_unreadable_record_is_reported_with_the_later_ones() -> None:
    event = sample()
    broken = copy.deepcopy(event)
    del broken["Records"][2]["dynamodb"]["Keys"]
    publisher = RecordingPublisher()
    response = build_handler(publisher)(broken, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": n} for n in sequence_numbers(event)[2:]]}
    assert [event.detail_type for event in publisher.events] == ["Prompt Version Created", "Prompt Published"]


def test_an_empty_batch() -> None:
    assert build_handler(RecordingPublisher())({"Records": []}, None) == {"batchItemFailures": []}


# --- end to end: real changes through the HTTP app, their real stream records, the handler ------


def test_changes_made_through_the_api_become_events_with_the_keys_actor(settings) -> None:
    from handlers.container import build_container

    container = build_container(settings)
    minted = mint_key("release-bot", frozenset({Scope.WRITE}), utc_now())
    container.stores.api_keys.put_key(minted.record)
    actor = f"api-key:{minted.record.key_id} (release-bot)"
    client = TestClient(container.asgi_app())
    headers = {"x-portkey-api-key": minted.key}

    def call(method: str, path: str, body: Any = None) -> dict:
        response = client.request(method, f"/v1{path}", headers=headers, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    tap = StreamTap(settings.table_name)
    prompt = call("POST", "/prompts", {"name": "Support", "slug": "support", "string": TEMPLATE_V1, "parameters": {}})
    partial = call("POST", "/prompts/partials", {"name": "Footer", "string": "Thanks, {{team}}"})
    call("PUT", f"/prompts/{prompt['id']}", {"string": TEMPLATE_V2, "parameters": {"temperature": 0.1}})
    call("PUT", f"/prompts/{prompt['id']}/versions/2", {"label_id": "production"})
    call("PUT", f"/prompts/{prompt['id']}/versions/1", {"label_id": "staging"})
    call("PUT", f"/prompts/{prompt['id']}/makeDefault", {"version": 2})
    call("PUT", f"/prompts/{prompt['id']}/versions/1", {"label_id": "production"})
    call("PUT", f"/prompts/partials/{partial['id']}", {"string": "Cheers, {{team}}"})
    call("DELETE", f"/prompts/partials/{partial['id']}")
    event = tap.event()

    publisher = RecordingPublisher()
    assert build_handler(publisher)(event, None) == {"batchItemFailures": []}
    got = [(e.detail_type, e.detail["slug"], e.detail["version"], e.detail["previous_version"], e.detail["label"])
           for e in publisher.events]
    footer = partial["slug"]
    assert got == [
        ("Prompt Created", "support", 1, None, None),
        ("Prompt Published", "support", 1, None, None),
        ("Prompt Version Created", "support", 1, None, None),
        ("Partial Created", footer, 1, None, None),
        ("Partial Published", footer, 1, None, None),
        ("Partial Version Created", footer, 1, None, None),
        ("Prompt Version Created", "support", 2, 1, None),
        ("Prompt Label Moved", "support", 2, None, "production"),
        ("Prompt Label Moved", "support", 1, None, "staging"),
        ("Prompt Published", "support", 2, 1, None),
        ("Prompt Label Moved", "support", 1, 2, "production"),
        ("Partial Version Created", footer, 2, 1, None),
        ("Partial Deleted", footer, None, 1, None),
    ]
    assert {e.detail["actor"] for e in publisher.events} == {actor}
    assert {e.detail["prompt_id"] for e in publisher.events} == {prompt["id"], partial["id"]}
    assert all(tuple(e.detail) == DETAIL_FIELDS for e in publisher.events)
    revisions = [e.detail["revision"] for e in publisher.events if e.detail["slug"] == "support" and e.detail["revision"]]
    assert revisions == sorted(revisions)
    text = json.dumps([dict(e.detail) for e in publisher.events])
    for content in ("support agent", "{{product}}", "Thanks", "Cheers", "temperature"):
        assert content not in text

    redelivered = RecordingPublisher()
    build_handler(redelivered)(event, None)
    assert [e.detail["event_id"] for e in redelivered.events] == [e.detail["event_id"] for e in publisher.events]
    assert len({e.detail["event_id"] for e in publisher.events}) == len(publisher.events)


def test_the_handler_is_importable_as_the_template_names_it() -> None:
    import importlib

    module = importlib.import_module("handlers.change_events")
    assert callable(module.handler)


@pytest.fixture(autouse=True)
def _no_cached_default_handler(monkeypatch):
    monkeypatch.setattr(change_events, "_handler", None)
