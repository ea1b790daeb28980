"""One pooled client per event loop, reused across calls."""

from __future__ import annotations

import asyncio

from infra.providers.http_client import HttpClients, shared_clients
from infra.providers.openai_compatible import OpenAIProvider
from tests.fake_upstream import FakeUpstream
from tests.providers.conftest import collect, make_call, run


def test_one_client_per_loop() -> None:
    clients = HttpClients()

    async def twice() -> tuple[object, object]:
        first = clients.get()
        second = clients.get()
        await clients.aclose()
        return first, second

    a1, a2 = asyncio.run(twice())
    b1, _ = asyncio.run(twice())
    assert a1 is a2
    assert b1 is not a1


def test_a_closed_client_is_replaced() -> None:
    clients = HttpClients()

    async def scenario() -> bool:
        first = clients.get()
        await first.aclose()
        second = clients.get()
        replaced = second is not first and not second.is_closed
        await clients.aclose()
        return replaced

    assert asyncio.run(scenario())


def test_calls_on_one_loop_share_the_client_and_its_kept_alive_connection(fake: FakeUpstream) -> None:
    openai, azure_like = OpenAIProvider(), OpenAIProvider()

    async def scenario() -> bool:
        client = shared_clients().get()
        await openai.complete(make_call(fake))
        await collect(openai, make_call(fake, stream=True))
        await azure_like.complete(make_call(fake))
        return shared_clients().get() is client

    assert run(scenario())
    ports = {seen.client_port for seen in fake.requests}
    assert len(fake.requests) == 3 and len(ports) == 1
