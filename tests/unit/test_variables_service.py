"""Typed variables through PromptService and CompletionService, on the in-memory fakes: writing a schema,
retrieving it, strict renders, the breaking-change guard on publishing and labels, and the diff."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from core.completions import CompletionService
from core.content_hash import version_hash
from core.errors import IncompatibleVariables, InvalidRequest, InvalidVariables, InvalidVariablesSchema
from core.models import Kind
from core.service import PromptService
from tests.unit.fakes import InMemoryStore
from tests.unit.test_completions import Recording, make

CHAT = json.dumps([{"role": "system", "content": "Be {{tone}}."}, {"role": "user", "content": "{{question}}"}])
SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string", "description": "What the customer asks"},
                   "tone": {"type": "string", "enum": ["warm", "formal"], "default": "warm"}},
    "required": ["question"],
}


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def service(store: InMemoryStore) -> PromptService:
    return PromptService(store, store)


def create(service: PromptService, **fields: Any) -> dict[str, Any]:
    return service.create_prompt({"name": "Ask", "slug": "ask", "string": CHAT, "parameters": {}, **fields})


def messages(service: PromptService, reference: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    return service.render(reference, body).body["messages"]


def raises(error_type: type[Exception], call: Any, *args: Any) -> Any:
    with pytest.raises(error_type) as caught:
        call(*args)
    return caught.value


# --- writing and retrieving ------------------------------------------------------------------------


def test_a_schema_and_strict_variables_are_stored_and_retrieved(service: PromptService, store: InMemoryStore) -> None:
    create(service, variables_schema=SCHEMA, strict_variables=True)
    shown = service.get_prompt("ask")
    assert shown["variables_schema"] == SCHEMA and shown["variables_schema_inferred"] is False
    assert shown["strict_variables"] is True
    stored = store.get_version(Kind.PROMPT, shown["id"], 1)
    assert shown["content_hash"] == version_hash(stored) and shown["content_hash"].startswith("sha256:")


def test_without_a_schema_retrieve_shows_the_inferred_one(service: PromptService) -> None:
    create(service, string="Hi {{name}}.{{#items}} {{title}}{{/items}}")
    shown = service.get_prompt("ask")
    assert shown["variables_schema"] == {"type": "object", "properties": {"name": {}, "items": {}, "title": {}},
                                         "required": ["name"]}
    assert shown["variables_schema_inferred"] is True and shown["strict_variables"] is False


def test_versions_list_and_version_retrieve_carry_the_same_fields(service: PromptService) -> None:
    create(service)
    service.update_prompt("ask", {"patch": True, "variables_schema": SCHEMA})
    listed = service.list_versions(Kind.PROMPT, "ask")["data"]
    assert [item["variables_schema_inferred"] for item in listed] == [False, True]
    assert listed[0]["variables_schema"] == SCHEMA and listed[1]["variables_schema"]["required"] == ["tone", "question"]
    assert listed[0]["content_hash"] != listed[1]["content_hash"]
    one = service.get_version("ask", "2")
    assert {key: one[key] for key in ("variables_schema", "variables_schema_inferred", "strict_variables",
                                      "content_hash")} == {key: listed[0][key] for key in (
        "variables_schema", "variables_schema_inferred", "strict_variables", "content_hash")}


def test_partials_carry_a_content_hash_and_no_schema(service: PromptService) -> None:
    partial = service.create_partial({"name": "Footer", "string": "Thanks, {{team}}"})
    detail = service.get_partial(partial["id"])
    (item,) = service.list_versions(Kind.PARTIAL, partial["id"])["data"]
    assert detail["content_hash"] == item["content_hash"] and detail["content_hash"].startswith("sha256:")
    assert "variables_schema" not in item and "strict_variables" not in item and "variables_schema" not in detail


def test_a_bad_schema_is_refused_on_create_and_update(service: PromptService) -> None:
    bad = {"type": "object", "properties": {"tone": {"type": "string", "default": 1}}}
    error = raises(InvalidVariablesSchema, service.create_prompt,
                   {"name": "Ask", "string": CHAT, "variables_schema": bad})
    assert error.status == 400 and error.param == "variables_schema"
    create(service)
    for body in ({"patch": True, "variables_schema": {"type": "array"}},
                 {"string": CHAT, "parameters": {}, "variables_schema": {"type": "object", "required": 1}}):
        assert raises(InvalidVariablesSchema, service.update_prompt, "ask", body).param == "variables_schema"
    error = raises(InvalidRequest, service.update_prompt, "ask", {"patch": True, "strict_variables": "yes"})
    assert error.param == "strict_variables"
    assert service.get_prompt("ask")["latest_version"] == 1


def test_patch_copies_the_schema_and_strictness_forward_and_a_whole_update_does_not(service: PromptService) -> None:
    create(service, variables_schema=SCHEMA, strict_variables=True)
    service.update_prompt("ask", {"patch": True, "string": CHAT + " "})
    patched = service.get_version("ask", "2")
    assert patched["variables_schema"] == SCHEMA and patched["strict_variables"] is True
    service.update_prompt("ask", {"string": CHAT, "parameters": {}})
    whole = service.get_version("ask", "3")
    assert whole["variables_schema_inferred"] is True and whole["strict_variables"] is False


# --- rendering -------------------------------------------------------------------------------------


def test_defaults_fill_in_unsent_variables_without_strict(service: PromptService) -> None:
    create(service, variables_schema=SCHEMA)
    assert messages(service, "ask", {"variables": {"question": "Why?"}})[0]["content"] == "Be warm."
    assert messages(service, "ask", {"variables": {"question": "Why?", "tone": "formal"}})[0]["content"] == "Be formal."


def test_without_strict_renders_are_portkeys(service: PromptService) -> None:
    create(service, variables_schema=SCHEMA)
    rendered = messages(service, "ask", {"variables": {"tone": 5, "other": 1}})
    assert rendered == [{"role": "system", "content": "Be 5."}, {"role": "user", "content": ""}]


def test_strict_in_the_request_checks_before_rendering(service: PromptService) -> None:
    create(service, variables_schema=SCHEMA)
    error = raises(InvalidVariables, service.render, "ask", {"variables": {"tone": "loud", "questio": "x"},
                                                              "strict": True})
    assert error.status == 400 and error.code == "invalid_variables" and error.param == "variables.question"
    assert error.message.startswith("The variables do not match the variables_schema of prompt ask version 1 (the "
                                    'request says "strict": true): missing question; unknown questio')
    assert 'variables.tone must be one of ["warm", "formal"]' in error.message
    assert messages(service, "ask", {"variables": {"question": "Why?"}, "strict": True})[1]["content"] == "Why?"


def test_strict_variables_makes_strict_the_default_and_the_request_can_turn_it_off(service: PromptService) -> None:
    create(service, strict_variables=True)  # no schema: checked against the inferred one
    error = raises(InvalidVariables, service.render, "ask", {"variables": {"question": "Why?"}})
    assert error.param == "variables.tone" and "its strict_variables is true" in error.message
    assert messages(service, "ask", {"variables": {"question": "Why?"}, "strict": False})[0]["content"] == "Be ."


def test_root_strict_is_a_control_field_and_a_response_formats_strict_still_reaches_the_body(
        service: PromptService) -> None:
    create(service, variables_schema=SCHEMA)
    response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": True}}
    rendered = service.render("ask", {"variables": {"question": "q"}, "strict": True, "response_format": response_format})
    assert "strict" not in rendered.body and rendered.body["response_format"] == response_format
    assert rendered.request.strict is True and "strict" not in rendered.request.overrides
    assert raises(InvalidRequest, service.render, "ask", {"strict": "yes"}).param == "strict"


def test_a_messages_override_renders_nothing_so_checks_nothing(service: PromptService) -> None:
    create(service, strict_variables=True)
    override = [{"role": "user", "content": "hi"}]
    assert messages(service, "ask", {"messages": override}) == override


def test_completions_check_strictly_before_calling_and_never_send_strict(service: PromptService) -> None:
    provider = Recording()
    completions: CompletionService = make(service, provider, **{"ref-1": "k"})
    create(service, variables_schema=SCHEMA, strict_variables=True, virtual_key="vk-openai")
    for stream in (False, True):
        with pytest.raises(InvalidVariables):
            completions.prepare("ask", {"variables": {}, "stream": stream}, request_id="r")
    prepared = completions.prepare("ask", {"variables": {"question": "q"}, "strict": True}, request_id="r")
    asyncio.run(completions.complete(prepared))
    assert "strict" not in provider.calls[0].body and provider.calls[0].body["messages"][0]["content"] == "Be warm."


# --- publishing and labels -------------------------------------------------------------------------


@pytest.fixture
def two_versions(service: PromptService) -> PromptService:
    """`ask`: version 1 (published, no schema) asks `{{question}}`; version 2's schema also requires `customer`."""
    create(service, string="Answer {{question}}")
    schema = {"type": "object", "properties": {"question": {"type": "string"}, "customer": {"type": "string"}},
              "required": ["question", "customer"]}
    service.update_prompt("ask", {"patch": True, "string": "Answer {{question}} for {{customer}}",
                                  "variables_schema": schema})
    return service


