"""Schemathesis against the served `/openapi.json`, in process, on a real SQLite store with the samples.

Every operation of the document, with every built-in check (`negative_data_rejection` and `ignored_auth`
among them): no 5xx, statuses, headers and bodies as documented, schema-valid input accepted,
schema-invalid input refused, and no operation answers without a key. Each operation starts from a
fresh store (the fixture), since an example may delete what the next one reads.

The per-commit run is bounded (`CUECARD_FUZZ_EXAMPLES`, default below); `./dev fuzz` runs the same test
with a large budget. Configuration, each a limit of what a JSON schema can say, not of the API:

- `negative_data_rejection` counts 414 as a refusal: the edge answers it for a URL past its limit, which
  the tool does not count among refusals.
- Whole floats (`2.0`) drawn for `integer` fields are sent as integers (`map_body` below). JSON Schema
  counts `2.0` as an integer; cuecard takes JSON's own grammar, where it is a number, and refuses it
  where an integer is expected (the document says so).
- `positive_data_acceptance` also accepts 400 where the server checks what no schema can state: a
  template's Mustache and chat JSON, that a named virtual key or label exists, the built-in labels that
  cannot change, a provider's key and header rules. And 422 on render and completions: whether a raw
  template renders to a JSON array of messages depends on the stored template and the variables.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from handlers.container import build_container
from handlers.local_seed import load_examples
from infra.settings import Settings
from infra.sqlite import open_sqlite_stores

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "cck_schemathesis-admin-key-00000000000000000"
EXAMPLES = int(os.environ.get("CUECARD_FUZZ_EXAMPLES", "8"))
CAMPAIGN = bool(os.environ.get("CUECARD_FUZZ_REPORT"))  # set by ./dev fuzz
SEMANTIC_400 = ("createPrompt", "updatePrompt", "createPromptPartial", "updatePromptPartial", "updatePromptVersion",
                "updateLabel", "deleteLabel", "createVirtualKey", "updateVirtualKey")
RENDERS = ("createPromptRender", "createPromptCompletion", "createPromptGeneration")
POSITIVE = ["2xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' default, spelled out


NEGATIVE = ["400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429", "5xx"]


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "checks": {"negative_data_rejection": {"expected-statuses": NEGATIVE}},
        "operations": [
            {"include-operation-id": list(SEMANTIC_400),
             "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "400"]}}},
            {"include-operation-id": list(RENDERS),
             "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE, "422"]}}},
        ],
    })


def build_app(data_dir: Path) -> Any:
    """`cuecard serve`'s app on a fresh SQLite store holding the sample prompts and virtual key."""
    config = Settings(store="sqlite", data_dir=str(data_dir), admin_key=ADMIN_KEY)
    container = build_container(config, open_sqlite_stores(data_dir / "cuecard.db"))
    load_examples(container.service, ROOT / "examples" / "prompts", container.virtual_keys.service)
    return container.asgi_app()


def _served_schema() -> Any:
    """The document as the app serves it (an app on a store of its own, removed at exit)."""
    directory = Path(tempfile.mkdtemp(prefix="cuecard-schemathesis-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    loaded = schemathesis.openapi.from_asgi("/openapi.json", build_app(directory), config=_config())
    loaded.config.generation.update(max_examples=EXAMPLES)
    return loaded


schema = _served_schema()


def _whole_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(item) for item in value]
    return value


@schema.hook
def map_body(_context: Any, body: Any) -> Any:
    return _whole_floats_as_ints(body)


CASES: dict[str, int] = {}  # operation -> cases sent (`./dev fuzz` prints the total)


@pytest.fixture(scope="module", autouse=True)
def case_count() -> Iterator[None]:
    yield
    if CAMPAIGN:
        print(f"\nschemathesis: {sum(CASES.values())} cases over {len(CASES)} operations, "
              f"{EXAMPLES} examples per operation and phase")


@pytest.fixture
def app(tmp_path: Path) -> Any:
    """A fresh app and store for each operation: examples delete what later ones would read."""
    return build_app(tmp_path)


@schema.parametrize()
# The per-commit run is the same every time (derandomize); `./dev fuzz` draws afresh. No example database.
@settings(deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=not CAMPAIGN)
def test_every_operation_holds_its_documented_contract(app: Any, case: Any) -> None:
    CASES[case.operation.label] = CASES.get(case.operation.label, 0) + 1
    case.call_and_validate(app=app, headers={"x-portkey-api-key": ADMIN_KEY})
