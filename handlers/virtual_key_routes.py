"""HTTP routes of provider bindings (Portkey's `/virtual-keys`). Managing them takes the `admin` scope.

Bodies are never logged: a create or update body carries the provider key.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from core.errors import InvalidRequest, PayloadTooLarge
from core.models import Scope
from core.virtual_keys import VirtualKeyService

MAX_BODY_BYTES = 65_536  # a binding is small; Secrets Manager takes at most 64 KB per secret


async def _body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"A virtual key body is at most {MAX_BODY_BYTES} bytes.")
    if not body.strip():
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        # No parser message: it quotes the text around the error, which may be the provider key.
        raise InvalidRequest("We could not parse the JSON body of your request. The body must be valid JSON.",
                             code="invalid_json") from None


def add_virtual_key_routes(router: APIRouter, service: VirtualKeyService,
                           allow: Callable[[Request, Scope], None]) -> None:
    """Registers POST/GET `/virtual-keys` and GET/PUT/DELETE `/virtual-keys/{key}` on `router`."""

    async def run(request: Request, call: Callable[..., Any], *args: Any, with_body: bool = False) -> Response:
        allow(request, Scope.ADMIN)
        if with_body:
            args = (*args, await _body(request))
        return JSONResponse(await run_in_threadpool(call, *args))

    @router.post("/virtual-keys")
    async def create_virtual_key(request: Request) -> Response:
        return await run(request, service.create, with_body=True)

    @router.get("/virtual-keys")
    async def list_virtual_keys(request: Request) -> Response:
        return await run(request, service.list, dict(request.query_params))

    @router.get("/virtual-keys/{key}")
    async def get_virtual_key(key: str, request: Request) -> Response:
        return await run(request, service.get, key)

    @router.put("/virtual-keys/{key}")
    async def update_virtual_key(key: str, request: Request) -> Response:
        return await run(request, service.update, key, with_body=True)

    @router.delete("/virtual-keys/{key}")
    async def delete_virtual_key(key: str, request: Request) -> Response:
        return await run(request, service.delete, key)
