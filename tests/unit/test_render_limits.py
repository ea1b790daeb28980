"""Bounded renders: every limit of `RenderLimits` is spent while rendering and answered with a 422
`render_limit_exceeded` that names it; the issue's attacks stop at a limit instead of running on."""

from __future__ import annotations

import json
from itertools import count
from pathlib import Path

import pytest

from core.errors import RenderedJSONInvalid, RenderLimitExceeded, TemplateError
from core.service import PromptService
from core.templating import (
    MAX_JSON_DEPTH,
    RenderBudget,
    RenderLimits,
    _no_escape,
    _render,
    collect_partials,
    render_chat,
    render_raw,
    render_text,
)
from tests.unit.fakes import InMemoryStore

SUPPORT_REPLY = json.loads((Path(__file__).parents[2] / "examples" / "prompts" / "support-reply.json").read_text())


def limited(**limits: float) -> RenderBudget:
    return RenderLimits(**limits).budget()  # type: ignore[arg-type]


def exceeded(call, *args, **kwargs) -> RenderLimitExceeded:
    with pytest.raises(RenderLimitExceeded) as caught:
        call(*args, **kwargs)
    error = caught.value
    assert (error.status, error.code, error.type) == (422, "render_limit_exceeded", "invalid_request_error")
    return error


def partials_of(template: str, variables: dict, texts: dict[str, str], budget: RenderBudget | None = None) -> dict:
    return collect_partials(template, variables, lambda ref: (ref, texts[ref]) if ref in texts else None,
                            budget=budget)


# --- each limit ----------------------------------------------------------------------------------


def test_output_bytes_limit_names_itself_and_its_value() -> None:
    budget = limited(max_output_bytes=10)
    assert render_text("{{a}}", {"a": "x" * 10}, budget=budget) == "x" * 10
    error = exceeded(render_text, "{{a}}", {"a": "x" * 11}, budget=limited(max_output_bytes=10))
    assert "max_output_bytes" in error.message and "10 bytes" in error.message


def test_literal_text_counts_as_output() -> None:
    exceeded(render_text, "{{#a}}0123456789{{/a}}", {"a": [1, 2]}, budget=limited(max_output_bytes=15))


def test_output_is_counted_in_utf8_bytes_exactly_once() -> None:
    budget = RenderBudget()
    template = "é{{a}}{{#l}}[{{.}}]{{>p}}{{/l}}{{^none}}ü{{/none}}"
    rendered = render_text(template, {"a": "€", "l": ["x", "y"]}, {"p": "ß{{a}}"}, budget=budget)
    assert rendered == "é€[x]ß€[y]ß€ü"
    assert budget.output == len(rendered.encode())


def test_lone_surrogates_are_counted_not_fatal() -> None:
    budget = RenderBudget()
    assert render_text("{{a}}", {"a": "\ud800"}, budget=budget) == "\ud800"
    assert budget.output == 3


def test_iteration_limit() -> None:
    assert render_text("{{#a}}x{{/a}}", {"a": [1] * 5}, budget=limited(max_iterations=5)) == "xxxxx"
    error = exceeded(render_text, "{{#a}}x{{/a}}", {"a": [1] * 6}, budget=limited(max_iterations=5))
    assert "max_iterations" in error.message and "5 section iterations" in error.message


@pytest.mark.parametrize("template", ["{{#a}}x{{/a}}", "{{^a}}x{{/a}}"])
def test_single_section_bodies_count_as_iterations(template: str) -> None:
    variables = {"a": {"k": 1}} if template.startswith("{{#") else {}
    exceeded(render_text, template * 3, variables, budget=limited(max_iterations=2))


def test_partial_expansion_limit() -> None:
    partials = {"p": "x"}
    assert render_text("{{>p}}" * 3, {}, partials, budget=limited(max_partials=3)) == "xxx"
    error = exceeded(render_text, "{{>p}}" * 4, {}, partials, budget=limited(max_partials=3))
    assert "max_partials" in error.message and "3 partial expansions" in error.message


