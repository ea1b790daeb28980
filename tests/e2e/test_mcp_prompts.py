"""`/mcp` on a real `cuecard serve`, driven by the official `mcp` client (Streamable HTTP + ClientSession): the
handshake and the 2026-07-28 protocol, prompts/list (arguments, labels, pages), prompts/get (rendered, partials
resolved, typed arguments), errors, the tools, auth, and `notifications/prompts/list_changed` on a listen stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import PromptsListChanged, listen
from mcp.shared.exceptions import MCPError

from core.mcp_prompts import PAGE_SIZE
from tests.e2e.conftest import ADMIN_KEY, Server, call, ok, run_cli, start_server, stop_server, without_aws
from tests.e2e.test_keys_cli import create_key

pytestmark = pytest.mark.e2e
_T = TypeVar("_T")
TYPED_SCHEMA = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "description": "What to write about"},
        "count": {"type": "integer", "minimum": 1, "description": "How many ideas"},
        "style": {"type": "string", "enum": ["terse", "chatty"], "default": "terse"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["topic", "count", "style"],
    "additionalProperties": False,
}
TYPED_TEMPLATE = json.dumps([{"role": "user", "content": "{{count}} {{style}} ideas on {{topic}}:"
                                                         "{{#tags}} #{{.}}{{/tags}}"}])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`cuecard serve` with the samples, a strictly typed prompt, enough prompts for two pages, and a render key."""
    cwd = tmp_path_factory.mktemp("mcp")
    server = start_server(cwd / "data", extra_env={"CUECARD_AUTH_CACHE_TTL": "0"}, log_dir=cwd)
    try:
        ok(call(server, "POST", "/prompts", ADMIN_KEY, {
            "name": "Ideas", "slug": "ideas", "string": TYPED_TEMPLATE, "parameters": {}, "model": "m",
            "variables_schema": TYPED_SCHEMA, "strict_variables": True, "version_description": "Brainstorm ideas"}))
        for number in range(PAGE_SIZE):
            ok(call(server, "POST", "/prompts", ADMIN_KEY, {"name": f"Filler {number}", "slug": f"filler-{number}",
                                                            "string": "Hi {{who}}", "parameters": {}}))
        env = without_aws()
        render_key = create_key("mcp-render", "render", cwd=cwd, env=env, target=("--data-dir", str(cwd / "data")))
        yield server, render_key, cwd, env
    finally:
        stop_server(server)


def url_of(server: Server, query: str = "") -> str:
    return f"{server.root}/mcp{query}"


@asynccontextmanager
async def session(server: Server, *, key: str | None = ADMIN_KEY, headers: dict[str, str] | None = None,
                  query: str = "", modern: bool = False) -> AsyncIterator[ClientSession]:
    sent = {**({"x-portkey-api-key": key} if key else {}), **(headers or {})}
    async with httpx2.AsyncClient(headers=sent, timeout=30) as http:
        async with streamable_http_client(url_of(server, query), http_client=http) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=30) as client:
                if modern:
                    await client.discover()
                else:
                    await client.initialize()
                yield client


def run(test: Callable[[], Awaitable[_T]]) -> _T:
    return anyio.run(test)


def test_initialize_and_list_with_typed_described_arguments(served) -> None:
    server, *_ = served

    async def scenario() -> Any:
        async with session(server) as client:
            assert client.initialize_result is not None
            capabilities = client.initialize_result.capabilities
            assert capabilities.prompts is not None and capabilities.prompts.list_changed is False
            return (await client.list_prompts()).prompts

    prompts = {prompt.name: prompt for prompt in run(scenario)}
    assert {"summarize", "support-reply", "chat-with-history", "ideas"} <= set(prompts)
    ideas = prompts["ideas"]
    assert ideas.title == "Ideas" and ideas.description == "Brainstorm ideas"
    arguments = {argument.name: argument for argument in ideas.arguments or []}
    assert arguments["topic"].required is True and arguments["topic"].description == \
        "What to write about. Type: string."
    assert arguments["count"].required is True
    assert arguments["count"].description == "How many ideas. Type: integer (send it as JSON text)."
    assert arguments["style"].required is False  # it has a default
    assert arguments["style"].description == 'Type: string. One of: "terse", "chatty". Default: "terse".'
    assert arguments["tags"].required is False
    summarize = {argument.name: argument.required for argument in prompts["summarize"].arguments or []}
    assert summarize == {"sentences": True, "text": True}


