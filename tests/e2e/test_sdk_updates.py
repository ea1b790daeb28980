"""`prompts.update(...)` as SDK 2.3.4 sends it (no `patch` argument), sync and async, read back through the SDK;
and partials used by the name an SDK user gave them.

The rule is Portkey's spec (Portkey-AI/openapi, openapi.yaml, `PUT /prompts/{promptId}`): `name` and
`collection_id` change without affecting versioning; an update with template fields but no `patch` must carry
them all (cuecard: `string` and `parameters`)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from portkey_ai import AsyncPortkey, Portkey
from portkey_ai.api_resources.exceptions import BadRequestError

from tests.e2e.test_sdk_shapes import Sync as Run
from tests.e2e.test_sdk_shapes import plain

pytestmark = pytest.mark.e2e

CHAT = json.dumps([{"role": "user", "content": "Explain {{topic}}. {{>glossary}}"}])


async def scenario(run: Run, tag: str) -> None:
    glossary = plain(await run(lambda c: c.prompts.partials.create(name=f"glossary-{tag}", string="G:{{topic}}")))
    assert glossary["slug"].startswith("pl-glossary-")  # generated: the user only knows the name
    string = CHAT.replace("glossary", f"glossary-{tag}")
    created = plain(await run(lambda c: c.prompts.create(
        name=f"Updates {tag}", collection_id="default", string=string, parameters={"temperature": 0.5},
        model="gpt-4o-mini", version_description="v1")))
    slug = created["slug"]

    # A name-only update: no version, the answer names the latest version (Portkey's id, slug, prompt_version_id).
    renamed = plain(await run(lambda c: c.prompts.update(slug, name=f"Renamed {tag}")))
    assert renamed["id"] == created["id"] and renamed["slug"] == slug
    assert renamed["prompt_version_id"] == created["version_id"]
    detail = plain(await run(lambda c: c.prompts.retrieve(slug)))
    assert detail["name"] == f"Renamed {tag}" and detail["prompt_version"] == 1
    assert len(plain(await run(lambda c: c.prompts.versions.list(slug)))["data"]) == 1

    # A collection move: no version either; read back and listed under the new collection.
    collection = plain(await run(lambda c: c.collections.create(name=f"Team {tag}")))["id"]
    await run(lambda c: c.prompts.update(slug, collection_id=collection))
    assert plain(await run(lambda c: c.prompts.retrieve(slug)))["collection_id"] == collection
    assert len(plain(await run(lambda c: c.prompts.versions.list(slug)))["data"]) == 1
    await run(lambda c: c.prompts.update(slug, collection_id="default"))  # back, where the partial is

    # A description alone: versions are immutable, so one new version copying the latest.
    described = plain(await run(lambda c: c.prompts.update(slug, version_description="explained")))
    assert described["prompt_version_id"] != created["version_id"]
    second = plain(await run(lambda c: c.prompts.versions.retrieve(slug, described["prompt_version_id"])))
    assert second["string"] == string and second["prompt_version_description"] == "explained"

    # Some template fields without the rest: a 400 telling an SDK user what to send; nothing is written.
    with pytest.raises(BadRequestError) as refused:
        await run(lambda c: c.prompts.update(slug, string=string, name="never"))
    assert "prompts.update(id, string=..., parameters=...)" in str(refused.value)
    assert plain(await run(lambda c: c.prompts.retrieve(slug)))["name"] == f"Renamed {tag}"

    # The whole template: one new version.
    full = plain(await run(lambda c: c.prompts.update(slug, string=string, parameters={"temperature": 0.1})))
    assert len(plain(await run(lambda c: c.prompts.versions.list(slug)))["data"]) == 3
    await run(lambda c: c.prompts.publish(slug, version=3))
    assert full["prompt_version_id"] == plain(await run(lambda c: c.prompts.retrieve(slug)))["prompt_version_id"]

    # `{{>glossary-<tag>}}` is the partial's name, not its slug: it renders.
    rendered = await run(lambda c: c.prompts.render(prompt_id=slug, variables={"topic": "rain"}))
    assert rendered.data.messages[0]["content"] == "Explain rain. G:rain"


def test_sdk_updates_sync(server) -> None:
    client = Portkey(api_key=server.admin_key, base_url=server.base_url)
    asyncio.run(scenario(Run(client), f"s{uuid.uuid4().hex[:6]}"))


def test_sdk_updates_async(server) -> None:
    async def main() -> None:
        await scenario(Run(AsyncPortkey(api_key=server.admin_key, base_url=server.base_url)), f"a{uuid.uuid4().hex[:6]}")

    asyncio.run(main())
