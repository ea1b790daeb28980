"""VirtualKeyService over in-memory ports: validation, secret handling, views, and the prompt check."""

from __future__ import annotations

import itertools
import json

import pytest

from core.errors import Conflict, InvalidRequest, StoreUnavailable, VirtualKeyNotFound
from core.service import PromptService
from core.virtual_keys import VirtualKeyService, mask_key, secret_name
from tests.unit.fakes import InMemoryStore
from tests.unit.virtual_key_fakes import InMemorySecretStore, InMemoryVirtualKeyStore

SECRET = "sk-proj-UNIT-test-secret-000000a1b2"
CHAT = json.dumps([{"role": "user", "content": "Hi {{name}}"}])


def ids():
    counter = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(counter):012d}"


@pytest.fixture
def store() -> InMemoryVirtualKeyStore:
    return InMemoryVirtualKeyStore()


@pytest.fixture
def secrets() -> InMemorySecretStore:
    return InMemorySecretStore()


@pytest.fixture
def service(store, secrets) -> VirtualKeyService:
    return VirtualKeyService(store, secrets, now=lambda: "2026-01-01T00:00:00.000Z", new_id=ids())


def openai(**extra):
    return {"name": "OpenAI prod", "provider": "openai", "key": SECRET, **extra}


# --- masking ------------------------------------------------------------------------------------


def test_mask_shows_four_characters_at_each_end_of_a_long_key_only() -> None:
    assert mask_key("sk-proj-abcdefghijklmnopa1b2") == "sk-p****************a1b2"
    assert mask_key("x" * 200).count("*") == 16  # the mask does not tell the length
    assert mask_key("short-key-123") == "*" * 16
    assert mask_key("a" * 19) == "*" * 16


# --- create -------------------------------------------------------------------------------------


def test_create_answers_what_the_sdk_reads_and_keeps_the_secret_in_the_secret_store(service, store, secrets) -> None:
    created = service.create(openai(slug="openai-prod", note="main account"))
    assert created == {"id": "00000000-0000-4000-8000-000000000001", "slug": "openai-prod", "object": "virtual-key"}
    binding = store.bindings[created["id"]]
    assert binding.secret_ref == "test/" + secret_name(created["id"])
    assert secrets.values[binding.secret_ref] == SECRET
    assert binding.masked_key == "sk-p****************a1b2"
    assert SECRET not in repr(binding)


def test_a_generated_slug_is_prefixed_and_named_after_the_binding(service) -> None:
    slug = service.create(openai(name="My OpenAI!"))["slug"]
    assert slug.startswith("vk-my-openai-") and len(slug) == len("vk-my-openai-") + 6


def test_views_show_the_masked_key_never_the_key_or_its_reference(service, store) -> None:
    created = service.create(openai(slug="openai-prod", headers={"OpenAI-Organization": "org-1"}, apiVersion="2024-10-21"))
    ref = store.bindings[created["id"]].secret_ref
    for view in (service.get(created["id"]), service.get("openai-prod"), service.list({})["data"][0]):
        text = json.dumps(view)
        assert SECRET not in text and ref not in text and "secret_ref" not in text
        assert view["masked_key"] == view["masked_api_key"] == "sk-p****************a1b2"
        assert view["object"] == "virtual-key" and view["provider"] == view["ai_provider_name"] == "openai"
        assert view["headers"] == {"OpenAI-Organization": "*" * 16}  # the name, and the value masked
        assert view["config"] == {"api_version": "2024-10-21"}


def test_every_header_value_is_masked_whatever_its_name_and_stored_as_sent(service, store) -> None:
    headers = {"X-Custom-Auth": "token-0123456789abcdefWXYZ", "x-b": "short", "OpenAI-Project": "proj_abc"}
    created = service.create(openai(headers=headers))
    for view in (service.get(created["id"]), service.list({})["data"][0]):
        assert view["headers"] == {"X-Custom-Auth": "toke****************WXYZ", "x-b": "*" * 16,
                                   "OpenAI-Project": "*" * 16}
        assert not any(value in json.dumps(view) for value in headers.values())
    assert dict(store.bindings[created["id"]].headers) == headers  # what the provider adapters send