def test_missing_partials_are_not_expansions() -> None:
    assert render_text("{{>nope}}" * 50, {}, {}, budget=limited(max_partials=1)) == ""


def test_distinct_partial_references_are_bounded_before_any_lookup_past_the_limit() -> None:
    looked_up: list[str] = []

    def fetch(reference: str) -> None:
        looked_up.append(reference)

    template = "".join(f"{{{{>missing-{i}}}}}" for i in range(50))
    error = exceeded(collect_partials, template, {}, fetch, budget=limited(max_partials=10))
    assert "10 distinct partials" in error.message
    assert len(looked_up) == 10


def test_time_limit_with_a_fake_clock() -> None:
    ticks = count()
    budget = RenderLimits(timeout=5).budget(clock=lambda: float(next(ticks)))  # every reading is a second later
    error = exceeded(render_text, "{{#a}}x{{/a}}", {"a": [1] * 100}, budget=budget)
    assert "timeout" in error.message and "5 s" in error.message


def test_time_limit_covers_partial_lookups() -> None:
    ticks = count()
    budget = RenderLimits(timeout=3).budget(clock=lambda: float(next(ticks)))
    template = "".join(f"{{{{>p{i}}}}}" for i in range(10))
    exceeded(partials_of, template, {}, {}, budget)


def test_one_budget_covers_every_message_of_a_chat_template() -> None:
    template = json.dumps([{"role": "system", "content": "{{a}}"}, {"role": "user", "content": "{{a}}"}])
    assert render_chat(template, {"a": "x" * 6}, budget=limited(max_output_bytes=12))
    exceeded(render_chat, template, {"a": "x" * 7}, budget=limited(max_output_bytes=12))


def test_raw_templates_are_bounded_too() -> None:
    template = '[{{#a}}{"role":"user","content":"{{b}}"},{{/a}}{"role":"user","content":"end"}]'
    exceeded(render_raw, template, {"a": [1] * 20, "b": "x"}, source="prompt p version 1", budget=limited(max_iterations=10))


def test_default_limits_render_ordinary_prompts() -> None:
    history = [{"role": "user", "content": "hello " * 50}] * 200
    partials = {"shot": "Q: {{q}}\nA: {{a}}\n"}
    template = "{{#shots}}{{>shot}}{{/shots}}{{#history}}{{content}}{{/history}}" + "{{doc}}"
    variables = {"shots": [{"q": i, "a": i * 2} for i in range(500)], "history": history, "doc": "d" * 500_000}
    assert len(render_text(template, variables, partials, budget=RenderBudget())) > 500_000


# --- the attacks stop at a limit ----------------------------------------------------------


@pytest.fixture
def service() -> PromptService:
    store = InMemoryStore()
    return PromptService(store, store)


def test_shipped_sample_with_a_6000_item_policy_list(service: PromptService) -> None:
    sample = {key: SUPPORT_REPLY[key] for key in ("name", "slug", "string", "parameters")}
    service.create_prompt(sample)
    error = exceeded(service.render, "support-reply", {"variables": {"policy": ["a"] * 6000}})
    assert "max_output_bytes" in error.message


def test_a_list_repeated_in_its_own_loop_is_stringified_once() -> None:
    calls = []

    def stringify(value: object) -> str:
        calls.append(value)
        return "v"

    assert _render("{{#l}}{{l}}{{/l}}", {"l": [1, 2, 3]}, None, stringify, _no_escape) == "vvv"
    assert len(calls) == 1


def test_nested_sections_from_a_tiny_request(service: PromptService) -> None:
    names = "abcdefgh"
    string = "".join(f"{{{{#{n}}}}}" for n in names) + "x" + "".join(f"{{{{/{n}}}}}" for n in reversed(names))
    service.create_prompt({"name": "nested", "slug": "nested", "string": string, "parameters": {}})
    body = {"variables": {n: [1] * 10 for n in names}}  # 10**8 iterations asked for
    assert len(json.dumps(body, separators=(",", ":"))) < 250
    assert "max_iterations" in exceeded(service.render, "nested", body).message


