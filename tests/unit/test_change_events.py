"""core/change_events.py: which events a stored change stands for. Pure: domain records in, events out."""

from __future__ import annotations

import dataclasses
import json

import pytest

from core.change_events import (
    DETAIL_FIELDS,
    DETAIL_TYPES,
    SOURCE,
    ChangeEventRelay,
    HeadChange,
    VersionAdded,
    change_events,
    event_id,
)
from core.models import Entity, Kind, TemplateVersion
from tests.unit.event_fakes import RecordingPublisher

PROMPT_ID = "0b9f6a4e-8d1c-4a55-9a63-3e2f1f6d7c10"
ACTOR = "api-key:4f3a2b1c0d9e8f7a (ci)"
SECRET_TEMPLATE = "You are the agent for {{product}}; internal codename BLUEJAY"


def head(**changes) -> Entity:
    base = Entity(kind=Kind.PROMPT, id=PROMPT_ID, slug="support-reply", name="Support reply",
                  created_at="2026-01-01T00:00:00.000Z", updated_at="2026-01-01T00:00:00.000Z",
                  latest_version=1, published_version=1)
    return dataclasses.replace(base, **changes)


def change(old: Entity | None, new: Entity | None, **fields) -> HeadChange:
    fields.setdefault("record_id", "rec-1")
    fields.setdefault("actor", ACTOR)
    fields.setdefault("revision", 7)
    return HeadChange(old=old, new=new, **fields)


def version(number: int = 2, kind: Kind = Kind.PROMPT) -> TemplateVersion:
    return TemplateVersion(kind=kind, entity_id=PROMPT_ID, slug="support-reply", version=number,
                           version_id=f"vid-{number}", string=SECRET_TEMPLATE, created_at="2026-01-02T03:04:05.678Z",
                           model="gpt-4o-mini", parameters={"temperature": 0.2})


def summary(events) -> list[tuple]:
    return [(e.detail_type, e.detail["version"], e.detail["previous_version"], e.detail["label"]) for e in events]


def test_a_new_prompt_is_created_and_published_at_version_1() -> None:
    new = head(updated_at="2026-01-01T00:00:00.000Z")
    events = change_events(change(None, new, revision=1))
    assert summary(events) == [("Prompt Created", 1, None, None), ("Prompt Published", 1, None, None)]
    first = events[0]
    assert first.source == SOURCE == "cuecard.prompts"
    assert first.detail == {
        "event_id": event_id("rec-1", "Prompt Created"),
        "kind": "prompt",
        "prompt_id": PROMPT_ID,
        "slug": "support-reply",
        "version": 1,
        "previous_version": None,
        "label": None,
        "version_id": None,
        "revision": 1,
        "actor": ACTOR,
        "at": "2026-01-01T00:00:00.000Z",
    }


def test_a_new_version_carries_its_number_id_author_and_time_but_no_content() -> None:
    events = change_events(VersionAdded(record_id="rec-9", version=version(3), actor=ACTOR))
    assert len(events) == 1
    detail = events[0].detail
    assert events[0].detail_type == "Prompt Version Created"
    assert (detail["version"], detail["previous_version"], detail["version_id"]) == (3, 2, "vid-3")
    assert (detail["actor"], detail["at"], detail["revision"], detail["label"]) == (
        ACTOR, "2026-01-02T03:04:05.678Z", None, None)
    text = json.dumps(detail)
    for leaked in ("BLUEJAY", "{{product}}", "gpt-4o-mini", "temperature"):
        assert leaked not in text


def test_version_1_has_no_previous_version() -> None:
    detail = change_events(VersionAdded(record_id="r", version=version(1)))[0].detail
    assert (detail["version"], detail["previous_version"]) == (1, None)


def test_publishing_emits_published_with_the_previous_version() -> None:
    old = head(latest_version=3, published_version=1)
    new = head(latest_version=3, published_version=3, updated_at="2026-02-01T00:00:00.000Z")
    events = change_events(change(old, new))
    assert summary(events) == [("Prompt Published", 3, 1, None)]
    assert events[0].detail["at"] == "2026-02-01T00:00:00.000Z"


def test_appending_a_version_bumps_the_head_but_emits_nothing_there() -> None:
    old = head(latest_version=1)
    new = head(latest_version=2, updated_at="2026-02-01T00:00:00.000Z")
    assert change_events(change(old, new)) == []


def test_name_and_metadata_changes_emit_nothing() -> None:
    old = head()
    new = head(name="Renamed", metadata={"team": "support"}, updated_at="2026-02-01T00:00:00.000Z")
    assert change_events(change(old, new)) == []


