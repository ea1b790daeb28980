"""Helpers for the contract tests: domain records (unique per call, so tests never collide on a shared
server), a checker for many expected errors, and a thread runner."""

from __future__ import annotations

import secrets
import threading
import uuid
from typing import Any, Callable, Sequence

from core.errors import PartialNotFound, PromptNotFound
from core.models import ApiKeyRecord, Entity, Kind, Label, Scope, TemplateVersion, VersionDraft, VirtualKey
from core.ports import TemplateStore

NOW = "2025-01-01T00:00:00.000Z"


def stamp(second: int) -> str:
    """An ISO timestamp `second` seconds into 2025, so records can be made out of time order."""
    return f"2025-01-01T00:{second // 60:02d}:{second % 60:02d}.000Z"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_entity(kind: Kind = Kind.PROMPT, *, created_at: str = NOW, slug: str | None = None, **fields: Any) -> Entity:
    fields.setdefault("name", "greet")
    return Entity(kind=kind, id=str(uuid.uuid4()), slug=slug or unique(kind.slug_prefix), created_at=created_at,
                  updated_at=created_at, latest_version=1, published_version=1, **fields)


def draft(string: str = "Hello {{name}}", **fields: Any) -> VersionDraft:
    fields.setdefault("version_id", str(uuid.uuid4()))
    fields.setdefault("created_at", NOW)
    return VersionDraft(string=string, **fields)


def rich_draft(string: str) -> VersionDraft:
    """Every content field set, with nested JSON, so a round trip that drops or changes anything shows."""
    return draft(
        string + " {{name}} {{#items}}{{.}}{{/items}}",
        variables=("name", "items"),
        description=f"about {string}",
        model="gpt-4o-mini",
        parameters={"temperature": 0.7, "max_tokens": 256, "top_p": 1, "stop": ["\n", "END"],
                    "response_format": {"type": "json_object"}, "logit_bias": {"50256": -100}, "stream": False},
        virtual_key="vk-main",
        is_raw_template=False,
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
        tool_choice={"type": "function", "function": {"name": "f"}},
        functions=[{"name": "g", "description": "ünïcödé ✓"}],
        template_metadata={"owner": "team-a", "tags": ["x", "y"], "weight": 2.5},
    )


def create(templates: TemplateStore, kind: Kind = Kind.PROMPT, string: str = "v1", **fields: Any) -> Entity:
    entity = new_entity(kind, **fields)
    templates.create(kind, entity, draft(string))
    return entity


def appending(string: str, **fields: Any) -> Callable[[TemplateVersion], VersionDraft]:
    return lambda latest: draft(string, **fields)


def new_label(name: str | None = None, *, created_at: str = NOW, **fields: Any) -> Label:
    return Label(id=str(uuid.uuid4()), name=name or unique("lbl"), created_at=created_at, **fields)


def api_key(name: str = "ci", *, created_at: str = NOW, **fields: Any) -> ApiKeyRecord:
    fields.setdefault("scopes", frozenset({Scope.RENDER, Scope.WRITE}))
    return ApiKeyRecord(key_hash=secrets.token_hex(32), key_id=str(uuid.uuid4()), name=name, created_at=created_at,
                        prefix="cc-" + secrets.token_hex(2), **fields)


def virtual_key(*, created_at: str = NOW, **fields: Any) -> VirtualKey:
    fields.setdefault("slug", unique("vk"))
    fields.setdefault("name", "OpenAI prod")
    fields.setdefault("provider", "openai")
    return VirtualKey(id=str(uuid.uuid4()), created_at=created_at, updated_at=created_at,
                      secret_ref="cuecard/virtual-keys/x", masked_key="sk-p****a1b2",
                      headers={"x-team": "a"}, config={"api_version": "2024-06-01"}, **fields)


def entity_missing(kind: Kind) -> type[Exception]:
    return PromptNotFound if kind is Kind.PROMPT else PartialNotFound


def expect_errors(cases: Sequence[tuple[str, type[BaseException], Callable[[], Any]]]) -> None:
    """Runs every (description, expected error, call); fails once, naming each call that did otherwise."""
    wrong = []
    for description, expected, call in cases:
        try:
            call()
        except expected:
            continue
        except Exception as exc:  # noqa: BLE001 - reported below
            wrong.append(f"{description}: expected {expected.__name__}, got {type(exc).__name__}: {exc}")
        else:
            wrong.append(f"{description}: expected {expected.__name__}, got no error")
    assert wrong == []


def run_threads(count: int, target: Callable[[int], Any]) -> list[BaseException]:
    """Runs target(0..count-1) on `count` threads released together; returns what they raised."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(number: int) -> None:
        try:
            start.wait(timeout=30)
            target(number)
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish within 120 s"
    return errors
