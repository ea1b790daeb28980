import copy

import pytest

from core.errors import InvalidRequest
from core.hyperparameters import (
    Hyperparameters,
    PromptRequest,
    merge_parameters,
    parse_request_body,
    validate_parameters,
)

SEED_MIN = -(2**63)
SEED_MAX = 2**63 - 1


def tool(name="get_weather", **function):
    return {"type": "function", "function": {"name": name, **function}}


def rejected(params, **kwargs) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        validate_parameters(params, **kwargs)
    error = caught.value
    assert error.status == 400
    assert error.type == "invalid_request_error"
    assert error.message.endswith(".")
    return error


# --- bounds: just inside passes, just outside fails -------------------------------------------

INSIDE = [
    ("frequency_penalty", -2),
    ("frequency_penalty", 2),
    ("frequency_penalty", -2.0),
    ("frequency_penalty", 1.999),
    ("presence_penalty", -2),
    ("presence_penalty", 2),
    ("presence_penalty", 0.5),
    ("n", 1),
    ("n", 128),
    ("temperature", 0),
    ("temperature", 2),
    ("temperature", 1),
    ("temperature", 0.7),
    ("top_p", 0),
    ("top_p", 1),
    ("top_p", 0.5),
    ("max_tokens", 1),
    ("max_tokens", 100_000),
    ("max_completion_tokens", 1),
    ("seed", SEED_MIN),
    ("seed", SEED_MAX),
    ("seed", 0),
]

OUTSIDE = [
    ("frequency_penalty", -2.001),
    ("frequency_penalty", 2.001),
    ("frequency_penalty", -3),
    ("presence_penalty", -2.001),
    ("presence_penalty", 2.001),
    ("n", 0),
    ("n", 129),
    ("temperature", -0.001),
    ("temperature", 2.001),
    ("temperature", 3),
    ("top_p", -0.001),
    ("top_p", 1.001),
    ("max_tokens", 0),
    ("max_tokens", -1),
    ("max_completion_tokens", 0),
    ("seed", SEED_MIN - 1),
    ("seed", SEED_MAX + 1),
    ("temperature", float("nan")),
    ("temperature", float("inf")),
]


@pytest.mark.parametrize(("field", "value"), INSIDE)
def test_value_inside_bounds_passes(field, value):
    params = {field: value}
    assert validate_parameters(params) == {field: value}


@pytest.mark.parametrize(("field", "value"), OUTSIDE)
def test_value_outside_bounds_fails_naming_the_field(field, value):
    error = rejected({field: value})
    assert error.param == field
    assert error.message.startswith(f"{field} must be ")


def test_out_of_range_message_is_one_clear_sentence():
    assert rejected({"temperature": 3}).message == "temperature must be between 0 and 2; got 3."
    assert rejected({"n": 0}).message == "n must be between 1 and 128; got 0."
    assert rejected({"max_tokens": 0}).message == "max_tokens must be a positive integer; got 0."


@pytest.mark.parametrize("value", [-100, 100, -100.0, 0, 99.5])
def test_logit_bias_inside_bounds_passes(value):
    assert validate_parameters({"logit_bias": {"50256": value}}) == {"logit_bias": {"50256": value}}


@pytest.mark.parametrize("value", [-100.5, 100.5, -101, 101])
def test_logit_bias_outside_bounds_names_the_token(value):
    error = rejected({"logit_bias": {"1": 0, "50256": value}})
    assert error.param == "logit_bias.50256"
    assert "between -100 and 100" in error.message


@pytest.mark.parametrize("key", ["abc", "-1", "1.5", ""])
def test_logit_bias_key_must_be_a_token_id(key):
    error = rejected({"logit_bias": {key: 1}})
    assert error.param == f"logit_bias.{key}"
    assert "token ID" in error.message


@pytest.mark.parametrize(("params", "param"), [({"logit_bias": []}, "logit_bias"), ({"logit_bias": {"1": "5"}}, "logit_bias.1")])
def test_logit_bias_shape(params, param):
    assert rejected(params).param == param


# --- top_logprobs and stream_options depend on another field ---------------------------------


@pytest.mark.parametrize("value", [0, 20])
def test_top_logprobs_inside_bounds_with_logprobs_passes(value):
    params = {"logprobs": True, "top_logprobs": value}
    assert validate_parameters(params) == params


@pytest.mark.parametrize("value", [-1, 21])
def test_top_logprobs_outside_bounds_fails(value):
    assert rejected({"logprobs": True, "top_logprobs": value}).param == "top_logprobs"


