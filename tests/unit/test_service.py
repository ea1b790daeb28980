import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from itertools import count

import pytest

from core.errors import (
    Conflict,
    InvalidLabelName,
    InvalidReference,
    InvalidRequest,
    LabelNotFound,
    PartialCycle,
    PartialInUse,
    PartialNotFound,
    PromptNotFound,
    RenderedJSONInvalid,
    TemplateError,
    VersionNotFound,
)
from core.models import Kind, builtin_label
from core.service import PromptService, make_slug
from tests.unit.fakes import InMemoryStore

CHAT = json.dumps([{"role": "system", "content": "You are {{tone}}."}, {"role": "user", "content": "{{question}}"}])
VARIABLES = {"tone": "terse", "question": "Why?"}
RENDERED = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Why?"}]
HISTORY = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def chat(*contents: str) -> str:
    return json.dumps([{"role": "user", "content": content} for content in contents])


def is_uuid(text: str) -> bool:
    return str(uuid.UUID(text)) == text


@pytest.fixture
def store():
    return InMemoryStore()


@pytest.fixture
def service(store):
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    ticks = count()

    def now() -> str:
        return (start + timedelta(seconds=next(ticks))).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return PromptService(store, store, now=now)


def create(service, **fields):
    body = {"name": "Greeting", "string": CHAT, "model": "gpt-4o-mini", "parameters": {"temperature": 0.2, "max_tokens": 100}}
    body.update(fields)
    return service.create_prompt(body)


def render(service, reference, body=None):
    return service.render(reference, {"variables": VARIABLES} if body is None else body).body


def raises(error_type, call, *args, **kwargs):
    with pytest.raises(error_type) as caught:
        call(*args, **kwargs)
    return caught.value


# --- render ------------------------------------------------------------------------------------


def test_render_by_id_and_slug(service):
    prompt = create(service)
    for reference in (prompt["id"], prompt["slug"]):
        assert render(service, reference) == {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 100, "messages": RENDERED}


def test_render_body_key_order(service):
    prompt = create(service, parameters={"top_p": 0.5, "temperature": 0.1, "max_tokens": 9})
    assert list(render(service, prompt["id"])) == ["model", "top_p", "temperature", "max_tokens", "messages"]


def test_rendered_carries_version_and_request(service):
    prompt = create(service)
    rendered = service.render(prompt["slug"] + "@1", {"variables": VARIABLES, "stream": True})
    assert rendered.version.entity_id == prompt["id"] and rendered.version.version == 1
    assert rendered.request.stream is True
    assert rendered.request.variables == VARIABLES


def test_render_selectors(service):
    prompt = create(service, string=chat("v1"))
    service.update_prompt(prompt["id"], {"patch": True, "string": chat("v2")})
    service.update_prompt(prompt["id"], {"patch": True, "string": chat("v3")})

    def content(reference):
        return render(service, reference)["messages"][0]["content"]

    assert content(prompt["id"]) == "v1"  # updates do not publish
    assert content(prompt["slug"] + "@2") == "v2"
    assert content(prompt["id"] + "@latest") == "v3"
    service.label_version(prompt["id"], "2", {"label_id": "production"})
    assert content(prompt["id"] + "@production") == "v2"
    service.publish_prompt(prompt["slug"], {"version": 3})
    assert content(prompt["slug"]) == "v3"


def test_render_uses_one_store_read_without_partials(service, store):
    prompt = create(service)
    store.resolve_calls = 0
    render(service, prompt["id"])
    assert store.resolve_calls == 1


def test_overrides_win_for_the_call_only(service):
    prompt = create(service)
    body = render(service, prompt["id"], {"variables": VARIABLES, "temperature": 0.9, "model": "gpt-4o", "seed": 7})
    assert body == {"model": "gpt-4o", "temperature": 0.9, "max_tokens": 100, "messages": RENDERED, "seed": 7}
    assert list(body) == ["model", "temperature", "max_tokens", "messages", "seed"]
    assert render(service, prompt["id"]) == {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 100, "messages": RENDERED}


def test_null_override_is_ignored(service):
    prompt = create(service)
    body = render(service, prompt["id"], {"variables": VARIABLES, "temperature": None, "model": None})
    assert body["temperature"] == 0.2 and body["model"] == "gpt-4o-mini"


def test_max_tokens_and_max_completion_tokens_are_both_accepted(service):
    prompt = create(service)
    body = render(service, prompt["id"], {"max_tokens": 5, "max_completion_tokens": 6})
    assert body["max_tokens"] == 5 and body["max_completion_tokens"] == 6


def test_variables_and_stream_are_not_in_the_body(service):
    prompt = create(service)
    body = render(service, prompt["id"], {"variables": VARIABLES, "stream": True})
    assert "variables" not in body and "stream" not in body


def test_saved_stream_is_not_copied(service):
    prompt = create(service, parameters={"temperature": 0.2, "stream": True, "stream_options": {"include_usage": True}})
    rendered = service.render(prompt["id"], {"variables": VARIABLES})
    assert "stream" not in rendered.body and "stream_options" not in rendered.body
    assert rendered.request.stream is False


@pytest.mark.parametrize("body", [{}, {"variables": {}}, {"variables": None}])
def test_missing_variables_render_empty(service, body):
    prompt = create(service)
    assert render(service, prompt["id"], body)["messages"] == [
        {"role": "system", "content": "You are ."},
        {"role": "user", "content": ""},
    ]


def test_request_messages_replace_rendered_ones(service):
    prompt = create(service)
    messages = [{"role": "user", "content": "custom {{tone}}"}]
    body = render(service, prompt["id"], {"variables": VARIABLES, "messages": messages})
    assert body["messages"] == messages
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.2


def test_text_template_renders_prompt(service):
    prompt = create(service, string="Summarize: {{text}}", parameters={"max_tokens": 10})
    body = render(service, prompt["id"], {"variables": {"text": "<b>a & b</b>"}})
    assert body == {"model": "gpt-4o-mini", "max_tokens": 10, "prompt": "Summarize: <b>a & b</b>"}


def test_tools_are_part_of_the_body(service):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    prompt = create(service, tools=tools, tool_choice="auto")
    body = render(service, prompt["id"])
    assert body["tools"] == tools and body["tool_choice"] == "auto"
    assert list(body)[-1] == "messages"


def test_saved_fractional_penalty_is_returned_unchanged(service):
    prompt = create(service, parameters={"presence_penalty": 0.5})
    assert render(service, prompt["id"])["presence_penalty"] == 0.5


def test_no_model_means_no_model_key(service):
    prompt = service.create_prompt({"name": "x", "string": chat("hi")})
    assert render(service, prompt["id"], {}) == {"messages": [{"role": "user", "content": "hi"}]}


RAW = '[{"role": "system", "content": "Be {{tone}}"}, {{history}}]'


def test_raw_template_splices_history(service):
    prompt = create(service, string=RAW, is_raw_template=1)
    body = render(service, prompt["id"], {"variables": {"tone": 'brief, "really"\n', "history": HISTORY}})
    assert body["messages"] == [{"role": "system", "content": 'Be brief, "really"\n'}, *HISTORY]


def test_raw_template_sections_add_messages(service):
    template = '[{{#sys}}{"role": "system", "content": "{{sys}}"},{{/sys}}{"role": "user", "content": "{{q}}"}]'
    prompt = create(service, string=template, is_raw_template=True)
    assert len(render(service, prompt["id"], {"variables": {"sys": "s", "q": "q"}})["messages"]) == 2
    assert render(service, prompt["id"], {"variables": {"q": "q"}})["messages"] == [{"role": "user", "content": "q"}]


