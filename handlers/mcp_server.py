"""The `/mcp` endpoint: cuecard's prompts over MCP's Streamable HTTP transport, served by the official `mcp` SDK.

handlers/mcp_route.py imports this module on the first `/mcp` request only: the SDK costs about half a second
of imports, which neither a cold start nor a render pays. core/mcp_prompts.py holds the mapping; this module
holds the transport, the auth and the SDK's handlers. docs/mcp.md is the user's account.

- Auth comes first, outside MCP: the same API keys as the HTTP API (`x-portkey-api-key` or `Authorization:
  Bearer`), checked by the container's Authenticator for the `render` scope. A missing, unknown or revoked key
  is a 401 in the OpenAI error shape, before any MCP message is read.
- Stateless: each request gets a fresh `StreamableHTTPSessionManager(stateless=True, json_response=True)`,
  whose `run()` lasts that request. No session outlives a request, so any instance (a Lambda, a restarted
  `cuecard serve`) answers any request, and a POST gets one JSON answer that Mangum can buffer. GET and DELETE
  (a session's SSE stream and its end) are 405: there are no sessions.
- The SDK's DNS-rebinding check (Host and Origin allow-lists) is off: cuecard is served at any host (API
  Gateway, a function URL, a custom domain), and every request needs an API key a rebinding page cannot send.
- `notifications/prompts/list_changed`: 2026-07-28 clients open a `subscriptions/listen` stream, served where
  the response can stream (uvicorn: `cuecard serve` and the streaming function); while one is open the prompt
  list is polled (`PromptListWatch`). Behind Mangum (the API function, buffered) `subscriptions/listen` is not
  served and `listChanged` is false. Handshake-era (2025-11-25) clients get no notifications: a stateless
  server has no standalone stream to send them on.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, PromptsListChanged, ServerEvent
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from starlette.datastructures import Headers, QueryParams
from starlette.types import Message, Receive, Send
from starlette.types import Scope as AsgiScope

from core.auth import Authenticator, grants
from core.completions import CompletionService
from core.errors import CuecardError, InvalidRequest, PermissionDenied
from core.mcp_prompts import DEFAULT_LABEL, McpPrompts
from core.models import ApiKeyRecord, Scope
from core.references import check_label_name
from handlers.api_key_header import presented_key
from handlers.asgi_edge import error_body

logger = logging.getLogger("cuecard.mcp")
_T = TypeVar("_T")

LABEL_HEADER = "x-cuecard-label"
LABEL_PARAM = "label"
CALLER = "cuecard.mcp.caller"  # where the ASGI scope's `state` carries the authenticated caller to the handlers
INSTRUCTIONS = ("cuecard's prompts, each at the version the label in the x-cuecard-label header or the ?label= "
                "parameter marks (default: production), else its published version. Arguments are text: a typed "
                "argument (integer, number, boolean, object, array) is sent as JSON text, as its description says.")
PROMPT_REFERENCE = {"type": "string", "description": "A prompt's slug (its MCP prompt name) or id: the version the "
                    "endpoint's label marks, else the published one; or a full reference: slug@12, slug@latest, "
                    "slug@staging."}
TOOLS: dict[str, dict[str, Any]] = {
    "render_prompt": {
        "description": "Render a cuecard prompt with variables and return the OpenAI request body it makes "
                       "(model, saved parameters, messages). Needs the render scope.",
        "scope": Scope.RENDER,
    },
    "complete_prompt": {
        "description": "Render a cuecard prompt and run it on its provider (the prompt's virtual key); returns the "
                       "model's answer and the whole chat.completion. Spends provider money: needs the complete scope.",
        "scope": Scope.COMPLETE,
    },
}
TOOL_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"prompt": PROMPT_REFERENCE,
                   "variables": {"type": "object", "description": "The template's variables, typed as its "
                                 "variables_schema says (GET the prompt to see it)."}},
    "required": ["prompt"],
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called, and at which label: set by the endpoint, read by the handlers."""

    key: ApiKeyRecord
    label: str


@dataclass(frozen=True, slots=True)
class McpParts:
    prompts: McpPrompts
    auth: Authenticator
    completions: CompletionService | None
    inline: bool  # run store reads and renders on the event loop (a Lambda serves one request at a time)
    max_body_bytes: int
    poll_interval: float  # seconds between reads of the prompt list while a listen stream is open