def test_label_set_moved_and_removed_one_event_per_changed_label() -> None:
    old = head(labels={"production": 1, "staging": 2, "development": 2})
    new = head(labels={"production": 2, "staging": 2, "canary": 3}, updated_at="2026-02-01T00:00:00.000Z")
    events = change_events(change(old, new))
    assert summary(events) == [
        ("Prompt Label Moved", 3, None, "canary"),
        ("Prompt Label Moved", None, 2, "development"),  # removed
        ("Prompt Label Moved", 2, 1, "production"),
    ]
    assert len({event.detail["event_id"] for event in events}) == 3


def test_publish_and_label_in_one_write_give_both_in_a_stable_order() -> None:
    old = head(latest_version=2, labels={"production": 1})
    new = head(latest_version=2, published_version=2, labels={"production": 2})
    assert summary(change_events(change(old, new))) == [
        ("Prompt Published", 2, 1, None), ("Prompt Label Moved", 2, 1, "production")]


def test_delete_emits_deleted_only_with_the_version_that_was_published() -> None:
    old = head(latest_version=4, published_version=3, labels={"production": 3})
    new = head(latest_version=4, published_version=3, labels={"production": 3}, deleted=True,
               updated_at="2026-03-01T00:00:00.000Z")
    events = change_events(change(old, new))
    assert summary(events) == [("Prompt Deleted", None, 3, None)]
    assert events[0].detail["at"] == "2026-03-01T00:00:00.000Z"
    assert events[0].detail["actor"] == ACTOR


def test_writes_after_a_delete_and_a_removed_head_item() -> None:
    gone = head(deleted=True)
    assert change_events(change(gone, dataclasses.replace(gone, labels={}))) == []
    removed = change_events(change(head(published_version=2), None, actor=None, revision=None))
    assert summary(removed) == [("Prompt Deleted", None, 2, None)]
    assert removed[0].detail["actor"] == "unknown"
    assert change_events(change(None, None)) == []


def test_partials_use_partial_detail_types() -> None:
    partial = head(kind=Kind.PARTIAL, slug="footer")
    created = change_events(change(None, partial))
    assert [event.detail_type for event in created] == ["Partial Created", "Partial Published"]
    assert created[0].detail["kind"] == "partial"
    added = change_events(VersionAdded(record_id="r", version=version(2, Kind.PARTIAL)))
    assert added[0].detail_type == "Partial Version Created"
    deleted = change_events(change(partial, dataclasses.replace(partial, deleted=True)))
    assert deleted[0].detail_type == "Partial Deleted"


def test_time_falls_back_to_the_capture_time_when_updated_at_did_not_move() -> None:
    old = head(labels={"old-name": 1})
    new = head(labels={"new-name": 1})  # a label rename moves pointers without touching updated_at
    events = change_events(change(old, new, recorded_at="2026-04-01T10:00:00.000Z"))
    assert {event.detail["at"] for event in events} == {"2026-04-01T10:00:00.000Z"}
    assert {event.detail["at"] for event in change_events(change(old, new))} == {"2026-01-01T00:00:00.000Z"}


def test_event_ids_are_stable_per_record_and_distinct_across_records() -> None:
    old, new = head(labels={"production": 1}), head(published_version=2, labels={"production": 2})
    first = [event.detail["event_id"] for event in change_events(change(old, new, record_id="A"))]
    again = [event.detail["event_id"] for event in change_events(change(old, new, record_id="A"))]
    other = [event.detail["event_id"] for event in change_events(change(old, new, record_id="B"))]
    assert first == again
    assert len(set(first)) == 2 and not set(first) & set(other)


def test_every_event_has_exactly_the_documented_fields_and_a_known_type() -> None:
    changes = [
        change(None, head()),
        change(head(labels={"a": 1}), head(published_version=2, labels={"b": 1})),
        change(head(), head(deleted=True)),
        VersionAdded(record_id="r", version=version()),
    ]
    for item in changes:
        for event in change_events(item):
            assert tuple(event.detail) == DETAIL_FIELDS
            assert event.detail_type in DETAIL_TYPES
            json.dumps(event.detail)  # JSON-able as it is


def test_detail_types() -> None:
    assert DETAIL_TYPES == (
        "Prompt Created", "Prompt Version Created", "Prompt Published", "Prompt Label Moved", "Prompt Deleted",
        "Partial Created", "Partial Version Created", "Partial Published", "Partial Label Moved", "Partial Deleted",
    )


def test_relay_publishes_what_a_change_means_and_nothing_for_the_rest() -> None:
    publisher = RecordingPublisher()
    relay = ChangeEventRelay(publisher)
    assert relay.relay(None) == []
    assert relay.relay(change(head(), head(updated_at="2026-05-05T00:00:00.000Z"))) == []
    assert publisher.calls == 0
    events = relay.relay(change(None, head()))
    assert publisher.batches == [list(events)] and len(events) == 2


def test_relay_lets_publisher_errors_through() -> None:
    from core.errors import StoreUnavailable

    relay = ChangeEventRelay(RecordingPublisher(fail_on={1}))
    with pytest.raises(StoreUnavailable):
        relay.relay(change(None, head()))