def test_raw_template_rendering_invalid_json_is_422_naming_the_version(service):
    prompt = create(service, string='[{"role": "user", "content": {{q}}}]', is_raw_template=1)
    error = raises(RenderedJSONInvalid, service.render, prompt["id"], {"variables": {"q": "hello"}})
    assert error.status == 422
    assert f"prompt {prompt['slug']} version 1" in error.message


@pytest.mark.parametrize(
    "string", ['{"role": "user", "content": "{{q}}"}', '"{{q}}"', "null", '[1, "{{q}}"]', '[{"role": "user"}, ["{{q}}"]]']
)
def test_raw_template_rendering_a_non_array_is_422(service, string):
    prompt = create(service, string=string, is_raw_template=1)
    error = raises(RenderedJSONInvalid, service.render, prompt["id"], {"variables": {"q": "hello"}})
    assert error.status == 422
    assert f"prompt {prompt['slug']} version 1" in error.message


@pytest.fixture
def signature(service):
    """A partial `pl-sig`: version 1 published, version 2 not."""
    created = service.create_partial({"name": "sig", "slug": "pl-sig", "string": "Regards, {{who}}"})
    service.update_partial("pl-sig", {"string": "Cheers, {{who}}"})
    return created


@pytest.mark.parametrize(
    "tag, variables, expected",
    [
        ("{{>pl-sig}}", {}, "Hi Regards, me"),
        ("{{>pl-sig@1}}", {}, "Hi Regards, me"),
        ("{{>pl-sig@2}}", {}, "Hi Cheers, me"),
        ("{{>pl-sig@latest}}", {}, "Hi Cheers, me"),
        ("{{>>which}}", {"which": "pl-sig@2"}, "Hi Cheers, me"),
        ("{{>>which}}", {"which": "pl-sig"}, "Hi Regards, me"),
        ("{{>>which}}", {}, "Hi "),
        ("{{>pl-missing}}", {}, "Hi "),
        ("{{>pl-sig@9}}", {}, "Hi "),
        ("{{>pl-sig@production}}", {}, "Hi "),
    ],
)
def test_partials(service, signature, tag, variables, expected):
    prompt = create(service, string=chat("Hi " + tag))
    body = render(service, prompt["id"], {"variables": {"who": "me", **variables}})
    assert body["messages"][0]["content"] == expected


def test_partial_by_id(service, signature):
    prompt = create(service, string=chat("Hi {{>" + signature["id"] + "}}"))
    assert render(service, prompt["id"], {"variables": {"who": "me"}})["messages"][0]["content"] == "Hi Regards, me"


def test_partial_publish_changes_what_renders(service, signature):
    prompt = create(service, string=chat("{{>pl-sig}}"))
    service.publish_partial("pl-sig", {"version": 2})
    assert render(service, prompt["id"], {"variables": {"who": "me"}})["messages"][0]["content"] == "Cheers, me"


def test_deleted_partial_renders_empty(service, signature):
    prompt = create(service, string=chat("[{{>pl-sig}}]"))
    service.delete_partial("pl-sig", force=True)
    assert render(service, prompt["id"], {"variables": {"who": "me"}})["messages"][0]["content"] == "[]"


def test_deleting_a_partial_in_use_is_409_listing_the_dependents(service, signature):
    published = create(service, slug="pp-published", string=chat("{{>pl-sig}}"))
    labelled = create(service, slug="pp-labelled", string=chat("none"))
    service.update_prompt(labelled["id"], {"patch": True, "string": chat("{{>pl-sig@2}}")})
    service.label_version(labelled["id"], "2", {"label_id": "staging"})
    service.update_prompt(labelled["id"], {"patch": True, "string": chat("none again")})
    by_id = create(service, slug="pp-by-id", string="{{>" + signature["id"].upper() + "}}")
    service.create_partial({"name": "outer", "slug": "pl-outer", "string": "({{>pl-sig@latest}})"})

    error = raises(PartialInUse, service.delete_partial, "pl-sig")
    assert (error.status, error.code, error.param) == (409, "partial_in_use", "partial_id")
    for dependent in ("prompt pp-published version 1 (published, latest)", "prompt pp-labelled version 2 (label staging)",
                      "prompt pp-by-id version 1 (published, latest)", "partial pl-outer version 1 (published, latest)"):
        assert dependent in error.message
    assert "pp-labelled version 1" not in error.message and "version 3" not in error.message
    assert "force=true" in error.message
    assert service.get_partial("pl-sig")["slug"] == "pl-sig"  # not deleted
    assert published and by_id


@pytest.mark.parametrize("string", [chat("{{>>which}}"), chat("{{! {{>pl-sig}} }}"), chat("{{>pl-sigh}}")])
def test_partial_not_named_statically_is_no_dependency(service, signature, string):
    create(service, string=string)
    assert service.delete_partial("pl-sig") == {}


def test_versions_no_pointer_reaches_and_deleted_prompts_do_not_block(service, signature):
    old = create(service, string=chat("{{>pl-sig}}"))
    service.update_prompt(old["id"], {"patch": True, "string": chat("no partial")})
    service.publish_prompt(old["id"], {"version": 2})
    gone = create(service, string=chat("{{>pl-sig}}"))
    service.delete_prompt(gone["id"])
    assert service.delete_partial("pl-sig") == {}


def test_force_deletes_a_partial_in_use(service, signature):
    prompt = create(service, string=chat("[{{>pl-sig}}]"))
    raises(PartialInUse, service.delete_partial, signature["id"])
    assert service.delete_partial(signature["id"], force=True) == {}
    assert render(service, prompt["id"])["messages"][0]["content"] == "[]"


def test_a_partial_that_includes_itself_can_be_deleted(service):
    service.create_partial({"name": "self", "slug": "pl-self", "string": "x"})
    service.update_partial("pl-self", {"string": "{{>pl-self}}"})
    assert service.delete_partial("pl-self") == {}


def test_nested_partials(service):
    service.create_partial({"name": "inner", "slug": "pl-inner", "string": "<{{x}}>"})
    service.create_partial({"name": "outer", "slug": "pl-outer", "string": "({{>pl-inner}})"})
    prompt = create(service, string="{{>pl-outer}}")
    assert render(service, prompt["id"], {"variables": {"x": 1}})["prompt"] == "(<1>)"


def test_partial_in_raw_template(service):
    service.create_partial({"name": "sys", "slug": "pl-sys", "string": '{"role": "system", "content": "Be {{tone}}"}'})
    prompt = create(service, string='[{{>pl-sys}}, {"role": "user", "content": "{{q}}"}]', is_raw_template=1)
    body = render(service, prompt["id"], {"variables": {"tone": 'a "b"', "q": "c"}})
    assert body["messages"] == [{"role": "system", "content": 'Be a "b"'}, {"role": "user", "content": "c"}]


@pytest.mark.parametrize("self_cycle", [True, False])
def test_partial_cycle_is_400(service, self_cycle):
    if self_cycle:
        service.create_partial({"name": "a", "slug": "pl-a", "string": "a {{>pl-a}}"})
    else:
        service.create_partial({"name": "a", "slug": "pl-a", "string": "a {{>pl-b}}"})
        service.create_partial({"name": "b", "slug": "pl-b", "string": "b {{>pl-a}}"})
    prompt = create(service, string=chat("{{>pl-a}}"))
    error = raises(PartialCycle, service.render, prompt["id"], {})
    assert error.status == 400