def test_headers_read_back_masked_and_sent_again_keep_their_values(service, store) -> None:
    created = service.create(openai(headers={"X-Token": "token-0123456789abcdefWXYZ", "x-b": "short"}))
    shown = service.get(created["id"])["headers"]
    service.update(created["id"], {"headers": {**shown, "x-c": "new"}})
    assert dict(store.bindings[created["id"]].headers) == {"X-Token": "token-0123456789abcdefWXYZ", "x-b": "short",
                                                           "x-c": "new"}
    service.update(created["id"], {"headers": {"x-token": shown["X-Token"]}})  # names match case-insensitively
    assert dict(store.bindings[created["id"]].headers) == {"x-token": "token-0123456789abcdefWXYZ"}


@pytest.mark.parametrize("headers", [{"X-Token": "*" * 16}, {"X-Token": "toke" + "*" * 16 + "ABCD"}, {"x-c": "a" + "*" * 16}])
def test_a_masked_value_that_is_not_the_current_ones_mask_is_refused(service, store, headers) -> None:
    created = service.create(openai(headers={"X-Token": "token-0123456789abcdefWXYZ", "x-b": "short"}))
    before = store.bindings[created["id"]]
    with pytest.raises(InvalidRequest) as raised:
        service.update(created["id"], {"headers": headers})
    assert raised.value.param == "headers" and store.bindings[created["id"]] is before
    with pytest.raises(InvalidRequest):
        service.create(openai(headers=headers))  # nothing to keep on create


def test_rejected_values_are_not_quoted_back(service) -> None:
    pasted = "sk-pasted-0123456789abcdef"
    with pytest.raises(InvalidRequest) as raised:
        service.create(openai(provider=pasted))
    assert (raised.value.param, raised.value.code) == ("provider", "unknown_provider")
    assert pasted not in raised.value.message and "openai" in raised.value.message
    service.create(openai(slug=pasted))
    with pytest.raises(Conflict) as conflict:
        service.create(openai(slug=pasted))
    assert conflict.value.param == "slug" and pasted not in conflict.value.message
    for call in (lambda: service.get("sk-nope-0123456789abcdef"), lambda: service.delete("sk-nope-0123456789abcdef"),
                 lambda: service.update("sk-nope-0123456789abcdef", {"name": "x"})):
        with pytest.raises(VirtualKeyNotFound) as missing:
            call()
        assert "sk-nope" not in missing.value.message and missing.value.code == "virtual_key_not_found"


def test_a_validation_message_that_would_quote_the_input_is_replaced() -> None:
    from pydantic import field_validator

    from core.admin_requests import _Body, parse_body

    class Quoting(_Body):
        value: str
        other: dict[str, str] | None = None

        @field_validator("value", "other")
        @classmethod
        def _quote(cls, value):  # what a careless validator might do
            raise ValueError(f"{value!r} is not allowed")

    for body, param in (({"value": "sk-pasted-0123456789"}, "value"),
                        ({"value": "x", "other": {"k": "sk-pasted-0123456789"}}, "value")):
        with pytest.raises(InvalidRequest) as raised:
            parse_body(Quoting, body)
        assert raised.value.param == param and "sk-pasted" not in raised.value.message
    with pytest.raises(InvalidRequest) as raised:
        parse_body(Quoting, {"value": 123})
    assert raised.value.message == "value: Input should be a valid string."  # rule-stating messages are kept


def test_every_field_the_sdk_sends_is_accepted(service) -> None:
    # What Portkey's SDK create() sends, with every optional field given.
    body = {
        "name": "Azure", "provider": "azure-openai", "key": "azure-key-0123456789abcdef", "note": "n",
        "apiVersion": "2024-10-21", "resourceName": "my-resource", "deploymentName": "gpt4o",
        "workspace_id": "ws-1", "usage_limits": {"credit_limit": 10, "periodic_reset": "monthly"},
        "rate_limits": [{"type": "requests", "unit": "rpm", "value": 10}], "expires_at": "2030-01-01T00:00:00Z",
    }
    created = service.create(body)
    view = service.get(created["id"])
    assert view["config"] == {"api_version": "2024-10-21", "resource_name": "my-resource", "deployment": "gpt4o"}
    assert view["workspace_id"] == "ws-1" and view["usage_limits"] == body["usage_limits"]
    assert view["rate_limits"] == body["rate_limits"] and view["expires_at"] == body["expires_at"]
    # What update() sends.
    service.update(created["slug"], {"name": "Azure 2", "note": "m", "usage_limits": {"credit_limit": 5},
                                     "rate_limits": [{"type": "requests", "unit": "rpd", "value": 1}]})
    view = service.get(created["id"])
    assert view["name"] == "Azure 2" and view["usage_limits"] == {"credit_limit": 5}
    assert view["rate_limits"] == [{"type": "requests", "unit": "rpd", "value": 1}]
    assert view["expires_at"] == body["expires_at"] and view["config"]["resource_name"] == "my-resource"


