"""Typed variables: a prompt version's JSON Schema (draft 2020-12) of the variables it renders with.

A version may carry `variables_schema`; one without has a schema inferred from its template
(`inferred_schema`), and `version_schema` is whichever applies. A schema is checked when written
(`check_variables_schema`), fills in its defaults and checks a strict render's variables before the render
(`render_variables`), and guards publishing and label moves to a version with a schema of its own
(`incompatible_changes`, `guarded_changes`, `check_compatible`).

Variables are an object of name to value: a name is unknown to a schema when its `properties` (and
`patternProperties`) leave it out, unless `additionalProperties` allows more names. jsonschema is imported on
first use only: a render without a schema never loads it (it costs about 50 ms of a Lambda cold start).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal

from core.errors import IncompatibleVariables, InvalidVariables, InvalidVariablesSchema
from core.models import TemplateVersion, VersionContent
from core.templating import template_variables, unsectioned_variables

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

JSON_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})
_MAX_LISTED = 20  # names or problems an error lists of each kind
_MAX_QUOTED = 200  # characters of a schema's value an error quotes
_DATA_KEYWORDS = frozenset({"const", "default", "enum", "examples"})  # their values are data, not schemas
_SCHEMA_MAPS = frozenset({"$defs", "definitions", "dependentSchemas", "patternProperties", "properties"})


# --- which schema a version has ----------------------------------------------------------------------


def inferred_schema(template: str, *, raw: bool = False) -> dict[str, Any]:
    """The schema of a template without one: `{"type": "object", "properties": {name: {}}, "required": [...]}`.

    `properties` holds each variable's first dotted segment (`{{customer.name}}` is `customer`), in first-appearance
    order; `required` those the template interpolates outside every section (a name used only inside a section
    may be a field of its items, and a section's own name may be missing). Raises `TemplateError` for a template
    that does not parse.
    """
    top = _first_segments(template_variables(template, raw=raw))
    return {"type": "object", "properties": {name: {} for name in top},
            "required": _first_segments(unsectioned_variables(template, raw=raw))}


def effective_schema(explicit: Mapping[str, Any] | None, template: str, *, raw: bool = False) -> dict[str, Any]:
    """`explicit` (a version's or a prompt file's `variables_schema`) when given, else the template's inferred one."""
    return dict(explicit) if explicit is not None else inferred_schema(template, raw=raw)


def version_schema(version: VersionContent) -> dict[str, Any]:
    """A stored version's effective schema."""
    return effective_schema(version.variables_schema, version.string, raw=version.is_raw_template)


def _first_segments(names: list[str]) -> list[str]:
    return list(dict.fromkeys(name.split(".", 1)[0] for name in names))


# --- writing a schema --------------------------------------------------------------------------------


def check_variables_schema(schema: Mapping[str, Any]) -> None:
    """Refuses (400, `param: variables_schema`) a schema that is not valid JSON Schema draft 2020-12, whose top
    level is not `"type": "object"`, that requires a name it does not allow, whose `$ref`s do not resolve within
    it, or whose properties' defaults do not match their own schemas."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError, best_match
    from referencing.exceptions import Unresolvable

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "".join(f"[{json.dumps(part)}]" for part in exc.absolute_path)
        raise _bad_schema(f"is not a valid JSON Schema (draft 2020-12): variables_schema{where}: "
                          f"{_clip(exc.message)}") from None
    if schema.get("type") != "object":
        raise _bad_schema('must describe an object of variables: its top level needs "type": "object"')
    properties = _properties(schema)
    for name in schema.get("required", ()):
        if not _allows(schema, name):
            raise _bad_schema(f"requires {name!r}, which its properties do not list; add it to properties")
    validator = Draft202012Validator(schema)
    for holder in _ref_holders(schema):
        try:
            list(validator.evolve(schema=holder).iter_errors(None))  # resolves its $ref
        except (Unresolvable, RecursionError) as exc:
            raise _bad_schema(_unusable_ref(holder.get("$ref") or holder.get("$dynamicRef"), exc)) from None
    for name, subschema in properties.items():
        if isinstance(subschema, Mapping) and "default" in subschema:
            error = best_match(validator.evolve(schema=subschema).iter_errors(subschema["default"]))
            if error is not None:
                raise _bad_schema(f"gives {name!r} a default that its own schema refuses: "
                                  f"{_problem(error, f'the default of {name}')}")


def _bad_schema(problem: str) -> InvalidVariablesSchema:
    return InvalidVariablesSchema(f"variables_schema {problem}.", param="variables_schema")


def _unusable_ref(ref: Any, exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return f"refers to {_clip(str(ref))}, which leads back to itself without checking anything"
    return f"refers to {_clip(str(ref))}, which does not resolve: refer only within the schema, such as #/$defs/name"


def _ref_holders(schema: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every subschema with a `$ref` or `$dynamicRef`, so each is resolved once when the schema is written."""
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, Mapping):
            if isinstance(node.get("$ref"), str) or isinstance(node.get("$dynamicRef"), str):
                yield node
            for key, value in node.items():
                if key in _SCHEMA_MAPS and isinstance(value, Mapping):
                    pending.extend(value.values())
                elif key not in _DATA_KEYWORDS:
                    pending.append(value)


