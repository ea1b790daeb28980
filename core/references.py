"""Prompt and partial references: `id`, `id@12`, `id@latest`, `id@<label>`; label-name and external-id rules.

A key is an id (a UUID), a slug, or, for a prompt, one of its external ids (`pmpt_...`); stores try them in
that order, and a key names at most one live prompt (a slug and an external id never coincide).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from core.errors import InvalidLabelName, InvalidReference, InvalidRequest

Selector = Literal["published", "latest", "number", "label"]

RESERVED_LABEL_NAMES = frozenset({"latest", "default", "published"})
RESERVED_KEYS = frozenset({"partials"})  # /v1/prompts/partials is the partials API, not a prompt
MAX_EXTERNAL_IDS = 20
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")
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


def check_external_ids(values: object, *, param: str = "external_ids") -> tuple[str, ...]:
    """A prompt's external ids as every store keeps them, in the order given; raises InvalidRequest (400) saying
    which entry is wrong and why (never quoting it). Each is a key a reference can carry: 1-128 letters, digits,
    '_', '.', ':' or '-', starting with a letter or digit (so never `@`, which addresses versions), not shaped like
    a UUID (ids are) and not a reserved path word; at most MAX_EXTERNAL_IDS, none twice."""
    if not isinstance(values, (list, tuple)):
        raise InvalidRequest(f"{param} must be a list of strings.", param=param, code="invalid_external_id")
    if len(values) > MAX_EXTERNAL_IDS:
        raise InvalidRequest(f"{param} holds {len(values)} ids; a prompt has at most {MAX_EXTERNAL_IDS}.",
                             param=param, code="invalid_external_id")
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        where = f"{param}[{index}]"
        if not isinstance(value, str) or not _EXTERNAL_ID.fullmatch(value):
            raise InvalidRequest(f"{where} must be 1-128 letters, digits, '_', '.', ':' or '-', starting with a letter "
                                 "or digit.", param=param, code="invalid_external_id")
        if is_entity_id(value):
            raise InvalidRequest(f"{where} looks like a UUID, which would read as a prompt id.", param=param,
                                 code="invalid_external_id")
        if value in RESERVED_KEYS:
            raise InvalidRequest(f"{where} is reserved: /v1/prompts/{value} is a route of its own.", param=param,
                                 code="invalid_external_id")
        if value in seen:
            raise InvalidRequest(f"{where} repeats {param}[{seen[value]}].", param=param, code="invalid_external_id")
        seen[value] = index
    return tuple(values)


def check_stored_external_ids(kind: str, slug: str, values: object) -> tuple[str, ...]:
    """External ids as a store keeps them on the prompt or partial `slug` (`kind` is "prompt" or "partial"):
    `check_external_ids`' rules, none on a partial, and not the prompt's own slug (which names it already)."""
    external_ids = check_external_ids(values)
    if external_ids and kind != "prompt":
        raise InvalidRequest(f"A {kind} has no external ids; only prompts do.", param="external_ids",
                             code="invalid_external_id")
    if slug in external_ids:
        raise InvalidRequest(f"external_ids[{external_ids.index(slug)}] is the prompt's own slug, which names it already.",
                             param="external_ids", code="invalid_external_id")
    return external_ids


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed reference: `key` is an id, a slug or an external id; the selector says which version."""

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
            f"{text!r} is not a valid reference: the id or slug must be letters, digits, '_', '.', ':' or '-'.", param=param
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