def test_partial_fan_out(service: PromptService) -> None:
    for level in range(8, 0, -1):
        text = "x" if level == 8 else f"{{{{>fan-{level + 1}}}}}" * 10
        service.create_partial({"name": "fan", "slug": f"fan-{level}", "string": text})
    service.create_prompt({"name": "fan", "slug": "fan", "string": "{{>fan-1}}", "parameters": {}})
    assert "max_partials" in exceeded(service.render, "fan", {}).message


def test_service_takes_its_limits(service: PromptService) -> None:
    store = InMemoryStore()
    strict = PromptService(store, store, render_limits=RenderLimits(max_iterations=2))
    strict.create_prompt({"name": "loop", "slug": "loop", "string": "{{#a}}x{{/a}}", "parameters": {}})
    assert strict.render("loop", {"variables": {"a": [1, 2]}}).body["prompt"] == "xx"
    exceeded(strict.render, "loop", {"variables": {"a": [1, 2, 3]}})


# --- nesting is a 4xx, never a RecursionError -------------------------------------------------------


def test_raw_template_rendering_deeply_nested_json_is_422() -> None:
    for depth in (MAX_JSON_DEPTH + 1, 5_000):
        with pytest.raises(RenderedJSONInvalid, match="nests"):
            render_raw("[{{{deep}}}]", {"deep": "[" * depth + "]" * depth}, source="prompt p version 1")


def test_raw_template_nesting_within_the_bound_renders() -> None:
    depth = MAX_JSON_DEPTH - 2
    nested = "[" * depth + "]" * depth
    assert render_raw('[{"role":"user","content":{{{deep}}}}]', {"deep": nested}, source="p")[0]["role"] == "user"


def test_deeply_nested_variables_are_a_400_not_a_recursion_error() -> None:
    deep: object = "x"
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(TemplateError, match="nest too deeply"):
        render_text("{{v}}", {"v": deep})


# --- parsing costs are bounded before the parser runs ----------------------------------------------


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{{#a}}" * 33 + "{{/a}}" * 33, "nest more than 32 deep"),
        ("{{#a}}" * 80_000, "nest more than 32 deep"),
        ("{{x}}" * 200_000, "too many tags on long lines"),  # parsed, this line alone would copy ~100 GB
        ("{{=< >=}}" + "<x>" * 300_000, "too many tags on long lines"),  # other delimiters are counted too
        ("{{=<% %>=}}" + "<%#a%>" * 40 + "<%/a%>" * 40, "nest more than 32 deep"),
        ("{{#a}}" * 16 + "{{x}}\n" * 100_000 + "{{/a}}" * 16, "too many tags inside nested sections"),
    ],
)
def test_templates_too_costly_to_parse_are_refused_before_parsing(template: str, says: str) -> None:
    with pytest.raises(TemplateError, match=says) as caught:
        render_text(template, {})
    assert caught.value.status == 400


def test_big_templates_of_ordinary_shape_parse() -> None:
    lines = "".join(f"Item {i}: {{{{#items}}}}{{{{name}}}} {{{{/items}}}}\n" for i in range(5_000))
    assert render_text(lines, {"items": []}, budget=RenderBudget()).count("\n") == 5_000
    one_line = ("x" * 75 + "{{x}}") * 600  # a 48 kB one-line raw template with 600 tags
    assert render_text(one_line, {"x": 1}) == ("x" * 75 + "1") * 600


def test_an_index_of_thousands_of_digits_is_missing_not_a_500() -> None:
    assert render_text("[{{a." + "9" * 5_000 + "}}]", {"a": [1]}) == "[]"
