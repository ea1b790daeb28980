"""Concurrency contract: appends never lose or repeat a number, slugs stay unique under races, and the
published and label pointers only ever point at versions someone put there, whole."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from core.errors import Conflict
from core.models import Kind, TemplateVersion
from core.references import parse_reference
from tests.contract.conftest import Backend
from tests.contract.support import appending, create, draft, new_entity, run_threads, unique

PROMPT = Kind.PROMPT
WRITERS = 50
READERS, MOVERS, ROUNDS = 3, 6, 5


def assert_consecutive_appends(templates: Any, key: str, numbers: list[int], writers: int) -> None:
    """Versions 2..writers+1 were each assigned once, are all stored with their writer's text, no gaps."""
    assert sorted(numbers) == list(range(2, writers + 2))
    stored = templates.list_versions(PROMPT, key)
    assert [version.version for version in stored] == list(range(writers + 1, 0, -1))
    assert set(Counter(version.string for version in stored[:-1]).values()) == {1}  # each writer's text once
    assert templates.get_entity(PROMPT, key).latest_version == writers + 1
    assert templates.resolve(PROMPT, parse_reference(f"{key}@latest")).version == writers + 1


def test_concurrent_appends_get_consecutive_numbers_each_once(backend: Backend) -> None:
    templates = backend.stores.templates
    prompt = create(templates, string="v1")
    numbers: list[int] = []

    errors = run_threads(WRITERS, lambda number: numbers.append(
        templates.append_version(PROMPT, prompt.slug, appending(f"writer {number}")).version))

    assert errors == []
    assert_consecutive_appends(templates, prompt.id, numbers, WRITERS)


def _append_in_another_process(path: str, key: str, count: int, tag: str, start: Any, results: Any) -> None:
    from infra.sqlite import open_sqlite_stores

    stores = open_sqlite_stores(Path(path))
    try:
        start.wait(timeout=60)
        numbers = []
        for n in range(count):
            numbers.append(stores.templates.append_version(PROMPT, key, appending(f"{tag} {n}")).version)
            time.sleep(0.005)  # outside the write lock: the other process gets in between
        results.put(numbers)
    except BaseException as exc:  # noqa: BLE001 - reported in the test's process
        results.put(f"{tag} failed: {type(exc).__name__}: {exc}")
    finally:
        stores.close()


def test_two_processes_appending_to_one_sqlite_file_get_consecutive_numbers(tmp_path: Path) -> None:
    sqlite = pytest.importorskip("infra.sqlite", reason="the SQLite backend (infra/sqlite/) is not there yet")
    path = tmp_path / "cuecard.db"
    stores = sqlite.open_sqlite_stores(path)
    prompt = create(stores.templates, string="v1")
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_append_in_another_process,
                                 args=(str(path), prompt.slug, WRITERS // 2, f"process {n}", start, results))
                 for n in range(2)]
    try:
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
    try:
        assert [outcome for outcome in outcomes if isinstance(outcome, str)] == []
        first, second = outcomes
        assert min(first) < max(second) and min(second) < max(first), "the processes never overlapped"
        assert_consecutive_appends(stores.templates, prompt.id, [n for numbers in outcomes for n in numbers], WRITERS)
    finally:
        stores.close()


def test_concurrent_creates_of_one_slug_admit_exactly_one(backend: Backend) -> None:
    templates = backend.stores.templates
    slug = unique("pp")

    errors = run_threads(8, lambda number: templates.create(PROMPT, new_entity(slug=slug), draft(f"creator {number}")))

    assert len(errors) == 7 and all(isinstance(error, Conflict) for error in errors), errors
    [entity] = templates.list_entities(PROMPT)
    assert entity.slug == slug and len(templates.list_versions(PROMPT, slug)) == 1


def test_concurrent_publishes_and_label_moves_keep_every_pointer_whole_and_consistent(backend: Backend) -> None:
    """Publishers and labellers race while readers resolve: a reader only ever sees a version that was
    put behind that pointer, exactly as stored; afterwards each pointer agrees with the entity's head."""
    templates = backend.stores.templates
    prompt = create(templates, string="v1")
    for number in range(2, 7):
        templates.append_version(PROMPT, prompt.id, appending(f"v{number}"))
    templates.set_label(prompt.id, 1, "staging")
    stored = {version.version: version for version in templates.list_versions(PROMPT, prompt.id)}
    pointers = {  # pointer -> (reference, how to move it, the versions it may get, versions ever written to it)
        "published": (prompt.slug, lambda number: templates.publish(PROMPT, prompt.id, number), (2, 4, 6), {1}),
        "staging": (f"{prompt.slug}@staging", lambda number: templates.set_label(prompt.id, number, "staging"),
                    (3, 5), {1}),
    }
    seen: dict[str, list[TemplateVersion]] = {name: [] for name in pointers}
    conflicts: list[Conflict] = []
    remaining = [MOVERS]
    lock = threading.Lock()

    def read() -> None:
        while remaining[0]:
            for name, (reference, *_) in pointers.items():
                seen[name].append(templates.resolve(PROMPT, parse_reference(reference)))

    def move(number: int) -> None:
        name = list(pointers)[number % 2]
        _, write, candidates, written = pointers[name]
        try:
            for round_ in range(ROUNDS):
                version = candidates[(number + round_) % len(candidates)]
                written.add(version)
                try:
                    write(version)
                except Conflict as exc:  # a lost race the port allows; the pointer must stay whole
                    conflicts.append(exc)
        finally:
            with lock:
                remaining[0] -= 1

    errors = run_threads(READERS + MOVERS, lambda number: read() if number < READERS else move(number))

    assert errors == []
    assert len(conflicts) < MOVERS * ROUNDS, "every write lost a race"
    head = templates.get_entity(PROMPT, prompt.id)
    for name, (reference, _, _, written) in pointers.items():
        assert seen[name], f"no reader saw {name}"
        wrong = [version.version for version in seen[name]
                 if version.version not in written or version != stored[version.version]]
        assert wrong == [], f"{name}: read versions never written there, or not whole"
        pointed = head.published_version if name == "published" else head.labels["staging"]
        assert templates.resolve(PROMPT, parse_reference(reference)) == stored[pointed]
