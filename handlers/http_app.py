"""The FastAPI app: Portkey's Prompts API routes, each a thin adapter over PromptService."""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from core.actor import current_actor, describe_key
from core.auth import Authenticator
from core.completions import CompletionService
from core.errors import CuecardError, InvalidRequest, PayloadTooLarge
from core.models import Kind, Scope
from core.service import PromptService
from core.virtual_keys import VirtualKeyService
from handlers.asgi_edge import EdgeMiddleware
from handlers.sse import HEADERS as SSE_HEADERS
from handlers.sse import sse_frames
from handlers.virtual_key_routes import add_virtual_key_routes

logger = logging.getLogger("cuecard.http")
JSON_TYPES = ("application/json", "text/plain", "")


def _api_key(request: Request) -> str | None:
    headers = request.headers
    key = headers.get("x-portkey-api-key")
    if key:
        return key.strip()
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def _json_body(request: Request, limit: int, *, default: Any = None) -> Any:
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    if not body.strip():
        if default is not None:
            return default
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(
            f"We could not parse the JSON body of your request ({exc}). The body must be valid JSON.",
            code="invalid_json",
        ) from None


def _answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(payload, status_code=status, headers=headers)


def _version_headers(version: Any) -> dict[str, str]:
    """Which template version served the call, for tracing."""
    return {
        "x-cuecard-prompt-id": version.entity_id,
        "x-cuecard-prompt-slug": version.slug,
        "x-cuecard-prompt-version": str(version.version),
    }


def create_app(service: PromptService, auth: Authenticator, *, completions: CompletionService | None = None,
               virtual_keys: VirtualKeyService | None = None, max_body_bytes: int = 1_048_576) -> Any:
    """The ASGI app: FastAPI routes under `/v1` and at the root, wrapped by the edge middleware."""
    app = FastAPI(title="cuecard", version="0.1.0", docs_url="/docs", redoc_url=None)
    router = APIRouter()

    def allow(request: Request, scope: Scope) -> None:
        record = auth.check(_api_key(request), scope)
        current_actor.set(describe_key(record.name, record.key_id))

    async def body_of(request: Request, default: Any = None) -> Any:
        return await _json_body(request, max_body_bytes, default=default)

    async def admin(request: Request, scope: Scope, call: Callable[..., Any], *args: Any, status: int = 200,
                    with_body: bool = False) -> Response:
        allow(request, scope)
        if with_body:
            args = (*args, await body_of(request))
        return _answer(await run_in_threadpool(call, *args), status)

    # --- inference ---------------------------------------------------------------------------

    async def render(request: Request) -> Response:
        allow(request, Scope.RENDER)
        body = await body_of(request, default={})
        # Inline, not in a worker thread: Lambda serves one request per instance, Mangum starts a new
        # event loop per call (so a thread hop costs a thread start), and a warm render reads nothing.
        rendered = service.render(request.path_params["prompt_id"], body)
        return _answer({"success": True, "data": rendered.body}, headers=_version_headers(rendered.version))

    async def complete(request: Request) -> Response:
        if completions is None:
            raise InvalidRequest("Completions are not configured on this server.", code="completions_disabled")
        allow(request, Scope.RENDER)
        body = await body_of(request, default={})
        prepared = completions.prepare(request.path_params["prompt_id"], body,
                                       request_id=request.scope.get("state", {}).get("request_id", ""))
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
        return StreamingResponse(sse_frames(first, chunks), media_type="text/event-stream",
                                 headers={**headers, **SSE_HEADERS})

    # The hot paths are plain Starlette routes: FastAPI's dependency solving would cost more than
    # a render. They stay inside the app, so errors and middleware are the same.
    for prefix in ("/v1", ""):
        app.router.routes.append(Route(f"{prefix}/prompts/{{prompt_id}}/render", render, methods=["POST"]))
        app.router.routes.append(Route(f"{prefix}/prompts/{{prompt_id}}/completions", complete, methods=["POST"]))

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
        return await admin(request, Scope.WRITE, service.delete_partial, partial_id)

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
        return await admin(request, Scope.WRITE, service.update_prompt, prompt_id, with_body=True)

    @router.delete("/prompts/{prompt_id}")
    async def delete_prompt(prompt_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.delete_prompt, prompt_id)

    @router.put("/prompts/{prompt_id}/makeDefault")
    async def publish_prompt(prompt_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.publish_prompt, prompt_id, with_body=True)

    @router.get("/prompts/{prompt_id}/versions")
    async def list_versions(prompt_id: str, request: Request) -> Response:
        return await admin(request, Scope.WRITE, service.list_versions, Kind.PROMPT, prompt_id)

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

    if virtual_keys is not None:
        add_virtual_key_routes(router, virtual_keys, allow)

    @router.get("/health", include_in_schema=False)
    async def health() -> Response:
        return _answer({"status": "ok"})

    app.include_router(router, prefix="/v1")
    app.include_router(router, include_in_schema=False)
    _install_error_handlers(app)
    return EdgeMiddleware(app, max_body_bytes=max_body_bytes)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CuecardError)
    async def domain_error(_request: Request, exc: CuecardError) -> Response:
        return _answer(exc.to_body(), exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"Unknown route: {request.method} {request.url.path}."
            body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "unknown_url"}}
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
            body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "method_not_allowed"}}
        else:
            body = {"error": {"message": str(exc.detail), "type": "invalid_request_error", "param": None, "code": None}}
        return _answer(body, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", exc_info=exc)
        body = {"error": {"message": "The server had an error while processing your request.", "type": "api_error",
                          "param": None, "code": "internal_error"}}
        return _answer(body, 500)
