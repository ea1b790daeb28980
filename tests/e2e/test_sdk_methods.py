"""Every prompt-management method of `portkey-ai` (34 in 2.3.4), sync and async, against a real `cuecard serve`;
each answer is checked against the response schema Portkey's spec documents for it, and every write is read back.

The documented fields come from `tests/fixtures/portkey_spec/responses.json`, verbatim fragments of
Portkey-AI/openapi's openapi.yaml (its README names the commit). What the check means:
- every property the schema documents is in the answer as the server sent it (`model_dump(exclude_unset=True)`:
  only the keys of the JSON, not the SDK model's defaults); extra fields of cuecard's own are fine;
- a present value has the documented JSON type, and `uuid` and `date-time` formats hold; `null` stands for
  "none" (the SDK's models take it for every optional field), but never for an array or a boolean;
- fields are checked at the top level and in the items of arrays (a list's `data`, a completion's `choices`);
  a `$ref` the fixture does not carry (message content, usage) is checked for presence only.
Where the spec and SDK 2.3.4 disagree the SDK wins (README, "Where cuecard's answers differ from Portkey's
spec"): a list the spec documents as a bare array is the SDK's `{"data": [...]}` wrapper, completions answer the
bare `chat.completion` (the spec's `body`), and `virtual_keys.create` answers the SDK's `VirtualKeysAddResponse`.
SDK 2.3.4's `generations.create` fails before it sends anything, so the deprecated
`POST /v1/prompts/{id}/generate` it would call is checked over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import pytest
from portkey_ai import AsyncPortkey, Portkey
from portkey_ai.api_resources.types.virtual_keys_type import VirtualKeysAddResponse

from tests.e2e.conftest import Server
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.e2e

SPEC = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "portkey_spec" / "responses.json").read_text())
CHAT = json.dumps([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Explain {{topic}}."}])
SECRET = "sk-e2e-sdk-methods-0123456789"
CLIENTS = {"sync": Portkey, "async": AsyncPortkey}

# --- the spec check ----------------------------------------------------------------------------------

JSON_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float),
                                           "boolean": (bool,), "object": (dict,), "array": (list,)}


def resolve(schema: dict[str, Any]) -> dict[str, Any] | None:
    """`schema` with its `$ref` and `allOf` resolved from the fixture; None for a `$ref` it does not carry."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return resolve(SPEC["schemas"][name]) if name in SPEC["schemas"] else None
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in map(resolve, schema["allOf"]):
            merged["properties"].update((part or {}).get("properties", {}))
            merged["required"] += (part or {}).get("required", [])
        return merged
    return schema


def spec_response(operation: str) -> dict[str, Any]:
    return resolve(SPEC["operations"][operation]) or {}


def problems(value: Any, schema: dict[str, Any] | None, where: str, *, depth: int = 0) -> list[str]:
    """How `value` departs from `schema` (an empty list when it does not)."""
    if schema is None or "oneOf" in schema or "anyOf" in schema:
        return []  # a fragment the fixture does not carry, or a choice of shapes: presence only
    kind = schema.get("type")
    if value is None:
        return [f"{where} is null, documented as {kind}"] if kind in ("array", "boolean") else []
    if kind in JSON_TYPES and (not isinstance(value, JSON_TYPES[kind]) or (isinstance(value, bool) and kind != "boolean")):
        return [f"{where} is {type(value).__name__} {value!r:.60}, documented as {kind}"]
    found = []
    if kind == "string" and schema.get("format") == "uuid" and not is_uuid(value):
        found.append(f"{where} = {value!r} is not a UUID")
    if kind == "string" and schema.get("format") == "date-time" and not is_datetime(value):
        found.append(f"{where} = {value!r} is not a date-time")
    if isinstance(value, dict) and depth <= 2 and schema.get("properties"):
        for name, field in schema["properties"].items():
            if name not in value:
                found.append(f"{where}.{name} is missing")
            else:
                found += problems(value[name], resolve(field), f"{where}.{name}", depth=depth + 1)
    if isinstance(value, list) and depth <= 2 and "items" in schema:
        item_schema = resolve(schema["items"])
        for index, item in enumerate(value[:3]):
            found += problems(item, item_schema, f"{where}[{index}]", depth=depth)
    return found


