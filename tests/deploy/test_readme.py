"""The README's deployment docs follow template.yaml: cost tables, architecture diagram, settings."""

from __future__ import annotations

import re

from infra.table_definition import load_template
from tests.deploy import cost_table
from tests.deploy.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_the_cost_tables_are_computed_from_the_configuration() -> None:
    assert cost_table.tables() in README, (
        "README.md's cost tables are not what template.yaml and infra/settings.py give: run "
        "`.venv/bin/python tests/deploy/cost_table.py --write` and read the difference")


def test_the_architecture_diagram_shows_every_function_queue_table_and_bus() -> None:
    (diagram,) = re.findall(r"```mermaid\n(.*?)```", README, re.S)
    shown = {"AWS::Serverless::Function", "AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::Events::EventBus"}
    for name, resource in load_template()["Resources"].items():
        if resource["Type"] in shown:
            assert name in diagram, f"the README's diagram does not show {name}"
    for part in ("API Gateway HTTP API", "function URL", "Secrets Manager", "LLM providers", "stream"):
        assert part in diagram


def test_every_setting_is_documented() -> None:
    read = set(re.findall(r'"(CUECARD_[A-Z_]+)"', (ROOT / "infra" / "settings.py").read_text()))
    missing = {name for name in read if f"`{name}`" not in README}
    assert not missing, f"README.md's configuration table lacks {sorted(missing)}"


def test_every_template_parameter_is_documented() -> None:
    for name in load_template()["Parameters"]:
        assert f"| `{name}` |" in README, f"README.md's parameter table lacks {name}"


def test_the_readme_links_to_files_that_exist() -> None:
    for target in re.findall(r"\]\((?!https?://|#)([^)#]+)", README):
        assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"