def test_a_version_without_a_schema_of_its_own_keeps_portkeys_behaviour(service: PromptService) -> None:
    """No guard on inferred schemas: Portkey's SDK publishes and labels without `force`."""
    create(service, string="Answer {{question}}")
    service.update_prompt("ask", {"patch": True, "string": "Answer {{question}} for {{customer}}"})
    service.label_version("ask", "1", {"label_id": "production"})
    assert service.publish_prompt("ask", {"version": 2}) == {}
    assert service.label_version("ask", "2", {"label_id": "production"}) == {}


def test_publishing_a_version_that_requires_a_new_variable_is_a_409_unless_forced(two_versions: PromptService) -> None:
    service = two_versions
    error = raises(IncompatibleVariables, service.publish_prompt, "ask", {"version": 2})
    assert error.status == 409 and error.code == "incompatible_variables" and error.param == "variables.customer"
    assert "Publishing version 2 of prompt ask would break callers of version 1: customer is now required" in \
        error.message and '"force": true' in error.message
    assert service.get_prompt("ask")["published_version"] == 1
    assert service.publish_prompt("ask", {"version": 2, "force": True}) == {}
    assert service.get_prompt("ask")["published_version"] == 2
    assert service.publish_prompt("ask", {"version": 2}) == {}  # already there: nothing moves
    assert raises(InvalidRequest, service.publish_prompt, "ask", {"version": 1, "force": "yes"}).param == "force"


