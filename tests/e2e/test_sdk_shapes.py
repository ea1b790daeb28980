"""The fields Portkey's spec documents, read back through the unchanged `portkey-ai` SDK, sync and async.

Field lists: Portkey-AI/openapi, openapi.yaml, components.schemas `Prompt`, `PromptSummary`,
`PromptVersionSummary`, `PromptPartial`, `PromptPartialVersion`, `Label` and `VirtualKeys`."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from portkey_ai import AsyncPortkey, Portkey

from core.models import DEFAULT_COLLECTION_ID

pytestmark = pytest.mark.e2e

CHAT = json.dumps([{"role": "user", "content": "Explain {{topic}}."}])
PROMPT = {"id", "slug", "name", "collection_id", "string", "parameters", "prompt_version", "prompt_version_id",
          "prompt_version_status", "prompt_version_description", "prompt_version_label_id", "virtual_key", "model",
          "functions", "tools", "tool_choice", "template_metadata", "is_raw_template", "status", "created_at",
          "last_updated_at"}
PROMPT_SUMMARY = {"id", "slug", "name", "collection_id", "model", "status", "created_at", "last_updated_at", "object"}
VERSION_SUMMARY = {"id", "prompt_id", "prompt_template", "prompt_version", "prompt_description", "label_id",
                   "created_at", "status", "object"}
PARTIAL = {"id", "slug", "name", "collection_id", "string", "version", "version_description",
           "prompt_partial_version_id", "created_at", "last_updated_at", "status"}
PARTIAL_VERSION = {"prompt_partial_id", "prompt_partial_version_id", "slug", "version", "string", "description",
                   "created_at", "prompt_version_status", "object"}
LABEL = {"id", "name", "description", "color_code", "organisation_id", "workspace_id", "is_universal", "created_at",
         "last_updated_at", "status"}
VIRTUAL_KEY = {"name", "note", "status", "usage_limits", "reset_usage", "created_at", "slug", "model_config",
               "rate_limits", "expires_at", "secret_mappings", "object"}


def plain(answer: Any) -> dict[str, Any]:
    return answer if isinstance(answer, dict) else answer.model_dump()


def is_uuid(text: Any) -> bool:
    return isinstance(text, str) and str(uuid.UUID(text)) == text


class Sync:
    """The async client's calls, awaited; so one scenario drives both."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def __call__(self, call: Any) -> Any:
        answer = call(self.client)
        return await answer if asyncio.iscoroutine(answer) else answer


