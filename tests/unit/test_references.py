import pytest

from core.errors import InvalidLabelName, InvalidReference
from core.references import Reference, check_label_name, parse_reference

UUID = "3f2b8c1e-9a4d-4e7b-8c6f-1d2e3f4a5b6c"


@pytest.mark.parametrize(
    "text, expected",
    [
        (UUID, Reference(UUID)),
        ("pp-greeting-a1b2c3", Reference("pp-greeting-a1b2c3")),
        ("my_prompt.v2", Reference("my_prompt.v2")),
        (f"{UUID}@12", Reference(UUID, "number", number=12)),
        ("pp-x-000000@1", Reference("pp-x-000000", "number", number=1)),
        ("pp-x-000000@007", Reference("pp-x-000000", "number", number=7)),
        (f"{UUID}@latest", Reference(UUID, "latest")),
        (f"{UUID}@production", Reference(UUID, "label", label="production")),
        ("pp-x-000000@staging", Reference("pp-x-000000", "label", label="staging")),
        ("pp-x-000000@canary-eu.2", Reference("pp-x-000000", "label", label="canary-eu.2")),
        ("pp-x-000000@v2", Reference("pp-x-000000", "label", label="v2")),
        ("pp-x-000000@Blue_Team", Reference("pp-x-000000", "label", label="Blue_Team")),
    ],
)
def test_parses(text, expected):
    assert parse_reference(text) == expected


def test_round_trips_through_str():
    for text in (UUID, f"{UUID}@12", f"{UUID}@latest", f"{UUID}@production"):
        assert str(parse_reference(text)) == text


def test_only_numbers_are_pinned():
    assert parse_reference("a1@3").pinned
    assert not parse_reference("a1").pinned
    assert not parse_reference("a1@latest").pinned
    assert not parse_reference("a1@production").pinned


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a@",
        "a@0",
        "a@00",
        "a@-1",
        "a@default",
        "a@DEFAULT",
        "a@Latest",
        "a@b c",
        "a@@b",
        "a@b@c",
        "has space",
        "has%20space",
        "@production",
        "-leading-dash",
        "a/b",
        "a@" + "x" * 65,
        "k" * 129,
        "a@²",
        None,
        12,
    ],
)
def test_rejects(text):
    with pytest.raises(InvalidReference) as caught:
        parse_reference(text)
    assert caught.value.status == 400
    assert caught.value.type == "invalid_request_error"
    assert caught.value.code == "invalid_prompt_reference"
    assert caught.value.param == "promptId"


def test_longest_key_and_label_accepted():
    assert parse_reference("k" * 128).key == "k" * 128
    assert parse_reference("a@" + "x" * 64).label == "x" * 64


def test_param_is_passed_through():
    with pytest.raises(InvalidReference) as caught:
        parse_reference("a@", param="partial")
    assert caught.value.param == "partial"


def test_rejection_message_names_the_accepted_forms():
    with pytest.raises(InvalidReference) as caught:
        parse_reference("abc@b c")
    assert "abc@latest" in caught.value.message and "abc@<label>" in caught.value.message


# --- label names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["production", "qa", "canary-eu", "v2", "A.b_c-1", "7up", "x" * 64])
def test_label_name_accepted(name):
    assert check_label_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "latest",
        "LATEST",
        "Latest",
        "default",
        "Default",
        "DEFAULT",
        "123",
        "0",
        "a@b",
        "@",
        "a b",
        "a\tb",
        " a",
        "a\n",
        "",
        "x" * 65,
        "-a",
        "a/b",
        "étiquette",
        None,
        5,
    ],
)
def test_label_name_rejected(name):
    with pytest.raises(InvalidLabelName) as caught:
        check_label_name(name)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_label_name"
    assert caught.value.param == "name"


def test_label_name_param():
    with pytest.raises(InvalidLabelName) as caught:
        check_label_name("latest", param="label")
    assert caught.value.param == "label"
    assert "reserved" in caught.value.message


def test_a_version_number_of_thousands_of_digits_is_a_400_not_a_crash() -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference("support-reply@" + "9" * 5000)
    assert "9" * 20 not in info.value.message  # the number is not echoed back
