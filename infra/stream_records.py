"""DynamoDB stream records of the prompts table -> core.change_events.StoredChange.

A Lambda stream record carries the item's old and new images in DynamoDB JSON (the stream's view
type must be NEW_AND_OLD_IMAGES). They are decoded with the same codecs the store writes with
(infra/dynamo_items.py), so an event always reads what the DynamoDB template store wrote. Only two kinds of items
mean something to subscribers: a prompt's or partial's HEAD, and a newly inserted V# version item.
Pointer, version-id, guard, label, API key, virtual key and any other items (jobs, idempotency
records) decode to None.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from core.change_events import HeadChange, StoredChange, VersionAdded
from core.models import Kind
from infra import dynamo_items as items
from infra.attribute_codec import from_attr

_ENTITY_PREFIXES = tuple(f"{kind.value}#" for kind in Kind)


class StreamRecordError(ValueError):
    """A stream record that cannot be read: not from a NEW_AND_OLD_IMAGES stream, or not this table's layout."""


def decode_image(image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An item image in DynamoDB JSON as plain Python values (None stays None)."""
    if image is None:
        return None
    return {name: from_attr(value) for name, value in image.items()}


def stored_change(record: Mapping[str, Any]) -> StoredChange | None:
    """What a Lambda DynamoDB stream record (one of `event["Records"]`) changed, or None if nothing relevant."""
    stream = record.get("dynamodb") or {}
    keys = stream.get("Keys") or {}
    pk = _string_key(keys, "pk")
    sk = _string_key(keys, "sk")
    if not pk.startswith(_ENTITY_PREFIXES):
        return None
    event_name = record.get("eventName")
    record_id = str(record.get("eventID") or "")
    if not record_id:
        raise StreamRecordError("the stream record has no eventID")
    old, new = stream.get("OldImage"), stream.get("NewImage")
    if sk == items.HEAD_SK:
        _require_images(event_name, old, new)
        return HeadChange(
            record_id=record_id,
            old=items.entity_from_item(old) if old else None,
            new=items.entity_from_item(new) if new else None,
            actor=items.actor_of(new) if new else None,
            revision=items.revision_of(new) if new else None,
            recorded_at=_recorded_at(stream.get("ApproximateCreationDateTime")),
        )
    if sk.startswith(items.VERSION_PREFIX) and event_name == "INSERT":
        _require_images(event_name, old, new)
        return VersionAdded(record_id=record_id, version=items.version_from_item(new), actor=items.actor_of(new))
    return None


def _string_key(keys: Mapping[str, Any], name: str) -> str:
    value = keys.get(name)
    if not isinstance(value, Mapping) or not isinstance(value.get("S"), str):
        raise StreamRecordError(f"the stream record has no string key {name!r}; is this the prompts table's stream?")
    return value["S"]


def _require_images(event_name: Any, old: Any, new: Any) -> None:
    needs_old = event_name in ("MODIFY", "REMOVE")
    needs_new = event_name in ("INSERT", "MODIFY")
    if event_name not in ("INSERT", "MODIFY", "REMOVE"):
        raise StreamRecordError(f"unknown stream eventName {event_name!r}")
    if (needs_old and not old) or (needs_new and not new):
        raise StreamRecordError("the stream record lacks an item image; the table's stream must be NEW_AND_OLD_IMAGES")


def _recorded_at(value: Any) -> str | None:
    """ApproximateCreationDateTime (epoch seconds in Lambda events) as ISO 8601 UTC with milliseconds."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):  # boto3's GetRecords parses it already
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    else:
        try:
            moment = datetime.fromtimestamp(float(value), timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
            return None
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