def test_portkeys_fields_are_stored_in_config_and_returned_at_the_top_level(service, store) -> None:
    created = service.create(openai())
    view = service.get(created["id"])
    assert (view["rate_limits"], view["secret_mappings"]) == ([], [])  # arrays, never null
    assert view["usage_limits"] is None and view["model_config"] is None and view["reset_usage"] is None
    fields = {"usage_limits": {"credit_limit": 10}, "rate_limits": [{"type": "requests", "unit": "rpm", "value": 5}],
              "expires_at": "2030-01-01T00:00:00Z", "reset_usage": 0, "model_config": {"custom": "x"},
              "secret_mappings": [{"target_field": "key", "secret_reference_id": "ref-1"}]}
    service.update(created["id"], fields)
    view = service.get(created["slug"])
    assert {name: view[name] for name in fields} == fields
    assert view["config"] == {}  # provider options only
    assert {name: store.bindings[created["id"]].config[name] for name in fields} == fields
    assert service.list({})["data"][0]["model_config"] == {"custom": "x"}
    created = service.create(openai(name="second", reset_usage=1.5, model_config={"a": 1}))
    assert service.get(created["id"])["reset_usage"] == 1.5 and service.get(created["id"])["model_config"] == {"a": 1}


def test_list_filters_by_workspace_keeping_keys_of_no_workspace(service) -> None:
    service.create(openai(name="Mine", workspace_id="ws1"))
    service.create(openai(name="Theirs", workspace_id="ws2"))
    service.create(openai(name="Shared"))
    assert [v["name"] for v in service.list({"workspace_id": "ws1"})["data"]] == ["Mine", "Shared"]
    assert len(service.list({})["data"]) == 3


def test_azure_deployment_config_fills_the_default_deployment(service) -> None:
    created = service.create({
        "name": "Azure", "provider": "azure-openai", "key": "azure-key-0123456789abcdef", "resourceName": "res",
        "deploymentConfig": [
            {"apiVersion": "2024-06-01", "deploymentName": "small", "is_default": False},
            {"apiVersion": "2024-10-21", "deploymentName": "big", "is_default": True, "alias": "gpt-4o"},
        ],
    })
    config = service.get(created["id"])["config"]
    assert (config["deployment"], config["api_version"], config["resource_name"]) == ("big", "2024-10-21", "res")
    assert [d["deployment"] for d in config["deployments"]] == ["small", "big"]


