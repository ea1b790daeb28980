"""The Mustache spec's core modules, with HTML escaping as the spec expects.

Run twice: through the plain combustache renderer, and through cuecard's engine (safe lookups,
cached parsing, our partial node) with only the escaper swapped back to HTML.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from combustache import Template

from core.template_values import text_value
from core.templating import _render

SPEC_DIR = Path("/work/shared/mustache-spec")
MODULES = ["comments", "delimiters", "interpolation", "inverted", "partials", "sections"]


def _cases() -> list[pytest.param]:
    cases = []
    for module in MODULES:
        for test in json.loads((SPEC_DIR / f"{module}.json").read_text())["tests"]:
            cases.append(pytest.param(test, id=f"{module}::{test['name']}"))
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES)
def test_library_renderer(case: dict) -> None:
    rendered = Template(case["template"]).render(case["data"], case.get("partials", {}))
    assert rendered == case["expected"], case["desc"]


@pytest.mark.parametrize("case", CASES)
def test_cuecard_engine_with_html_escaping(case: dict) -> None:
    rendered = _render(case["template"], case["data"], case.get("partials", {}), text_value, html.escape)
    assert rendered == case["expected"], case["desc"]


def test_all_core_modules_are_covered() -> None:
    assert len(CASES) == 136