def test_a_default_or_a_wider_type_publishes_without_force(service: PromptService) -> None:
    narrow = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    create(service, string="{{n}}", variables_schema=narrow)
    wider = {"type": "object", "properties": {"n": {"type": "number"}, "m": {"type": "string", "default": "x"}},
             "required": ["n", "m"]}
    service.update_prompt("ask", {"patch": True, "variables_schema": wider})
    assert service.publish_prompt("ask", {"version": 2}) == {}
    service.update_prompt("ask", {"patch": True, "variables_schema": narrow})
    error = raises(IncompatibleVariables, service.publish_prompt, "ask", {"version": 3})
    assert "n changes type from integer or number to integer" in error.message


def test_moving_a_label_is_guarded_against_its_current_version(two_versions: PromptService) -> None:
    service = two_versions
    assert service.label_version("ask", "2", {"label_id": "staging"}) == {}  # not set yet: nothing to break
    service.label_version("ask", "1", {"label_id": "production"})
    error = raises(IncompatibleVariables, service.label_version, "ask", "2", {"label_id": "production"})
    assert error.param == "variables.customer"
    assert error.message.startswith("Moving label production to version 2 of prompt ask would break callers of "
                                    "version 1: customer is now required")
    assert service.get_prompt("ask")["labels"] == {"staging": 2, "production": 1}
    service.label_version("ask", "2", {"label_id": "production", "force": True})
    assert service.get_prompt("ask")["labels"]["production"] == 2
    service.label_version("ask", "1", {"label_id": "staging"})  # fewer variables: callers of 2 still fit
    assert service.label_version("ask", "2", {"label_id": None, "force": True}) == {}


def test_the_diff_reports_schema_and_strictness_changes(service: PromptService) -> None:
    create(service)
    service.update_prompt("ask", {"patch": True, "variables_schema": SCHEMA, "strict_variables": True})
    changed = service.diff_versions("ask", "1", "2")["changed"]
    assert changed["variables_schema"] == {"from": None, "to": SCHEMA}
    assert changed["strict_variables"] == {"from": False, "to": True}
