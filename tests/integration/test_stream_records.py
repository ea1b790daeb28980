"""infra/stream_records.py on the stream records the templates's real writes produce (moto's DynamoDB)."""

from __future__ import annotations

import copy

import pytest

from core.actor import current_actor
from core.auth import mint_key
from core.change_events import HeadChange, VersionAdded
from core.models import Kind, Scope
from core.service import utc_now
from infra.stream_records import StreamRecordError, decode_image, stored_change
from tests.integration.builders import append, create, new_label
from tests.stream_capture import StreamTap

ACTOR = "api-key:0123456789abcdef (ci)"


@pytest.fixture
def actor():
    token = current_actor.set(ACTOR)
    yield ACTOR
    current_actor.reset(token)


def sk_of(record: dict) -> str:
    return record["dynamodb"]["Keys"]["sk"]["S"]


def test_creating_a_prompt_decodes_to_a_head_and_a_version_the_rest_is_ignored(templates, table, actor) -> None:
    tap = StreamTap(table.name)
    entity = create(templates, string="Hi {{name}}", model="m")
    records = tap.records()
    assert [(record["eventName"], sk_of(record).split("#")[0]) for record in records] == [
        ("INSERT", "HEAD"), ("INSERT", "GUARD"), ("INSERT", "V"), ("INSERT", "PTR"), ("INSERT", "PTR"),
        ("INSERT", "VID")]
    changes = [stored_change(record) for record in records]
    head, _, version, *rest = changes
    assert rest == [None, None, None] and changes[1] is None
    assert isinstance(head, HeadChange) and isinstance(version, VersionAdded)
    assert head.old is None and head.new.id == entity.id and head.new.published_version == 1
    assert (head.actor, head.revision, head.record_id) == (ACTOR, 1, records[0]["eventID"])
    assert head.recorded_at and head.recorded_at.endswith("Z")
    assert (version.version.version, version.version.string, version.actor) == (1, "Hi {{name}}", ACTOR)


def test_publish_label_delete_and_hidden_versions(templates, table, actor) -> None:
    entity = create(templates)
    append(templates, Kind.PROMPT, entity.id, "v2")
    tap = StreamTap(table.name)
    templates.publish(Kind.PROMPT, entity.id, 2)
    templates.set_label(entity.id, 2, "staging")
    templates.delete(Kind.PROMPT, entity.id)
    decoded = [(record, stored_change(record)) for record in tap.records()]
    heads = [change for _, change in decoded if isinstance(change, HeadChange)]
    assert [(h.old.published_version, h.new.published_version) for h in heads][0] == (1, 2)
    assert (dict(heads[1].old.labels), dict(heads[1].new.labels)) == ({}, {"staging": 2})
    assert (heads[2].old.deleted, heads[2].new.deleted) == (False, True)
    others = [(record["eventName"], sk_of(record)) for record, change in decoded if change is None]
    assert ("MODIFY", "V#0000000001") in others  # delete hides versions: a MODIFY, not news
    assert ("REMOVE", "PTR#published") in others
    assert not [change for _, change in decoded if isinstance(change, VersionAdded)]


def test_labels_api_keys_and_other_items_decode_to_nothing(table, labels, api_keys) -> None:
    tap = StreamTap(table.name)
    labels.create_label(new_label("canary"))
    api_keys.put_key(mint_key("ci", frozenset({Scope.RENDER}), utc_now()).record)
    records = tap.records()
    assert records and all(stored_change(record) is None for record in records)
    foreign = copy.deepcopy(records[0])
    foreign["dynamodb"]["Keys"] = {"pk": {"S": "job#42"}, "sk": {"S": "RESULT"}}
    assert stored_change(foreign) is None