@pytest.mark.parametrize(
    "reference, error_type",
    [
        ("pp-nope-000000", PromptNotFound),
        ("3f2b8c1e-9a4d-4e7b-8c6f-1d2e3f4a5b6c", PromptNotFound),
        ("{slug}@7", VersionNotFound),
        ("{slug}@qa", LabelNotFound),
        ("{slug}@staging", VersionNotFound),
    ],
)
def test_render_not_found_is_404(service, reference, error_type):
    prompt = create(service)
    error = raises(error_type, service.render, reference.format(slug=prompt["slug"]), {})
    assert error.status == 404


def test_partial_id_is_not_a_prompt(service, signature):
    raises(PromptNotFound, service.render, "pl-sig", {})


@pytest.mark.parametrize("reference", ["a@", "a b", "a@0", "a@latest@1"])
def test_bad_reference_is_400(service, reference):
    assert raises(InvalidReference, service.render, reference, {}).status == 400


@pytest.mark.parametrize(
    "body, param",
    [
        ({"temperature": 3}, "temperature"),
        ({"variables": [1]}, "variables"),
        ({"stream": "yes"}, "stream"),
        ({"n": 0}, "n"),
    ],
)
def test_bad_render_body_is_400(service, body, param):
    prompt = create(service)
    error = raises(InvalidRequest, service.render, prompt["id"], body)
    assert error.status == 400 and error.param == param


def test_render_body_must_be_an_object(service):
    prompt = create(service)
    assert raises(InvalidRequest, service.render, prompt["id"], [1]).status == 400


# --- create ------------------------------------------------------------------------------------


def test_create_answer(service):
    answer = create(service)
    assert set(answer) == {"id", "slug", "version_id", "version", "object"}
    assert is_uuid(answer["id"]) and is_uuid(answer["version_id"])
    assert answer["version"] == 1 and answer["object"] == "prompt"
    assert re.fullmatch(r"pp-greeting-[0-9a-f]{6}", answer["slug"])


@pytest.mark.parametrize(
    "name, pattern",
    [
        ("Greeting", r"pp-greeting-[0-9a-f]{6}"),
        ("Support Bot v2!", r"pp-support-bot-[0-9a-f]{6}"),
        ("A very long prompt name", r"pp-a-very-long-[0-9a-f]{6}"),
        ("!!!", r"pp-prompt-[0-9a-f]{6}"),
        ("日本語", r"pp-prompt-[0-9a-f]{6}"),
    ],
)
def test_slug_shape(name, pattern):
    assert re.fullmatch(pattern, make_slug(Kind.PROMPT, name))


def test_partial_slug_shape():
    assert re.fullmatch(r"pl-footer-[0-9a-f]{6}", make_slug(Kind.PARTIAL, "Footer"))


def test_custom_slug(service):
    answer = create(service, slug="greeting")
    assert answer["slug"] == "greeting"
    assert render(service, "greeting@1")["messages"] == RENDERED


def test_duplicate_slug_is_409(service):
    create(service, slug="greeting")
    assert raises(Conflict, create, service, slug="greeting").status == 409


@pytest.mark.parametrize("slug", ["ab", "Has-Caps", "has space", "-lead", "3f2b8c1e-9a4d-4e7b-8c6f-1d2e3f4a5b6c", 5])
def test_bad_custom_slug_is_400(service, slug):
    assert raises(InvalidRequest, create, service, slug=slug).param == "slug"


def test_variables_are_recorded_on_the_version(service):
    prompt = create(service, string=chat("{{a}} {{#items}}{{b.c}}{{/items}} {{>>p}} {{a}}"))
    assert service.get_version(prompt["id"], "1")["variables"] == ["a", "items", "b.c", "p"]
    assert service.get_prompt(prompt["id"])["variables"] == ["a", "items", "b.c", "p"]


def test_fields_are_stored_on_version_1(service):
    prompt = create(service, virtual_key="openai-prod", version_description="first", template_metadata={"team": "x"},
                    prompt_metadata={"owner": "me"}, collection_id="support")
    detail = service.get_prompt(prompt["slug"])
    assert detail["virtual_key"] == "openai-prod"
    assert detail["prompt_version_description"] == "first"
    assert detail["template_metadata"] == {"team": "x"}
    assert detail["prompt_metadata"] == {"owner": "me"}
    assert detail["collection_id"] == "support"
    assert detail["is_raw_template"] is False


@pytest.mark.parametrize("string", ["{{#a}}unclosed", chat("{{#a}}unclosed"), "{{/a}}", "{{<parent}}{{/parent}}"])
def test_bad_template_is_400_on_string(service, string):
    error = raises(TemplateError, create, service, string=string)
    assert error.status == 400 and error.param == "string"


@pytest.mark.parametrize(
    "string, where",
    [
        ('[{"role": "user", "content": "hi"},]', "line 1 column 36"),
        ('[{"role": "user", "content": "hi"}\n {"role": "user"}]', "line 2 column 2"),
        ("  [{'role': 'user'}]", "line 1 column 5"),
        ('[{"role": "user", "content": "{{#items}}{{.}}{{/items}}"}, {{#more}}{}{{/more}}]', "line 1 column 61"),
        ("[INST] {{question}} [/INST]", "line 1 column 2"),
    ],
)
def test_chat_template_that_is_not_json_is_400_pointing_at_the_error(service, string, where):
    error = raises(TemplateError, create, service, string=string)
    assert (error.status, error.param, error.code) == (400, "string", "invalid_chat_template")
    assert where in error.message and "{{! text }}" in error.message


@pytest.mark.parametrize("string", ["[1, 2]", '[{"role": "user"}, "hi"]', "[" * 5000 + "]" * 5000,
                                    "[" * 200 + "]" * 200])
def test_array_that_is_not_messages_is_400(service, string):
    error = raises(TemplateError, create, service, string=string)
    assert (error.status, error.code) == (400, "invalid_chat_template")


def test_text_prompt_starting_with_a_bracket_begins_with_a_comment(service):
    prompt = create(service, string="{{! text }}[INST] {{question}} [/INST]")
    assert render(service, prompt["id"])["prompt"] == "[INST] Why? [/INST]"
    standalone = create(service, string="{{! a text prompt }}\n[INST] {{question}} [/INST]")
    assert render(service, standalone["id"])["prompt"] == "[INST] Why? [/INST]"


def test_raw_templates_and_partials_may_start_with_a_bracket(service):
    raw = create(service, string='[{{#a}}{"role":"user","content":"{{.}}"},{{/a}}{"role":"user","content":"end"}]',
                 is_raw_template=1)
    assert len(render(service, raw["id"], {"variables": {"a": ["x"]}})["messages"]) == 2
    assert service.create_partial({"name": "list", "string": "[{{x}}]"})["version"] == 1


def test_update_checks_a_new_chat_string_but_not_one_copied_forward(service, store):
    prompt = create(service)
    error = raises(TemplateError, service.update_prompt, prompt["id"], {"patch": True, "string": "[oops"})
    assert error.code == "invalid_chat_template"
    raises(TemplateError, service.update_prompt, prompt["id"], {"string": "[oops", "parameters": {}})
    # A version stored before the check (as a text prompt) can still be patched.
    entity = service._new_entity(Kind.PROMPT, "legacy", "legacy-prompt", "default", None, {})
    store.create(Kind.PROMPT, entity, service._draft({"string": "[legacy {{x}}", "parameters": {}}))
    assert service.update_prompt("legacy-prompt", {"patch": True, "parameters": {"temperature": 0.5}})["version"] == 2
    assert service.render("legacy-prompt", {"variables": {"x": 1}}).body["prompt"] == "[legacy 1"


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"parameters": {"temperature": 3}}, "parameters.temperature"),
        ({"parameters": {"top_p": "high"}}, "parameters.top_p"),
        ({"parameters": [1]}, "parameters"),
        ({"bogus": 1}, "bogus"),
        ({"string": None}, "string"),
        ({"name": ""}, "name"),
        ({"is_raw_template": 2}, "is_raw_template"),
        ({"is_raw_template": "1"}, "is_raw_template"),
        ({"tool_choice": 5}, "tool_choice"),
    ],
)
def test_bad_create_body_is_400(service, fields, param):
    error = raises(InvalidRequest, create, service, **fields)
    assert error.status == 400 and error.param == param


