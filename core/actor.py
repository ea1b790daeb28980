"""Who is making the current change, for audit trails and change events.

The entry point that authenticated the caller sets it (the HTTP layer: the API key's name and id);
the store records it on what it writes. A context variable, so concurrent requests never mix.
"""

from __future__ import annotations

from contextvars import ContextVar

current_actor: ContextVar[str | None] = ContextVar("cuecard_actor", default=None)


def describe_key(name: str, key_id: str) -> str:
    return f"api-key:{key_id} ({name})"


SYSTEM_ACTOR = "system"  # changes made with no authenticated caller: the CLI, the local seed, migrations


def actor_or_system() -> str:
    """Who is making the current change, or `system` when no entry point set an actor."""
    return current_actor.get() or SYSTEM_ACTOR
