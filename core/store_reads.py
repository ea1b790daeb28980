"""Calls that may run only while they read no store: a render served from the caches runs on the event loop, and
one that needs the store stops at its first read (`StoreReadNeeded`) to be run again in a worker thread.

A store adapter that supports this calls `check_store_read()` before every read and write (infra/sqlite/database.py);
`cached_only` may be used only with stores that do.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Callable, TypeVar

T = TypeVar("T")
_CACHED_ONLY: ContextVar[bool] = ContextVar("cuecard_cached_only", default=False)


class StoreReadNeeded(BaseException):
    """Raised by a store read inside `cached_only`. A BaseException, so that no `except Exception` on the way turns it
    into an error answer; nothing has been read or written when it is raised."""


def check_store_read() -> None:
    if _CACHED_ONLY.get():
        raise StoreReadNeeded


def cached_only(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`call(*args, **kwargs)`, or StoreReadNeeded at its first store read (the call should then be made again where
    it may read the store)."""
    token = _CACHED_ONLY.set(True)
    try:
        return call(*args, **kwargs)
    finally:
        _CACHED_ONLY.reset(token)
