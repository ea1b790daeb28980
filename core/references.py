"""Prompt and partial references: `id`, `id@12`, `id@latest`, `id@<label>`; and label-name rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from core.errors import InvalidLabelName, InvalidReference, InvalidRequest

Selector = Literal["published", "latest", "number", "label"]

RESERVED_LABEL_NAMES = frozenset({"latest", "default", "published"})
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_MAX_VERSION = 10**12
_ENTITY_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_entity_id(key: str) -> bool:
    """Ids are UUIDs; any other key is a slug (slugs may not look like UUIDs)."""
    return bool(_ENTITY_ID.match(key))


def check_new_keys(what: str, entity_id: str, slug: str) -> None:
    """A new prompt's, partial's or binding's keys as every store requires them: a lower-case UUID id and a
    slug that cannot be mistaken for one."""
    if not is_entity_id(entity_id) or entity_id != entity_id.lower():
        raise InvalidRequest(f"{what} id {entity_id!r} must be a lower-case UUID string")
    if is_entity_id(slug):
        raise InvalidRequest(f"slug {slug!r} must not look like an id", param="slug")


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed reference: `key` is an id or a slug; the selector says which version."""

    key: str
    selector: Selector = "published"
    number: int | None = None
    label: str | None = None

    @property
    def pinned(self) -> bool:
        """A pinned version never changes, so it may be cached without expiry."""
        return self.selector == "number"

    def __str__(self) -> str:
        if self.selector == "number":
            return f"{self.key}@{self.number}"
        if self.selector == "label":
            return f"{self.key}@{self.label}"
        if self.selector == "latest":
            return f"{self.key}@latest"
        return self.key


def check_label_name(name: object, *, param: str = "name") -> str:
    """Returns `name` if it may name a label; raises InvalidLabelName (400) saying why not."""
    if not isinstance(name, str) or not name:
        raise InvalidLabelName("A label name must be a non-empty string.", param=param)
    if "@" in name or any(ch.isspace() for ch in name):
        raise InvalidLabelName(f"Label name {name!r} may not contain '@' or whitespace.", param=param)
    if name.isdigit():
        raise InvalidLabelName(f"Label name {name!r} is all digits, which would read as a version number.", param=param)
    if name.lower() in RESERVED_LABEL_NAMES:
        raise InvalidLabelName(f"Label name {name!r} is reserved.", param=param)
    if not _LABEL.match(name):
        raise InvalidLabelName(
            f"Label name {name!r} must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit.",
            param=param,
        )
    return name


def parse_reference(text: object, *, param: str = "promptId") -> Reference:
    """Parses `key`, `key@N`, `key@latest` or `key@label`; raises InvalidReference (400)."""
    if not isinstance(text, str) or not text:
        raise InvalidReference("A prompt reference must be a non-empty string.", param=param)
    key, sep, suffix = text.partition("@")
    if not _KEY.match(key):
        raise InvalidReference(
            f"{text!r} is not a valid reference: the id or slug must be letters, digits, '_', '.' or '-'.", param=param
        )
    if not sep:
        return Reference(key)
    if suffix == "latest":
        return Reference(key, "latest")
    if suffix.isdigit() and suffix.isascii():
        number = int(suffix) if len(suffix) <= len(str(_MAX_VERSION)) else _MAX_VERSION + 1
        if not 1 <= number <= _MAX_VERSION:
            raise InvalidReference(f"Version numbers run from 1 to {_MAX_VERSION}.", param=param)
        return Reference(key, "number", number=number)
    try:
        label = check_label_name(suffix, param=param)
    except InvalidLabelName as exc:
        raise InvalidReference(
            f"{text!r} is not a valid reference: use {key}, {key}@<version number>, {key}@latest or {key}@<label>. "
            + exc.message,
            param=param,
        ) from None
    return Reference(key, "label", label=label)