async def scenario(run: Sync, tag: str) -> None:
    created = plain(await run(lambda c: c.prompts.create(
        name=f"Shapes {tag}", collection_id="default", string=CHAT, parameters={"temperature": 0.5},
        model="gpt-4o-mini", version_description="v1")))
    slug = created["slug"]
    updated = plain(await run(lambda c: c.prompts.update(slug, string=CHAT, parameters={"temperature": 0.1},
                                                         model="gpt-4.1", version_description="v2")))
    await run(lambda c: c.prompts.publish(slug, version=2))
    label = plain(await run(lambda c: c.labels.create(name=f"shape-{tag}", organization_id=str(uuid.uuid4()),
                                                      description="d", color_code="#00ff00")))
    await run(lambda c: c.prompts.versions.update(slug, updated["prompt_version_id"], label_id=label["id"]))

    detail = plain(await run(lambda c: c.prompts.retrieve(slug)))
    assert PROMPT <= detail.keys()
    assert is_uuid(detail["id"]) and is_uuid(detail["prompt_version_id"]) and detail["prompt_version"] == 2
    assert detail["prompt_version_status"] == "active" and detail["prompt_version_label_id"] == label["id"]
    assert detail["is_raw_template"] is False and detail["tools"] == [] and detail["functions"] == []

    listed = plain(await run(lambda c: c.prompts.list(search=f"Shapes {tag}")))["data"]
    assert len(listed) == 1 and PROMPT_SUMMARY <= listed[0].keys() and listed[0]["model"] == "gpt-4.1"
    # A prompt the SDK made (no workspace_id) is in every workspace.
    assert [p["slug"] for p in plain(await run(lambda c: c.prompts.list(workspace_id="ws-any", search=f"Shapes {tag}")))[
        "data"]] == [slug]

    version = plain(await run(lambda c: c.prompts.versions.retrieve(slug, updated["prompt_version_id"])))
    assert PROMPT <= version.keys()
    assert version["name"] == f"Shapes {tag}" and version["collection_id"] == DEFAULT_COLLECTION_ID and version["status"] == "active"
    assert version["prompt_version_id"] == updated["prompt_version_id"] and version["prompt_version_label_id"] == label["id"]
    assert version["last_updated_at"] and version["is_raw_template"] is False

    versions = plain(await run(lambda c: c.prompts.versions.list(slug)))["data"]
    assert all(VERSION_SUMMARY <= item.keys() and item["object"] == "prompt" for item in versions)
    assert [(v["prompt_description"], v["label_id"]) for v in versions] == [("v2", label["id"]), ("v1", None)]
    assert versions[0]["prompt_template"]["model"] == "gpt-4.1" and versions[0]["status"] == "active"

    partial = plain(await run(lambda c: c.prompts.partials.create(name=f"part {tag}", string="Be brief.",
                                                                  version_description="first")))
    answer = plain(await run(lambda c: c.prompts.partials.update(partial["slug"], description="described")))
    assert is_uuid(answer["prompt_partial_version_id"])
    shown = plain(await run(lambda c: c.prompts.partials.retrieve(partial["slug"])))
    assert PARTIAL <= shown.keys() and shown["prompt_partial_version_id"] == partial["version_id"]
    partial_versions = plain(await run(lambda c: c.prompts.partials.versions.list(partial["slug"])))["data"]
    assert all(PARTIAL_VERSION <= item.keys() for item in partial_versions)
    assert [(v["version"], v["description"], v["string"]) for v in partial_versions] == [
        ("2", "described", "Be brief."), ("1", "first", "Be brief.")]
    assert partial_versions[0]["prompt_partial_version_id"] == answer["prompt_partial_version_id"]

    read = plain(await run(lambda c: c.labels.retrieve(label["id"])))
    assert LABEL <= read.keys() and read["status"] == "active" and read["last_updated_at"]
    assert [item["id"] for item in plain(await run(lambda c: c.labels.list(workspace_id="ws-any")))["data"]
            if item["id"] == label["id"]] == [label["id"]]

    limits = {"credit_limit": 10, "periodic_reset": "monthly"}
    key = plain(await run(lambda c: c.virtual_keys.create(
        name=f"vk {tag}", provider="mock", usage_limits=limits, workspace_id="ws-1",
        rate_limits=[{"type": "requests", "unit": "rpm", "value": 5}], expires_at="2030-01-01T00:00:00Z",
        reset_usage=0, model_config={"custom": tag})))
    read_key = plain(await run(lambda c: c.virtual_keys.retrieve(slug=key["slug"])))
    assert VIRTUAL_KEY <= read_key.keys() and read_key["usage_limits"] == limits
    assert read_key["rate_limits"] == [{"type": "requests", "unit": "rpm", "value": 5}]
    assert read_key["expires_at"] == "2030-01-01T00:00:00Z" and read_key["reset_usage"] == 0
    assert read_key["model_config"] == {"custom": tag} and read_key["secret_mappings"] == []
    in_ws1 = plain(await run(lambda c: c.virtual_keys.list(workspace_id="ws-1")))["data"]
    in_ws2 = plain(await run(lambda c: c.virtual_keys.list(workspace_id="ws-2")))["data"]
    assert key["slug"] in [k["slug"] for k in in_ws1] and key["slug"] not in [k["slug"] for k in in_ws2]


def test_sync_sdk_reads_every_documented_field(server) -> None:
    asyncio.run(scenario(Sync(Portkey(api_key=server.admin_key, base_url=server.base_url)), "sync"))


def test_async_sdk_reads_every_documented_field(server) -> None:
    asyncio.run(scenario(Sync(AsyncPortkey(api_key=server.admin_key, base_url=server.base_url)), "async"))


def test_the_sdk_takes_a_label_off_a_version_and_a_deleted_slug_is_free_again(server) -> None:
    client = Portkey(api_key=server.admin_key, base_url=server.base_url)
    headers = {"x-portkey-api-key": server.admin_key}
    slug = f"reuse-{uuid.uuid4().hex[:8]}"  # the SDK's create takes no slug; the samples' slugs are chosen like this

    def create(string: str) -> dict[str, Any]:
        answer = httpx.post(f"{server.base_url}/prompts", headers=headers,
                            json={"name": "Reuse", "slug": slug, "string": string, "parameters": {}})
        assert answer.status_code == 200, answer.text
        return answer.json()

    first = create("first {{x}}")
    client.prompts.versions.update(slug, "1", label_id="staging")
    assert client.prompts.retrieve(slug).labels == {"staging": 1}
    client.prompts.versions.update(slug, "1", label_id=None)  # the SDK sends {"label_id": null}
    assert client.prompts.retrieve(slug).labels == {}
    client.prompts.delete(slug)
    second = create("second {{x}}")
    assert second["id"] != first["id"]
    assert client.prompts.render(prompt_id=slug, variables={"x": "!"}).data.prompt == "second !"