def is_uuid(text: Any) -> bool:
    try:
        return isinstance(text, str) and str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def is_datetime(text: Any) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
        return True
    except (AttributeError, ValueError):
        return False


def as_listed(schema: dict[str, Any]) -> dict[str, Any]:
    """The SDK's wrapper around a list the spec documents as a bare array."""
    return {"type": "object", "properties": {"data": schema}} if schema.get("type") == "array" else schema


def completion_body(operation: str = "POST /prompts/{promptId}/completions") -> dict[str, Any]:
    """The spec's completions answer is `{status, headers, body}`; the SDK reads the bare chat completion."""
    chat_completion = spec_response(operation)["properties"]["body"]["oneOf"][0]
    return resolve(chat_completion) or {}


def sdk_model(model: type) -> dict[str, Any]:
    """An SDK answer model's declared fields as a schema (where the SDK's shape wins over the spec's)."""
    return {"type": "object", "properties": {name: {} for name in model.model_fields}}


def raw(answer: Any) -> Any:
    """What the server sent: the keys of its JSON, not the SDK model's defaults."""
    if hasattr(answer, "model_dump"):
        return answer.model_dump(exclude_unset=True)
    return answer


def assert_documented(answer: Any, schema: dict[str, Any], method: str) -> None:
    found = problems(raw(answer), schema, method)
    assert not found, f"{method} departs from Portkey's spec:\n  " + "\n  ".join(found)


# --- running both clients ------------------------------------------------------------------------------


