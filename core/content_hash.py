"""A version's content hash: SHA-256 of its canonical form, so the same content always has the same hash.

The canonical form is a JSON object of the version's fields by their API names, leaving out derived fields and
fields at their defaults (so a field added later leaves older hashes alone), with sorted keys and no spacing.
A chat template is taken as the messages it parses to, so two writings of the same JSON are one content; any
other template (text, raw) is taken as written.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from core.models import API_VERSION_FIELDS, VersionContent

_DEFAULTS: dict[str, Any] = {
    name: getattr(VersionContent(string=""), field) for name, field in API_VERSION_FIELDS.items() if name != "string"
}
HASH_PREFIX = "sha256:"


def canonical_template(string: str, *, raw: bool) -> Any:
    """A chat template's messages (a JSON array of objects), else the string itself."""
    if raw or not string.lstrip().startswith("["):
        return string
    try:
        parsed = json.loads(string)
    except ValueError:
        return string
    if isinstance(parsed, list) and all(isinstance(message, dict) for message in parsed):
        return {"messages": parsed}
    return string


def canonical_content(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical form of a version's fields, given by their API names (`string`, `parameters`, ...)."""
    canonical: dict[str, Any] = {}
    for name in API_VERSION_FIELDS:
        value = fields.get(name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        if value is None or (name != "string" and value == _DEFAULTS.get(name)) or value in ([], {}):
            continue
        canonical[name] = value
    canonical["string"] = canonical_template(str(fields.get("string") or ""), raw=bool(fields.get("is_raw_template")))
    return canonical


def content_hash(fields: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the canonical form of a version's fields (API names)."""
    text = json.dumps(canonical_content(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_plain)
    return HASH_PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def version_hash(version: VersionContent) -> str:
    """The content hash of a stored version."""
    return content_hash({name: getattr(version, field) for name, field in API_VERSION_FIELDS.items()})


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON data")


__all__ = ["HASH_PREFIX", "canonical_content", "canonical_template", "content_hash", "version_hash"]