@pytest.mark.parametrize(
    "body, param",
    [
        ({"name": "x", "provider": "openai", "key": SECRET, "secret": "y"}, "secret"),  # unknown key: 400
        ({"provider": "openai", "key": SECRET}, "name"),
        ({"name": "x", "key": SECRET}, "provider"),
        ({"name": "x", "provider": "cohere", "key": SECRET}, "provider"),
        ({"name": "x", "provider": "openai"}, "key"),
        ({"name": "x", "provider": "anthropic"}, "key"),
        ({"name": "x", "provider": "azure-openai", "custom_host": "https://r.openai.azure.com"}, "key"),
        ({"name": "x", "provider": "bedrock", "key": SECRET}, "key"),
        ({"name": "x", "provider": "mock", "key": SECRET}, "key"),
        ({"name": "x", "provider": "openai", "key": "sk with space 0123456789"}, "key"),
        ({"name": "x", "provider": "openai", "key": 12345}, "key"),
        ({"name": "x", "provider": "openai", "key": SECRET, "slug": "ab"}, "slug"),
        ({"name": "x", "provider": "openai", "key": SECRET, "slug": "00000000-0000-4000-8000-000000000009"}, "slug"),
        ({"name": "x", "provider": "openai", "key": SECRET, "custom_host": "ftp://host"}, "custom_host"),
        ({"name": "x", "provider": "openai", "key": SECRET, "custom_host": "localhost:11434"}, "custom_host"),
        ({"name": "x", "provider": "openai", "key": SECRET, "custom_host": "http://u:p@host/v1"}, "custom_host"),
        ({"name": "x", "provider": "openai", "key": SECRET, "custom_host": "http://host/v1?key=1"}, "custom_host"),
        ({"name": "x", "provider": "openai", "key": SECRET, "custom_host": "http://host:99999"}, "custom_host"),
        ({"name": "x", "provider": "openai", "key": SECRET, "headers": {"Authorization": "Bearer x"}}, "headers"),
        ({"name": "x", "provider": "openai", "key": SECRET, "headers": {"api-key": "x"}}, "headers"),
        ({"name": "x", "provider": "openai", "key": SECRET, "headers": {"X-API-Key": "x"}}, "headers"),
        ({"name": "x", "provider": "openai", "key": SECRET, "headers": {"Host": "x"}}, "headers"),
        ({"name": "x", "provider": "openai", "key": SECRET, "headers": {"bad name": "x"}}, "headers"),
        ({"name": "x", "provider": "openai", "key": SECRET, "headers": {"x-a": "1\r\nx-b: 2"}}, "headers"),
        ({"name": "x", "provider": "openai", "key": SECRET, "headers": {"x-a": 1}}, "headers.x-a"),
        ({"name": "x", "provider": "openai", "key": SECRET, "api_version": "a", "apiVersion": "b"}, "api_version"),
        ({"name": "x", "provider": "azure-openai", "key": SECRET, "resourceName": "evil.com/x#"}, "resourceName"),
        ({"name": "x", "provider": "bedrock", "region": "not a region"}, "region"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(service, store, secrets, body, param) -> None:
    with pytest.raises(InvalidRequest) as raised:
        service.create(body)
    assert raised.value.status == 400 and raised.value.param == param
    assert SECRET not in raised.value.message and "Bearer x" not in raised.value.message
    assert not store.bindings and not secrets.values  # nothing written


def test_providers_that_need_no_key(service, store, secrets) -> None:
    service.create({"name": "Ollama", "provider": "openai", "custom_host": "http://127.0.0.1:11434/v1/"})
    service.create({"name": "Bedrock", "provider": "bedrock", "region": "eu-west-1"})
    service.create({"name": "Mock", "slug": "mock", "provider": "mock"})
    assert not secrets.calls
    bindings = {b.provider + (b.custom_host or ""): b for b in store.bindings.values()}
    assert bindings["openaihttp://127.0.0.1:11434/v1"].secret_ref is None  # trailing slash dropped
    assert bindings["bedrock"].config == {"region": "eu-west-1"}
    assert service.get("mock")["masked_key"] is None


def test_a_taken_slug_is_409_before_any_secret_is_written(service, secrets) -> None:
    service.create(openai(slug="taken"))
    secrets.calls.clear()
    with pytest.raises(Conflict) as raised:
        service.create(openai(slug="taken"))
    assert raised.value.param == "slug" and secrets.calls == []


def test_a_failed_binding_write_deletes_the_secret_it_stored(service, store, secrets) -> None:
    store.fail_next_create = StoreUnavailable("down")
    with pytest.raises(StoreUnavailable):
        service.create(openai())
    assert secrets.values == {} and len(secrets.deleted) == 1


# --- update -------------------------------------------------------------------------------------


def test_update_replaces_the_secret_under_the_same_reference(service, store, secrets) -> None:
    created = service.create(openai())
    ref = store.bindings[created["id"]].secret_ref
    answer = service.update(created["slug"], {"key": "sk-proj-rotated-key-9999zzzz"})
    assert answer == {"id": created["id"], "slug": created["slug"], "object": "virtual-key"}
    binding = store.bindings[created["id"]]
    assert binding.secret_ref == ref and secrets.values[ref] == "sk-proj-rotated-key-9999zzzz"
    assert binding.masked_key == "sk-p****************zzzz"


def test_update_changes_only_what_is_sent(service, store) -> None:
    created = service.create(openai(note="first", headers={"x-a": "1"}, api_version="2024-01-01"))
    service.update(created["id"], {"name": "Renamed", "deployment_name": "d1"})
    binding = store.bindings[created["id"]]
    assert (binding.name, binding.note, dict(binding.headers)) == ("Renamed", "first", {"x-a": "1"})
    assert binding.config == {"api_version": "2024-01-01", "deployment": "d1"}
    service.update(created["id"], {"note": "", "api_version": "", "headers": {}})  # "" and {} clear
    binding = store.bindings[created["id"]]
    assert (binding.note, dict(binding.headers), dict(binding.config)) == (None, {}, {"deployment": "d1"})


def test_update_with_nothing_to_change_writes_nothing(service, store, secrets) -> None:
    created = service.create(openai())
    before = store.bindings[created["id"]]
    secrets.calls.clear()
    service.update(created["id"], {"provider": "openai", "usage_limits": None})
    assert store.bindings[created["id"]] is before and secrets.calls == []


@pytest.mark.parametrize(
    "create, update, param",
    [
        (openai(), {"provider": "anthropic"}, "provider"),
        ({"name": "m", "provider": "mock"}, {"key": SECRET}, "key"),
        ({"name": "o", "provider": "openai", "custom_host": "http://127.0.0.1:1/v1"}, {"custom_host": ""}, "key"),
        (openai(), {"headers": {"authorization": "Bearer x"}}, "headers"),
        (openai(), {"slug": "new-slug"}, "slug"),  # a slug never changes
    ],
)
def test_invalid_updates_change_nothing(service, store, secrets, create, update, param) -> None:
    created = service.create(create)
    before = store.bindings[created["id"]]
    secrets.calls.clear()
    with pytest.raises(InvalidRequest) as raised:
        service.update(created["id"], update)
    assert raised.value.param == param
    assert store.bindings[created["id"]] is before and secrets.calls == []


def test_the_same_provider_may_be_resent_on_update(service) -> None:
    created = service.create(openai())
    service.update(created["id"], {"provider": "openai", "name": "same"})
    assert service.get(created["id"])["name"] == "same"


# --- delete -------------------------------------------------------------------------------------


def test_delete_removes_the_binding_and_its_secret(service, store, secrets) -> None:
    created = service.create(openai(slug="gone"))
    ref = store.bindings[created["id"]].secret_ref
    assert service.delete("gone") == {}
    assert store.bindings == {} and secrets.deleted == [ref] and ref not in secrets.values
    with pytest.raises(VirtualKeyNotFound):
        service.get("gone")
    with pytest.raises(VirtualKeyNotFound):
        service.delete(created["id"])


def test_a_failed_secret_delete_is_logged_without_the_key(service, store, secrets, caplog) -> None:
    created = service.create(openai())
    secrets.fail_deletes = True
    caplog.set_level("DEBUG")
    assert service.delete(created["id"]) == {}
    assert store.bindings == {}
    assert created["id"] in caplog.text and SECRET not in caplog.text


def test_list_pages_and_searches(service) -> None:
    for name in ("Alpha", "Beta", "Gamma"):
        service.create(openai(name=name))
    page = service.list({"current_page": "1", "page_size": "2"})
    assert page["object"] == "list" and page["total"] == 3 and [v["name"] for v in page["data"]] == ["Gamma"]
    assert [v["name"] for v in service.list({"search": "bet", "workspace_id": "ws"})["data"]] == ["Beta"]


# --- the prompt service's check -----------------------------------------------------------------


@pytest.fixture
def prompts(store) -> PromptService:
    templates = InMemoryStore()
    return PromptService(templates, templates, virtual_keys=store)


def test_a_prompt_may_only_name_an_existing_virtual_key(prompts, service) -> None:
    created = service.create({"name": "Mock", "slug": "mock", "provider": "mock"})
    body = {"name": "P", "string": CHAT, "parameters": {}}
    with pytest.raises(InvalidRequest) as raised:
        prompts.create_prompt({**body, "virtual_key": "sk-pasted-by-mistake-000000"})
    assert (raised.value.status, raised.value.param, raised.value.type) == (400, "virtual_key", "invalid_request_error")
    assert "sk-pasted" not in raised.value.message
    by_slug = prompts.create_prompt({**body, "virtual_key": "mock"})
    by_id = prompts.create_prompt({**body, "virtual_key": created["id"]})
    assert prompts.get_prompt(by_slug["id"])["virtual_key"] == "mock"  # stored as sent
    with pytest.raises(InvalidRequest) as raised:
        prompts.update_prompt(by_id["id"], {"patch": True, "virtual_key": "nope"})
    assert raised.value.param == "virtual_key"
    assert prompts.update_prompt(by_id["id"], {"patch": True, "virtual_key": "mock"})["version"] == 2


def test_a_virtual_key_copied_forward_by_patch_is_not_rechecked(prompts, service) -> None:
    service.create({"name": "Mock", "slug": "mock", "provider": "mock"})
    created = prompts.create_prompt({"name": "P", "string": CHAT, "parameters": {}, "virtual_key": "mock"})
    service.delete("mock")
    assert prompts.update_prompt(created["id"], {"patch": True, "string": CHAT + " "})["version"] == 2


def test_without_a_virtual_key_store_nothing_is_checked() -> None:
    templates = InMemoryStore()
    prompts = PromptService(templates, templates)
    assert prompts.create_prompt({"name": "P", "string": CHAT, "parameters": {}, "virtual_key": "anything"})["id"]