class McpEndpoint:
    """The ASGI app served at `/mcp`: auth and label, then the SDK's stateless Streamable HTTP transport."""

    def __init__(self, parts: McpParts) -> None:
        self._parts = parts
        version = _cuecard_version()
        self._handlers = McpHandlers(parts)
        self._watch = PromptListWatch(functools.partial(self._handlers.offload, parts.prompts.fingerprint),
                                      parts.poll_interval)
        listen = ListenHandler(self._watch)
        self._buffered = self._handlers.server(version, listen=None)
        self._streaming = self._handlers.server(version, listen=self._watch.serving(listen))
        self._security = TransportSecuritySettings(enable_dns_rebinding_protection=False)

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        try:
            caller = await self._caller(scope)
        except CuecardError as exc:
            await _send(send, exc.status, error_body(exc.status, exc.message, exc.type, exc.code, exc.param))
            return
        if scope["method"] != "POST":
            message = ("This MCP endpoint is stateless: it opens no sessions and no SSE stream. POST each JSON-RPC "
                       "message to it.")
            await _send(send, 405, error_body(405, message, "invalid_request_error", "method_not_allowed"),
                        headers=[(b"allow", b"POST")])
            return
        scope.setdefault("state", {})[CALLER] = caller
        replay = await _buffered_body(receive)  # read here, so the edge's body limit raises outside the SDK
        # Mangum puts the Lambda event in the scope: its answer is buffered, so no stream can be served there.
        server = self._buffered if "aws.event" in scope else self._streaming
        manager = StreamableHTTPSessionManager(server, json_response=True, stateless=True,
                                               security_settings=self._security,
                                               max_request_body_size=self._parts.max_body_bytes)
        async with manager.run():
            await manager.handle_request(scope, replay, send)

    async def _caller(self, scope: AsgiScope) -> Caller:
        headers = Headers(scope=scope)
        key = presented_key(headers)
        auth = self._parts.auth
        record = auth.check_cached(key, Scope.RENDER)
        if record is None:  # only the store can tell
            record = await self._handlers.offload(auth.check, key, Scope.RENDER)
        query = QueryParams(scope.get("query_string", b""))
        label = headers.get(LABEL_HEADER) or query.get(LABEL_PARAM) or DEFAULT_LABEL
        check_label_name(label.strip(), param=LABEL_HEADER)
        return Caller(record, label.strip())


class McpHandlers:
    """The SDK's request handlers, on McpPrompts (and the CompletionService for `complete_prompt`)."""

    def __init__(self, parts: McpParts) -> None:
        self._parts = parts

    def server(self, version: str, *, listen: Any) -> Server[Any]:
        server: Server[Any] = Server(
            "cuecard", version=version, title="cuecard", instructions=INSTRUCTIONS,
            get_tool_input_schema=lambda name: TOOL_INPUT_SCHEMA if name in TOOLS else None,
            on_list_prompts=self.list_prompts, on_get_prompt=self.get_prompt,
            on_list_tools=self.list_tools, on_call_tool=self.call_tool,
            on_subscriptions_listen=listen,
        )
        server.middleware = []  # no OpenTelemetry span per message: cuecard installs no exporter
        return server

    async def offload(self, call: Callable[..., _T], *args: Any) -> _T:
        """`call(*args)` inline (Lambda) or in a worker thread (`cuecard serve`), as the HTTP routes do."""
        if self._parts.inline:
            return call(*args)
        return await anyio.to_thread.run_sync(functools.partial(call, *args))

    async def list_prompts(self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
                           ) -> types.ListPromptsResult:
        caller = _caller_of(ctx)
        cursor = params.cursor if params is not None else None
        listed = await _mcp_errors(self.offload(self._parts.prompts.list_prompts, caller.label, cursor))
        return types.ListPromptsResult.model_validate(listed)

    async def get_prompt(self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
                         ) -> types.GetPromptResult:
        caller = _caller_of(ctx)
        got = await _mcp_errors(self.offload(self._parts.prompts.get_prompt, params.name, params.arguments,
                                             caller.label))
        return types.GetPromptResult.model_validate(got)

    async def list_tools(self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
                         ) -> types.ListToolsResult:
        caller = _caller_of(ctx)
        return types.ListToolsResult(tools=[
            types.Tool(name=name, title=name.replace("_", " ").capitalize(), description=tool["description"],
                       input_schema=TOOL_INPUT_SCHEMA)
            for name, tool in TOOLS.items() if self._serves(name) and grants(caller.key, tool["scope"])])

    async def call_tool(self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
                        ) -> types.CallToolResult:
        caller = _caller_of(ctx)
        if params.name not in TOOLS or not self._serves(params.name):
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name[:100]}")
        arguments = params.arguments or {}
        try:
            if not grants(caller.key, TOOLS[params.name]["scope"]):
                raise PermissionDenied(f"This API key lacks the '{TOOLS[params.name]['scope'].value}' scope.")
            prompt, variables = arguments.get("prompt"), arguments.get("variables") or {}
            if not isinstance(prompt, str) or not isinstance(variables, dict):
                raise InvalidRequest("Send prompt (a slug or reference) and variables (an object).")
            rendered = await self.offload(self._parts.prompts.render, prompt, variables, caller.label)
            if params.name == "render_prompt":
                return _tool_result(rendered.body, json.dumps(rendered.body, ensure_ascii=False))
            completions = self._parts.completions
            assert completions is not None  # _serves
            request_id = ctx.request.scope.get("state", {}).get("request_id", "") if ctx.request else ""
            prepared = await self.offload(functools.partial(completions.prepare_rendered, rendered,
                                                            request_id=request_id))
            completion = await completions.complete(prepared)
            return _tool_result(completion, _answer_text(completion))
        except CuecardError as exc:  # a tool's failure is its result, so the model can read it and correct itself
            return types.CallToolResult(content=[types.TextContent(text=exc.message)], is_error=True)

    def _serves(self, tool: str) -> bool:
        return tool != "complete_prompt" or self._parts.completions is not None


