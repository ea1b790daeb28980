"""`cuecard serve` never renders on its event loop: while the heaviest render the default limits allow
runs, `/v1/health` and a small render still answer, and answer before it finishes.

Ordering, not tight timings: the heavy render is one that only the time budget stops (about
CUECARD_RENDER_TIMEOUT, 1 s by default); small requests, one after another, start well inside that
window, and several of each kind must finish before it does, each within a generous bound. Rendered on
the event loop, the first one would wait for the heavy render, and none after it could finish first.
"""

from __future__ import annotations

import threading
import time

import httpx

from core.templating import RenderLimits
from tests.e2e.conftest import ADMIN_KEY, SAMPLE_VARIABLES, Server

# A section over the most items max_iterations allows, each rendering 10,000 sections on lines of their own
# whose value is missing: no output, no iterations of their own and no partials, so only the deadline ends it.
HEAVY_TEMPLATE = "{{#items}}\n" + "{{#nothing}}\n{{/nothing}}\n" * 10_000 + "{{/items}}"
HEAVY_VARIABLES = {"items": [1] * RenderLimits().max_iterations}
HEAD_START = 0.3  # seconds between sending the heavy render and the first small request
PROMPT_ANSWER = 1.0  # seconds any small request may take meanwhile (generous: it takes milliseconds)
AT_LEAST = 3  # answers of each kind before the heavy render's


def test_health_and_small_renders_answer_while_the_heaviest_allowed_render_runs(server: Server) -> None:
    """`server`: tests/e2e/conftest.py's `cuecard serve` on a fresh data dir, with the default render limits."""
    headers = {"x-portkey-api-key": ADMIN_KEY}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        created = client.post("/prompts", json={"name": "heavy", "slug": "heavy", "string": HEAVY_TEMPLATE,
                                                "parameters": {}})
        assert created.status_code == 200, created.text
        assert client.post("/prompts/support-reply/render", json={"variables": SAMPLE_VARIABLES}).status_code == 200

    heavy: dict[str, object] = {}

    def render_heavy() -> None:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as own:
            heavy["sent"] = time.monotonic()
            heavy["response"] = own.post("/prompts/heavy/render", json={"variables": HEAVY_VARIABLES})
            heavy["done"] = time.monotonic()

    thread = threading.Thread(target=render_heavy)
    thread.start()
    answered: list[tuple[str, float, float, int]] = []  # (what, started, finished, status)
    try:
        time.sleep(HEAD_START)
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            while thread.is_alive() and len(answered) < 200:
                for what, call in (("health", lambda: client.get("/health")),
                                   ("render", lambda: client.post("/prompts/support-reply/render",
                                                                  json={"variables": SAMPLE_VARIABLES}))):
                    started = time.monotonic()
                    status = call().status_code
                    answered.append((what, started, time.monotonic(), status))
    finally:
        thread.join(60)

    response = heavy["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "render_limit_exceeded" and "timeout" in error["message"]  # the worst allowed render

    done = heavy["done"]
    assert isinstance(done, float)
    during = [entry for entry in answered if entry[2] < done]
    for kind in ("health", "render"):
        assert sum(what == kind for what, *_ in during) >= AT_LEAST, (kind, answered, done)
    for what, started, finished, status in during:
        assert status == 200, what
        assert finished - started < PROMPT_ANSWER, (what, finished - started)