def test_unknown_key_says_so(service):
    error = raises(InvalidRequest, create, service, bogus=1)
    assert error.code == "unknown_parameter" and "bogus" in error.message


def test_missing_name_is_400(service):
    error = raises(InvalidRequest, service.create_prompt, {"string": CHAT})
    assert error.param == "name" and error.code == "missing_required_parameter"


@pytest.mark.parametrize("flag", [1, True])
def test_is_raw_template_accepts_1(service, flag):
    prompt = create(service, string=RAW, is_raw_template=flag)
    assert service.get_version(prompt["id"], "1")["is_raw_template"] is True
    assert service.get_version(prompt["id"], "1")["variables"] == ["tone", "history"]


# --- update ------------------------------------------------------------------------------------


def test_update_creates_an_unpublished_version(service):
    prompt = create(service)
    answer = service.update_prompt(prompt["id"], {"string": chat("new"), "parameters": {"temperature": 1}})
    assert answer["id"] == prompt["id"] and answer["slug"] == prompt["slug"]
    assert answer["version"] == 2 and is_uuid(answer["prompt_version_id"])
    assert answer["prompt_version_id"] != prompt["version_id"]
    detail = service.get_prompt(prompt["id"])
    assert detail["published_version"] == 1 and detail["latest_version"] == 2
    assert detail["prompt_version"] == 1
    assert render(service, prompt["id"])["messages"] == RENDERED
    assert service.get_version(prompt["id"], answer["prompt_version_id"])["prompt_version"] == 2


def test_update_without_patch_replaces_the_version(service):
    prompt = create(service, virtual_key="vk")
    service.update_prompt(prompt["id"], {"string": chat("new"), "parameters": {"top_p": 0.5}})
    version = service.get_version(prompt["id"], "2")
    assert version["parameters"] == {"top_p": 0.5}
    assert version["model"] is None and version["virtual_key"] is None


@pytest.mark.parametrize(
    "body, missing",
    [
        ({"parameters": {"temperature": 1}}, "string"),
        ({"string": chat("x")}, "parameters"),
        ({"patch": False, "string": chat("x")}, "parameters"),
        ({"model": "gpt-4o", "name": "renamed"}, "string"),
        ({"string": chat("x"), "virtual_key": "vk"}, "parameters"),
    ],
)
def test_update_without_patch_needs_string_and_parameters(service, body, missing):
    prompt = create(service)
    error = raises(InvalidRequest, service.update_prompt, prompt["id"], body)
    assert error.status == 400 and error.param == missing and error.code == "missing_required_parameter"
    assert '"patch": true' in error.message
    assert "prompts.update(id, string=..., parameters=...)" in error.message  # what an SDK user sends
    detail = service.get_prompt(prompt["id"])
    assert detail["latest_version"] == 1 and detail["name"] == "Greeting"  # nothing written, not even the name


@pytest.mark.parametrize("body", [{}, {"patch": True}, {"patch": False}, {"name": None, "virtual_key": None}])
def test_an_update_that_changes_nothing_is_400(service, body):
    prompt = create(service)
    error = raises(InvalidRequest, service.update_prompt, prompt["id"], body)
    assert error.status == 400 and "must change something" in error.message
    assert service.get_prompt(prompt["id"])["latest_version"] == 1


def test_patch_fills_missing_fields_from_the_latest(service):
    prompt = create(service, virtual_key="vk", tool_choice="none", tools=[{"type": "function", "function": {"name": "f"}}])
    service.update_prompt(prompt["id"], {"patch": True, "model": "gpt-4o"})
    service.update_prompt(prompt["id"], {"patch": True, "parameters": {"temperature": 0.7}})
    version = service.get_version(prompt["id"], "3")
    assert version["string"] == CHAT
    assert version["model"] == "gpt-4o"  # from version 2, the latest, not version 1
    assert version["parameters"] == {"temperature": 0.7}
    assert version["virtual_key"] == "vk" and version["tool_choice"] == "none"
    assert version["variables"] == ["tone", "question"]


def test_patch_keeps_raw_flag(service):
    prompt = create(service, string=RAW, is_raw_template=1)
    service.update_prompt(prompt["id"], {"patch": True, "parameters": {}})
    assert service.get_version(prompt["id"], "2")["is_raw_template"] is True


def test_update_validates_the_new_version(service):
    prompt = create(service)
    assert raises(TemplateError, service.update_prompt, prompt["id"], {"patch": True, "string": "{{#a}}"}).param == "string"
    error = raises(InvalidRequest, service.update_prompt, prompt["id"], {"patch": True, "parameters": {"temperature": -1}})
    assert error.param == "parameters.temperature"
    assert service.get_prompt(prompt["id"])["latest_version"] == 1


def test_concurrent_updates_get_distinct_versions(service):
    prompt = create(service)

    def update(i):
        return service.update_prompt(prompt["id"], {"patch": True, "string": chat(f"u{i}")})["version"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(update, range(40)))
    assert sorted(numbers) == list(range(2, 42))
    assert [v["prompt_version"] for v in service.list_versions(Kind.PROMPT, prompt["id"])["data"]] == list(range(41, 0, -1))
    assert service.get_prompt(prompt["id"])["published_version"] == 1


@pytest.mark.parametrize("patch", [{}, {"patch": True}, {"patch": False}])
def test_update_head_fields_makes_no_version(service, patch):
    prompt = create(service)
    answer = service.update_prompt(prompt["slug"], {**patch, "name": "Renamed", "prompt_metadata": {"owner": "me"},
                                                    "workspace_id": "ws-1"})
    # Portkey's answer: id, slug, prompt_version_id (here the latest, which the update left as it was).
    assert answer == {"id": prompt["id"], "slug": prompt["slug"], "prompt_version_id": prompt["version_id"],
                      "version": 1, "object": "prompt"}
    detail = service.get_prompt(prompt["id"])
    assert detail["name"] == "Renamed" and detail["prompt_metadata"] == {"owner": "me"}
    assert detail["latest_version"] == 1 and len(service.list_versions(Kind.PROMPT, prompt["id"])["data"]) == 1
    assert service.list_prompts({"workspace_id": "ws-1"})["data"][0]["id"] == prompt["id"]


def test_a_collection_move_makes_no_version_and_reads_back(service):
    prompt = create(service)
    service.update_prompt(prompt["id"], {"string": chat("v2"), "parameters": {}})
    answer = service.update_prompt(prompt["id"], {"collection_id": "team-b"})
    assert answer["version"] == 2  # the latest, unchanged
    assert service.get_prompt(prompt["id"])["collection_id"] == "team-b"
    assert service.get_prompt(prompt["id"])["latest_version"] == 2
    assert [p["id"] for p in service.list_prompts({"collection_id": "team-b"})["data"]] == [prompt["id"]]
    assert service.list_prompts({"collection_id": "default"})["data"] == []


