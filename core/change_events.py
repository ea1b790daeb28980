"""Change events: what one stored change to a prompt or partial means, as `cuecard.prompts` DomainEvents.

infra decodes a DynamoDB stream record into a StoredChange (a HEAD before/after, or a new version);
`change_events` turns it into zero or more events; `ChangeEventRelay` publishes them. Pure: no I/O
here, and nothing a template contains ever reaches an event (they fan out to Slack and the like).

| detail-type | when | `version` | `previous_version` |
|---|---|---|---|
| `Prompt Created` | a new prompt (its version 1) | 1 | null |
| `Prompt Version Created` | any new version, 1 included | the new version | the one before it, null for 1 |
| `Prompt Published` | the published version changed, creation included | published now | published before (null on creation) |
| `Prompt Label Moved` | one per label whose version changed | labelled now (null: label removed) | labelled before (null: newly set) |
| `Prompt Deleted` | the prompt was deleted | null | published at deletion |

Partials emit the same with `Partial` in place of `Prompt`. Name, collection and metadata changes,
and the HEAD's own `latest_version` bump (covered by `... Version Created`), emit nothing.
docs/events.md is the consumer-facing schema.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Sequence

from core.models import DomainEvent, Entity, Kind, TemplateVersion
from core.ports import EventPublisher

SOURCE = "cuecard.prompts"
UNKNOWN_ACTOR = "unknown"  # items written before actors were recorded, or removed outside cuecard
CREATED, VERSION_CREATED, PUBLISHED, LABEL_MOVED, DELETED = (
    "Created", "Version Created", "Published", "Label Moved", "Deleted")
ACTIONS: tuple[str, ...] = (CREATED, VERSION_CREATED, PUBLISHED, LABEL_MOVED, DELETED)
DETAIL_FIELDS: tuple[str, ...] = (
    "event_id", "kind", "prompt_id", "slug", "version", "previous_version", "label", "version_id", "revision",
    "actor", "at",
)
# A fixed namespace, so the same stream record always yields the same event ids (consumers dedupe on them).
_EVENT_ID_NAMESPACE = uuid.UUID("6f0d7c1e-3b0a-5c59-9a57-2f3c1c0e7d41")


def detail_type(kind: Kind, action: str) -> str:
    """`Prompt Published`, `Partial Version Created`, ..."""
    return f"{kind.value.capitalize()} {action}"


DETAIL_TYPES: tuple[str, ...] = tuple(detail_type(kind, action) for kind in Kind for action in ACTIONS)


@dataclass(frozen=True, slots=True)
class HeadChange:
    """A prompt's or partial's HEAD before and after one write (None: the item was absent).

    `record_id` identifies the change (the stream record's eventID); `actor` and `revision` come from
    the new HEAD; `recorded_at` is when the change was captured (ISO 8601), used when the write did
    not move `updated_at` itself.
    """

    record_id: str
    old: Entity | None
    new: Entity | None
    actor: str | None = None
    revision: int | None = None
    recorded_at: str | None = None


@dataclass(frozen=True, slots=True)
class VersionAdded:
    """A new immutable version (a V# item written)."""

    record_id: str
    version: TemplateVersion
    actor: str | None = None


StoredChange = HeadChange | VersionAdded


def change_events(change: StoredChange) -> list[DomainEvent]:
    """The events one stored change stands for, in a stable order; [] when it means nothing to subscribers."""
    if isinstance(change, VersionAdded):
        return [_version_created(change)]
    return _head_events(change)


def _version_created(change: VersionAdded) -> DomainEvent:
    version = change.version
    return _event(
        change.record_id, version.kind, VERSION_CREATED,
        prompt_id=version.entity_id, slug=version.slug, version=version.version,
        previous_version=version.version - 1 if version.version > 1 else None,
        version_id=version.version_id, actor=change.actor, at=version.created_at,
    )


def _head_events(change: HeadChange) -> list[DomainEvent]:
    old, new = change.old, change.new
    if old is not None and old.deleted:
        return []  # already deleted: later writes (finishing a delete) are not news
    if new is None or new.deleted:
        if old is None:
            return []
        return [_head_event(change, old, DELETED, version=None, previous_version=old.published_version)]
    events = []
    if old is None:
        events.append(_head_event(change, new, CREATED, version=new.latest_version, previous_version=None))
    previous_published = old.published_version if old is not None else None
    if new.published_version != previous_published:
        events.append(_head_event(change, new, PUBLISHED, version=new.published_version,
                                  previous_version=previous_published))
    old_labels = dict(old.labels) if old is not None else {}
    new_labels = dict(new.labels)
    for label in sorted(set(old_labels) | set(new_labels)):
        if old_labels.get(label) != new_labels.get(label):
            events.append(_head_event(change, new, LABEL_MOVED, version=new_labels.get(label),
                                      previous_version=old_labels.get(label), label=label))
    return events


def _head_event(change: HeadChange, entity: Entity, action: str, *, version: int | None,
                previous_version: int | None, label: str | None = None) -> DomainEvent:
    return _event(
        change.record_id, entity.kind, action,
        prompt_id=entity.id, slug=entity.slug, version=version, previous_version=previous_version, label=label,
        revision=change.revision, actor=change.actor, at=_head_time(change),
    )


def _head_time(change: HeadChange) -> str:
    """When the change was made: the new `updated_at` if this write set it, else when it was captured."""
    old, new = change.old, change.new
    if new is not None and (old is None or new.updated_at != old.updated_at):
        return new.updated_at
    if change.recorded_at:
        return change.recorded_at
    return (new or old).updated_at  # type: ignore[union-attr]  # one of them is set, or there is no event


def _event(record_id: str, kind: Kind, action: str, *, prompt_id: str, slug: str, version: int | None,
           previous_version: int | None, actor: str | None, at: str, label: str | None = None,
           version_id: str | None = None, revision: int | None = None) -> DomainEvent:
    name = detail_type(kind, action)
    detail: dict[str, Any] = {
        "event_id": event_id(record_id, name, label),
        "kind": kind.value,
        "prompt_id": prompt_id,
        "slug": slug,
        "version": version,
        "previous_version": previous_version,
        "label": label,
        "version_id": version_id,
        "revision": revision,
        "actor": actor or UNKNOWN_ACTOR,
        "at": at,
    }
    return DomainEvent(source=SOURCE, detail_type=name, detail=detail)


def event_id(record_id: str, name: str, label: str | None = None) -> str:
    """A UUID that is the same every time the same stream record is processed (for consumers' dedupe)."""
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{record_id}\n{name}\n{label or ''}"))


class ChangeEventRelay:
    """Publishes what a stored change means. Raises what the publisher raises, so the caller can retry."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    def relay(self, change: StoredChange | None) -> Sequence[DomainEvent]:
        events = change_events(change) if change is not None else []
        if events:
            self._publisher.publish(events)
        return events
