"""core.diffs: the template diff and the field changes between two versions, pure."""

from __future__ import annotations

import json

from core.diffs import diff_versions, field_changes, template_display, unified_text_diff
from core.models import Kind, TemplateVersion


def version(number: int, string: str, **fields: object) -> TemplateVersion:
    return TemplateVersion(kind=Kind.PROMPT, entity_id="p-id", slug="summarize", version=number,
                           version_id=f"v{number}", created_at="2026-01-01T00:00:00.000Z", string=string,
                           **fields)  # type: ignore[arg-type]


def chat(content: str) -> str:
    return json.dumps([{"role": "user", "content": content}])


def test_identical_versions_have_no_diff() -> None:
    a = version(1, chat("Hi {{name}}"), variables=("name",), parameters={"temperature": 0})
    b = version(2, chat("Hi {{name}}"), variables=("name",), parameters={"temperature": 0})
    diff = diff_versions(a, b, old_name="summarize@1", new_name="summarize@2")
    assert diff["identical"] is True
    assert diff["template_diff"] == "" and diff["changed"] == {}
    assert diff["added_variables"] == [] and diff["removed_variables"] == []
    assert diff["from"] == {"ref": "summarize@1", "version": 1, "prompt_version_id": "v1"}
    assert diff["to"] == {"ref": "summarize@2", "version": 2, "prompt_version_id": "v2"}


def test_template_diff_is_unified_with_the_refs_as_headers_and_json_indented() -> None:
    a = version(3, chat("Hi {{name}}"), variables=("name",))
    b = version(4, chat("Hello {{name}}, on {{topic}}"), variables=("name", "topic"))
    diff = diff_versions(a, b, old_name="summarize@3", new_name="summarize@production")
    lines = diff["template_diff"].splitlines()
    assert lines[0] == "--- summarize@3" and lines[1] == "+++ summarize@production"
    assert '-    "content": "Hi {{name}}"' in lines
    assert '+    "content": "Hello {{name}}, on {{topic}}"' in lines
    assert '     "role": "user",' in lines  # context, one field a line
    assert diff["added_variables"] == ["topic"] and diff["removed_variables"] == []
    assert diff["changed"]["variables"] == {"from": ["name"], "to": ["name", "topic"]}
    assert diff["identical"] is False


def test_field_changes_cover_parameters_model_tools_and_flags() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    a = version(1, "Say {{a}}", variables=("a",), parameters={"temperature": 0.2}, model="m1", virtual_key="k1")
    b = version(2, "Say {{b}}", variables=("b",), parameters={"temperature": 0.7, "max_tokens": 5}, model="m2",
                tools=tools, tool_choice="auto", is_raw_template=True, template_metadata={"team": "x"},
                virtual_key="k1")
    changes = field_changes(a, b)
    assert changes["parameters"] == {"from": {"temperature": 0.2}, "to": {"temperature": 0.7, "max_tokens": 5}}
    assert changes["model"] == {"from": "m1", "to": "m2"}
    assert changes["tools"] == {"from": None, "to": tools}
    assert changes["tool_choice"] == {"from": None, "to": "auto"}
    assert changes["is_raw_template"] == {"from": False, "to": True}
    assert changes["template_metadata"] == {"from": {}, "to": {"team": "x"}}
    assert "virtual_key" not in changes and "functions" not in changes
    diff = diff_versions(a, b, old_name="x@1", new_name="x@2")
    assert diff["added_variables"] == ["b"] and diff["removed_variables"] == ["a"]
    assert diff["template_diff"].splitlines()[2:] == ["@@ -1 +1 @@", "-Say {{a}}", "+Say {{b}}"]
    json.dumps(diff)  # JSON-able


def test_json_spacing_alone_is_shown_as_written() -> None:
    a = version(1, '[{"role":"user","content":"x"}]')
    b = version(2, '[{"role": "user", "content": "x"}]')
    diff = diff_versions(a, b, old_name="p@1", new_name="p@2")
    assert diff["identical"] is False
    assert '-[{"role":"user","content":"x"}]' in diff["template_diff"].splitlines()


def test_helpers() -> None:
    assert template_display("plain {{x}}") == "plain {{x}}"
    assert template_display("42") == "42"
    assert template_display('[{"a": 1}]') == '[\n  {\n    "a": 1\n  }\n]'
    assert unified_text_diff("a\n", "a\n", old_name="x", new_name="y") == ""
    text = unified_text_diff("a", "b", old_name="x", new_name="y")
    assert text.endswith("+b\n") and text.startswith("--- x\n+++ y\n")