def test_images_decode_with_the_stores_codecs(templates, table) -> None:
    tap = StreamTap(table.name)
    create(templates, parameters={"temperature": 0.5, "max_tokens": 10})
    version_record = next(record for record in tap.records() if sk_of(record).startswith("V#"))
    image = decode_image(version_record["dynamodb"]["NewImage"])
    assert image["parameters"] == {"temperature": 0.5, "max_tokens": 10}
    assert image["version"] == 1 and image["actor"] == "system"
    assert decode_image(None) is None


def test_records_without_images_or_keys_are_errors(templates, table) -> None:
    tap = StreamTap(table.name)
    entity = create(templates)
    templates.publish(Kind.PROMPT, entity.id, 1)
    head_modify = next(record for record in tap.records() if record["eventName"] == "MODIFY" and sk_of(record) == "HEAD")
    keys_only = copy.deepcopy(head_modify)
    del keys_only["dynamodb"]["OldImage"], keys_only["dynamodb"]["NewImage"]
    with pytest.raises(StreamRecordError, match="NEW_AND_OLD_IMAGES"):
        stored_change(keys_only)
    no_keys = copy.deepcopy(head_modify)
    del no_keys["dynamodb"]["Keys"]
    with pytest.raises(StreamRecordError, match="pk"):
        stored_change(no_keys)
    unnamed = copy.deepcopy(head_modify)
    unnamed["eventName"] = "UPSERT"
    with pytest.raises(StreamRecordError, match="eventName"):
        stored_change(unnamed)


@pytest.mark.parametrize(("value", "expected"), [
    (1795381200, "2026-11-22T21:00:00.000Z"),
    (1795381200.25, "2026-11-22T21:00:00.250Z"),
    ("1795381200", "2026-11-22T21:00:00.000Z"),
    (None, None),
    ("soon", None),
])
def test_capture_time_is_iso_utc(templates, table, value, expected) -> None:
    tap = StreamTap(table.name)
    entity = create(templates)
    templates.publish(Kind.PROMPT, entity.id, 1)
    record = next(record for record in tap.records() if record["eventName"] == "MODIFY" and sk_of(record) == "HEAD")
    if value is None:
        del record["dynamodb"]["ApproximateCreationDateTime"]
    else:
        record["dynamodb"]["ApproximateCreationDateTime"] = value
    assert stored_change(record).recorded_at == expected


def test_external_ids_ride_on_the_head_their_claims_decode_to_nothing_and_no_event_comes_of_them(
        templates, table, actor) -> None:
    from core.change_events import change_events
    from tests.integration.builders import draft, new_entity

    tap = StreamTap(table.name)
    entity = new_entity(external_ids=("pmpt_stream_a",))
    templates.create(Kind.PROMPT, entity, draft())
    templates.update_entity(Kind.PROMPT, entity.id, {"external_ids": ["pmpt_stream_b"]})
    templates.delete(Kind.PROMPT, "pmpt_stream_b")
    decoded = [(record, stored_change(record)) for record in tap.records()]

    heads = [change for _, change in decoded if isinstance(change, HeadChange)]
    assert [(h.old and h.old.external_ids, h.new.external_ids) for h in heads] == [
        (None, ("pmpt_stream_a",)), (("pmpt_stream_a",), ("pmpt_stream_b",)), (("pmpt_stream_b",), ())]
    assert change_events(heads[1]) == []  # an external-id change alone is no news
    assert [event.detail_type for event in change_events(heads[2])] == ["Prompt Deleted"]
    claims = [(record["eventName"], record["dynamodb"]["Keys"]["pk"]["S"]) for record, change in decoded
              if record["dynamodb"]["Keys"]["pk"]["S"].startswith("slug#")]
    assert ("INSERT", "slug#prompt#pmpt_stream_a") in claims and ("REMOVE", "slug#prompt#pmpt_stream_a") in claims
    assert ("REMOVE", "slug#prompt#pmpt_stream_b") in claims
    assert all(change is None for record, change in decoded if record["dynamodb"]["Keys"]["pk"]["S"].startswith("slug#"))
