"""Runtime settings, read once from the environment."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Mapping, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str = "cuecard"
    dynamodb_endpoint: str | None = None  # None: real AWS
    region: str = "us-east-1"
    pointer_cache_ttl: float = 5.0  # seconds; 0 disables the cache of published/latest/label lookups
    pinned_cache_size: int = 2048
    auth_cache_ttl: float = 60.0
    max_body_bytes: int = 1_048_576
    admin_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            table_name=_read(env, "CUECARD_TABLE", str, "cuecard"),
            dynamodb_endpoint=_read(env, "CUECARD_DYNAMODB_ENDPOINT", _endpoint, None),
            region=_first(env, ("AWS_REGION", "AWS_DEFAULT_REGION")) or "us-east-1",
            pointer_cache_ttl=_read(env, "CUECARD_POINTER_CACHE_TTL", _non_negative_float, 5.0),
            pinned_cache_size=_read(env, "CUECARD_PINNED_CACHE_SIZE", _non_negative_int, 2048),
            auth_cache_ttl=_read(env, "CUECARD_AUTH_CACHE_TTL", _non_negative_float, 60.0),
            max_body_bytes=_read(env, "CUECARD_MAX_BODY_BYTES", _positive_int, 1_048_576),
            admin_key=_read(env, "CUECARD_ADMIN_KEY", str, None),
        )


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is invalid: {exc}") from None


def _endpoint(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("expected a URL such as http://127.0.0.1:8000")
    return raw.rstrip("/")


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a number of seconds >= 0")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected an integer >= 0")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected an integer > 0")
    return value
