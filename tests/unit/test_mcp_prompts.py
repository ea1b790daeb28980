"""MCP prompts' mapping (core/mcp_prompts.py): arguments from schemas, string arguments typed, rendered bodies as MCP
messages, labels with the published fallback, and the list's cursor; on the in-memory fakes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from core.errors import InvalidRequest, LabelNotFound, PromptNotFound, VersionNotFound
from core.mcp_prompts import (
    McpPrompts,
    argument_description,
    image_block,
    list_fingerprint,
    prompt_arguments,
    prompt_messages,
    prompt_variables,
)
from core.models import Kind
from core.service import PromptService
from tests.unit.fakes import InMemoryStore

SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "description": "What the customer asks"},
        "tone": {"type": "string", "enum": ["warm", "formal"], "default": "warm"},
        "count": {"type": "integer", "description": "How many ideas", "minimum": 1},
        "tags": {"type": ["array", "null"]},
        "strict": {"type": "boolean"},
        "extra": {"type": ["integer", "string"]},
        "anything": {},
    },
    "required": ["question", "tone", "count"],
}
CHAT = json.dumps([{"role": "system", "content": "Be {{tone}}. {{>house}}"},
                   {"role": "user", "content": "{{question}} ({{count}})"}])
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def prompts(store: InMemoryStore) -> McpPrompts:
    ticks = iter(range(1000))
    service = PromptService(store, store, now=lambda: f"2026-01-01T00:00:{next(ticks):06.3f}Z")  # apart
    service.create_partial({"name": "House", "slug": "house", "string": "Be brief."})
    service.create_prompt({"name": "Ideas", "slug": "ideas", "string": CHAT, "parameters": {},
                           "variables_schema": SCHEMA, "version_description": "first"})
    service.update_prompt("ideas", {"patch": True, "version_description": "second"})
    service.label_version("ideas", "2", {"label_id": "staging"})
    service.create_prompt({"name": "Plain", "slug": "plain", "string": "Hello {{name}}", "parameters": {}})
    return McpPrompts(service, store, store, page_size=1)


# --- arguments ---------------------------------------------------------------------------------------------


def test_arguments_carry_required_and_a_description_of_type_enum_and_default() -> None:
    arguments = {argument["name"]: argument for argument in prompt_arguments(SCHEMA)}
    assert list(arguments) == list(SCHEMA["properties"])
    assert arguments["question"] == {"name": "question", "required": True,
                                     "description": "What the customer asks. Type: string."}
    assert arguments["tone"] == {"name": "tone", "required": False,  # required, but it has a default
                                 "description": 'Type: string. One of: "warm", "formal". Default: "warm".'}
    assert arguments["count"]["description"] == "How many ideas. Type: integer (send it as JSON text)."
    assert arguments["count"]["required"] is True
    assert arguments["tags"]["description"] == "Type: array or null (send it as JSON text)."
    assert arguments["extra"]["description"] == "Type: integer or string."
    assert arguments["anything"] == {"name": "anything", "required": False}


def test_an_inferred_schema_lists_its_variables_and_required_ones() -> None:
    schema = {"type": "object", "properties": {"name": {}, "items": {}}, "required": ["name"]}
    assert prompt_arguments(schema) == [{"name": "name", "required": True}, {"name": "items", "required": False}]


def test_descriptions_quote_long_values_short() -> None:
    assert argument_description({"const": "x" * 500}) == f'Always "{"x" * 196}....'
    assert argument_description({"title": "Tone!"}) == "Tone!"
    assert argument_description("not a schema") is None


def test_string_arguments_become_the_schema_types() -> None:
    variables = prompt_variables(SCHEMA, {"question": "Why?", "count": "3", "tags": '["a"]', "strict": "true",
                                          "extra": "4", "anything": "[1]", "unknown": "7"})
    assert variables == {"question": "Why?", "count": 3, "tags": ["a"], "strict": True, "extra": "4",
                         "anything": "[1]", "unknown": "7"}


def test_a_missing_required_argument_is_named() -> None:
    with pytest.raises(InvalidRequest) as caught:
        prompt_variables(SCHEMA, {})
    assert caught.value.message == "Missing required arguments: question, count."  # tone has a default
    assert caught.value.param == "arguments.question" and caught.value.code == "missing_argument"


def test_an_argument_that_is_not_the_json_its_type_needs_is_named() -> None:
    with pytest.raises(InvalidRequest) as caught:
        prompt_variables(SCHEMA, {"question": "q", "count": "three"})
    assert caught.value.message == "Argument count is integer: send it as JSON text, such as 3."
    assert caught.value.param == "arguments.count"


# --- messages ----------------------------------------------------------------------------------------------


def test_roles_map_to_user_and_assistant_and_parts_to_blocks() -> None:
    body = {"messages": [
        {"role": "system", "content": "Rules"},
        {"role": "developer", "content": "More rules"},
        {"role": "user", "content": [{"type": "text", "text": "Look:"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                                     {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg?s=1"}},
                                     {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "mp3"}},
                                     {"type": "file", "file": {"file_id": "f1"}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
        {"role": "assistant", "content": "Done"},
    ]}
    assert prompt_messages(body) == [
        {"role": "user", "content": {"type": "text", "text": "Rules"}},
        {"role": "user", "content": {"type": "text", "text": "More rules"}},
        {"role": "user", "content": {"type": "text", "text": "Look:"}},
        {"role": "user", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
        {"role": "user", "content": {"type": "resource_link", "uri": "https://x.test/cat.jpg?s=1", "name": "cat.jpg",
                                     "mimeType": "image/jpeg"}},
        {"role": "user", "content": {"type": "audio", "data": "AAAA", "mimeType": "audio/mpeg"}},
        {"role": "user", "content": {"type": "text", "text": '{"type": "file", "file": {"file_id": "f1"}}'}},
        {"role": "assistant", "content": {"type": "text", "text": '{"tool_calls": [{"id": "c1", "type": "function"}]}'}},
        {"role": "user", "content": {"type": "text", "text": "42"}},
        {"role": "assistant", "content": {"type": "text", "text": "Done"}},
    ]


def test_a_text_prompt_is_one_user_message() -> None:
    assert prompt_messages({"prompt": "Complete this"}) == [{"role": "user", "content": {"type": "text",
                                                                                          "text": "Complete this"}}]


@pytest.mark.parametrize("url, expected", [
    ("data:image/gif,GIF89a%01", {"type": "image", "data": base64.b64encode(b"GIF89a\x01").decode(),
                                  "mimeType": "image/gif"}),
    ("data:text/plain;base64,aGk=", None),  # not an image
    ("data:image/png;base64,not base64!", None),
    ("data:image/png", None),
    ("ftp://x.test/a.png", None),
    ("https://x.test/", {"type": "resource_link", "uri": "https://x.test/", "name": "x.test"}),
])
def test_image_urls(url: str, expected: Any) -> None:
    assert image_block(url) == expected


# --- through the stores --------------------------------------------------------------------------------------


def test_the_list_serves_the_label_else_the_published_version_a_page_at_a_time(prompts: McpPrompts) -> None:
    first = prompts.list_prompts("staging", None)
    assert [p["name"] for p in first["prompts"]] == ["ideas"]
    ideas = first["prompts"][0]
    assert ideas["title"] == "Ideas" and ideas["description"] == "second"
    assert ideas["_meta"]["cuecard/version"] == 2 and ideas["_meta"]["cuecard/label"] == "staging"
    second = prompts.list_prompts("staging", first["nextCursor"])
    assert [p["name"] for p in second["prompts"]] == ["plain"] and "nextCursor" not in second
    assert second["prompts"][0]["_meta"]["cuecard/label"] is None
    published = prompts.list_prompts("production", None)["prompts"][0]
    assert published["description"] == "first" and published["_meta"]["cuecard/version"] == 1


def test_a_label_that_does_not_exist_and_a_bad_cursor_are_refused(prompts: McpPrompts) -> None:
    with pytest.raises(LabelNotFound):
        prompts.list_prompts("nope", None)
    for cursor in ("%%%", base64.urlsafe_b64encode(b'{"a": 1}').decode()):
        with pytest.raises(InvalidRequest) as caught:
            prompts.list_prompts("production", cursor)
        assert caught.value.param == "cursor"


def test_a_deleted_prompt_leaves_the_cursor_working(store: InMemoryStore, prompts: McpPrompts) -> None:
    first = prompts.list_prompts("production", None)
    store.delete(Kind.PROMPT, "ideas")
    assert [p["name"] for p in prompts.list_prompts("production", first["nextCursor"])["prompts"]] == ["plain"]


def test_get_renders_with_partials_at_the_label_and_types_the_arguments(prompts: McpPrompts) -> None:
    got = prompts.get_prompt("ideas", {"question": "Why?", "count": "2"}, "staging")
    assert got["description"] == "second" and got["_meta"]["cuecard/label"] == "staging"
    assert got["messages"] == [{"role": "user", "content": {"type": "text", "text": "Be warm. Be brief."}},
                               {"role": "user", "content": {"type": "text", "text": "Why? (2)"}}]
    fallback = prompts.get_prompt("plain", {"name": "Ada"}, "staging")
    assert fallback["_meta"]["cuecard/label"] is None
    assert fallback["messages"] == [{"role": "user", "content": {"type": "text", "text": "Hello Ada"}}]
    pinned = prompts.get_prompt("ideas@1", {"question": "Q", "count": "1"}, "staging")
    assert pinned["_meta"]["cuecard/version"] == 1 and pinned["description"] == "first"


def test_get_refuses_an_unknown_prompt_or_label(prompts: McpPrompts) -> None:
    with pytest.raises(PromptNotFound):
        prompts.get_prompt("missing", {}, "production")
    with pytest.raises(LabelNotFound):
        prompts.get_prompt("plain", {"name": "x"}, "nope")
    with pytest.raises(VersionNotFound):
        prompts.get_prompt("plain@9", {"name": "x"}, "production")


def test_the_fingerprint_changes_with_what_the_list_shows(store: InMemoryStore, prompts: McpPrompts) -> None:
    before = prompts.fingerprint()
    assert before == list_fingerprint(reversed(store.list_entities(Kind.PROMPT)))  # order does not matter
    store.set_label("plain", 1, "development")
    assert prompts.fingerprint() != before
