"""Where a request carries its API key: `x-portkey-api-key`, else `Authorization: Bearer <key>`."""

from __future__ import annotations

from typing import Mapping


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key a request presents, stripped; None when it presents none."""
    key = headers.get("x-portkey-api-key", "").strip()
    if key:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
