"""template.yaml is the one definition of the table; tests and the local server build it from there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.table_definition import create_table_kwargs, load_template, table_resource, template_path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_template_is_a_sam_template_with_short_form_tags() -> None:
    template = load_template()
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    table = template["Resources"]["PromptsTable"]
    assert table["Properties"]["TableName"] == {"Fn::Sub": "${AWS::StackName}-prompts"}
    assert template["Outputs"]["PromptsTableStreamArn"]["Value"] == {"Fn::GetAtt": ["PromptsTable", "StreamArn"]}
    assert template["Outputs"]["PromptsTableName"]["Value"] == {"Ref": "PromptsTable"}


def test_the_table_is_protected_and_streams() -> None:
    table = table_resource()
    properties = table["Properties"]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["DeletionProtectionEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_create_table_kwargs_come_from_the_template() -> None:
    kwargs = create_table_kwargs("my-table")
    properties = table_resource()["Properties"]
    assert kwargs["TableName"] == "my-table"
    assert kwargs["KeySchema"] == properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert [index["IndexName"] for index in kwargs["GlobalSecondaryIndexes"]] == ["by_type", "by_alias"]
    assert kwargs["GlobalSecondaryIndexes"] == properties["GlobalSecondaryIndexes"]
    assert kwargs["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert kwargs["BillingMode"] == "PAY_PER_REQUEST"


def test_the_created_table_matches_the_template(table) -> None:
    described = table.client.describe_table(TableName=table.name)["Table"]
    assert {index["IndexName"] for index in described["GlobalSecondaryIndexes"]} == {"by_type", "by_alias"}
    assert described["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def test_cuecard_template_overrides_the_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = template_path().read_text().replace("IndexName: by_alias", "IndexName: by_other_alias")
    other = tmp_path / "other.yaml"
    other.write_text(text)
    monkeypatch.setenv("CUECARD_TEMPLATE", str(other))
    assert template_path() == other
    names = [index["IndexName"] for index in create_table_kwargs("t")["GlobalSecondaryIndexes"]]
    assert names == ["by_type", "by_other_alias"]


def test_a_template_without_the_table_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("Resources:\n  Other:\n    Type: AWS::S3::Bucket\n")
    with pytest.raises(ValueError, match="PromptsTable"):
        create_table_kwargs("t", empty)


def test_the_lambda_path_imports_neither_yaml_nor_moto() -> None:
    code = (
        "import sys, infra.dynamodb_stores, infra.cache, infra.settings, infra.aws_errors, infra.aws_clients, "
        "infra.dynamodb_client, infra.table_definition; "
        "assert not {'yaml', 'moto', 'werkzeug'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
