"""What changed between two versions of a prompt: a unified diff of the templates and the fields that differ.

Pure: takes two stored versions, returns JSON-able data. The template diff is stdlib `difflib`'s unified
diff. A chat template that is valid JSON is diffed in its indented form (one message field a line), since
the stored string is usually one line; any other template, or two that differ only in JSON spacing, as written.
"""

from __future__ import annotations

import difflib
import json
from typing import Any, Mapping

from core.models import TemplateVersion

# The fields compared besides the template, by their API names (`variables` is reported as added/removed).
# `variables_schema` is the explicit schema as stored: null for a version whose schema is inferred.
COMPARED_FIELDS: tuple[str, ...] = (
    "model", "parameters", "tools", "tool_choice", "functions", "template_metadata", "is_raw_template",
    "virtual_key", "variables", "variables_schema", "strict_variables",
)


def unified_text_diff(old: str, new: str, *, old_name: str, new_name: str) -> str:
    """`difflib.unified_diff` of two texts with the given headers; "" when they are the same."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=old_name, tofile=new_name)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def template_display(template: str) -> str:
    """The form a template is diffed in: a JSON template indented, anything else as written."""
    try:
        parsed = json.loads(template)
    except ValueError:
        return template
    if not isinstance(parsed, (list, dict)):
        return template
    return json.dumps(parsed, indent=2, ensure_ascii=False)


def _plain(value: Any) -> Any:
    """A field's value as JSON data (mappings to dicts, tuples to lists)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def field_changes(old: TemplateVersion, new: TemplateVersion) -> dict[str, dict[str, Any]]:
    """Each compared field whose value differs: `{field: {"from": old, "to": new}}`, in COMPARED_FIELDS order."""
    changes: dict[str, dict[str, Any]] = {}
    for name in COMPARED_FIELDS:
        before, after = _plain(getattr(old, name)), _plain(getattr(new, name))
        if before != after:
            changes[name] = {"from": before, "to": after}
    return changes


def _version_side(version: TemplateVersion, name: str) -> dict[str, Any]:
    return {"ref": name, "version": version.version, "prompt_version_id": version.version_id}


def diff_versions(old: TemplateVersion, new: TemplateVersion, *, old_name: str, new_name: str) -> dict[str, Any]:
    """The diff of two versions of one prompt, as the diff route answers it.

    `old_name` and `new_name` head the template diff (e.g. `summarize@3`, `summarize@production`).
    """
    old_variables, new_variables = list(old.variables), list(new.variables)
    changed = field_changes(old, new)
    old_text, new_text = template_display(old.string), template_display(new.string)
    if old_text == new_text:  # the same JSON written differently: show how it is written
        old_text, new_text = old.string, new.string
    template_diff = unified_text_diff(old_text, new_text, old_name=old_name, new_name=new_name)
    return {
        "object": "prompt.diff",
        "prompt_id": new.entity_id,
        "slug": new.slug,
        "from": _version_side(old, old_name),
        "to": _version_side(new, new_name),
        "identical": old.string == new.string and not changed,
        "template_diff": template_diff,
        "changed": changed,
        "added_variables": [name for name in new_variables if name not in old_variables],
        "removed_variables": [name for name in old_variables if name not in new_variables],
    }


__all__ = ["COMPARED_FIELDS", "diff_versions", "field_changes", "template_display", "unified_text_diff"]