@pytest.mark.parametrize("logprobs", [False, None, "missing"])
def test_top_logprobs_requires_logprobs_true(logprobs):
    params = {"top_logprobs": 5}
    if logprobs != "missing":
        params["logprobs"] = logprobs
    error = rejected(params)
    assert error.param == "top_logprobs"
    assert error.message == "top_logprobs is only allowed when logprobs is true."


@pytest.mark.parametrize("stream", [False, None, "missing"])
def test_stream_options_requires_stream_true(stream):
    params = {"stream_options": {"include_usage": True}}
    if stream != "missing":
        params["stream"] = stream
    error = rejected(params)
    assert error.param == "stream_options"
    assert error.message == "stream_options is only allowed when stream is true."


def test_stream_options_with_stream_passes():
    params = {"stream": True, "stream_options": {"include_usage": True}}
    assert validate_parameters(params) == params


def test_stream_options_include_usage_must_be_bool():
    assert rejected({"stream": True, "stream_options": {"include_usage": "yes"}}).param == "stream_options.include_usage"


# --- stop ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop", ["\n", "", ["a"], ["a", "b", "c", "d"], []])
def test_stop_string_or_up_to_four_strings_passes(stop):
    assert validate_parameters({"stop": stop}) == {"stop": stop}


@pytest.mark.parametrize(
    ("stop", "param"),
    [(["a", "b", "c", "d", "e"], "stop"), (3, "stop"), ({"x": 1}, "stop"), (["a", 1], "stop[1]"), (True, "stop")],
)
def test_bad_stop_fails(stop, param):
    assert rejected({"stop": stop}).param == param


def test_five_stop_sequences_message():
    assert rejected({"stop": list("abcde")}).message == "stop must have at most 4 items; got an array of 5 items."


# --- tools and functions --------------------------------------------------------------------


@pytest.mark.parametrize("field", ["tools", "functions"])
def test_128_tools_pass_and_129_fail(field):
    item = tool() if field == "tools" else {"name": "f"}
    assert validate_parameters({field: [item] * 128})
    error = rejected({field: [item] * 129})
    assert error.param == field
    assert "at most 128" in error.message


@pytest.mark.parametrize("name", ["a", "a" * 64, "get_weather", "get-weather-2", "ABC_xyz-09"])
def test_function_name_pattern_accepts(name):
    assert validate_parameters({"tools": [tool(name)], "functions": [{"name": name}]})


@pytest.mark.parametrize("name", ["a" * 65, "get weather", "get.weather", "", "ok\n", "naïve", 7, None])
def test_function_name_pattern_rejects(name):
    assert rejected({"tools": [tool("fine"), tool(name)]}).param == "tools[1].function.name"
    assert rejected({"functions": [{"name": "fine"}, {"name": name}]}).param == "functions[1].name"


def test_function_name_message():
    error = rejected({"tools": [tool("get.weather")]})
    assert error.message == (
        'tools[0].function.name must be 1 to 64 characters of a-z, A-Z, 0-9, underscores or dashes; got "get.weather".'
    )


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ("nope", "tools"),
        (["nope"], "tools[0]"),
        ([{"function": {"name": "f"}}], "tools[0].type"),
        ([{"type": "retrieval", "function": {"name": "f"}}], "tools[0].type"),
        ([{"type": "function"}], "tools[0].function"),
        ([tool(), {"type": "function", "function": {}}], "tools[1].function.name"),
        ([tool(description=3)], "tools[0].function.description"),
        ([tool(parameters="{}")], "tools[0].function.parameters"),
        ([tool(strict="true")], "tools[0].function.strict"),
    ],
)
def test_bad_tool_names_the_nested_path(tools, param):
    assert rejected({"tools": tools}).param == param


def test_full_tool_definition_passes_with_extras():
    tools = [tool(description="d", parameters={"type": "object", "properties": {}}, strict=True, x_extra=1)]
    assert validate_parameters({"tools": tools}) == {"tools": tools}


def test_optional_tool_fields_may_be_null():
    tools = [tool(description=None, parameters=None, strict=None)]
    assert validate_parameters({"tools": tools}) == {"tools": tools}


# --- tool_choice, function_call, response_format ---------------------------------------------