@pytest.mark.parametrize("annotation", [{"version_description": "now with a key"}, {"virtual_key": "vk-2"},
                                        {"version_description": "both", "virtual_key": "vk-2"}])
def test_virtual_key_or_description_alone_is_a_new_version_copying_the_latest(service, annotation):
    """Versions are immutable, so these two version fields, sent without the template, make one new version
    of the latest (as `patch: true` would) instead of editing it; the published version does not move."""
    prompt = create(service, virtual_key="vk-1", version_description="first")
    answer = service.update_prompt(prompt["id"], {**annotation, "name": "Renamed"})
    assert answer["version"] == 2 and answer["prompt_version_id"] != prompt["version_id"]
    new, old = service.get_version(prompt["id"], "2"), service.get_version(prompt["id"], "1")
    assert new["string"] == CHAT and new["parameters"] == old["parameters"] and new["model"] == "gpt-4o-mini"
    assert new["virtual_key"] == annotation.get("virtual_key", "vk-1")
    assert new["prompt_version_description"] == annotation.get("version_description")
    assert old["virtual_key"] == "vk-1" and old["prompt_version_description"] == "first"
    detail = service.get_prompt(prompt["id"])
    assert detail["name"] == "Renamed" and detail["published_version"] == 1


def test_a_full_update_with_head_fields_makes_one_version_and_changes_the_head(service):
    prompt = create(service)
    answer = service.update_prompt(prompt["id"], {"string": chat("v2"), "parameters": {}, "name": "Two",
                                                  "collection_id": "c2", "version_description": "second"})
    assert answer["version"] == 2
    detail = service.get_prompt(prompt["id"], "2")
    assert detail["name"] == "Two" and detail["collection_id"] == "c2" and detail["string"] == chat("v2")
    assert service.get_version(prompt["id"], "2")["prompt_version_description"] == "second"


def test_update_unknown_prompt_is_404(service):
    raises(PromptNotFound, service.update_prompt, "pp-nope-000000", {"name": "x"})
    raises(PromptNotFound, service.update_prompt, "pp-nope-000000", {"patch": True, "string": "x"})


def test_update_rejects_unknown_keys(service):
    prompt = create(service)
    assert raises(InvalidRequest, service.update_prompt, prompt["id"], {"patch": True, "slug": "x"}).param == "slug"


# --- get, list, delete, publish ----------------------------------------------------------------


def test_get_prompt_defaults_to_the_published_version(service):
    prompt = create(service)
    service.update_prompt(prompt["id"], {"patch": True, "string": chat("v2")})
    detail = service.get_prompt(prompt["slug"])
    assert detail["id"] == prompt["id"] and detail["prompt_version"] == 1 and detail["string"] == CHAT
    assert detail["prompt_version_id"] == prompt["version_id"]
    assert detail["model"] == "gpt-4o-mini" and detail["parameters"] == {"temperature": 0.2, "max_tokens": 100}
    assert service.get_prompt(prompt["id"], "2")["string"] == chat("v2")


@pytest.mark.parametrize("version", ["abc", "0", "-1", "", "1.0", "²", " 1"])
def test_get_prompt_bad_version_is_400(service, version):
    prompt = create(service)
    error = raises(InvalidRequest, service.get_prompt, prompt["id"], version)
    assert error.status == 400 and error.param == "version"


def test_get_prompt_unknown_version_is_404(service):
    prompt = create(service)
    raises(VersionNotFound, service.get_prompt, prompt["id"], "9")
    raises(PromptNotFound, service.get_prompt, "pp-nope-000000")


def test_list_prompts(service):
    ids = [create(service, name=f"Prompt {i}")["id"] for i in range(5)]
    listing = service.list_prompts({})
    assert listing["object"] == "list" and listing["total"] == 5
    assert [item["id"] for item in listing["data"]] == ids
    item = listing["data"][0]
    assert item["object"] == "prompt" and item["latest_version"] == 1 and item["published_version"] == 1
    page = service.list_prompts({"current_page": "1", "page_size": "2"})
    assert page["total"] == 5 and [item["id"] for item in page["data"]] == ids[2:4]
    page = service.list_prompts({"current_page": "2", "page_size": "2"})
    assert [item["id"] for item in page["data"]] == ids[4:]
    assert service.list_prompts({"current_page": "9"})["data"] == []


@pytest.mark.parametrize("query", [{"page_size": "0"}, {"current_page": "-1"}, {"page_size": "x"}])
def test_list_bad_paging_is_400(service, query):
    assert raises(InvalidRequest, service.list_prompts, query).status == 400


def test_list_search_and_collection(service):
    a = create(service, name="Support Triage", collection_id="support")
    b = create(service, name="Sales pitch", collection_id="sales")
    c = create(service, name="support faq", collection_id="support")
    assert [p["id"] for p in service.list_prompts({"search": "SUPPORT"})["data"]] == [a["id"], c["id"]]
    assert [p["id"] for p in service.list_prompts({"search": b["slug"][-6:]})["data"]] == [b["id"]]
    listing = service.list_prompts({"collection_id": "support"})
    assert listing["total"] == 2 and [p["id"] for p in listing["data"]] == [a["id"], c["id"]]
    assert service.list_prompts({"collection_id": "sales", "search": "support"})["total"] == 0


def test_list_filters_by_workspace(service):
    a = create(service, workspace_id="ws1")
    create(service, workspace_id="ws2")
    assert [p["id"] for p in service.list_prompts({"workspace_id": "ws1"})["data"]] == [a["id"]]


def test_entries_of_no_workspace_are_in_every_workspace(service):
    # The SDK creates prompts without a workspace_id; a workspace filter must still find them.
    mine = create(service, workspace_id="ws1")
    create(service, workspace_id="ws2")
    shared = create(service)
    assert [p["id"] for p in service.list_prompts({"workspace_id": "ws1"})["data"]] == [mine["id"], shared["id"]]
    partial = service.create_partial({"name": "p", "string": "x"})
    service.create_partial({"name": "q", "string": "y", "workspace_id": "ws2"})
    assert [p["id"] for p in service.list_partials({"workspace_id": "ws1"})["data"]] == [partial["id"]]
    service.create_label({"name": "theirs", "workspace_id": "ws2"})
    service.create_label({"name": "ours", "workspace_id": "ws1"})
    names = [label["name"] for label in service.list_labels({"workspace_id": "ws1"})["data"]]
    assert names == ["production", "staging", "development", "ours"]


def test_list_items_carry_the_shown_versions_model(service):
    prompt = create(service, model="gpt-4o")
    service.update_prompt(prompt["id"], {"patch": True, "model": "gpt-4.1"})
    assert service.list_prompts({})["data"][0]["model"] == "gpt-4o"  # the published version's
    service.publish_prompt(prompt["id"], {"version": 2})
    assert service.list_prompts({})["data"][0]["model"] == "gpt-4.1"


def test_retrieve_carries_the_version_status_and_label_id(service):
    prompt = create(service)
    detail = service.get_prompt(prompt["id"])
    assert detail["prompt_version_status"] == "active" and detail["prompt_version_label_id"] is None
    qa = service.create_label({"name": "qa"})
    service.label_version(prompt["id"], "1", {"label_id": qa["id"]})
    assert service.get_prompt(prompt["id"])["prompt_version_label_id"] == qa["id"]


def test_an_empty_tools_list_is_not_sent(service):
    prompt = create(service, tools=[])
    assert "tools" not in render(service, prompt["id"])


