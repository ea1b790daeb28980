"""The `portkey-ai` SDK, unchanged, as a real client of `cuecard serve`."""

from __future__ import annotations

import json

import httpx
import pytest
from portkey_ai import Portkey

pytestmark = pytest.mark.e2e

CHAT = json.dumps([
    {"role": "system", "content": "You write for {{audience}}."},
    {"role": "user", "content": "Explain {{topic}} in one line."},
])


@pytest.fixture(scope="module")
def client(server) -> Portkey:
    return Portkey(api_key=server.admin_key, base_url=server.base_url)


@pytest.fixture(scope="module")
def prompt(client):
    created = client.prompts.create(
        name="E2E explain",
        collection_id="default",
        string=CHAT,
        parameters={"temperature": 0.5, "max_tokens": 100},
        model="gpt-4o-mini",
        version_description="v1",
    )
    return created


def _render(client, prompt_id: str, **kwargs):
    return client.prompts.render(prompt_id=prompt_id, variables={"audience": "kids", "topic": "rain"}, **kwargs)


def test_create_answers_id_slug_and_version(prompt) -> None:
    assert prompt.id and prompt.slug.startswith("pp-e2e-expla")
    assert prompt.version_id and prompt.object == "prompt"


def test_render_published_by_id_and_slug(client, prompt) -> None:
    for key in (prompt.id, prompt.slug):
        rendered = _render(client, key)
        assert rendered.success is True
        data = rendered.data.model_dump(exclude_none=True)
        assert data["model"] == "gpt-4o-mini"
        assert data["temperature"] == 0.5 and data["max_tokens"] == 100
        assert [m["content"] for m in data["messages"]] == ["You write for kids.", "Explain rain in one line."]


def test_update_publish_versions_and_every_reference_form(client, prompt) -> None:
    updated = client.prompts.update(
        prompt.slug,
        string=CHAT.replace("one line", "two lines"),
        parameters={"temperature": 0.2, "max_tokens": 100},
        model="gpt-4o-mini",
        version_description="v2",
    )
    assert updated.prompt_version_id

    def content(ref: str) -> str:
        return _render(client, ref).data.messages[1].content

    # An update makes a new version but does not publish it.
    assert content(prompt.slug) == "Explain rain in one line."
    assert content(f"{prompt.slug}@latest") == "Explain rain in two lines."
    assert content(f"{prompt.slug}@1") == "Explain rain in one line."
    assert content(f"{prompt.id}@2") == "Explain rain in two lines."

    client.prompts.publish(prompt.slug, version=2)
    assert content(prompt.slug) == "Explain rain in two lines."

    versions = client.prompts.versions.list(prompt.slug)
    assert versions.total == 2
    assert [v["prompt_version"] for v in versions.data] == [2, 1]

    client.prompts.versions.update(prompt.slug, versions.data[1]["id"], label_id="staging")
    assert content(f"{prompt.slug}@staging") == "Explain rain in one line."
    retrieved = client.prompts.versions.retrieve(prompt.slug, versions.data[1]["id"])
    assert retrieved.labels == ["staging"]


def test_root_overrides_apply_to_one_call_only(client, prompt) -> None:
    first = _render(client, f"{prompt.slug}@1", temperature=1.5, max_tokens=7, top_p=0.9)
    assert (first.data.temperature, first.data.max_tokens, first.data.top_p) == (1.5, 7, 0.9)
    again = _render(client, f"{prompt.slug}@1")
    assert (again.data.temperature, again.data.max_tokens, again.data.top_p) == (0.5, 100, None)


def test_render_headers_name_the_resolved_version(server, prompt) -> None:
    response = httpx.post(
        f"{server.base_url}/prompts/{prompt.slug}@1/render",
        headers={"x-portkey-api-key": server.admin_key},
        json={"variables": {"audience": "a", "topic": "b"}},
    )
    assert response.status_code == 200
    assert response.headers["x-cuecard-prompt-id"] == prompt.id
    assert response.headers["x-cuecard-prompt-version"] == "1"
    assert response.headers["x-portkey-request-id"]


def test_sdk_sees_errors_in_openai_shape(client, server) -> None:
    from portkey_ai.api_resources.exceptions import BadRequestError, NotFoundError

    with pytest.raises(NotFoundError):
        client.prompts.render(prompt_id="pp-nothing-000000", variables={})
    with pytest.raises(BadRequestError):
        client.prompts.render(prompt_id="pp-nothing-000000@latest", variables={}, temperature=9)
    anonymous = Portkey(api_key="", base_url=server.base_url)
    response = httpx.post(f"{server.base_url}/prompts/x/render", headers={"x-portkey-api-key": ""}, json={})
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    del anonymous


def test_sample_prompts_are_loaded_on_first_start(client) -> None:
    rendered = client.prompts.render(prompt_id="support-reply@production",
                                     variables={"product": "Acme", "tone": "warm", "question": "Hi?"})
    assert rendered.data.temperature == 0.2
    assert rendered.data.messages[0].content.startswith("You are a support agent for Acme.")
