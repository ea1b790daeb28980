"""Concurrent writers against the moto SERVER: no version lost, none duplicated."""

from __future__ import annotations

import threading
from collections import Counter

from core.models import Kind
from core.references import parse_reference
from infra.dynamodb_table import DynamoTable
from infra.dynamodb_templates import DynamoTemplateStore
from infra.settings import Settings
from tests.integration.builders import create, draft

WRITERS = 50


def test_50_concurrent_appends_yield_versions_2_to_51_exactly_once(settings: Settings) -> None:
    store = DynamoTemplateStore(DynamoTable.from_settings(settings, max_pool_connections=WRITERS))
    entity = create(store, string="v1")
    start = threading.Barrier(WRITERS)
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(number: int) -> None:
        try:
            start.wait()
            version = store.append_version(Kind.PROMPT, entity.slug, lambda latest: draft(f"writer {number}"))
            with lock:
                results.append(version.version)
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(results) == list(range(2, WRITERS + 2))
    stored = store.list_versions(Kind.PROMPT, entity.id)
    assert [v.version for v in stored] == list(range(WRITERS + 1, 0, -1))
    writers = Counter(v.string for v in stored if v.version > 1)
    assert len(writers) == WRITERS and set(writers.values()) == {1}  # each writer's version saved once
    assert store.get_entity(Kind.PROMPT, entity.id).latest_version == WRITERS + 1
    assert store.resolve(Kind.PROMPT, parse_reference(f"{entity.id}@latest")).version == WRITERS + 1
