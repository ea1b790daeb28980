"""core.variables, pure: inferred schemas, checking a written schema, strict variables, the breaking-change rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.errors import IncompatibleVariables, InvalidVariables, InvalidVariablesSchema
from core.models import Kind, TemplateVersion
from core.variables import (
    Incompatibility,
    check_compatible,
    check_variables,
    check_variables_schema,
    effective_schema,
    incompatible_changes,
    inferred_schema,
    render_variables,
    version_schema,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "customer_name": {"type": "string", "description": "Who we answer"},
        "count": {"type": "integer"},
        "tone": {"type": "string", "enum": ["warm", "formal"], "default": "warm"},
    },
    "required": ["customer_name", "tone"],
}


def version(string: str = "Hi {{customer_name}}", number: int = 1, **fields: Any) -> TemplateVersion:
    return TemplateVersion(kind=Kind.PROMPT, entity_id="p-id", slug="greet", version=number, version_id=f"v{number}",
                           created_at="2026-01-01T00:00:00.000Z", string=string, **fields)


def invalid(schema: Any, variables: dict[str, Any]) -> InvalidVariables:
    with pytest.raises(InvalidVariables) as caught:
        check_variables(schema, variables, subject="prompt greet version 1")
    return caught.value


# --- inference -------------------------------------------------------------------------------------


def test_inference_lists_top_level_names_and_requires_those_outside_sections() -> None:
    template = ("Hi {{customer.name}} ({{customer.tier}}). {{#items}}- {{title}} {{customer.name}}{{/items}}"
                "{{^vip}}Upgrade?{{/vip}} {{{signature}}} {{>>footer}}")
    assert inferred_schema(template) == {
        "type": "object",
        "properties": {"customer": {}, "items": {}, "title": {}, "vip": {}, "signature": {}, "footer": {}},
        "required": ["customer", "signature", "footer"],
    }


def test_a_name_only_inside_a_section_is_optional_and_one_also_outside_is_required() -> None:
    assert inferred_schema("{{#items}}{{name}}{{/items}}")["required"] == []
    assert inferred_schema("{{#items}}{{name}}{{/items}} by {{name}}")["required"] == ["name"]


def test_inference_reads_a_chat_templates_messages_and_a_raw_template_whole() -> None:
    chat = json.dumps([{"role": "system", "content": "Be {{tone}}."}, {"role": "user", "content": "{{question}}"}])
    assert inferred_schema(chat)["required"] == ["tone", "question"]
    assert inferred_schema('[{"role": "user", "content": {{{message}}} }]', raw=True)["required"] == ["message"]


def test_the_effective_schema_is_the_explicit_one_else_the_inferred_one() -> None:
    assert effective_schema(SCHEMA, "Hi {{other}}") == SCHEMA
    assert effective_schema(None, "Hi {{other}}")["properties"] == {"other": {}}
    assert version_schema(version(variables_schema=SCHEMA)) == SCHEMA
    assert version_schema(version())["required"] == ["customer_name"]


# --- a written schema ------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [
    SCHEMA,
    {"type": "object"},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/name"}}, "$defs": {"name": {"type": "string"}}},
    {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}, "default": []}}},
    {"type": "object", "patternProperties": {"^x_": {"type": "string"}}, "required": ["x_a"]},
    {"type": "object", "additionalProperties": {"type": "string"}, "required": ["any"]},
])
def test_a_json_schema_of_an_object_is_accepted(schema: dict[str, Any]) -> None:
    check_variables_schema(schema)


@pytest.mark.parametrize("schema, says", [
    ({"type": "object", "properties": {"a": {"type": "strin"}}}, 'variables_schema["properties"]["a"]["type"]'),
    ({"type": "object", "required": "a"}, "not a valid JSON Schema"),
    ({"type": "array"}, '"type": "object"'),
    ({"properties": {"a": {}}}, '"type": "object"'),
    ({"type": "object", "properties": {"a": {}}, "required": ["b"]}, "requires 'b'"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}, "#/$defs/missing, which does not resolve"),
    ({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}, "https://example.com/s.json"),
    ({"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}}, "leads back to itself"),
    ({"type": "object", "$defs": {"x": {"$ref": "#/$defs/y"}, "y": {"allOf": [{"$ref": "#/$defs/x"}]}}},
     "leads back to itself"),
    ({"type": "object", "properties": {"tone": {"type": "string", "default": 3}}},
     "gives 'tone' a default that its own schema refuses: the default of tone must be string, not integer"),
    ({"type": "object", "properties": {"tone": {"enum": ["warm"], "default": "cold"}}}, 'must be one of ["warm"]'),
])
def test_a_schema_that_is_not_one_or_not_of_an_object_is_a_400_naming_variables_schema(schema: Any, says: str) -> None:
    with pytest.raises(InvalidVariablesSchema) as caught:
        check_variables_schema(schema)
    error = caught.value
    assert error.status == 400 and error.param == "variables_schema" and error.code == "invalid_variables_schema"
    assert says in error.message, error.message


# --- strict variables ------------------------------------------------------------------------------


def test_strict_lists_every_missing_unknown_and_mistyped_variable_and_names_the_first() -> None:
    error = invalid(SCHEMA, {"count": "three", "customer": "Ada", "extra": 1})
    assert error.status == 400 and error.code == "invalid_variables" and error.type == "invalid_request_error"
    assert error.param == "variables.customer_name"
    assert "missing customer_name, tone;" in error.message
    assert "unknown customer, extra (not among the schema's properties)" in error.message
    assert "variables.count must be integer, not string" in error.message
    assert "three" not in error.message  # the values sent are never quoted
    assert '"strict": false' in error.message


def test_the_first_problem_names_the_param_whatever_its_kind() -> None:
    assert invalid(SCHEMA, {"customer_name": "a", "tone": "warm", "x": 1}).param == "variables.x"
    assert invalid(SCHEMA, {"customer_name": 5, "tone": "warm"}).param == "variables.customer_name"
    nested = {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "string"}}}}
    error = invalid(nested, {"items": ["a", 2]})
    assert error.param == "variables.items[1]" and "variables.items[1] must be string, not integer" in error.message


def test_valid_variables_pass_and_extra_names_pass_where_the_schema_allows_them() -> None:
    check_variables(SCHEMA, {"customer_name": "Ada", "tone": "formal", "count": 2}, subject="s")
    check_variables({**SCHEMA, "additionalProperties": True}, {"customer_name": "Ada", "tone": "warm", "x": 1},
                    subject="s")
    check_variables({"type": "object", "patternProperties": {"^x_": {}}}, {"x_1": 1}, subject="s")
    error = invalid({**SCHEMA, "additionalProperties": False}, {"customer_name": "Ada", "tone": "warm", "x": 1})
    assert "unknown x " in error.message and "additionalProperties" not in error.message


def test_a_long_list_of_problems_is_cut_short() -> None:
    error = invalid({"type": "object", "properties": {}}, {f"v{index}": index for index in range(100)})
    assert "v19" in error.message and "v20," not in error.message and "and 80 more" in error.message


def test_defaults_fill_in_what_was_not_sent_strict_or_not() -> None:
    typed = version(variables_schema=SCHEMA)
    assert render_variables(typed, {"customer_name": "Ada"}, strict=None) == {"customer_name": "Ada", "tone": "warm"}
    assert render_variables(typed, {"customer_name": "Ada", "tone": "formal"}, strict=True)["tone"] == "formal"
    sent = {"customer_name": "Ada"}
    assert render_variables(version(), sent, strict=True) is sent  # no schema: nothing added


def test_strictness_is_the_requests_else_the_versions() -> None:
    lenient, strict = version(variables_schema=SCHEMA), version(variables_schema=SCHEMA, strict_variables=True)
    assert render_variables(lenient, {"other": 1}, strict=None) == {"other": 1, "tone": "warm"}
    assert render_variables(strict, {"other": 1}, strict=False) == {"other": 1, "tone": "warm"}
    for typed, flag, why in ((lenient, True, 'the request says "strict": true'),
                             (strict, None, "its strict_variables is true")):
        with pytest.raises(InvalidVariables) as caught:
            render_variables(typed, {"other": 1}, strict=flag)
        assert f"prompt greet version 1 ({why})" in caught.value.message


def test_strict_without_a_schema_checks_against_the_inferred_one() -> None:
    with pytest.raises(InvalidVariables) as caught:
        render_variables(version("Hi {{name}}{{#items}}{{title}}{{/items}}"), {"nme": "Ada"}, strict=True)
    assert caught.value.param == "variables.name" and "unknown nme" in caught.value.message
    render_variables(version("Hi {{name}}{{#items}}{{title}}{{/items}}"), {"name": "Ada", "title": "t"}, strict=True)


# --- breaking changes ------------------------------------------------------------------------------


def schema(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


def test_a_newly_required_variable_without_a_default_is_incompatible() -> None:
    old = schema(("a",), a={}, b={})
    assert incompatible_changes(old, schema(("a", "b"), a={}, b={})) == [Incompatibility("b", "required")]
    assert incompatible_changes(old, schema(("a", "c"), a={}, c={})) == [Incompatibility("c", "required")]
    assert incompatible_changes(old, schema(("a", "b"), a={}, b={"default": 1})) == []
    assert incompatible_changes(old, schema((), a={})) == []  # requiring less never breaks a caller
    # required before only with a default: callers may not send it
    assert incompatible_changes(schema(("b",), b={"default": 1}), schema(("b",), b={})) == [
        Incompatibility("b", "required")]


def test_a_type_change_is_incompatible_unless_the_new_types_include_the_old() -> None:
    old = schema(a={"type": "string"}, n={"type": "integer"}, any={}, both={"type": ["string", "null"]})
    assert incompatible_changes(old, schema(a={"type": ["string", "number"]}, n={"type": "number"}, any={},
                                            both={"type": ["null", "string", "boolean"]})) == []
    changes = incompatible_changes(old, schema(a={"type": "integer"}, n={"type": "string"}, any={"type": "object"},
                                               both={"type": "string"}))
    assert [(change.variable, change.change) for change in changes] == [
        ("a", "type"), ("n", "type"), ("any", "type"), ("both", "type")]
    assert str(changes[0]) == "a changes type from string to integer"
    assert str(changes[2]) == "any changes type from any type to object"
    assert incompatible_changes(old, schema(b={"type": "integer"})) == []  # a removed variable has no type to change


def test_no_old_schema_means_no_constraints_and_each_change_says_itself() -> None:
    assert incompatible_changes(None, schema(("a",), a={"type": "string"})) == [Incompatibility("a", "required")]
    assert str(Incompatibility("a", "required")) == "a is now required (without a default)"


def test_check_compatible_is_a_409_that_names_the_variables_and_the_override() -> None:
    current = version("Hi {{name}}", 2)
    target = version("Hi {{name}}, about {{topic}}", 3, variables_schema=schema(
        ("name", "topic"), name={"type": "integer"}, topic={}))
    check_compatible(current, version("Hello {{name}}", 4), action="Publishing version 4")
    with pytest.raises(IncompatibleVariables) as caught:
        check_compatible(current, target, action="Publishing version 3")
    error = caught.value
    assert error.status == 409 and error.code == "incompatible_variables" and error.param == "variables.topic"
    assert error.message == (
        "Publishing version 3 of prompt greet would break callers of version 2: topic is now required (without a "
        "default); name changes type from any type to integer. Change those callers first, or send \"force\": true "
        "to do it anyway.")
