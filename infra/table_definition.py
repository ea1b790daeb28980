"""The DynamoDB table as `template.yaml` defines it, turned into `create_table` arguments.

Used by tests and the local server only (never on the Lambda path), so PyYAML is imported lazily.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.errors import CuecardError
from infra.settings import Settings

TEMPLATE_ENV = "CUECARD_TEMPLATE"
TABLE_LOGICAL_ID = "PromptsTable"
_REPO_ROOT = Path(__file__).resolve().parent.parent


def template_path() -> Path:
    """`$CUECARD_TEMPLATE` if set, else `template.yaml` at the repository root."""
    override = os.environ.get(TEMPLATE_ENV)
    return Path(override) if override else _REPO_ROOT / "template.yaml"


def load_template(path: Path | None = None) -> dict[str, Any]:
    """Parses a CloudFormation/SAM template; short-form tags become their long form (`!Ref x` -> {"Ref": x})."""
    try:
        import yaml
    except ModuleNotFoundError:
        raise CuecardError("Reading template.yaml needs the aws extra (PyYAML): pip install 'cuecard[aws]'") from None

    class CloudFormationLoader(yaml.SafeLoader):
        pass

    def construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
        name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag_suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    CloudFormationLoader.add_multi_constructor("!", construct_tag)
    source = path or template_path()
    if not source.is_file():
        raise CuecardError(f"{source} not found: run this from a cuecard checkout, or set {TEMPLATE_ENV}.")
    with open(source, encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict):
        raise ValueError(f"{source} is not a CloudFormation template")
    return document


def table_resource(path: Path | None = None) -> dict[str, Any]:
    """The `PromptsTable` resource (Type, Properties, policies)."""
    resources = load_template(path).get("Resources") or {}
    resource = resources.get(TABLE_LOGICAL_ID)
    if not resource or resource.get("Type") != "AWS::DynamoDB::Table":
        raise ValueError(f"{path or template_path()} has no AWS::DynamoDB::Table resource named {TABLE_LOGICAL_ID}")
    return resource


def create_table_kwargs(table_name: str, path: Path | None = None) -> dict[str, Any]:
    """`create_table` arguments for `table_name`, taken from the template's table definition."""
    properties = table_resource(path)["Properties"]
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if properties.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    stream = properties.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    return kwargs


def ensure_table(settings: Settings) -> bool:
    """Creates `settings.table_name` from the template's definition unless it exists; True if created."""
    from infra.dynamodb_client import dynamodb_client

    client = dynamodb_client(settings.region, settings.dynamodb_endpoint)
    try:
        client.describe_table(TableName=settings.table_name)
        return False
    except client.exceptions.ResourceNotFoundException:
        pass
    try:
        client.create_table(**create_table_kwargs(settings.table_name))
    except client.exceptions.ResourceInUseException:
        return False
    client.get_waiter("table_exists").wait(TableName=settings.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True
