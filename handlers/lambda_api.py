"""Lambda entry point behind API Gateway (HTTP API v2 and REST v1 events), through Mangum.

The container is built at import, inside Lambda's init phase, so a warm invocation only routes.
"""

from __future__ import annotations

from mangum import Mangum

from handlers.container import build_container

app = build_container().asgi_app()
handler = Mangum(app, lifespan="off")
