"""The table every test runs against is the one template.yaml deploys, property for property.

tests/conftest.py's `settings` fixture creates each test's table with `ensure_table`, which builds it
from `infra.table_definition.create_table_kwargs`, which reads template.yaml. This describes such a
table and compares it with the template's PromptsTable read independently, and makes sure no property
of PromptsTable is silently left out of the tables the tests use.
"""

from __future__ import annotations

from typing import Any

from infra.dynamodb_client import dynamodb_client
from infra.settings import Settings
from infra.table_definition import create_table_kwargs, load_template

# Properties that only the deployed table has, and why the tests may do without them.
DEPLOY_ONLY = {
    "TableName",  # each test has a table of its own
    "DeletionProtectionEnabled",  # protects the deployed data; tests delete their tables
    "PointInTimeRecoverySpecification",  # backups
    "TimeToLiveSpecification",  # TTL deletes lazily (within days), so no behaviour may depend on it
}


def _template_table() -> dict[str, Any]:
    return load_template()["Resources"]["PromptsTable"]["Properties"]


def test_every_table_property_reaches_the_tests_or_is_deploy_only() -> None:
    reproduced = set(create_table_kwargs("t")) | {"StreamSpecification"}
    unaccounted = set(_template_table()) - reproduced - DEPLOY_ONLY
    assert not unaccounted, (f"PromptsTable's {sorted(unaccounted)} never reach the tables the tests use: teach "
                             "infra/table_definition.create_table_kwargs about them, or list them in DEPLOY_ONLY")


def test_the_test_table_is_the_template_table(settings: Settings) -> None:
    template = _template_table()
    described = dynamodb_client(settings.region, settings.dynamodb_endpoint).describe_table(
        TableName=settings.table_name)["Table"]

    assert described["KeySchema"] == template["KeySchema"]
    assert sorted(described["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        template["AttributeDefinitions"], key=lambda a: a["AttributeName"])
    assert described["BillingModeSummary"]["BillingMode"] == template["BillingMode"] == "PAY_PER_REQUEST"
    assert described["StreamSpecification"] == {"StreamEnabled": True,
                                                 "StreamViewType": template["StreamSpecification"]["StreamViewType"]}

    def indexes(items: list[dict[str, Any]]) -> dict[str, Any]:
        return {i["IndexName"]: (i["KeySchema"], i["Projection"]["ProjectionType"]) for i in items}

    assert indexes(described.get("GlobalSecondaryIndexes", [])) == indexes(template.get("GlobalSecondaryIndexes", []))
    assert not described.get("LocalSecondaryIndexes") and "LocalSecondaryIndexes" not in template