# --- rendering with a schema -------------------------------------------------------------------------


def render_variables(version: TemplateVersion, variables: Mapping[str, Any], *, strict: bool | None) -> Mapping[str, Any]:
    """The variables a render of `version` uses: those sent, plus its explicit schema's defaults for the properties
    not sent. A strict render (`strict` as the request says, else the version's `strict_variables`) first checks
    them against the version's schema (explicit, else inferred): `InvalidVariables` (400) lists every problem."""
    if version.variables_schema is not None:
        defaults = {name: subschema["default"] for name, subschema in _properties(version.variables_schema).items()
                    if isinstance(subschema, Mapping) and "default" in subschema and name not in variables}
        if defaults:
            variables = {**variables, **defaults}
    if strict is None:
        strict, why = version.strict_variables, "its strict_variables is true"
    else:
        why = 'the request says "strict": true'
    if strict:
        check_variables(version_schema(version), variables, subject=f"{version.source} ({why})")
    return variables


def check_variables(schema: Mapping[str, Any], variables: Mapping[str, Any], *, subject: str) -> None:
    """Raises `InvalidVariables` (400) listing every required variable missing, every unknown one and every value
    the schema refuses, `param` naming the first (`variables.<name>`). `subject` names what the schema is of."""
    from jsonschema import Draft202012Validator
    from referencing.exceptions import Unresolvable

    missing = [name for name in schema.get("required", ()) if name not in variables]
    unknown = [name for name in variables if not _allows(schema, name)]
    handled = {"required", "additionalProperties"}  # at the top level: reported as missing and unknown above
    try:
        found = (error for error in Draft202012Validator(schema).iter_errors(variables)
                 if error.absolute_path or error.validator not in handled)
        errors = list(islice(found, _MAX_LISTED + 1))
    except (Unresolvable, RecursionError) as exc:  # a $ref the check on writing could not follow
        raise InvalidVariablesSchema(f"{subject}: variables_schema {_unusable_ref(getattr(exc, 'ref', 'a $ref'), exc)}.",
                                     param="variables_schema") from None
    problems = [f"missing {_listed(missing)}"] if missing else []
    if unknown:
        problems.append(f"unknown {_listed(unknown)} (not among the schema's properties)")
    problems.extend(_problem(error, _param(error.absolute_path)) for error in errors[:_MAX_LISTED])
    if len(errors) > _MAX_LISTED:
        problems.append("more the schema refuses")
    if not problems:
        return
    first = f"variables.{missing[0]}" if missing else f"variables.{unknown[0]}" if unknown else \
        _param(errors[0].absolute_path)
    raise InvalidVariables(
        f"The variables do not match the variables_schema of {subject}: {'; '.join(problems)}. Send the variables "
        'the schema describes (GET the prompt to see it), or render with "strict": false.', param=first)


