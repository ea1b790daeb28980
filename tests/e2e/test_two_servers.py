"""Two `cuecard serve` processes on one data dir (another port each) share one SQLite file: each sees the
other's writes at once, and when the first stops the second carries on reading and writing."""

from __future__ import annotations

import signal
from typing import Iterator

import pytest

from tests.e2e.conftest import (
    ADMIN_KEY,
    SAMPLE_SLUGS,
    Server,
    call,
    ok,
    render,
    slugs_listed,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.e2e


def chat(word: str) -> str:
    return f'[{{"role":"user","content":"{word} {{{{name}}}}"}}]'


def rendered(server: Server, ref: str) -> str:
    return ok(render(server, ADMIN_KEY, ref))["data"]["messages"][0]["content"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    data_dir = tmp_path_factory.mktemp("two") / "data"
    first = start_server(data_dir)
    try:
        second = start_server(data_dir)
    except BaseException:
        stop_server(first)
        raise
    yield first, second
    stop_server(second)
    stop_server(first)


def test_the_second_server_serves_the_same_data(pair: tuple[Server, Server]) -> None:
    first, second = pair
    assert first.port != second.port
    assert sorted(slugs_listed(second, ADMIN_KEY)) == sorted(SAMPLE_SLUGS)
    assert "Loaded" not in second.output()  # the samples were loaded once, by the first
    made = ok(call(first, "POST", "/prompts", ADMIN_KEY, {"name": "By the first", "string": chat("First")}))
    assert rendered(second, made["id"]) == "First Ada"
    ok(call(second, "PUT", f"/prompts/{made['id']}", ADMIN_KEY, {"string": chat("Second"), "patch": True}))
    assert rendered(first, f"{made['id']}@2") == "Second Ada"


def test_the_second_server_carries_on_after_the_first_stops(pair: tuple[Server, Server]) -> None:
    first, second = pair
    assert stop_server(first, signal.SIGINT) == 0, first.output()
    assert render(second, ADMIN_KEY).status_code == 200
    made = ok(call(second, "POST", "/prompts", ADMIN_KEY, {"name": "After", "string": chat("After")}))
    ok(call(second, "PUT", f"/prompts/{made['id']}", ADMIN_KEY, {"string": chat("After v2"), "patch": True}))
    assert rendered(second, f"{made['id']}@latest") == "After v2 Ada"
    listed = ok(call(second, "GET", "/prompts?page_size=1000", ADMIN_KEY))["data"]
    assert made["id"] in {prompt["id"] for prompt in listed}
