"""The FastAPI app: Portkey's Prompts API routes, each a thin adapter over PromptService.

`/openapi.json` (and `/docs`) is handlers.openapi_spec's document, built from the routes served here.

Every route is a plain Starlette route, the admin ones included: each handler reads its own body and
path values, so FastAPI's `APIRoute` would only add work. Building 66 of them (their dependency
analysis, and the `pydantic.v1` import FastAPI makes for it) took about 20 ms of the Lambda cold start,
and solving their dependencies costs about 30 µs a call. The admin routes are still written with
`@router.get(...)` on an `APIRouter` (`_PlainRoutes`), which records them instead of building APIRoutes.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Route, compile_path

from core.actor import current_actor, describe_key
from core.auth import Authenticator
from core.collections import CollectionService
from core.completions import CompletionService
from core.errors import CuecardError, InvalidRequest
from core.models import Kind, Scope
from core.service import PromptService
from core.store_reads import StoreReadNeeded, cached_only
from core.virtual_keys import VirtualKeyService
from handlers.api_key_header import presented_key
from handlers.asgi_edge import EdgeMiddleware
from handlers.json_body import check_request_text, read_json_body
from handlers.sse import HEADERS as SSE_HEADERS
from handlers.sse import sse_frames
from handlers.virtual_key_routes import add_virtual_key_routes

logger = logging.getLogger("cuecard.http")
PARTIALS = "partials"


def _api_key(request: Request) -> str | None:
    return presented_key(request.headers)


def _flag(request: Request, name: str) -> bool:
    """A boolean query parameter: absent is false; `true` and `false` are the only values."""
    value = request.query_params.get(name)
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise InvalidRequest(f"{name} must be true or false.", param=name)


def _not_a_prompt(prompt_id: str) -> None:
    """`/prompts/partials` and `/prompts/partials/{id}` are the partials' paths: a method they do not serve
    there is a 405, never a call on a prompt named "partials" (the Allow header says the same)."""
    if prompt_id == PARTIALS:
        raise StarletteHTTPException(405)


class _Json(JSONResponse):
    """Starlette's JSONResponse, byte for byte, with one encoder made once: `json.dumps` with these options
    builds a new JSONEncoder on every call."""

    def render(self, content: Any) -> bytes:
        return _ENCODE(content).encode("utf-8")


_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


class _SseResponse(StreamingResponse):
    """Starlette's StreamingResponse, but the status line, headers and first frame go out from the request's own task,
    before the task group that streams the rest and listens for a hang-up starts (uvicorn speaks ASGI 2.3): the first
    token waits neither for a new task's turn on the event loop nor for the group's setup. A client gone by then is
    seen by that listener at once, as before (uvicorn drops what is sent to a closed connection)."""

    _head_sent = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            frames = self.body_iterator
            try:
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                self._head_sent = True
                first = await anext(aiter(frames), None)
                if first is not None:
                    await send({"type": "http.response.body", "body": first, "more_body": True})
            except BaseException as exc:
                close = getattr(frames, "aclose", None)
                if close is not None:
                    await close()
                spec = tuple(map(int, scope.get("asgi", {}).get("spec_version", "2.0").split(".")))
                if isinstance(exc, OSError) and spec >= (2, 4):  # as Starlette's own answers a hang-up there
                    raise ClientDisconnect() from exc
                raise
        await super().__call__(scope, receive, send)

    async def stream_response(self, send: Any) -> None:
        if not self._head_sent:
            await super().stream_response(send)
            return
        async for chunk in self.body_iterator:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _Json(payload, status_code=status, headers=headers)


class _PlainRoutes(APIRouter):
    """An APIRouter whose `@router.get(...)` and friends record (path, endpoint, methods) instead of building a
    FastAPI `APIRoute`; `plain_routes` turns them into Starlette routes. Only the path and methods of a
    registration are used: a route needing FastAPI's other options (a response model, dependencies) does not
    belong here."""

    def __init__(self) -> None:
        super().__init__(redirect_slashes=False)
        self.registered: list[tuple[str, Callable[..., Any], tuple[str, ...]]] = []

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        self.registered.append((path, endpoint, tuple(options.get("methods") or ("GET",))))

    def plain_routes(self, prefix: str) -> list[Route]:
        return [_plain_route(prefix + path, endpoint, methods) for path, endpoint, methods in self.registered]


def _plain_route(path: str, endpoint: Callable[..., Any], methods: tuple[str, ...]) -> Route:
    """A Starlette route calling `endpoint` with the path's values as keyword arguments (and `request` if it takes
    one), as FastAPI calls a handler whose parameters are `str` path values and the request."""
    code = endpoint.__code__
    takes_request = "request" in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]

    async def handle(request: Request) -> Response:
        if takes_request:
            response: Response = await endpoint(request=request, **request.path_params)
        else:
            response = await endpoint(**request.path_params)
        return response

    route = Route(path, handle, methods=list(methods), name=endpoint.__name__)
    if "HEAD" not in methods:  # Starlette adds HEAD to a GET route; an APIRoute serves only the methods it names
        assert route.methods is not None
        route.methods.discard("HEAD")
    return route


def _version_headers(version: Any) -> dict[str, str]:
    """Which template version served the call, for tracing."""
    return {
        "x-cuecard-prompt-id": version.entity_id,
        "x-cuecard-prompt-slug": version.slug,
        "x-cuecard-prompt-version": str(version.version),
    }


def create_app(service: PromptService, auth: Authenticator, *, completions: CompletionService | None = None,
               virtual_keys: VirtualKeyService | None = None, collections: CollectionService | None = None,
               max_body_bytes: int = 1_048_576, inline_renders: bool = True, cached_renders_inline: bool = False) -> Any:
    """The ASGI app: FastAPI routes under `/v1` and at the root, wrapped by the edge middleware.

    `inline_renders`: render on the event loop (the Lambda function: one request per instance, and Mangum
    starts an event loop per call, so a thread hop costs a thread start). False for a server that serves
    many requests at once (`cuecard serve`): each render runs in a worker thread, so a slow one never
    holds up the others, `/v1/health` included.

    `cached_renders_inline` (with `inline_renders=False`; only for stores that check `core.store_reads`, SQLite's): a
    render or completion is first tried on the event loop from the caches alone, and goes to a worker thread only when
    it needs the store. The thread hop was a quarter of a completion's CPU and part of every first token's wait.
    """
    # No trailing-slash redirects: Starlette builds their Location from the Host header.
    app = _fastapi(title="cuecard", docs_url="/docs", redoc_url=None, redirect_slashes=False)
    router = _PlainRoutes()

    async def allow(request: Request, scope: Scope) -> None:
        key = _api_key(request)
        record = auth.check_cached(key, scope)
        if record is None:  # only the store can tell: read it off the event loop (inline on Lambda)
            record = auth.check(key, scope) if inline_renders else await run_in_threadpool(auth.check, key, scope)
        current_actor.set(describe_key(record.name, record.key_id))

    async def allow_checked(request: Request, scope: Scope) -> None:
        """The key first (so a caller without one learns nothing), then every path and query value."""
        await allow(request, scope)
        check_request_text(request)

    async def body_of(request: Request, default: Any = None) -> Any:
        return await read_json_body(request, max_body_bytes, default=default)

    async def admin(request: Request, scope: Scope, call: Callable[..., Any], *args: Any, status: int = 200,
                    with_body: bool = False) -> Response:
        await allow_checked(request, scope)
        if with_body:
            args = (*args, await body_of(request))
        return _answer(await run_in_threadpool(call, *args), status)

    # --- inference ---------------------------------------------------------------------------

    async def off_the_loop(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`call` inline (Lambda), from the caches alone on the event loop, or in a worker thread (see create_app)."""
        if inline_renders:
            return call(*args, **kwargs)
        if cached_renders_inline:
            try:
                return cached_only(call, *args, **kwargs)
            except StoreReadNeeded:
                pass
        return await run_in_threadpool(call, *args, **kwargs)
    # The path's reference is checked by core.references (ASCII, bounded), so no text check here.

    async def render(request: Request) -> Response:
        _not_a_prompt(request.path_params["prompt_id"])
        await allow(request, Scope.RENDER)
        body = await body_of(request, default={})
        rendered = await off_the_loop(service.render, request.path_params["prompt_id"], body)
        return _answer({"success": True, "data": rendered.body}, headers=_version_headers(rendered.version))

    async def complete(request: Request) -> Response:
        assert completions is not None
        _not_a_prompt(request.path_params["prompt_id"])
        await allow(request, Scope.COMPLETE)
        body = await body_of(request, default={})
        request_id = request.scope.get("state", {}).get("request_id", "")
        prepared = await off_the_loop(completions.prepare, request.path_params["prompt_id"], body,
                                      request_id=request_id)
        headers = _version_headers(prepared.rendered.version)
        if not prepared.stream:
            return _answer(await completions.complete(prepared), headers=headers)
        chunks = completions.stream(prepared)
        # Wait for the first chunk before answering: until then a failure is still a plain HTTP error.
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = None
        if first is None:
            raise CuecardError("The provider ended the stream without a chunk.", code="empty_stream")
        return _SseResponse(sse_frames(first, chunks), media_type="text/event-stream",
                            headers={**headers, **SSE_HEADERS})

    responses_route: list[Callable[[Request], Any]] = []

    async def create_response(request: Request) -> Response:
        """`POST /v1/responses` (handlers.responses_routes), imported on its first call: a cold start that serves
        renders pays nothing for it."""
        if not responses_route:
            from core.responses import ResponsesService
            from handlers.responses_routes import responses_endpoint

            assert completions is not None
            responses_route.append(responses_endpoint(
                ResponsesService(service, completions), allow=allow, read_body=body_of,
                version_headers=_version_headers, inline=inline_renders))
        response: Response = await responses_route[0](request)
        return response

    # The hot paths: plain Starlette routes like the others (FastAPI's dependency solving would cost about
    # 30 µs a call, a third of a warm render), inside the app, so errors and middleware are the same.
    hot: list[Route] = []
    for prefix in ("/v1", ""):
        hot.append(Route(f"{prefix}/prompts/{{prompt_id}}/render", render, methods=["POST"]))
        if completions is not None:  # without a provider setup the route does not exist (404)
            hot.append(Route(f"{prefix}/prompts/{{prompt_id}}/completions", complete, methods=["POST"]))
            # Portkey's deprecated generations API, which older SDKs call: the same call as completions.
            hot.append(Route(f"{prefix}/prompts/{{prompt_id}}/generate", complete, methods=["POST"]))
            # OpenAI's Responses API with a stored prompt (`prompt: {id, version, variables}`).
            hot.append(Route(f"{prefix}/responses", create_response, methods=["POST"]))
    # First in the router, ahead of FastAPI's /openapi.json and /docs pages (no path matches both): a render is
    # matched on the first route tried.
    app.router.routes[:0] = hot

    # --- partials (before /prompts/{id} so "partials" is not read as a prompt id) ------------

    @router.post("/prompts/partials")
    async def create_partial(request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.create_partial, with_body=True)

    @router.get("/prompts/partials")
    async def list_partials(request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.list_partials, dict(request.query_params))

    @router.get("/prompts/partials/{partial_id}")
    async def get_partial(partial_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.get_partial, partial_id, request.query_params.get("version"))

    @router.put("/prompts/partials/{partial_id}")
    async def update_partial(partial_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.update_partial, partial_id, with_body=True)

    @router.delete("/prompts/partials/{partial_id}")
    async def delete_partial(partial_id: str, request: Request) -> Response:
        await allow_checked(request, Scope.WRITE)  # the key before the flag, as everywhere
        force = _flag(request, "force")
        return _answer(await run_in_threadpool(service.delete_partial, partial_id, force=force))

    @router.get("/prompts/partials/{partial_id}/versions")
    async def list_partial_versions(partial_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.list_versions, Kind.PARTIAL, partial_id)

    @router.put("/prompts/partials/{partial_id}/makeDefault")
    async def publish_partial(partial_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.publish_partial, partial_id, with_body=True)

    # --- prompts -------------------------------------------------------------------------------

    @router.post("/prompts")
    async def create_prompt(request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.create_prompt, with_body=True)

    @router.get("/prompts")
    async def list_prompts(request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.list_prompts, dict(request.query_params))

    @router.get("/prompts/{prompt_id}")
    async def get_prompt(prompt_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.get_prompt, prompt_id, request.query_params.get("version"))

    @router.put("/prompts/{prompt_id}")
    async def update_prompt(prompt_id: str, request: Request) -> Response:
        _not_a_prompt(prompt_id)
        return await admin(request, Scope.WRITE, service.update_prompt, prompt_id, with_body=True)

    @router.delete("/prompts/{prompt_id}")
    async def delete_prompt(prompt_id: str, request: Request) -> Response:
        _not_a_prompt(prompt_id)
        return await admin(request, Scope.WRITE, service.delete_prompt, prompt_id)

    @router.put("/prompts/{prompt_id}/makeDefault")
    async def publish_prompt(prompt_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.publish_prompt, prompt_id, with_body=True)

    @router.get("/prompts/{prompt_id}/versions")
    async def list_versions(prompt_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.list_versions, Kind.PROMPT, prompt_id)

    @router.get("/prompts/{prompt_id}/diff")
    async def diff_versions(prompt_id: str, request: Request) -> Response:
        query = request.query_params
        return await admin(request, Scope.WRITE, service.diff_versions, prompt_id, query.get("from"), query.get("to"))

    @router.get("/prompts/{prompt_id}/versions/{version_id}")
    async def get_version(prompt_id: str, version_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.get_version, prompt_id, version_id)

    @router.put("/prompts/{prompt_id}/versions/{version_id}")
    async def label_version(prompt_id: str, version_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.label_version, prompt_id, version_id, with_body=True)

    # --- labels --------------------------------------------------------------------------------

    @router.post("/labels")
    async def create_label(request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.create_label, with_body=True)

    @router.get("/labels")
    async def list_labels(request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.list_labels, dict(request.query_params))

    @router.get("/labels/{label_id}")
    async def get_label(label_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.get_label, label_id)

    @router.put("/labels/{label_id}")
    async def update_label(label_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.update_label, label_id, with_body=True)

    @router.delete("/labels/{label_id}")
    async def delete_label(label_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.delete_label, label_id)

    # --- collections (without a CollectionService the routes do not exist) --------------------

    if collections is not None:
        @router.post("/collections")
        async def create_collection(request: Request) -> Response:
            return await admin(request, Scope.WRITE, collections.create, with_body=True)

        @router.get("/collections")
        async def list_collections(request: Request) -> Response:
            return await admin(request, Scope.WRITE, collections.list_collections, dict(request.query_params))

        @router.get("/collections/{collection_id}")
        async def get_collection(collection_id: str, request: Request) -> Response:
            return await admin(request, Scope.WRITE, collections.get, collection_id)

        @router.put("/collections/{collection_id}")
        async def update_collection(collection_id: str, request: Request) -> Response:
            return await admin(request, Scope.WRITE, collections.update, collection_id, with_body=True)

        @router.delete("/collections/{collection_id}")
        async def delete_collection(collection_id: str, request: Request) -> Response:
            return await admin(request, Scope.WRITE, collections.delete, collection_id)

    if virtual_keys is not None:
        add_virtual_key_routes(router, virtual_keys, allow_checked)

    @router.get("/health")
    async def health() -> Response:
        return _answer({"status": "ok"})

    for prefix in ("/v1", ""):  # in this order, after the hot paths: as include_router(router, prefix) placed them
        app.router.routes.extend(router.plain_routes(prefix))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from handlers.openapi_responses import add_responses_document
            from handlers.openapi_spec import build_openapi

            routes = [route for route in _flat_routes(app) if not route.path.endswith("/responses")]
            app.openapi_schema = add_responses_document(
                build_openapi(routes, title="cuecard", version=_package_version()),
                served=len(routes) < len(_flat_routes(app)))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    _install_error_handlers(app)
    return EdgeMiddleware(app, max_body_bytes=max_body_bytes)


def _fastapi(**options: Any) -> FastAPI:
    """The FastAPI app without FastAPI's native OpenTelemetry (0.16x): cuecard installs no exporter (as the MCP server
    drops the SDK's span per message), and asking the OpenTelemetry API whether one is set cost about 3 µs a request.
    Older FastAPI has no such option."""
    try:
        return FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False}, **options)  # type: ignore[call-arg,unused-ignore]
    except TypeError:
        return FastAPI(**options)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cuecard")
    except PackageNotFoundError:
        return "0"