def test_delete_hides_the_prompt(service, store):
    keep = create(service, name="keep")
    gone = create(service, name="gone")
    service.update_prompt(gone["id"], {"patch": True, "string": chat("v2")})
    assert service.delete_prompt(gone["slug"]) == {}
    assert len(store.versions[(Kind.PROMPT, gone["id"])]) == 2  # hidden, not erased
    for reference in (gone["id"], gone["slug"], gone["id"] + "@1", gone["id"] + "@latest"):
        assert raises(PromptNotFound, service.render, reference, {}).status == 404
    raises(PromptNotFound, service.get_prompt, gone["id"])
    raises(PromptNotFound, service.list_versions, Kind.PROMPT, gone["id"])
    raises(PromptNotFound, service.get_version, gone["id"], "1")
    raises(PromptNotFound, service.update_prompt, gone["id"], {"patch": True, "string": "x"})
    raises(PromptNotFound, service.update_prompt, gone["id"], {"name": "x"})
    raises(PromptNotFound, service.publish_prompt, gone["id"], {"version": 1})
    raises(PromptNotFound, service.delete_prompt, gone["id"])
    listing = service.list_prompts({})
    assert listing["total"] == 1 and listing["data"][0]["id"] == keep["id"]


def test_publish(service):
    prompt = create(service)
    service.update_prompt(prompt["id"], {"patch": True, "string": chat("v2")})
    assert service.publish_prompt(prompt["slug"], {"version": 2}) == {}
    assert service.get_prompt(prompt["id"])["published_version"] == 2
    assert render(service, prompt["id"])["messages"] == [{"role": "user", "content": "v2"}]
    service.publish_prompt(prompt["id"], {"version": 1})
    assert render(service, prompt["id"])["messages"] == RENDERED


@pytest.mark.parametrize(
    "body, param",
    [({"version": "2"}, "version"), ({}, "version"), ({"version": 0}, "version"), ({"version": -1}, "version"),
     ({"version": 1.5}, "version"), ({"version": True}, "version"), ({"version": 1, "x": 1}, "x")],
)
def test_publish_bad_body_is_400(service, body, param):
    prompt = create(service)
    error = raises(InvalidRequest, service.publish_prompt, prompt["id"], body)
    assert error.status == 400 and error.param == param


def test_publish_body_must_be_an_object(service):
    prompt = create(service)
    assert raises(InvalidRequest, service.publish_prompt, prompt["id"], 2).status == 400


def test_publish_unknown_version_is_404(service):
    prompt = create(service)
    raises(VersionNotFound, service.publish_prompt, prompt["id"], {"version": 2})


# --- versions and labels on versions -----------------------------------------------------------


def test_list_versions_newest_first(service):
    prompt = create(service, version_description="one")
    service.update_prompt(prompt["id"], {"patch": True, "string": chat("v2"), "version_description": "two"})
    service.update_prompt(prompt["id"], {"patch": True, "string": chat("v3"), "version_description": "three"})
    service.label_version(prompt["id"], "2", {"label_id": "staging"})
    service.label_version(prompt["id"], "2", {"label_id": "production"})
    listing = service.list_versions(Kind.PROMPT, prompt["slug"])
    assert listing["object"] == "list" and listing["total"] == 3
    data = listing["data"]
    assert [v["prompt_version"] for v in data] == [3, 2, 1]
    assert [v["prompt_version_description"] for v in data] == ["three", "two", "one"]
    assert [v["labels"] for v in data] == [[], ["production", "staging"], []]
    assert [v["is_published"] for v in data] == [False, False, True]
    assert all(v["prompt_id"] == prompt["id"] and v["object"] == "prompt" for v in data)
    assert data[2]["id"] == prompt["version_id"]


def test_version_list_items_carry_portkeys_prompt_version_summary(service):
    prompt = create(service, version_description="one", tools=None)
    qa = service.create_label({"name": "qa"})
    service.label_version(prompt["id"], "1", {"label_id": qa["id"]})
    item = service.list_versions(Kind.PROMPT, prompt["id"])["data"][0]
    assert item["id"] == prompt["version_id"] and item["prompt_id"] == prompt["id"] and item["prompt_version"] == 1
    assert item["prompt_description"] == "one"
    assert item["label_id"] == qa["id"] and is_uuid(item["label_id"])
    assert item["status"] == "active" and item["object"] == "prompt"
    template = item["prompt_template"]
    assert template["string"] == CHAT and template["model"] == "gpt-4o-mini"
    assert template["parameters"] == {"temperature": 0.2, "max_tokens": 100}
    assert template["is_raw_template"] is False and template["tools"] == [] and template["functions"] == []
    unlabelled = service.update_prompt(prompt["id"], {"patch": True, "string": chat("v2")})
    assert service.list_versions(Kind.PROMPT, prompt["id"])["data"][0]["label_id"] is None
    assert unlabelled["version"] == 2


def test_version_retrieve_is_portkeys_prompt_object(service):
    prompt = create(service, version_description="one", collection_id="support")
    update = service.update_prompt(prompt["id"], {"patch": True, "string": chat("v2"), "version_description": "two"})
    service.label_version(prompt["id"], "2", {"label_id": "staging"})
    version = service.get_version(prompt["slug"], update["prompt_version_id"])
    assert version["id"] == prompt["id"] and version["slug"] == prompt["slug"] and version["name"] == "Greeting"
    assert version["collection_id"] == "support" and version["status"] == "active"
    assert version["prompt_version"] == 2 and version["prompt_version_id"] == update["prompt_version_id"]
    assert version["prompt_version_status"] == "active" and version["prompt_version_description"] == "two"
    assert version["prompt_version_label_id"] == builtin_label("staging").id  # built-in labels have fixed UUIDs
    assert version["string"] == chat("v2") and version["is_raw_template"] is False
    assert version["last_updated_at"] and version["created_at"]
    assert version["version_id"] == update["prompt_version_id"] and version["labels"] == ["staging"]
    assert version["is_published"] is False
    first = service.get_version(prompt["id"], "1")
    assert first["prompt_version_label_id"] is None and first["prompt_version_description"] == "one"


def test_get_version_by_number_and_id(service):
    prompt = create(service)
    update = service.update_prompt(prompt["id"], {"patch": True, "string": chat("v2")})
    by_number = service.get_version(prompt["slug"], "2")
    by_id = service.get_version(prompt["id"], update["prompt_version_id"])
    assert by_number == by_id
    assert by_id["prompt_version_id"] == update["prompt_version_id"] and by_id["string"] == chat("v2")
    raises(VersionNotFound, service.get_version, prompt["id"], "3")
    raises(VersionNotFound, service.get_version, prompt["id"], str(uuid.uuid4()))
    raises(VersionNotFound, service.get_version, prompt["id"], "²")


@pytest.mark.parametrize("digits", ["9" * 13, "9" * 5000, "1" + "0" * 4400])
def test_huge_version_numbers_are_404_not_500(service, digits):
    prompt = create(service)
    for call in (service.get_version, service.get_prompt):
        error = raises(VersionNotFound, call, prompt["id"], digits)
        assert error.status == 404 and len(error.message) < 200
    raises(VersionNotFound, service.label_version, prompt["id"], digits, {"label_id": "staging"})
    raises(VersionNotFound, service.get_partial, service.create_partial({"name": "p", "string": "x"})["id"], digits)


def test_leading_zeros_name_the_same_version(service):
    prompt = create(service)
    assert service.get_version(prompt["id"], "0" * 5000 + "1")["prompt_version"] == 1
    assert raises(InvalidRequest, service.get_version, prompt["id"], "0").status == 400


