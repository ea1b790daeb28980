"""HTTP routes of provider bindings (Portkey's `/virtual-keys`). Managing them takes the `admin` scope.

Bodies are never logged: a create or update body carries the provider key.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from core.models import Scope
from core.virtual_keys import VirtualKeyService
from handlers.json_body import read_json_body

MAX_BODY_BYTES = 65_536  # a binding is small; Secrets Manager takes at most 64 KB per secret


async def _body(request: Request) -> Any:
    """The strict JSON reader every route uses (handlers/json_body.py): read up to the limit and no further,
    finite numbers, bounded nesting, valid Unicode; its messages give a position or a JSON path, never the
    text of the body, which carries the provider key."""
    return await read_json_body(request, MAX_BODY_BYTES)


def add_virtual_key_routes(router: APIRouter, service: VirtualKeyService,
                           allow: Callable[[Request, Scope], Awaitable[None]]) -> None:
    """Registers POST/GET `/virtual-keys` and GET/PUT/DELETE `/virtual-keys/{key}` on `router`."""

    async def run(request: Request, call: Callable[..., Any], *args: Any, with_body: bool = False) -> Response:
        await allow(request, Scope.ADMIN)
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