def test_the_list_pages_with_a_cursor(served) -> None:
    server, *_ = served

    async def scenario() -> list[list[str]]:
        pages, cursor = [], None
        async with session(server) as client:
            while True:
                page = await client.list_prompts(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
                pages.append([prompt.name for prompt in page.prompts])
                cursor = page.next_cursor
                if cursor is None:
                    return pages

    pages = run(scenario)
    assert [len(page) for page in pages] == [PAGE_SIZE, 4]  # 3 samples, ideas and the fillers
    names = [name for page in pages for name in page]
    assert len(set(names)) == len(names) == PAGE_SIZE + 4
    assert set(names[:3]) == {"chat-with-history", "summarize", "support-reply"}  # oldest first
    # made in one burst: some share a millisecond, and then their ids order them
    assert set(names[3:]) == {"ideas"} | {f"filler-{number}" for number in range(PAGE_SIZE)}


def test_get_renders_with_partials_resolved_at_the_label(served) -> None:
    server, *_ = served

    async def scenario() -> Any:
        async with session(server) as client:
            summary = await client.get_prompt("summarize", {"sentences": "2", "text": "A long story."})
            reply = await client.get_prompt("support-reply", {"product": "Acme", "tone": "warm", "question": "Hi?"})
            return summary, reply

    summary, reply = run(scenario)
    assert [(m.role, m.content.type) for m in summary.messages] == [("user", "text"), ("user", "text")]
    assert summary.messages[0].content.text == "Be concise. Use plain words. Never invent facts."  # the partial
    assert summary.messages[1].content.text == "Summarize in 2 sentences:\n\nA long story."
    assert reply.messages[0].content.text == "You are a support agent for Acme. Answer in a warm tone."
    assert reply.meta == {"cuecard/prompt_id": reply.meta["cuecard/prompt_id"], "cuecard/version": 2,
                          "cuecard/label": "production"}


def test_typed_arguments_are_decoded_so_a_strict_schema_accepts_them(served) -> None:
    server, *_ = served

    async def scenario() -> Any:
        async with session(server) as client:
            return await client.get_prompt("ideas", {"topic": "tea", "count": "3", "tags": '["green", "hot"]'})

    got = run(scenario)
    assert got.messages[0].content.text == "3 terse ideas on tea: #green #hot"


@pytest.mark.parametrize("how", ["header", "query"])
def test_a_label_chosen_by_header_or_query(served, how: str) -> None:
    server, *_ = served
    options: dict[str, Any] = {"headers": {"x-cuecard-label": "development"}} if how == "header" else \
        {"query": "?label=development"}

    async def scenario() -> Any:
        async with session(server, **options) as client:
            listed = {p.name: p.meta for p in (await client.list_prompts()).prompts}
            got = await client.get_prompt("support-reply", {"product": "A", "tone": "b", "question": "c"})
            return listed, got

    listed, got = run(scenario)
    assert listed["support-reply"]["cuecard/version"] == 1 and listed["support-reply"]["cuecard/label"] == "development"
    assert listed["summarize"]["cuecard/label"] is None  # no development label: its published version
    assert got.meta["cuecard/version"] == 1


def test_errors_name_the_missing_argument_the_prompt_and_the_label(served) -> None:
    server, *_ = served

    async def scenario() -> list[MCPError]:
        errors = []
        async with session(server) as client:
            for name, arguments in (("summarize", {"text": "x"}), ("no-such-prompt", {}), ("ideas", {"topic": "t",
                                                                                                   "count": "lots"})):
                with pytest.raises(MCPError) as caught:
                    await client.get_prompt(name, arguments)
                errors.append(caught.value)
        async with session(server, query="?label=no-such-label") as client:
            with pytest.raises(MCPError) as caught:
                await client.list_prompts()
            errors.append(caught.value)
        return errors

    missing, unknown, mistyped, label = run(scenario)
    assert missing.code == -32602 and missing.message == "Missing required argument: sentences."
    assert unknown.code == -32602 and unknown.message == "prompt no-such-prompt not found"
    assert mistyped.message == "Argument count is integer: send it as JSON text, such as 3."
    assert label.message == "label no-such-label not found"


def test_the_modern_protocol_lists_gets_and_notifies_list_changes(served) -> None:
    server, *_ = served

    async def scenario() -> tuple[Any, Any, Any]:
        async with session(server, modern=True) as client:
            discovered = client.discover_result
            listed = await client.list_prompts()
            async with listen(client, prompts_list_changed=True) as subscription:
                await anyio.to_thread.run_sync(lambda: ok(call(server, "PUT", "/prompts/summarize/versions/1",
                                                               ADMIN_KEY, {"label_id": "staging"})))
                with anyio.fail_after(15):
                    event = await subscription.__anext__()
            return discovered, listed, event

    discovered, listed, event = run(scenario)
    assert discovered is not None and discovered.capabilities.prompts is not None
    assert discovered.capabilities.prompts.list_changed is True
    assert len(listed.prompts) == PAGE_SIZE
    assert isinstance(event, PromptsListChanged)


def test_tools_follow_the_keys_scopes(served) -> None:
    server, render_key, *_ = served
    variables = {"product": "Acme", "tone": "warm", "question": "Where?"}

    async def scenario(key: str) -> tuple[list[str], Any, Any]:
        async with session(server, key=key) as client:
            tools = [tool.name for tool in (await client.list_tools()).tools]
            rendered = await client.call_tool("render_prompt", {"prompt": "support-reply", "variables": variables})
            completed = await client.call_tool("complete_prompt", {"prompt": "support-reply", "variables": variables})
            return tools, rendered, completed

    tools, rendered, completed = anyio.run(scenario, ADMIN_KEY)
    assert tools == ["render_prompt", "complete_prompt"]
    assert rendered.is_error is False and rendered.structured_content["temperature"] == 0.2
    assert rendered.structured_content["messages"][1] == {"role": "user", "content": "Where?"}
    assert completed.is_error is False and completed.content[0].text.startswith("[mock]")
    assert completed.structured_content["object"] == "chat.completion"

    tools, rendered, completed = anyio.run(scenario, render_key.key)
    assert tools == ["render_prompt"] and rendered.is_error is False
    assert completed.is_error is True and completed.content[0].text == "This API key lacks the 'complete' scope."


@pytest.mark.parametrize("key, code", [(None, "missing_api_key"), ("cck_" + "x" * 43, "invalid_api_key"),
                                       ("not-even-shaped", "invalid_api_key")])
def test_a_missing_or_bad_key_is_a_401_json_error_and_no_session(served, key: str | None, code: str) -> None:
    server, *_ = served
    headers = {"accept": "application/json, text/event-stream", **({"authorization": f"Bearer {key}"} if key else {})}
    response = httpx.post(url_of(server), headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401 and response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code and "mcp-session-id" not in response.headers

    async def scenario() -> None:
        async with session(server, key=key):
            pass

    with pytest.raises(ExceptionGroup) as caught:  # the client cannot even initialize
        run(scenario)
    assert caught.group_contains(MCPError, match="error response", depth=2)


def test_a_render_key_lists_and_gets_and_a_revoked_one_is_refused(served) -> None:
    server, _, cwd, env = served
    data_dir = str(Path(cwd) / "data")
    made = create_key("mcp-short-lived", "render", cwd=cwd, env=env, target=("--data-dir", data_dir))

    async def scenario() -> int:
        async with session(server, key=made.key) as client:
            await client.get_prompt("summarize", {"sentences": "1", "text": "x"})
            return len((await client.list_prompts()).prompts)

    assert run(scenario) == PAGE_SIZE
    done = run_cli("keys", "revoke", made.key_id, "--data-dir", data_dir, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    response = httpx.post(url_of(server), headers={"x-portkey-api-key": made.key},
                          json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_get_and_delete_are_405_on_a_stateless_endpoint(served) -> None:
    server, *_ = served
    for method in ("GET", "DELETE"):
        response = httpx.request(method, url_of(server), headers={"x-portkey-api-key": ADMIN_KEY,
                                                                  "accept": "text/event-stream"})
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        assert response.json()["error"]["code"] == "method_not_allowed"