def test_version_ids_belong_to_their_prompt(service):
    a = create(service)
    b = create(service)
    raises(VersionNotFound, service.get_version, a["id"], b["version_id"])


def test_label_version_by_label_id_or_name(service):
    prompt = create(service, string=chat("v1"))
    service.update_prompt(prompt["id"], {"patch": True, "string": chat("v2")})
    qa = service.create_label({"name": "qa"})
    assert service.label_version(prompt["id"], "2", {"label_id": qa["id"]}) == {}
    assert render(service, prompt["id"] + "@qa")["messages"][0]["content"] == "v2"
    service.label_version(prompt["slug"], prompt["version_id"], {"label_id": "qa"})  # moves the label
    assert render(service, prompt["id"] + "@qa")["messages"][0]["content"] == "v1"
    assert service.get_prompt(prompt["id"])["labels"] == {"qa": 1}
    assert service.get_prompt(prompt["id"])["prompt_version_labels"] == ["qa"]


def test_a_label_points_per_prompt(service):
    a = create(service, string=chat("a1"))
    b = create(service, string=chat("b1"))
    service.update_prompt(b["id"], {"patch": True, "string": chat("b2")})
    service.label_version(a["id"], "1", {"label_id": "production"})
    service.label_version(b["id"], "2", {"label_id": "production"})
    assert render(service, a["id"] + "@production")["messages"][0]["content"] == "a1"
    assert render(service, b["id"] + "@production")["messages"][0]["content"] == "b2"


def test_label_version_errors(service):
    prompt = create(service)
    raises(LabelNotFound, service.label_version, prompt["id"], "1", {"label_id": "nope"})
    raises(VersionNotFound, service.label_version, prompt["id"], "5", {"label_id": "production"})
    raises(PromptNotFound, service.label_version, "pp-nope-000000", "1", {"label_id": "production"})
    for body in ({}, {"label_id": ""}, {"label_id": 3}, {"label_id": "qa", "name": "x"}):
        assert raises(InvalidRequest, service.label_version, prompt["id"], "1", body).status == 400


# --- labels ------------------------------------------------------------------------------------


def test_builtin_labels_are_listed(service):
    listing = service.list_labels({})
    assert listing["object"] == "list"
    builtins = [label for label in listing["data"] if label["is_universal"]]
    assert [(label["id"], label["name"]) for label in builtins] == [
        (builtin_label(name).id, name) for name in ("production", "staging", "development")
    ]
    assert service.get_label(builtin_label("staging").id)["name"] == "staging"  # by UUID or by name


def test_label_crud(service):
    created = service.create_label({"name": "qa", "description": "QA", "color_code": "#ff0000"})
    assert is_uuid(created["id"]) and created["name"] == "qa"
    label = service.get_label(created["id"])
    assert label == service.get_label("qa")
    assert label["description"] == "QA" and label["color_code"] == "#ff0000" and label["is_universal"] is False
    listing = service.list_labels({})
    assert listing["total"] == 4 and listing["data"][-1]["id"] == created["id"]
    assert service.update_label(created["id"], {"name": "qa2", "description": "QA 2"}) == {}
    label = service.get_label(created["id"])
    assert label["name"] == "qa2" and label["description"] == "QA 2" and label["color_code"] == "#ff0000"
    assert service.delete_label("qa2") == {}
    raises(LabelNotFound, service.get_label, created["id"])
    assert service.list_labels({})["total"] == 3


def test_labels_carry_portkeys_fields(service):
    created = service.create_label({"name": "qa"})
    label = service.get_label(created["id"])
    assert label["status"] == "active" and label["last_updated_at"] == label["created_at"]
    assert "organisation_id" in label
    builtin = service.get_label("production")
    assert builtin["status"] == "active" and builtin["last_updated_at"]


def test_list_labels_searches_names(service):
    service.create_label({"name": "qa-team"})
    service.create_label({"name": "canary"})
    assert [label["name"] for label in service.list_labels({"search": "QA"})["data"]] == ["qa-team"]
    assert [label["name"] for label in service.list_labels({"search": "o"})["data"]] == ["production", "development"]
    assert service.list_labels({"search": "QA"})["total"] == 1


@pytest.mark.parametrize("version", [2.0, 2])
def test_make_default_takes_a_whole_number(service, version):
    prompt = create(service)
    service.update_prompt(prompt["id"], {"patch": True, "string": chat("v2")})
    assert service.publish_prompt(prompt["id"], {"version": version}) == {}
    assert service.get_prompt(prompt["id"])["published_version"] == 2
    partial = service.create_partial({"name": "p", "string": "x"})
    service.update_partial(partial["id"], {"string": "y"})
    assert service.publish_partial(partial["id"], {"version": version}) == {}
    assert service.get_partial(partial["id"])["version"] == 2


@pytest.mark.parametrize("version", [1.5, True, "2", 0.0])
def test_make_default_refuses_what_is_no_version_number(service, version):
    prompt = create(service)
    assert raises(InvalidRequest, service.publish_prompt, prompt["id"], {"version": version}).param == "version"


def test_list_labels_pages(service):
    for name in ("a1", "a2", "a3"):
        service.create_label({"name": name})
    page = service.list_labels({"current_page": "1", "page_size": "4"})
    assert page["total"] == 6 and [label["name"] for label in page["data"]] == ["a2", "a3"]


@pytest.mark.parametrize("name", ["latest", "Default", "42", "a b", "a@b", "", "x" * 65])
def test_create_label_bad_name_is_400(service, name):
    error = raises(InvalidLabelName, service.create_label, {"name": name})
    assert error.status == 400 and error.param == "name"


@pytest.mark.parametrize("body, param", [({}, "name"), ({"name": 3}, "name"), ({"name": "ok", "x": 1}, "x")])
def test_create_label_bad_body_is_400(service, body, param):
    assert raises(InvalidRequest, service.create_label, body).param == param


def test_duplicate_label_is_409(service):
    service.create_label({"name": "qa"})
    raises(Conflict, service.create_label, {"name": "qa"})
    raises(Conflict, service.create_label, {"name": "production"})
    other = service.create_label({"name": "qa2"})
    raises(Conflict, service.update_label, other["id"], {"name": "qa"})


def test_update_label_bad_name_is_400(service):
    created = service.create_label({"name": "qa"})
    raises(InvalidLabelName, service.update_label, created["id"], {"name": "latest"})
    assert service.get_label(created["id"])["name"] == "qa"


def test_builtin_labels_cannot_be_changed_or_deleted(service):
    raises(InvalidRequest, service.update_label, "production", {"name": "prod"})
    raises(InvalidRequest, service.update_label, "production", {"description": "live", "name": "production"})
    raises(InvalidRequest, service.delete_label, "staging")
    assert service.get_label("production")["description"] == "Built-in production label"
    assert [label["name"] for label in service.list_labels({})["data"]] == ["production", "staging", "development"]


def test_unknown_label_is_404(service):
    raises(LabelNotFound, service.get_label, "nope")
    raises(LabelNotFound, service.update_label, "nope", {"description": "x"})
    raises(LabelNotFound, service.delete_label, "nope")


# --- partials ----------------------------------------------------------------------------------