@pytest.mark.parametrize(
    "choice", ["none", "auto", "required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_tool_choice_forms_pass(choice):
    assert validate_parameters({"tool_choice": choice}) == {"tool_choice": choice}


@pytest.mark.parametrize(
    ("choice", "param"),
    [
        ("any", "tool_choice"),
        (1, "tool_choice"),
        (["auto"], "tool_choice"),
        ({"type": "tool", "function": {"name": "f"}}, "tool_choice.type"),
        ({"type": "function"}, "tool_choice.function"),
        ({"type": "function", "function": {"name": 1}}, "tool_choice.function.name"),
    ],
)
def test_bad_tool_choice_fails(choice, param):
    assert rejected({"tool_choice": choice}).param == param


def test_bad_tool_choice_message_lists_the_choices():
    assert rejected({"tool_choice": "any"}).message == "tool_choice must be 'none', 'auto' or 'required'; got \"any\"."


@pytest.mark.parametrize("call", ["none", "auto", {"name": "f"}])
def test_function_call_forms_pass(call):
    assert validate_parameters({"function_call": call}) == {"function_call": call}


@pytest.mark.parametrize(
    ("call", "param"), [("required", "function_call"), (0, "function_call"), ({}, "function_call.name")]
)
def test_bad_function_call_fails(call, param):
    assert rejected({"function_call": call}).param == param


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "text"},
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "answer"}},
        {
            "type": "json_schema",
            "json_schema": {"name": "answer", "description": "d", "schema": {"type": "object"}, "strict": True},
        },
    ],
)
def test_response_format_types_pass(fmt):
    assert validate_parameters({"response_format": fmt}) == {"response_format": fmt}


@pytest.mark.parametrize(
    ("fmt", "param"),
    [
        ({"type": "xml"}, "response_format.type"),
        ({}, "response_format.type"),
        ("json_object", "response_format"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "json_schema", "json_schema": {}}, "response_format.json_schema.name"),
        ({"type": "json_schema", "json_schema": {"name": "a b"}}, "response_format.json_schema.name"),
        ({"type": "json_schema", "json_schema": {"name": "a", "schema": []}}, "response_format.json_schema.schema"),
        ({"type": "json_schema", "json_schema": {"name": "a", "strict": 1}}, "response_format.json_schema.strict"),
    ],
)
def test_bad_response_format_fails(fmt, param):
    assert rejected({"response_format": fmt}).param == param


# --- messages and plain fields ---------------------------------------------------------------


def test_messages_keep_unknown_fields_and_loose_content():
    messages = [
        {"role": "system", "content": "s", "name": "bot"},
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": None, "tool_calls": []},
    ]
    assert validate_parameters({"messages": messages}) == {"messages": messages}


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ("hi", "messages"),
        (["hi"], "messages[0]"),
        ([{"role": "user"}, {"content": "x"}], "messages[1].role"),
        ([{"role": 1, "content": "x"}], "messages[0].role"),
    ],
)
def test_bad_messages_fail(messages, param):
    assert rejected({"messages": messages}).param == param


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", "0.5"),
        ("top_p", "1"),
        ("presence_penalty", "0"),
        ("logit_bias", {"1": "1"}),
        ("temperature", True),
        ("frequency_penalty", False),
        ("n", True),
        ("max_tokens", True),
        ("seed", False),
        ("n", 1.0),
        ("max_tokens", 256.0),
        ("max_tokens", "256"),
        ("seed", "42"),
        ("logprobs", 1),
        ("logprobs", "true"),
        ("stream", 1),
        ("parallel_tool_calls", "false"),
        ("model", 4),
        ("user", 1),
    ],
)
def test_wrong_json_type_is_rejected(field, value):
    error = rejected({field: value})
    assert error.param.split(".")[0] == field


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.5", 'temperature must be a number; got "0.5".'),
        (True, "temperature must be a number; got true."),
        ([1], "temperature must be a number; got an array of 1 item."),
    ],
)
def test_type_error_message(value, message):
    assert rejected({"temperature": value}).message == message


def test_bool_for_int_message():
    assert rejected({"n": True}).message == "n must be an integer; got true."


# --- null, unknown keys, nothing changed ------------------------------------------------------


@pytest.mark.parametrize("field", sorted(Hyperparameters.model_fields))
def test_null_means_not_given(field):
    params = {field: None}
    assert validate_parameters(params) is params


def test_unknown_keys_pass_through_unchanged():
    params = {"model": "m", "virtual_key": "vk", "prompt": "p", "x_custom": {"deep": [1, "2", None]}, "top_k": "any"}
    snapshot = copy.deepcopy(params)
    result = validate_parameters(params)
    assert result is params
    assert result == snapshot
    assert list(result) == list(snapshot)


