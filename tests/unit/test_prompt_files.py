"""Prompt files: readable chat bodies, and lossless, canonical round trips (file -> version -> file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.content_hash import content_hash
from handlers.prompt_files import PromptDocument, PromptFileError, format_document, parse_document

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "prompts"


def prompt(string: str, **fields: object) -> PromptDocument:
    return PromptDocument(kind="prompt", slug="greet", name="Greet", version={"string": string, **fields})


def round_trip(document: PromptDocument) -> tuple[str, PromptDocument]:
    text = format_document(document)
    parsed = parse_document(text, kind=document.kind, slug=document.slug, path="greet.prompt")
    assert format_document(parsed) == text, "a file read and written again must be the same bytes"
    assert parsed.content_hash == document.content_hash, "a file must hold the same content as the version"
    return text, parsed


def chat(*messages: dict[str, object]) -> str:
    return json.dumps(list(messages))


def test_a_chat_prompt_reads_as_messages() -> None:
    text, _ = round_trip(prompt(
        chat({"role": "system", "content": "You are {{name}}."}, {"role": "user", "content": "Line 1\nLine \"2\""}),
        model="gpt-4o-mini", virtual_key="openai-prod", parameters={"temperature": 0.2, "max_tokens": 50},
        version_description="First cut"))
    assert text == (
        "---\n"
        "name: Greet\n"
        "description: First cut\n"
        "model: gpt-4o-mini\n"
        "provider: openai-prod\n"
        "parameters:\n"
        "  max_tokens: 50\n"
        "  temperature: 0.2\n"
        "template: chat\n"
        "---\n"
        "::: system\n"
        "You are {{name}}.\n"
        "\n"
        "::: user\n"
        "Line 1\n"
        'Line "2"\n'
    )


@pytest.mark.parametrize("content", ["", "\n", "a\n", "\n\na\n\n", "::: user", "\\::: x", ":::: text", "  ::: ok",
                                     "tab\there", "crlf\r\nline", "ünïcode ✓", "{{#list}}\n- {{.}}\n{{/list}}"])
def test_message_text_survives_exactly(content: str) -> None:
    string = chat({"role": "system", "content": content}, {"role": "user", "content": content})
    _, parsed = round_trip(prompt(string))
    assert json.loads(parsed.version["string"]) == json.loads(string)


def test_multi_part_content_and_cache_control() -> None:
    string = chat(
        {"role": "system", "content": [{"type": "text", "text": "Long doc {{doc}}", "cache_control": {"type": "ephemeral"}},
                                       {"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "{{image}}"}}, {"type": "text", "text": ""}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                               "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    )
    text, parsed = round_trip(prompt(string))
    assert ':::: text {"cache_control": {"type": "ephemeral"}}\nLong doc {{doc}}\n' in text
    assert ':::: image_url {"image_url": {"url": "{{image}}"}}\n' in text
    assert '::: tool {"tool_call_id": "c1"}\nok\n' in text
    assert json.loads(parsed.version["string"]) == json.loads(string)


def test_what_a_chat_body_cannot_hold_is_kept_as_json_text() -> None:
    string = '[{"role": "user"}, {"role": "user", "content": [{"type": "text"}, 3]}]'
    text, parsed = round_trip(prompt(string))
    assert "template: text\n" in text and parsed.version["string"] == string


@pytest.mark.parametrize("string", ["Plain text prompt about {{topic}}.\n", "no newline", "", "[not json",
                                    "---\nlooks like front matter\n---\n"])
def test_text_templates_are_written_as_they_are(string: str) -> None:
    text, parsed = round_trip(prompt(string))
    assert parsed.version["string"] == string
    assert text.endswith(string + "\n")


def test_raw_template() -> None:
    string = '[{"role":"system","content":"x"},{{#history}}{{.}},{{/history}}{"role":"user","content":"{{q}}"}]'
    text, parsed = round_trip(prompt(string, is_raw_template=True))
    assert "is_raw_template: true\n" in text and "\ntemplate:" not in text
    assert parsed.version["string"] == string and parsed.version["is_raw_template"] is True


def test_front_matter_is_canonical_and_response_format_stands_alone() -> None:
    schema = {"type": "object", "required": ["name"],
              "properties": {"name": {"type": "string", "description": "Who"}, "age": {"type": "integer", "default": 3}}}
    document = prompt(chat({"role": "user", "content": "Hi {{name}}"}),
                      parameters={"temperature": 0, "response_format": {"type": "json_object"}},
                      tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                      tool_choice="auto", variables_schema=schema, strict_variables=True,
                      template_metadata={"team": "support"})
    text, parsed = round_trip(document)
    keys = list(yaml.safe_load(text.split("---\n")[1]))
    assert keys == ["name", "parameters", "response_format", "tools", "tool_choice", "template_metadata",
                    "variables_schema", "strict_variables", "template"]
    assert "    age:\n      default: 3\n      type: integer\n    name:\n" in text  # nested keys sorted
    assert parsed.version["parameters"] == {"temperature": 0, "response_format": {"type": "json_object"}}
    assert parsed.version["variables_schema"] == schema


def test_yaml_values_keep_their_types() -> None:
    document = prompt("x", model="yes", template_metadata={"on": "off", "n": "0.5", "big": 10 ** 20, "f": 1e-07,
                                                            "multi": "a\nb", "empty": ""})
    _, parsed = round_trip(document)
    assert parsed.version["model"] == "yes"
    assert parsed.version["template_metadata"] == document.version["template_metadata"]


def test_partial_file() -> None:
    document = PromptDocument(kind="partial", slug="style", name="House style",
                              version={"string": "Be concise.\n", "version_description": "v1"})
    text, parsed = round_trip(document)
    assert text == "---\nname: House style\ndescription: v1\n---\nBe concise.\n\n"
    assert parsed.version == document.version


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda path: path.stem)
def test_every_sample_prompt_round_trips(path: Path) -> None:
    sample = json.loads(path.read_text())
    fields = {key: sample[key] for key in ("string", "model", "virtual_key", "parameters") if key in sample}
    fields["is_raw_template"] = bool(sample.get("is_raw_template"))
    round_trip(PromptDocument(kind="prompt", slug=sample["slug"], name=sample["name"], version=fields))
    for partial in sample.get("partials", []):
        round_trip(PromptDocument(kind="partial", slug=partial["slug"], name=partial["name"],
                                  version={"string": partial["string"]}))


def test_a_hand_written_file_without_blank_lines_still_reads() -> None:
    text = "---\nname: Greet\n---\n::: system\nBe kind.\n::: user\nHi {{name}}\n"
    parsed = parse_document(text, kind="prompt", slug="greet", path="greet.prompt")
    assert json.loads(parsed.version["string"]) == [{"role": "system", "content": "Be kind."},
                                                   {"role": "user", "content": "Hi {{name}}"}]
    assert parsed.content_hash == content_hash({"string": chat({"role": "system", "content": "Be kind."},
                                                               {"role": "user", "content": "Hi {{name}}"})})


@pytest.mark.parametrize(("text", "needle"), [
    ("name: x\n", "starts with a `---` line"),
    ("---\nname: x\n", "no closing `---`"),
    ("---\nname: [x\n---\nbody\n", "not valid YAML"),
    ("---\n- a\n---\nbody\n", "must be a YAML mapping"),
    ("---\nmodel: m\n---\n::: user\nhi\n", "needs a `name`"),
    ("---\nname: x\ntemprature: 1\n---\n::: user\nhi\n", "unknown front matter key(s) temprature"),
    ("---\nname: x\n---\nHello {{name}}\n", "starts with a `::: <role>` line"),
    ("---\nname: x\n---\n::: user {oops}\nhi\n", "must be a JSON object"),
    ("---\nname: x\ntemplate: html\n---\nhi\n", "`template` is chat or text"),
])
def test_bad_files_name_the_file_and_the_problem(text: str, needle: str) -> None:
    with pytest.raises(PromptFileError) as caught:
        parse_document(text, kind="prompt", slug="x", path="prompts/x.prompt")
    assert caught.value.message.startswith("prompts/x.prompt: ") and needle in caught.value.message
    assert caught.value.status == 400


_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
_json = st.recursive(st.none() | st.booleans() | st.integers() | _text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3), max_leaves=8)
_part = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "input_audio"])},
                              optional={"text": _text, "cache_control": _json})
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer"])},
    optional={"content": _text | st.lists(_part, min_size=1, max_size=3) | st.none(), "name": _text, "x": _json})


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(_message, min_size=1, max_size=4), raw=st.booleans(), description=st.none() | _text)
def test_any_chat_template_round_trips(messages: list[dict[str, object]], raw: bool, description: str | None) -> None:
    fields: dict[str, object] = {"string": json.dumps(messages, ensure_ascii=False), "is_raw_template": raw}
    if description is not None:
        fields["version_description"] = description
    round_trip(prompt(**fields))  # type: ignore[arg-type]


def test_characters_yaml_would_fold_are_escaped() -> None:
    _, parsed = round_trip(prompt("x", version_description="a\x85b", template_metadata={"k": "\u2028"}))
    assert parsed.version["version_description"] == "a\x85b"


def test_head_fields_metadata_and_external_ids() -> None:
    document = PromptDocument(kind="prompt", slug="greet", name="Greet", version={"string": "hi"},
                              metadata={"owner": "support"}, external_ids=("pmpt_abc", "pmpt_def"))
    text, parsed = round_trip(document)
    assert text.endswith("template: text\nmetadata:\n  owner: support\nexternal_ids:\n- pmpt_abc\n- pmpt_def\n---\nhi\n")
    assert parsed.external_ids == ("pmpt_abc", "pmpt_def") and parsed.metadata == {"owner": "support"}