def test_partial_crud(service):
    created = service.create_partial({"name": "Footer", "string": "Bye {{who}}", "version_description": "first"})
    assert set(created) == {"id", "slug", "version_id", "version", "object"}
    assert is_uuid(created["id"]) and re.fullmatch(r"pl-footer-[0-9a-f]{6}", created["slug"])
    assert created["version"] == 1 and created["object"] == "partial"

    detail = service.get_partial(created["slug"])
    assert detail["id"] == created["id"] and detail["string"] == "Bye {{who}}" and detail["variables"] == ["who"]
    assert detail["version"] == 1 and detail["version_description"] == "first" and detail["status"] == "active"

    updated = service.update_partial(created["id"], {"string": "Ciao {{who}}", "version_description": "second"})
    assert updated["version"] == 2 and is_uuid(updated["version_id"])
    assert service.get_partial(created["id"])["version"] == 1  # not published
    assert service.get_partial(created["id"], "2")["string"] == "Ciao {{who}}"
    raises(InvalidRequest, service.get_partial, created["id"], "x")

    versions = service.list_versions(Kind.PARTIAL, created["id"])
    assert [v["prompt_version"] for v in versions["data"]] == [2, 1]
    assert [v["is_published"] for v in versions["data"]] == [False, True]
    assert versions["data"][0]["object"] == "partial"

    assert service.publish_partial(created["slug"], {"version": 2}) == {}
    assert service.get_partial(created["id"])["version"] == 2
    raises(InvalidRequest, service.publish_partial, created["id"], {"version": "2"})
    raises(VersionNotFound, service.publish_partial, created["id"], {"version": 3})

    assert service.delete_partial(created["id"]) == {}
    raises(PartialNotFound, service.get_partial, created["id"])
    assert service.list_partials({})["total"] == 0


def test_update_partial_with_only_name_creates_no_version(service):
    created = service.create_partial({"name": "Footer", "string": "Bye"})
    answer = service.update_partial(created["id"], {"name": "Signature"})
    assert "version" not in answer and answer["id"] == created["id"]
    detail = service.get_partial(created["id"])
    assert detail["name"] == "Signature" and detail["latest_version"] == 1


def test_update_partial_status(service):
    created = service.create_partial({"name": "Footer", "string": "Bye"})
    service.update_partial(created["id"], {"status": "archived"})
    assert service.get_partial(created["id"])["status"] == "archived"
    raises(InvalidRequest, service.update_partial, created["id"], {"status": "gone"})


def test_update_partial_description_alias(service):
    created = service.create_partial({"name": "Footer", "string": "Bye"})
    service.update_partial(created["id"], {"string": "Ciao", "description": "italian"})
    assert service.get_partial(created["id"], "2")["version_description"] == "italian"


def test_update_partial_description_alone_is_a_new_version_of_the_latest_string(service):
    created = service.create_partial({"name": "Footer", "string": "Bye", "version_description": "first"})
    service.update_partial(created["id"], {"string": "Ciao"})
    answer = service.update_partial(created["id"], {"description": "italian"})
    assert answer["version"] == 3 and answer["prompt_partial_version_id"] == answer["version_id"]
    third = service.get_partial(created["id"], "3")
    assert third["string"] == "Ciao" and third["version_description"] == "italian"
    assert service.get_partial(created["id"])["version"] == 1  # published stays where it was
    assert service.list_versions(Kind.PARTIAL, created["id"])["data"][0]["description"] == "italian"


def test_partial_versions_carry_portkeys_partial_version_fields(service):
    created = service.create_partial({"name": "Footer", "string": "Bye", "version_description": "first"})
    detail = service.get_partial(created["id"])
    assert detail["prompt_partial_version_id"] == created["version_id"]
    item = service.list_versions(Kind.PARTIAL, created["slug"])["data"][0]
    assert item["prompt_partial_id"] == created["id"] and item["prompt_partial_version_id"] == created["version_id"]
    assert item["version"] == "1" and item["description"] == "first" and item["slug"] == created["slug"]
    assert item["string"] == "Bye" and item["prompt_version_status"] == "active" and item["object"] == "partial"
    assert item["created_at"]


def test_partial_template_errors_are_400(service):
    assert raises(TemplateError, service.create_partial, {"name": "x", "string": "{{#a}}"}).param == "string"
    created = service.create_partial({"name": "x", "string": "ok"})
    assert raises(TemplateError, service.update_partial, created["id"], {"string": "{{/a}}"}).param == "string"
    assert service.get_partial(created["id"])["latest_version"] == 1


def test_partials_and_prompts_are_separate(service):
    prompt = create(service)
    partial = service.create_partial({"name": "x", "string": "ok"})
    raises(PartialNotFound, service.get_partial, prompt["id"])
    raises(PromptNotFound, service.get_prompt, partial["id"])
    assert service.list_prompts({})["total"] == 1 and service.list_partials({})["total"] == 1


def test_list_partials(service):
    ids = [service.create_partial({"name": f"p{i}", "string": f"t{i}"})["id"] for i in range(3)]
    service.create_partial({"name": "other", "string": "x", "collection_id": "c2"})
    listing = service.list_partials({})
    assert listing["total"] == 4 and listing["data"][0]["string"] == "t0"
    page = service.list_partials({"page_size": "2", "current_page": "1", "collection_id": "default"})
    assert page["total"] == 3 and [p["id"] for p in page["data"]] == ids[2:]
    assert [p["name"] for p in service.list_partials({"search": "oth"})["data"]] == ["other"]


def test_patch_does_not_copy_the_previous_version_description(service):
    prompt = create(service, version_description="first draft")
    service.update_prompt(prompt["id"], {"patch": True, "parameters": {"temperature": 0.1}})
    assert service.get_version(prompt["id"], "2")["prompt_version_description"] is None
    assert service.get_version(prompt["id"], "1")["prompt_version_description"] == "first draft"


def test_the_slug_partials_is_reserved_for_the_route_of_that_name(service):
    raises(InvalidRequest, service.create_prompt, {"name": "P", "slug": "partials", "string": "hi"})


def test_a_null_label_id_takes_every_label_off_that_version_and_only_that_version(service):
    created = service.create_prompt({"name": "P", "string": "v1"})
    service.update_prompt(created["id"], {"patch": True, "string": "v2"})
    service.label_version(created["id"], "2", {"label_id": "production"})
    service.label_version(created["id"], "2", {"label_id": "staging"})
    service.label_version(created["id"], "1", {"label_id": "development"})
    service.label_version(created["id"], "2", {"label_id": None})
    assert service.get_prompt(created["id"])["labels"] == {"development": 1}
    raises(InvalidRequest, service.label_version, created["id"], "2", {})  # absent is still an error


# --- collections must exist (when the service is given a CollectionStore) -------------------------


def test_prompts_and_partials_go_only_into_collections_that_exist(store):
    from core.models import Collection

    service = PromptService(store, store, collections=store)
    store.create_collection(Collection(id=str(uuid.uuid4()), slug="team-a", name="Team A", created_at="t",
                                       updated_at="t"))
    made = service.create_prompt({"name": "P", "string": "hi", "collection_id": "team-a"})
    assert service.create_prompt({"name": "Q", "string": "hi"})["slug"]  # `default` always exists
    service.create_partial({"name": "p", "string": "x", "collection_id": "team-a"})
    for call, body in ((service.create_prompt, {"name": "P", "string": "hi", "collection_id": "nope"}),
                       (service.create_partial, {"name": "p", "string": "x", "collection_id": "nope"})):
        error = raises(InvalidRequest, call, body)
        assert error.param == "collection_id" and error.code == "collection_not_found" and "POST /v1/collections" in error.message
    error = raises(InvalidRequest, service.update_prompt, made["id"], {"collection_id": "nope", "name": "never"})
    assert error.code == "collection_not_found"
    assert service.get_prompt(made["id"])["name"] == "P" and service.get_prompt(made["id"])["collection_id"] == "team-a"
    assert service.update_prompt(made["id"], {"collection_id": "default"})["version"] == 1