class PromptListWatch:
    """The subscription bus of `subscriptions/listen` streams, and the poll that feeds it.

    While at least one stream is open, the prompt list's fingerprint (core.mcp_prompts.list_fingerprint) is read
    every `interval` seconds; a change publishes `PromptsListChanged`. The first read happens before a stream is
    acknowledged (`serving`), so a change made after the client's ack is never missed."""

    def __init__(self, fingerprint: Callable[[], Awaitable[Any]], interval: float) -> None:
        self._bus = InMemorySubscriptionBus()
        self._fingerprint = fingerprint
        self._interval = interval
        self._streams = 0
        self._poll: asyncio.Task[None] | None = None
        self._baseline: Any = None

    async def publish(self, event: ServerEvent) -> None:
        await self._bus.publish(event)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        return self._bus.subscribe(listener)

    def serving(self, listen: ListenHandler) -> Callable[..., Awaitable[types.SubscriptionsListenResult]]:
        """`listen` wrapped so the poll runs while any stream is open."""

        async def listen_while_polled(ctx: ServerRequestContext[Any],
                                      params: types.SubscriptionsListenRequestParams
                                      ) -> types.SubscriptionsListenResult:
            await self._opened()
            try:
                return await listen(ctx, params)
            finally:
                self._closed()

        return listen_while_polled

    async def _opened(self) -> None:
        self._streams += 1
        if self._poll is None:
            self._baseline = await self._fingerprint()
            if self._poll is None and self._streams:  # another stream may have started it meanwhile
                self._poll = asyncio.get_running_loop().create_task(self._polling())

    def _closed(self) -> None:
        self._streams -= 1
        if not self._streams and self._poll is not None:
            self._poll.cancel()
            self._poll = None

    async def _polling(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                now = await self._fingerprint()
            except Exception:  # a failed read (the store away for a moment) is tried again next time
                logger.warning("could not read the prompt list for list_changed", exc_info=True)
                continue
            if now != self._baseline:
                self._baseline = now
                await self._bus.publish(PromptsListChanged())


def poll_interval(pointer_cache_ttl: float) -> float:
    """How often a listen stream's poll reads the prompt list: as often as a warm process trusts a pointer, at
    least a second apart."""
    return max(1.0, pointer_cache_ttl) if math.isfinite(pointer_cache_ttl) else 60.0


def _cuecard_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cuecard")
    except PackageNotFoundError:
        return ""


def _caller_of(ctx: ServerRequestContext[Any]) -> Caller:
    caller = ctx.request.scope.get("state", {}).get(CALLER) if ctx.request is not None else None
    if not isinstance(caller, Caller):  # every request passes McpEndpoint first
        raise MCPError(types.INTERNAL_ERROR, "The request was not authenticated.")
    return caller


async def _mcp_errors(call: Awaitable[_T]) -> _T:
    """cuecard's errors as MCP errors: the caller's (4xx) are invalid params, with the OpenAI error as data."""
    try:
        return await call
    except CuecardError as exc:
        code = types.INVALID_PARAMS if exc.status < 500 else types.INTERNAL_ERROR
        if exc.status >= 500:
            logger.exception("MCP request failed")
        raise MCPError(code, exc.message, data={"type": exc.type, "code": exc.code, "param": exc.param}) from None


def _tool_result(structured: dict[str, Any], text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)


def _answer_text(completion: dict[str, Any]) -> str:
    """The first choice's text, else the completion as JSON (a tool call, say)."""
    choices = completion.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content") if isinstance(choices[0], dict) else None
    return content if isinstance(content, str) and content else json.dumps(completion, ensure_ascii=False)




async def _buffered_body(receive: Receive) -> Receive:
    """Reads the whole request body now and returns a `receive` that hands it over again."""
    chunks: list[bytes] = []
    message = await receive()
    while message["type"] == "http.request":
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
        message = await receive()
    pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
    if message["type"] != "http.request":
        pending.append(message)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _send(send: Send, status: int, body: bytes, *, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