def test_returned_dict_is_unchanged_not_coerced():
    params = {"temperature": 1, "presence_penalty": 0.5, "max_tokens": 256, "model": "gpt-4o", "stop": "\n"}
    result = validate_parameters(params)
    assert result is params
    assert list(result) == ["temperature", "presence_penalty", "max_tokens", "model", "stop"]
    assert type(result["temperature"]) is int
    assert result["presence_penalty"] == 0.5


def test_non_dict_mapping_is_returned_as_a_dict():
    from types import MappingProxyType

    assert validate_parameters(MappingProxyType({"temperature": 1})) == {"temperature": 1}


@pytest.mark.parametrize("params", [[], "x", None, 1, [("temperature", 1)]])
def test_non_mapping_is_rejected(params):
    assert rejected(params).param is None
    assert rejected(params, prefix="parameters").param == "parameters"


@pytest.mark.parametrize("prefix", ["parameters", "parameters."])
def test_prefix_is_prepended_to_param(prefix):
    error = rejected({"tools": [tool("a b")]}, prefix=prefix)
    assert error.param == "parameters.tools[0].function.name"
    assert error.message.startswith("parameters.tools[0].function.name must be")


def test_first_error_follows_the_callers_key_order():
    assert rejected({"user": 1, "top_p": 5, "temperature": 9}).param == "user"
    assert rejected({"temperature": 9, "user": 1}).param == "temperature"


# --- parse_request_body ----------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "x", None, 3, True])
def test_body_must_be_an_object(body):
    with pytest.raises(InvalidRequest) as caught:
        parse_request_body(body)
    assert caught.value.param is None
    assert caught.value.status == 400


@pytest.mark.parametrize(("body", "expected"), [({}, {}), ({"variables": None}, {}), ({"variables": {"a": 1}}, {"a": 1})])
def test_variables_object_missing_or_null(body, expected):
    assert parse_request_body(body).variables == expected


@pytest.mark.parametrize("variables", [[], "x", 1, True, ""])
def test_variables_must_be_an_object(variables):
    with pytest.raises(InvalidRequest) as caught:
        parse_request_body({"variables": variables})
    assert caught.value.param == "variables"


@pytest.mark.parametrize(("body", "expected"), [({}, False), ({"stream": None}, False), ({"stream": True}, True), ({"stream": False}, False)])
def test_stream_bool_missing_or_null(body, expected):
    assert parse_request_body(body).stream is expected


@pytest.mark.parametrize(("body", "expected"), [({}, None), ({"strict": None}, None), ({"strict": True}, True),
                                               ({"strict": False}, False)])
def test_root_strict_is_the_renders_flag_and_never_an_override(body, expected):
    request = parse_request_body({**body, "temperature": 0.1})
    assert request.strict is expected and request.overrides == {"temperature": 0.1}


@pytest.mark.parametrize("strict", ["true", 1, [], {}])
def test_strict_must_be_a_bool(strict):
    with pytest.raises(InvalidRequest) as caught:
        parse_request_body({"strict": strict})
    assert caught.value.param == "strict" and caught.value.message.startswith("strict must be a boolean")


@pytest.mark.parametrize("stream", ["true", 1, 0, [], {}])
def test_stream_must_be_a_bool(stream):
    with pytest.raises(InvalidRequest) as caught:
        parse_request_body({"stream": stream})
    assert caught.value.param == "stream"


def test_other_root_keys_are_overrides_and_null_is_dropped():
    body = {
        "variables": {"q": "hi"},
        "stream": False,
        "temperature": 0.2,
        "max_tokens": None,
        "messages": [{"role": "user", "content": "x"}],
        "x_custom": 1,
    }
    request = parse_request_body(body)
    assert request == PromptRequest(
        variables={"q": "hi"},
        stream=False,
        overrides={"temperature": 0.2, "messages": [{"role": "user", "content": "x"}], "x_custom": 1},
    )
    assert "variables" not in request.overrides and "stream" not in request.overrides


def test_stream_options_with_stream_true_in_body_is_fine():
    request = parse_request_body({"stream": True, "stream_options": {"include_usage": True}})
    assert request.stream is True
    assert request.overrides == {"stream_options": {"include_usage": True}}