def _flat_routes(app: FastAPI) -> list[Any]:
    """The app's routes with their full paths: newer FastAPI keeps an included router nested."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies an included router's routes into the app's, paths prefixed
        return list(app.router.routes)
    return list(iter_route_contexts(app.router.routes))


def _install_error_handlers(app: FastAPI) -> None:
    route_methods: list[tuple[tuple[int, ...], Any, set[str]]] = []

    def allowed_methods(path: str) -> str:
        """The methods served at `path`, for a 405's Allow header (Starlette's names one route's only).

        Where templates overlap (`/prompts/partials` and `/prompts/{prompt_id}`), the one with a literal
        segment where the other has a parameter owns the path, as `_not_a_prompt` enforces."""
        if not route_methods:
            for route in _flat_routes(app):
                specificity = tuple(int(part.startswith("{")) for part in route.path.split("/"))
                route_methods.append((specificity, compile_path(route.path)[0], set(route.methods or ())))
        matching = [(specificity, methods) for specificity, regex, methods in route_methods if regex.match(path)]
        if not matching:
            return ""
        owner = min(specificity for specificity, _ in matching)
        return ", ".join(sorted({method for specificity, methods in matching if specificity == owner for method in methods}))

    @app.exception_handler(CuecardError)
    async def domain_error(_request: Request, exc: CuecardError) -> Response:
        return _answer(exc.to_body(), exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        # No route declares parameters FastAPI could refuse; should one ever, it is a 400 like every bad input.
        body = {"error": {"message": "The request is not valid.", "type": "invalid_request_error", "param": None,
                          "code": "invalid_request"}}
        return _answer(body, 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"Unknown route: {request.method} {request.url.path}."
            body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "unknown_url"}}
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
            body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "method_not_allowed"}}
            return _answer(body, 405, headers={"allow": allowed_methods(request.url.path)})
        else:
            body = {"error": {"message": str(exc.detail), "type": "invalid_request_error", "param": None, "code": None}}
        return _answer(body, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", exc_info=exc)
        body = {"error": {"message": "The server had an error while processing your request.", "type": "api_error",
                          "param": None, "code": "internal_error"}}
        return _answer(body, 500)
