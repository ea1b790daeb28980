"""External ids through the service: set on create, replaced on update (never a new version), shown on
retrieve and in lists, a key wherever a prompt is named, and refused with OpenAI-shaped 400s and 409s."""

from __future__ import annotations

import pytest

from core.errors import ExternalIdTaken, InvalidRequest, PromptNotFound
from core.references import check_external_ids, parse_reference
from core.service import PromptService
from tests.unit.fakes import InMemoryStore

OPENAI_ID = "pmpt_68b0d5f3e1a48190b7e9bb6ce0e2a54e0b1a6c4d3e2f1a0b"


@pytest.fixture
def service() -> PromptService:
    store = InMemoryStore()
    return PromptService(store, store)


def create(service: PromptService, **fields) -> dict:
    return service.create_prompt({"name": "Greeting", "string": "Hello {{name}}", "parameters": {}, **fields})


def test_create_stores_them_and_retrieve_and_list_show_them(service: PromptService) -> None:
    created = create(service, external_ids=[OPENAI_ID, "legacy:greet"])
    plain = create(service, name="Plain")

    shown = service.get_prompt(OPENAI_ID)
    assert (shown["id"], shown["external_ids"]) == (created["id"], [OPENAI_ID, "legacy:greet"])
    assert service.get_prompt(plain["slug"])["external_ids"] == []
    listed = {item["id"]: item["external_ids"] for item in service.list_prompts({})["data"]}
    assert listed == {created["id"]: [OPENAI_ID, "legacy:greet"], plain["id"]: []}
    version = service.get_version(OPENAI_ID, "1")
    assert version["external_ids"] == [OPENAI_ID, "legacy:greet"]


def test_render_takes_an_external_id_with_or_without_a_version(service: PromptService) -> None:
    created = create(service, external_ids=[OPENAI_ID])
    service.update_prompt(OPENAI_ID, {"patch": True, "string": "Bye {{name}}"})

    assert service.render(OPENAI_ID, {"variables": {"name": "Ada"}}).body["prompt"] == "Hello Ada"
    for reference, expected in ((f"{OPENAI_ID}@2", "Bye Ada"), (f"{OPENAI_ID}@latest", "Bye Ada"),
                                (f"{OPENAI_ID}@1", "Hello Ada")):
        rendered = service.render(reference, {"variables": {"name": "Ada"}})
        assert (rendered.version.entity_id, rendered.body["prompt"]) == (created["id"], expected), reference


def test_an_update_replaces_them_without_a_new_version(service: PromptService) -> None:
    created = create(service, external_ids=[OPENAI_ID, "pmpt_b"])

    answer = service.update_prompt(created["slug"], {"external_ids": ["pmpt_c", OPENAI_ID]})

    assert (answer["id"], answer["version"]) == (created["id"], 1)
    shown = service.get_prompt(created["id"])
    assert (shown["external_ids"], shown["latest_version"]) == (["pmpt_c", OPENAI_ID], 1)
    with pytest.raises(PromptNotFound):
        service.get_prompt("pmpt_b")
    service.update_prompt(OPENAI_ID, {"external_ids": [], "name": "Renamed"})
    shown = service.get_prompt(created["id"])
    assert (shown["external_ids"], shown["name"], shown["latest_version"]) == ([], "Renamed", 1)
    service.update_prompt(created["id"], {"name": "Again"})  # leaving them out leaves them as they are
    service.update_prompt(created["id"], {"external_ids": ["pmpt_d"]})
    service.update_prompt(created["id"], {"name": "Once more", "external_ids": None})
    assert service.get_prompt("pmpt_d")["name"] == "Once more"


def test_a_taken_id_is_a_409_naming_the_prompt_that_holds_it(service: PromptService) -> None:
    owner = create(service, external_ids=[OPENAI_ID])
    other = create(service, name="Other")

    for attempt in (lambda: create(service, name="Third", external_ids=[OPENAI_ID]),
                    lambda: service.update_prompt(other["id"], {"external_ids": [OPENAI_ID]}),
                    lambda: service.update_prompt(other["id"], {"string": "v2", "parameters": {},
                                                                "external_ids": ["pmpt_new", OPENAI_ID]})):
        with pytest.raises(ExternalIdTaken) as caught:
            attempt()
        body = caught.value.to_body()["error"]
        assert caught.value.status == 409
        assert (body["type"], body["param"], body["code"]) == ("invalid_request_error", "external_ids",
                                                               "external_id_taken")
        assert owner["slug"] in body["message"] and OPENAI_ID in body["message"]
    # The refused update with a version wrote no version: the check came before it.
    assert service.get_prompt(other["id"])["latest_version"] == 1
    assert sorted(item["name"] for item in service.list_prompts({})["data"]) == ["Greeting", "Other"]


BAD = {
    "not a list": "pmpt_a", "not strings": [1], "an @": ["pmpt_a@2"], "empty": [""], "129 characters": ["p" * 129],
    "a UUID": ["0b9d4a1e-4d0c-4b8a-9b1e-2f3c4d5e6f70"], "twice": ["pmpt_a", "pmpt_a"], "21 of them": [f"p{n}" for n in range(21)],
    "a space": ["pmpt a"], "a leading underscore": ["_pmpt"], "reserved": ["partials"], "null inside": [None],
}


@pytest.mark.parametrize("value", list(BAD.values()), ids=list(BAD))
def test_bad_external_ids_are_a_400_naming_the_field(service: PromptService, value) -> None:
    created = create(service)
    for attempt in (lambda: create(service, name="Bad", external_ids=value),
                    lambda: service.update_prompt(created["id"], {"external_ids": value})):
        with pytest.raises(InvalidRequest) as caught:
            attempt()
        assert caught.value.status == 400 and caught.value.param == "external_ids"
        assert "Traceback" not in caught.value.message
    assert len(service.list_prompts({})["data"]) == 1
    assert service.get_prompt(created["id"])["external_ids"] == []


def test_a_prompts_own_slug_is_no_external_id_of_it(service: PromptService) -> None:
    created = create(service, slug="greeting")
    with pytest.raises(InvalidRequest) as caught:
        service.update_prompt("greeting", {"external_ids": ["greeting"]})
    assert caught.value.param == "external_ids"
    with pytest.raises(InvalidRequest):
        create(service, slug="other-one", external_ids=["other-one"])
    assert service.get_prompt(created["id"])["external_ids"] == []


def test_delete_by_external_id_frees_it(service: PromptService) -> None:
    gone = create(service, external_ids=[OPENAI_ID])
    service.delete_prompt(OPENAI_ID)
    with pytest.raises(PromptNotFound):
        service.render(OPENAI_ID, {})
    again = create(service, name="Again", external_ids=[OPENAI_ID])
    assert service.get_prompt(OPENAI_ID)["id"] == again["id"] != gone["id"]
    assert service.render(f"{OPENAI_ID}@1", {}).version.entity_id == again["id"]


@pytest.mark.parametrize("text", ["pmpt_abc", "pmpt_abc@3", "legacy:v2.greet@latest", "A-b_c.d:e@production"])
def test_every_valid_external_id_is_a_reference_key(text: str) -> None:
    key = text.partition("@")[0]
    assert check_external_ids([key]) == (key,)
    assert parse_reference(text).key == key