def _properties(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = schema.get("properties")
    return properties if isinstance(properties, Mapping) else {}


def _allows(schema: Mapping[str, Any], name: str) -> bool:
    """Whether a variable called `name` is known to the schema: one of its properties, matching its
    patternProperties (as jsonschema matches), or any name when `additionalProperties` is there and not false."""
    patterns = schema.get("patternProperties")
    return (name in _properties(schema) or schema.get("additionalProperties", False) is not False
            or (isinstance(patterns, Mapping) and any(re.search(pattern, name) for pattern in patterns)))


def _param(path: Any) -> str:
    """`variables.customer.name`, `variables.items[0]`: where in the variables a problem is."""
    text = "variables"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _problem(error: ValidationError, at: str) -> str:
    """What a jsonschema error says, in words that name the place and the rule, never the value sent."""
    rule, expected = error.validator, error.validator_value
    if rule == "type":
        allowed = [expected] if isinstance(expected, str) else list(expected)
        return f"{at} must be {' or '.join(allowed)}, not {_json_type(error.instance)}"
    if rule == "required" and isinstance(error.instance, Mapping):
        return f"{at} lacks {_listed([name for name in expected if name not in error.instance])}"
    if rule == "enum":
        return f"{at} must be one of {_quoted(expected)}"
    if rule == "const":
        return f"{at} must be {_quoted(expected)}"
    return f"{at} does not satisfy {rule}: {_quoted(expected)}"


def _json_type(value: Any) -> str:
    """The JSON type of a parsed JSON value: `string`, `integer`, `number`, `boolean`, `null`, `object`, `array`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, Mapping) else "array"


def _listed(names: list[str]) -> str:
    more = len(names) - _MAX_LISTED
    return ", ".join(_clip(name) for name in names[:_MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def _quoted(value: Any) -> str:
    return _clip(json.dumps(value, ensure_ascii=False, default=str))


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_QUOTED else text[: _MAX_QUOTED - 3] + "..."


# --- publishing and moving labels --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One way a new schema breaks callers of the old one. `change`: `required` (the new one requires, without a
    default, a variable the old one did not) or `type` (the variable's allowed types are no superset of the old
    ones: `old_types` and `new_types`). `str()` says it in words."""

    variable: str
    change: Literal["required", "type"]
    old_types: frozenset[str] = JSON_TYPES
    new_types: frozenset[str] = JSON_TYPES

    def __str__(self) -> str:
        if self.change == "required":
            return f"{self.variable} is now required (without a default)"
        return f"{self.variable} changes type from {_types(self.old_types)} to {_types(self.new_types)}"


def incompatible_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Incompatibility]:
    """How moving callers from a version with (effective) variables schema `old` to one with `new` may break them.

    Both are effective schemas (`version_schema`, `effective_schema`; None for `old` means no constraints). It
    answers, in `new`'s order: each variable `new` requires without a default that `old` did not require (or
    required with a default), then each variable both list in `properties` whose allowed types in `new` are not
    a superset of those in `old` (no `type` allows every type; `number` includes `integer`). Empty: compatible.
    Pure, so `cuecard push --dry-run` predicts the server's 409 `incompatible_variables` with it.
    """
    old = old or {}
    before = set(_needed(old))
    changes = [Incompatibility(name, "required") for name in _needed(new) if name not in before]
    old_properties = _properties(old)
    for name, subschema in _properties(new).items():
        if name in old_properties:
            old_types, new_types = _allowed_types(old_properties[name]), _allowed_types(subschema)
            if not old_types <= new_types:
                changes.append(Incompatibility(name, "type", old_types, new_types))
    return changes


def guarded_changes(current: Mapping[str, Any] | None, target_explicit: Mapping[str, Any] | None,
                    target_template: str, *, raw: bool = False) -> list[Incompatibility]:
    """What the guard refuses when a pointer moves from a version with effective schema `current` to one with
    its own schema `target_explicit`: `incompatible_changes`, or nothing when the target has no schema of its
    own. A version without one keeps Portkey's behaviour: its inferred schema is a guess, and Portkey's SDK
    cannot send `force`."""
    if target_explicit is None:
        return []
    return incompatible_changes(current, effective_schema(target_explicit, target_template, raw=raw))


def check_compatible(current: TemplateVersion, target: TemplateVersion, *, action: str) -> None:
    """Raises `IncompatibleVariables` (409) when moving a pointer (publishing, a label) from `current` to `target`
    would break callers of `current` (`guarded_changes`). `action` says what, as `Publishing version 3`."""
    changes = guarded_changes(version_schema(current), target.variables_schema, target.string,
                              raw=target.is_raw_template)
    if changes:
        raise IncompatibleVariables(
            f"{action} of prompt {target.slug} would break callers of version {current.version}: "
            f"{'; '.join(map(str, changes))}. Change those callers first, or send \"force\": true to do it anyway.",
            param=f"variables.{changes[0].variable}")


def _needed(schema: Mapping[str, Any]) -> list[str]:
    """The variables a caller must send: required, and without a default."""
    properties = _properties(schema)
    return [name for name in schema.get("required", ())
            if not (isinstance(properties.get(name), Mapping) and "default" in properties[name])]


def _allowed_types(subschema: Any) -> frozenset[str]:
    if subschema is False:
        return frozenset()
    declared = subschema.get("type") if isinstance(subschema, Mapping) else None
    if declared is None:
        return JSON_TYPES
    types = {declared} if isinstance(declared, str) else set(declared)
    return frozenset(types | {"integer"} if "number" in types else types)


def _types(types: frozenset[str]) -> str:
    if types == JSON_TYPES:
        return "any type"
    return " or ".join(sorted(types)) if types else "no value"


__all__ = [
    "JSON_TYPES", "Incompatibility", "check_compatible", "check_variables", "check_variables_schema",
    "effective_schema", "guarded_changes", "incompatible_changes", "inferred_schema", "render_variables", "version_schema",
]
