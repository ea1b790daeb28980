"""A running cuecard server's API, for the CLI's client commands (diff, render, pull, push)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from core.errors import CuecardError

DEFAULT_URL = "http://127.0.0.1:8787/v1"


class ApiClient:
    """Each call answers JSON, or raises CuecardError with the API's error message (and `status`)."""

    def __init__(self, url: str | None, api_key: str | None) -> None:
        import httpx

        self.url = (url or os.environ.get("CUECARD_URL") or DEFAULT_URL).rstrip("/")
        key = api_key or os.environ.get("CUECARD_API_KEY")
        if not key:
            raise CuecardError("no API key: pass --api-key or set CUECARD_API_KEY.")
        self._client = httpx.Client(base_url=self.url, headers={"x-portkey-api-key": key}, timeout=30.0)

    def call(self, method: str, path: str, *, params: dict[str, str] | None = None,
             body: Any = None) -> tuple[Any, dict[str, str]]:
        import httpx

        try:
            response = self._client.request(method, path, params=params, json=body)
        except httpx.HTTPError as exc:
            raise CuecardError(f"cannot reach {self.url}: {exc}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 400:
            error = answer.get("error") if isinstance(answer, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            failure = CuecardError(str(message) if message else f"HTTP {response.status_code} from {self.url}{path}",
                                   code=error.get("code") if isinstance(error, dict) else None)
            failure.status = response.status_code
            raise failure
        return answer, dict(response.headers)

    def get(self, path: str, **params: str) -> Any:
        return self.call("GET", path, params=params or None)[0]

    def close(self) -> None:
        self._client.close()


def quoted(text: str) -> str:
    """A prompt id, slug or reference as one path segment (`@` kept)."""
    return quote(text, safe="@")
