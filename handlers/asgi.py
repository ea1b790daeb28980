"""The app as a plain ASGI module, for uvicorn: the streaming function runs it behind the Lambda Web Adapter.

    uvicorn handlers.asgi:app --port 8000
"""

from __future__ import annotations

from handlers.container import build_container

app = build_container().asgi_app()