class Run:
    """One scenario for both clients: `await run(lambda c: c.prompts.list())` awaits the async client's calls."""

    def __init__(self, server: Server, flavour: str) -> None:
        self.server = server
        self.client = CLIENTS[flavour](api_key=server.admin_key, base_url=server.base_url)

    async def __call__(self, call: Callable[[Any], Any]) -> Any:
        answer = call(self.client)
        return await answer if asyncio.iscoroutine(answer) else answer

    async def close(self) -> None:
        """Closes the async client's connections while its event loop still runs."""
        for client in (self.client, self.client.openai_client):
            closed = client.close()
            if asyncio.iscoroutine(closed):
                await closed

    def http(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        return httpx.request(method, f"{self.server.base_url}{path}", json=body, timeout=30,
                             headers={"x-portkey-api-key": self.server.admin_key})


def tag() -> str:
    return uuid.uuid4().hex[:8]


async def new_prompt(run: Run, **extra: Any) -> dict[str, Any]:
    name = f"Methods {tag()}"
    created = raw(await run(lambda c: c.prompts.create(name=name, collection_id="default", string=CHAT,
                                                       parameters={"temperature": 0.5}, model="gpt-4o-mini",
                                                       version_description="v1", **extra)))
    return {**created, "name": name}


async def second_version(run: Run, slug: str) -> dict[str, Any]:
    return raw(await run(lambda c: c.prompts.update(slug, string=CHAT, parameters={"temperature": 0.1},
                                                    model="gpt-4.1", version_description="v2")))


async def new_partial(run: Run) -> dict[str, Any]:
    name = f"part-{tag()}"
    created = raw(await run(lambda c: c.prompts.partials.create(name=name, string="Be brief.",
                                                                version_description="first")))
    return {**created, "name": name}


async def new_label(run: Run) -> dict[str, Any]:
    return raw(await run(lambda c: c.labels.create(name=f"label-{tag()}", description="d", color_code="#00ff00")))


async def new_collection(run: Run) -> dict[str, Any]:
    name = f"coll-{tag()}"
    return {**raw(await run(lambda c: c.collections.create(name=name))), "name": name}


async def new_virtual_key(run: Run, upstream: FakeUpstream | None = None) -> dict[str, Any]:
    host = {"custom_host": upstream.base_url} if upstream else {}
    return raw(await run(lambda c: c.virtual_keys.create(name=f"vk {tag()}", provider="openai", key=SECRET,
                                                         note="n", **host)))


# --- one scenario per SDK method: it makes what the call needs, calls it, and names the documented shape ---

Scenario = Callable[[Run, FakeUpstream], Awaitable[tuple[Any, dict[str, Any]]]]
Made = dict[str, Any]


async def nothing(_: Run) -> Made:
    return {}


async def prompt_v2(run: Run) -> Made:
    prompt = await new_prompt(run)
    return {**prompt, "v2": await second_version(run, prompt["slug"])}


async def prompt_and_label(run: Run) -> Made:
    return {**await new_prompt(run), "label": await new_label(run)}


async def partial_v2(run: Run) -> Made:
    partial = await new_partial(run)
    await run(lambda c: c.prompts.partials.update(partial["slug"], string="Be very brief."))
    return partial


def calling(setup: Callable[[Run], Awaitable[Made]], call: Callable[[Any, Made], Any],
            schema: dict[str, Any]) -> Scenario:
    """Makes what the call needs with `setup`, calls `call(client, made)`; its answer should match `schema`."""

    async def scenario(run: Run, _: FakeUpstream) -> tuple[Any, dict[str, Any]]:
        made = await setup(run)
        return await run(lambda c: call(c, made)), schema

    return scenario


def op(operation: str) -> dict[str, Any]:
    return spec_response(operation)


def listed(operation: str) -> dict[str, Any]:
    return as_listed(spec_response(operation))


PROMPT, PARTIAL = "/prompts/{promptId}", "/prompts/partials/{promptPartialId}"
METHODS: dict[str, Scenario] = {
    "prompts.create": calling(nothing, lambda c, _: c.prompts.create(
        name=f"Create {tag()}", collection_id="default", string=CHAT, parameters={}, model="gpt-4o-mini"),
        op("POST /prompts")),
    "prompts.list": calling(new_prompt, lambda c, p: c.prompts.list(search=p["name"]), op("GET /prompts")),
    "prompts.retrieve": calling(new_prompt, lambda c, p: c.prompts.retrieve(p["slug"]), op(f"GET {PROMPT}")),
    "prompts.update": calling(new_prompt, lambda c, p: c.prompts.update(
        p["slug"], string=CHAT, parameters={"temperature": 0.1}, model="gpt-4.1"), op(f"PUT {PROMPT}")),
    "prompts.delete": calling(new_prompt, lambda c, p: c.prompts.delete(p["slug"]), op(f"DELETE {PROMPT}")),
    "prompts.publish": calling(prompt_v2, lambda c, p: c.prompts.publish(p["slug"], version=2),
                               op(f"PUT {PROMPT}/makeDefault")),
    "prompts.versions.list": calling(prompt_v2, lambda c, p: c.prompts.versions.list(p["slug"]),
                                     listed(f"GET {PROMPT}/versions")),
    "prompts.versions.retrieve": calling(
        prompt_v2, lambda c, p: c.prompts.versions.retrieve(p["slug"], p["v2"]["prompt_version_id"]),
        op(f"GET {PROMPT}/versions/{{versionId}}")),
    "prompts.versions.update": calling(
        prompt_and_label, lambda c, p: c.prompts.versions.update(p["slug"], p["version_id"], label_id=p["label"]["id"]),
        op(f"PUT {PROMPT}/versions/{{versionId}}")),
    "prompts.render": calling(new_prompt, lambda c, p: c.prompts.render(prompt_id=p["slug"],
                                                                       variables={"topic": "tides"}),
                              op(f"POST {PROMPT}/render")),
    "prompts.partials.create": calling(nothing, lambda c, _: c.prompts.partials.create(
        name=f"part-{tag()}", string="Be brief."), op("POST /prompts/partials")),
    "prompts.partials.list": calling(new_partial, lambda c, _: c.prompts.partials.list(),
                                     listed("GET /prompts/partials")),
    "prompts.partials.retrieve": calling(new_partial, lambda c, p: c.prompts.partials.retrieve(p["slug"]),
                                         op(f"GET {PARTIAL}")),
    "prompts.partials.update": calling(new_partial, lambda c, p: c.prompts.partials.update(
        p["slug"], string="Be very brief."), op(f"PUT {PARTIAL}")),
    "prompts.partials.delete": calling(new_partial, lambda c, p: c.prompts.partials.delete(p["slug"]),
                                       op(f"DELETE {PARTIAL}")),
    "prompts.partials.publish": calling(partial_v2, lambda c, p: c.prompts.partials.publish(p["slug"], version=2),
                                        op(f"PUT {PARTIAL}/makeDefault")),
    "prompts.partials.versions.list": calling(partial_v2, lambda c, p: c.prompts.partials.versions.list(p["slug"]),
                                              listed(f"GET {PARTIAL}/versions")),
    "labels.create": calling(nothing, lambda c, _: c.labels.create(
        name=f"label-{tag()}", description="d", color_code="#00ff00"), op("POST /labels")),
    "labels.list": calling(new_label, lambda c, _: c.labels.list(), op("GET /labels")),
    "labels.retrieve": calling(new_label, lambda c, lb: c.labels.retrieve(lb["id"]), op("GET /labels/{labelId}")),
    "labels.update": calling(new_label, lambda c, lb: c.labels.update(lb["id"], description="changed"),
                             op("PUT /labels/{labelId}")),
    "labels.delete": calling(new_label, lambda c, lb: c.labels.delete(lb["id"]), op("DELETE /labels/{labelId}")),
    "collections.create": calling(nothing, lambda c, _: c.collections.create(name=f"coll-{tag()}"),
                                  op("POST /collections")),
    "collections.list": calling(new_collection, lambda c, _: c.collections.list(), op("GET /collections")),
    "collections.retrieve": calling(new_collection, lambda c, co: c.collections.retrieve(co["id"]),
                                    op("GET /collections/{collectionId}")),
    "collections.update": calling(new_collection, lambda c, co: c.collections.update(co["id"], name=f"re-{tag()}"),
                                  op("PUT /collections/{collectionId}")),
    "collections.delete": calling(new_collection, lambda c, co: c.collections.delete(co["id"]),
                                  op("DELETE /collections/{collectionId}")),
    # The SDK's {id, slug, object}, not the spec's {success, data: {slug}}.
    "virtual_keys.create": calling(nothing, lambda c, _: c.virtual_keys.create(
        name=f"vk {tag()}", provider="openai", key=SECRET), sdk_model(VirtualKeysAddResponse)),
    "virtual_keys.list": calling(new_virtual_key, lambda c, _: c.virtual_keys.list(), op("GET /virtual-keys")),
    "virtual_keys.retrieve": calling(new_virtual_key, lambda c, k: c.virtual_keys.retrieve(slug=k["slug"]),
                                     op("GET /virtual-keys/{slug}")),
    "virtual_keys.update": calling(new_virtual_key, lambda c, k: c.virtual_keys.update(slug=k["slug"], note="new"),
                                   op("PUT /virtual-keys/{slug}")),
    "virtual_keys.delete": calling(new_virtual_key, lambda c, k: c.virtual_keys.delete(slug=k["slug"]),
                                   op("DELETE /virtual-keys/{slug}")),
}


def method(name: str) -> Callable[[Scenario], Scenario]:
    def register(scenario: Scenario) -> Scenario:
        METHODS[name] = scenario
        return scenario
    return register


async def bound_prompt(run: Run, upstream: FakeUpstream) -> str:
    key = await new_virtual_key(run, upstream)
    return (await new_prompt(run, virtual_key=key["slug"]))["slug"]


@method("prompts.completions.create")
async def _completions(run: Run, upstream: FakeUpstream) -> tuple[Any, dict[str, Any]]:
    slug = await bound_prompt(run, upstream)
    answer = await run(lambda c: c.prompts.completions.create(prompt_id=slug, variables={"topic": "tides"}))
    return answer, completion_body()


@method("prompts.completions.create(stream=True)")
async def _completions_stream(run: Run, upstream: FakeUpstream) -> tuple[Any, dict[str, Any]]:
    slug = await bound_prompt(run, upstream)
    stream = await run(lambda c: c.prompts.completions.create(prompt_id=slug, variables={"topic": "tides"},
                                                              stream=True, stream_options={"include_usage": True}))
    chunks = [raw(chunk) async for chunk in stream] if hasattr(stream, "__aiter__") else [raw(c) for c in stream]
    assert chunks, "no chunk streamed"
    chunk_schema = resolve({"$ref": "#/components/schemas/CreateChatCompletionStreamResponse"}) or {}
    return chunks, {"type": "array", "items": chunk_schema}


@method("generations.create")
async def _generate(run: Run, upstream: FakeUpstream) -> tuple[Any, dict[str, Any]]:
    """SDK 2.3.4's `generations.create` raises before sending; older SDKs POST this route."""
    slug = await bound_prompt(run, upstream)
    answer = run.http("POST", f"/prompts/{slug}/generate", {"variables": {"topic": "tides"}})
    assert answer.status_code == 200, answer.text
    return answer.json(), completion_body()


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream() as fake:
        yield fake


def test_every_prompt_management_method_is_covered() -> None:
    """34 methods of SDK 2.3.4 (the streaming completion is a 35th case of the same method)."""
    assert len({name.split("(")[0] for name in METHODS}) == 34
    client = Portkey(api_key="unused", base_url="http://127.0.0.1:9/v1")
    for name in METHODS:
        target: Any = client
        for part in name.split("(")[0].split("."):
            target = getattr(target, part)
        assert callable(target), name


def test_the_spec_check_sees_a_missing_field_a_wrong_type_and_a_null_array() -> None:
    prompt = spec_response("GET /prompts/{promptId}")
    assert "Prompt.slug is missing" in problems({"id": str(uuid.uuid4())}, prompt, "Prompt")
    found = problems({"data": [{"id": "x", "tools": None, "is_raw_template": 0}]},
                     as_listed({"type": "array", "items": prompt}), "list")
    assert {"list.data[0].id = 'x' is not a UUID", "list.data[0].tools is null, documented as array",
            "list.data[0].is_raw_template is int 0, documented as boolean"} <= set(found)


@pytest.mark.parametrize("flavour", CLIENTS)
@pytest.mark.parametrize("name", METHODS)
def test_method_answers_every_documented_field(server: Server, upstream: FakeUpstream, name: str,
                                               flavour: str) -> None:
    async def scenario() -> None:
        run = Run(server, flavour)
        try:
            answer, schema = await METHODS[name](run, upstream)
        finally:
            await run.close()
        assert_documented(answer, schema, name)

    asyncio.run(scenario())


# --- every write, read back ---------------------------------------------------------------------------


def readback(test: Callable[[Run], Awaitable[None]]) -> Callable[..., None]:
    """`test(run)` for the sync and the async client, each against the module's server."""

    @pytest.mark.parametrize("flavour", CLIENTS)
    def run_it(server: Server, flavour: str) -> None:
        async def scenario() -> None:
            run = Run(server, flavour)
            try:
                await test(run)
            finally:
                await run.close()

        asyncio.run(scenario())

    run_it.__name__, run_it.__doc__ = test.__name__, test.__doc__
    return run_it


async def versions_of(run: Run, slug: str) -> list[dict[str, Any]]:
    return raw(await run(lambda c: c.prompts.versions.list(slug)))["data"]


@readback
async def test_a_created_prompt_is_retrieved_and_listed_as_sent(run: Run) -> None:
    prompt = await new_prompt(run)
    shown = raw(await run(lambda c: c.prompts.retrieve(prompt["slug"])))
    assert (shown["id"], shown["slug"], shown["name"], shown["string"]) == (prompt["id"], prompt["slug"],
                                                                             prompt["name"], CHAT)
    assert shown["parameters"]["temperature"] == 0.5 and shown["model"] == "gpt-4o-mini"
    assert shown["prompt_version"] == 1 and shown["prompt_version_description"] == "v1"
    assert shown["prompt_version_id"] == prompt["version_id"]
    listed = raw(await run(lambda c: c.prompts.list(search=prompt["name"])))["data"]
    assert [item["id"] for item in listed] == [prompt["id"]]


@readback
async def test_a_full_update_is_a_new_version_that_publish_makes_the_default(run: Run) -> None:
    prompt = await new_prompt(run)
    updated = await second_version(run, prompt["slug"])
    await run(lambda c: c.prompts.publish(prompt["slug"], version=2))
    shown = raw(await run(lambda c: c.prompts.retrieve(prompt["slug"])))
    assert shown["prompt_version"] == 2 and shown["prompt_version_id"] == updated["prompt_version_id"]
    assert shown["model"] == "gpt-4.1" and shown["parameters"]["temperature"] == 0.1
    assert [v["prompt_version"] for v in await versions_of(run, prompt["slug"])] == [2, 1]
    version = raw(await run(lambda c: c.prompts.versions.retrieve(prompt["slug"], prompt["version_id"])))
    assert version["prompt_version"] == 1 and version["prompt_version_description"] == "v1"


@readback
async def test_a_name_only_update_renames_without_a_new_version(run: Run) -> None:
    """The spec: `name`, `collection_id`, `version_description` and `virtual_key` change without versioning."""
    prompt = await new_prompt(run)
    new_name = f"Renamed {tag()}"
    await run(lambda c: c.prompts.update(prompt["slug"], name=new_name))
    shown = raw(await run(lambda c: c.prompts.retrieve(prompt["slug"])))
    assert shown["name"] == new_name and shown["prompt_version"] == 1 and shown["string"] == CHAT
    assert len(await versions_of(run, prompt["slug"])) == 1
    assert [item["id"] for item in raw(await run(lambda c: c.prompts.list(search=new_name)))["data"]] == [prompt["id"]]


@readback
async def test_a_prompt_moves_to_another_collection_without_a_new_version(run: Run) -> None:
    prompt, collection = await new_prompt(run), await new_collection(run)
    await run(lambda c: c.prompts.update(prompt["slug"], collection_id=collection["id"]))
    shown = raw(await run(lambda c: c.prompts.retrieve(prompt["slug"])))
    assert shown["collection_id"] == collection["id"] and shown["prompt_version"] == 1
    assert len(await versions_of(run, prompt["slug"])) == 1
    inside = raw(await run(lambda c: c.prompts.list(collection_id=collection["id"])))["data"]
    assert [item["id"] for item in inside] == [prompt["id"]]
    assert prompt["id"] not in [item["id"] for item in
                                raw(await run(lambda c: c.prompts.list(collection_id="default")))["data"]]


@readback
async def test_a_label_is_put_on_a_version_and_taken_off_again(run: Run) -> None:
    prompt, label = await new_prompt(run), await new_label(run)
    await run(lambda c: c.prompts.versions.update(prompt["slug"], prompt["version_id"], label_id=label["id"]))
    assert raw(await run(lambda c: c.prompts.retrieve(prompt["slug"])))["prompt_version_label_id"] == label["id"]
    assert [v["label_id"] for v in await versions_of(run, prompt["slug"])] == [label["id"]]
    await run(lambda c: c.prompts.versions.update(prompt["slug"], prompt["version_id"], label_id=None))
    assert raw(await run(lambda c: c.prompts.retrieve(prompt["slug"])))["prompt_version_label_id"] is None
    assert [v["label_id"] for v in await versions_of(run, prompt["slug"])] == [None]


@readback
async def test_a_deleted_prompt_is_gone_from_retrieve_and_list(run: Run) -> None:
    prompt = await new_prompt(run)
    await run(lambda c: c.prompts.delete(prompt["slug"]))
    assert run.http("GET", f"/prompts/{prompt['slug']}").status_code == 404
    assert raw(await run(lambda c: c.prompts.list(search=prompt["name"])))["data"] == []


@readback
async def test_a_partial_is_created_updated_described_published_and_deleted(run: Run) -> None:
    partial = await new_partial(run)
    shown = raw(await run(lambda c: c.prompts.partials.retrieve(partial["slug"])))
    assert (shown["name"], shown["string"], shown["version_description"]) == (partial["name"], "Be brief.", "first")
    assert partial["slug"] in [p["slug"] for p in raw(await run(lambda c: c.prompts.partials.list()))["data"]]

    await run(lambda c: c.prompts.partials.update(partial["slug"], string="Be very brief."))
    await run(lambda c: c.prompts.partials.update(partial["slug"], description="described"))
    versions = raw(await run(lambda c: c.prompts.partials.versions.list(partial["slug"])))["data"]
    assert [(v["version"], v["string"], v["description"]) for v in versions][0] == ("3", "Be very brief.", "described")
    await run(lambda c: c.prompts.partials.publish(partial["slug"], version=3))
    shown = raw(await run(lambda c: c.prompts.partials.retrieve(partial["slug"])))
    assert (shown["string"], shown["version_description"]) == ("Be very brief.", "described")
    assert shown["prompt_partial_version_id"] == versions[0]["prompt_partial_version_id"]

    await run(lambda c: c.prompts.partials.delete(partial["slug"]))
    assert run.http("GET", f"/prompts/partials/{partial['slug']}").status_code == 404
    assert partial["slug"] not in [p["slug"] for p in raw(await run(lambda c: c.prompts.partials.list()))["data"]]


@readback
async def test_a_label_is_created_updated_and_deleted(run: Run) -> None:
    label = await new_label(run)
    shown = raw(await run(lambda c: c.labels.retrieve(label["id"])))
    assert (shown["description"], shown["color_code"]) == ("d", "#00ff00")
    new_name = f"label-{tag()}"
    await run(lambda c: c.labels.update(label["id"], name=new_name, description="changed", color_code="#0000ff"))
    shown = raw(await run(lambda c: c.labels.retrieve(label["id"])))
    assert (shown["name"], shown["description"], shown["color_code"]) == (new_name, "changed", "#0000ff")
    assert label["id"] in [item["id"] for item in raw(await run(lambda c: c.labels.list()))["data"]]
    await run(lambda c: c.labels.delete(label["id"]))
    assert run.http("GET", f"/labels/{label['id']}").status_code == 404
    assert label["id"] not in [item["id"] for item in raw(await run(lambda c: c.labels.list()))["data"]]


@readback
async def test_a_collection_is_created_renamed_and_deleted(run: Run) -> None:
    collection = await new_collection(run)
    shown = raw(await run(lambda c: c.collections.retrieve(collection["id"])))
    assert (shown["id"], shown["slug"], shown["name"]) == (collection["id"], collection["slug"], collection["name"])
    assert collection["id"] in [item["id"] for item in raw(await run(lambda c: c.collections.list()))["data"]]
    new_name = f"renamed-{tag()}"
    await run(lambda c: c.collections.update(collection["id"], name=new_name))
    assert raw(await run(lambda c: c.collections.retrieve(collection["id"])))["name"] == new_name
    await run(lambda c: c.collections.delete(collection["id"]))
    assert run.http("GET", f"/collections/{collection['id']}").status_code == 404
    assert collection["id"] not in [item["id"] for item in raw(await run(lambda c: c.collections.list()))["data"]]


@readback
async def test_a_virtual_key_is_created_updated_and_deleted(run: Run) -> None:
    key = await new_virtual_key(run)
    shown = raw(await run(lambda c: c.virtual_keys.retrieve(slug=key["slug"])))
    assert shown["slug"] == key["slug"] and shown["note"] == "n"
    new_name = f"vk {tag()}"
    await run(lambda c: c.virtual_keys.update(slug=key["slug"], name=new_name, note="changed"))
    shown = raw(await run(lambda c: c.virtual_keys.retrieve(slug=key["slug"])))
    assert (shown["name"], shown["note"]) == (new_name, "changed")
    assert key["slug"] in [item["slug"] for item in raw(await run(lambda c: c.virtual_keys.list()))["data"]]
    await run(lambda c: c.virtual_keys.delete(slug=key["slug"]))
    assert run.http("GET", f"/virtual-keys/{key['slug']}").status_code == 404
    assert key["slug"] not in [item["slug"] for item in raw(await run(lambda c: c.virtual_keys.list()))["data"]]
