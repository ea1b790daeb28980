"""Fixtures for the provider adapters: a fake upstream per test, calls, and a loop runner."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Iterator, Mapping, TypeVar

import pytest

from core.models import VirtualKey
from core.providers import DEFAULT_TIMEOUTS, ChatProvider, ProviderCall, Timeouts
from infra.providers.http_client import shared_clients
from infra.providers.retry import RetryPolicy
from tests.fake_upstream import FakeUpstream

T = TypeVar("T")

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, retry_after_cap=1.0)
SECRET = "sk-test-0123456789abcdef"


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    try:
        yield upstream
    finally:
        upstream.stop()


def run(coro: Awaitable[T]) -> T:
    """Runs `coro` on a new event loop, then closes that loop's shared HTTP client."""

    async def main() -> T:
        try:
            return await coro
        finally:
            await shared_clients().aclose()

    return asyncio.run(main())


def binding(provider: str = "openai", *, custom_host: str | None = None, headers: Mapping[str, str] | None = None,
            config: Mapping[str, Any] | None = None) -> VirtualKey:
    return VirtualKey(id="vk_1", slug="vk-test", name="test", provider=provider, created_at="2024-01-01T00:00:00Z",
                      updated_at="2024-01-01T00:00:00Z", custom_host=custom_host, headers=dict(headers or {}),
                      config=dict(config or {}))


def chat_body(text: str = "hello there", **params: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": text}], **params}


def make_call(fake: FakeUpstream | None = None, *, body: Mapping[str, Any] | None = None, secret: str | None = SECRET,
              stream: bool = False, timeouts: Timeouts = DEFAULT_TIMEOUTS, vk: VirtualKey | None = None) -> ProviderCall:
    vk = vk or binding(custom_host=fake.base_url if fake else None)
    return ProviderCall(body=body or chat_body(), binding=vk, secret=secret, stream=stream, request_id="req_test",
                        timeouts=timeouts)


async def collect(provider: ChatProvider, call: ProviderCall) -> tuple[list[dict[str, Any]], BaseException | None]:
    """The chunks a stream yielded, and the error it ended with (None if it ended cleanly)."""
    chunks: list[dict[str, Any]] = []
    stream = provider.stream(call)
    try:
        async for chunk in stream:
            chunks.append(chunk)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return chunks, exc
    finally:
        await stream.aclose()
    return chunks, None