@pytest.mark.parametrize("body", [{"stream_options": {"include_usage": True}}, {"stream": False, "stream_options": {}}])
def test_stream_options_without_stream_in_body_fails(body):
    with pytest.raises(InvalidRequest) as caught:
        parse_request_body(body)
    assert caught.value.param == "stream_options"


@pytest.mark.parametrize(
    ("body", "param"),
    [({"temperature": 3}, "temperature"), ({"tools": [tool(), tool("a.b")]}, "tools[1].function.name"), ({"n": True}, "n")],
)
def test_overrides_are_validated_without_prefix(body, param):
    with pytest.raises(InvalidRequest) as caught:
        parse_request_body(body)
    assert caught.value.param == param


def test_parse_does_not_mutate_body():
    body = {"variables": {"a": 1}, "stream": None, "temperature": None, "top_p": 0.1}
    snapshot = copy.deepcopy(body)
    parse_request_body(body)
    assert body == snapshot


def test_prompt_request_is_frozen():
    request = parse_request_body({})
    with pytest.raises(AttributeError):
        request.stream = True  # type: ignore[misc]


# --- merge_parameters ------------------------------------------------------------------------


def test_overrides_replace_saved_values_for_the_call():
    defaults = {"model": "gpt-4o", "temperature": 0.7, "max_tokens": 100}
    assert merge_parameters(defaults, {"temperature": 0.1, "model": "gpt-4o-mini"}) == {
        "model": "gpt-4o-mini",
        "temperature": 0.1,
        "max_tokens": 100,
    }


def test_null_never_overrides():
    merged = merge_parameters({"model": "m", "temperature": 0.7}, {"temperature": None, "model": None, "top_p": None})
    assert merged == {"model": "m", "temperature": 0.7}


@pytest.mark.parametrize("saved", [{"stream": True}, {"stream_options": {"include_usage": True}}, {"stream": False}])
def test_saved_streaming_keys_are_dropped(saved):
    merged = merge_parameters({"model": "m", **saved}, {})
    assert merged == {"model": "m"}


def test_streaming_keys_from_the_request_are_kept():
    merged = merge_parameters({"model": "m", "stream": True, "stream_options": {"include_usage": False}}, {"stream_options": {"include_usage": True}})
    assert merged == {"model": "m", "stream_options": {"include_usage": True}}


@pytest.mark.parametrize("key", ["messages", "prompt"])
def test_request_messages_replace_rendered_ones(key):
    rendered = [{"role": "user", "content": "rendered"}] if key == "messages" else "rendered"
    sent = [{"role": "user", "content": "sent"}] if key == "messages" else "sent"
    merged = merge_parameters({"model": "m", key: rendered}, {key: sent})
    assert merged[key] == sent


def test_key_order_model_then_saved_then_new():
    defaults = {"temperature": 1, "max_tokens": 5, "model": "m", "top_p": 1}
    overrides = {"seed": 1, "top_p": 0.5, "user": "u"}
    merged = merge_parameters(defaults, overrides)
    assert list(merged) == ["model", "temperature", "max_tokens", "top_p", "seed", "user"]


def test_model_from_overrides_only_still_comes_first():
    assert list(merge_parameters({"temperature": 1}, {"user": "u", "model": "m"})) == ["model", "temperature", "user"]


def test_merge_does_not_mutate_inputs_and_returns_a_new_dict():
    defaults = {"model": "m", "stream": True, "temperature": 1, "messages": [{"role": "user", "content": "a"}]}
    overrides = {"temperature": None, "top_p": 0.3}
    saved_defaults, saved_overrides = copy.deepcopy(defaults), copy.deepcopy(overrides)
    merged = merge_parameters(defaults, overrides)
    assert defaults == saved_defaults and overrides == saved_overrides
    assert merged is not defaults and merged is not overrides
    assert merged == {"model": "m", "temperature": 1, "messages": [{"role": "user", "content": "a"}], "top_p": 0.3}


def test_request_body_flows_into_merge():
    request = parse_request_body({"variables": {}, "stream": True, "stream_options": {"include_usage": True}, "temperature": 0.0, "n": None})
    merged = merge_parameters({"model": "m", "n": 2, "temperature": 1, "stream": False}, request.overrides)
    assert merged == {"model": "m", "n": 2, "temperature": 0.0, "stream_options": {"include_usage": True}}


def test_huge_integer_is_out_of_range_not_a_crash():
    error = rejected({"temperature": 10**400})
    assert error.param == "temperature"
    assert error.message == "temperature must be between 0 and 2; got an integer of 401 digits."
