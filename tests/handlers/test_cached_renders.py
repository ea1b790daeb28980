"""`cuecard serve`'s app (SQLite, `inline_renders=False`): a render the caches can serve runs on the event loop; one
that needs the store stops at its first read and runs again in a worker thread, with the same answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from core.auth import mint_key
from core.models import Scope
from core.store_reads import StoreReadNeeded, cached_only, check_store_read
from handlers.container import build_container
from infra.settings import Settings
from infra.sqlite import open_sqlite_stores

NOW = "2026-01-01T00:00:00.000Z"


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[TestClient, list[tuple[str, bool]]]]:
    admin = mint_key("admin", frozenset({Scope.ADMIN}), NOW).key
    stores = open_sqlite_stores(tmp_path / "cuecard.db")
    container = build_container(Settings(store="sqlite", data_dir=str(tmp_path), admin_key=admin), stores)
    calls: list[tuple[str, bool]] = []  # (thread name, finished) of each render attempt
    render = container.service.render

    def recording(reference, body):
        entry = [threading.current_thread().name, False]
        try:
            result = render(reference, body)
            entry[1] = True
            return result
        finally:
            calls.append((entry[0], entry[1]))

    container.service.render = recording  # type: ignore[method-assign]
    app = container.asgi_app(inline_renders=False)
    try:
        yield TestClient(app, raise_server_exceptions=False, headers={"x-portkey-api-key": admin}), calls
    finally:
        stores.close()


def test_a_cached_render_stays_on_the_event_loop(served) -> None:
    client, calls = served
    created = client.post("/v1/prompts", json={"name": "Greet", "string": "Hi {{name}}", "model": "m", "parameters": {}})
    assert created.status_code == 200, created.text
    url = f"/v1/prompts/{created.json()['slug']}/render"

    first = client.post(url, json={"variables": {"name": "Ada"}})
    assert (first.status_code, first.json()["data"]["prompt"]) == (200, "Hi Ada"), first.text
    # Not cached yet: the try on the event loop stopped at the store, the worker thread finished it.
    assert [finished for _, finished in calls] == [False, True]
    assert "AnyIO worker thread" not in calls[0][0] and "AnyIO worker thread" in calls[1][0]

    calls.clear()
    second = client.post(url, json={"variables": {"name": "Bo"}})
    assert (second.status_code, second.json()["data"]["prompt"]) == (200, "Hi Bo"), second.text
    assert len(calls) == 1 and calls[0][1] and "AnyIO worker thread" not in calls[0][0]

    missing = client.post("/v1/prompts/no-such-prompt/render", json={})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "prompt_not_found")


def test_cached_only_stops_at_a_store_read_and_nowhere_else() -> None:
    check_store_read()  # outside: nothing happens
    assert cached_only(lambda a, b=0: a + b, 1, b=2) == 3
    with pytest.raises(StoreReadNeeded):
        cached_only(check_store_read)
    check_store_read()  # reset after the call
