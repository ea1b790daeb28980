"""IAM: least privilege, inline, on the template as SAM expands it (tests/deploy/iam_rules.py).

Each function's grants are listed here in full, so any widening shows up in review as a change to
this file; and copies of the template broken in the ways that matter show the rules catch them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.table_definition import load_template
from tests.deploy import iam_rules
from tests.deploy.conftest import ROOT, translate

LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
TABLE_RW = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem"}
SECRETS_ADMIN = {"secretsmanager:GetSecretValue", "secretsmanager:CreateSecret", "secretsmanager:PutSecretValue",
                 "secretsmanager:DeleteSecret", "secretsmanager:TagResource"}
BEDROCK = {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
STREAM_READ = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}
SQS_CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}

EXPECTED_ACTIONS = {
    # The HTTP API and the streaming function serve the same app: the admin API writes provider keys.
    "ApiFunction": LOGS | TABLE_RW | SECRETS_ADMIN | BEDROCK,
    "StreamFunction": LOGS | TABLE_RW | SECRETS_ADMIN | BEDROCK,
    # Renders and completes, keeps job records, reads provider keys, replies to queues or the bus,
    # and delays the retry of a job that failed transiently (its message's visibility timeout).
    "WorkerFunction": LOGS | SQS_CONSUME | TABLE_RW | {"secretsmanager:GetSecretValue"} | BEDROCK
                      | {"events:PutEvents", "sqs:SendMessage", "sqs:ChangeMessageVisibility"},
    # Reads the stream, publishes events, and its mapping sends failed batches to the failure queue.
    "ChangeEventsFunction": LOGS | STREAM_READ | {"events:PutEvents", "sqs:SendMessage"},
}


def test_the_template_breaks_no_iam_rule(translated: dict[str, Any]) -> None:
    assert iam_rules.problems(translated) == []


def test_each_function_is_granted_exactly_what_it_needs(translated: dict[str, Any]) -> None:
    assert set(iam_rules.function_roles(translated)) == set(EXPECTED_ACTIONS)
    for function, expected in EXPECTED_ACTIONS.items():
        assert set(iam_rules.grants(translated, function)) == expected, function


def test_grants_name_cuecard_resources(translated: dict[str, Any]) -> None:
    worker = iam_rules.grants(translated, "WorkerFunction")
    assert worker["sqs:ReceiveMessage"] == {"GetAtt:JobsQueue.Arn"}
    assert worker["sqs:ChangeMessageVisibility"] == {"GetAtt:JobsQueue.Arn"}
    assert worker["events:PutEvents"] == {"GetAtt:EventBus.Arn"}
    assert worker["secretsmanager:GetSecretValue"] == {iam_rules.SECRET_ARN}
    # reply queues: the ReplyQueueArnPattern parameter, else cuecard-* queues of this account and region
    assert worker["sqs:SendMessage"] == {"Ref:ReplyQueueArnPattern",
                                         "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:cuecard-*"}
    assert iam_rules.denials(translated, "WorkerFunction") == {"sqs:SendMessage": {
        "GetAtt:JobsQueue.Arn", "GetAtt:JobsDeadLetterQueue.Arn", "GetAtt:ChangeEventsFailureQueue.Arn"}}
    assert worker["dynamodb:GetItem"] == {"GetAtt:PromptsTable.Arn", "${PromptsTable.Arn}/index/*"}
    changes = iam_rules.grants(translated, "ChangeEventsFunction")
    assert changes["dynamodb:GetRecords"] == {"${PromptsTable.Arn}/stream/*"}
    assert changes["sqs:SendMessage"] == {"GetAtt:ChangeEventsFailureQueue.Arn"}
    assert changes["events:PutEvents"] == {"GetAtt:EventBus.Arn"}
    for function in EXPECTED_ACTIONS:
        logs = iam_rules.grants(translated, function)["logs:PutLogEvents"]
        group = translated["Resources"][function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert logs == {f"GetAtt:{group}.Arn"}, function  # its own log group, the one it writes to


def test_the_secret_prefix_the_functions_use_is_the_one_they_may_read() -> None:
    environment = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["CUECARD_SECRET_PREFIX"] == {"Fn::Sub": iam_rules.SECRET_PREFIX}
    assert iam_rules.SECRET_ARN.endswith(":secret:" + iam_rules.SECRET_PREFIX + "*")


def test_no_function_uses_sam_policies_or_a_generated_role() -> None:
    """`Policies` (policy templates, managed names) and SAM's generated roles are where breadth creeps in."""
    template = load_template()
    assert "Policies" not in (template.get("Globals", {}).get("Function") or {})
    for name, resource in template["Resources"].items():
        assert resource["Type"] != "AWS::Serverless::Connector", name
        if resource["Type"] == "AWS::Serverless::Function":
            assert "Policies" not in resource["Properties"], name
            role = resource["Properties"]["Role"]["Fn::GetAtt"][0]
            assert template["Resources"][role]["Type"] == "AWS::IAM::Role", name


# --- the rules catch what they are for ----------------------------------------------------------


def _translate_broken(tools_python: Path, tmp_path: Path, old: str, new: str) -> dict[str, Any]:
    text = (ROOT / "template.yaml").read_text()
    assert old in text, f"template.yaml no longer contains {old!r}; update this test"
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace(old, new, 1))
    return translate(tools_python, broken, tmp_path / "translated.json")


def _extra_function(policies: str) -> tuple[str, str]:
    return ("\nOutputs:\n", "\n  ExtraFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n"
                            "      CodeUri: .\n      Handler: handlers.lambda_api.handler\n"
                            f"      Policies: {policies}\n\nOutputs:\n")


WORKER_BACKOFF = "                Action: sqs:ChangeMessageVisibility\n                Resource: !GetAtt JobsQueue.Arn"
WORKER_TABLE_ACTIONS = "                  - dynamodb:ConditionCheckItem\n                Resource:\n                  - !GetAtt PromptsTable.Arn"


@pytest.mark.parametrize("old, new, expected", [
    pytest.param(WORKER_TABLE_ACTIONS, WORKER_TABLE_ACTIONS.replace("ConditionCheckItem\n", "ConditionCheckItem\n                  - dynamodb:Scan\n", 1),
                 "dynamodb:Scan is not one cuecard needs", id="scan"),
    pytest.param(WORKER_TABLE_ACTIONS, WORKER_TABLE_ACTIONS.replace("ConditionCheckItem\n", "ConditionCheckItem\n                  - dynamodb:BatchWriteItem\n", 1),
                 "dynamodb:BatchWriteItem is not one cuecard needs", id="batch-write"),
    pytest.param("                Action: secretsmanager:GetSecretValue\n                Resource: !Sub \"arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:cuecard/${AWS::StackName}/*\"",
                 "                Action: secretsmanager:GetSecretValue\n                Resource: !Sub \"arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*\"",
                 "secrets outside cuecard's prefix", id="any-secret"),
    pytest.param(WORKER_BACKOFF, WORKER_BACKOFF.replace("JobsQueue.Arn", "JobsDeadLetterQueue.Arn"),
                 "SQS message access to GetAtt:JobsDeadLetterQueue.Arn", id="visibility-other-queue"),
    pytest.param(*_extra_function("[DynamoDBCrudPolicy: {TableName: !Ref PromptsTable}]"),
                 "dynamodb:Scan is not one cuecard needs", id="sam-policy-template"),
    pytest.param(*_extra_function("[AmazonDynamoDBFullAccess]"),
                 ":iam::aws:policy/AmazonDynamoDBFullAccess", id="managed-policy"),
    pytest.param(*_extra_function("[{Statement: [{Effect: Allow, Action: 'dynamodb:*', Resource: '*'}]}]"),
                 "wildcard action dynamodb:*", id="wildcard"),
])
def test_the_rules_catch_a_breach(tools_python: Path, tmp_path: Path, old: str, new: str, expected: str) -> None:
    found = iam_rules.problems(_translate_broken(tools_python, tmp_path, old, new))
    assert any(expected in problem for problem in found), found


def test_sam_event_sources_with_a_generated_role_would_attach_managed_policies(tools_python: Path, tmp_path: Path) -> None:
    """Why every function names its own role: SAM's SQS event gives a generated role a Resource "*" policy."""
    extra = ("\nOutputs:\n", "\n  ExtraFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n"
                             "      CodeUri: .\n      Handler: handlers.worker.handler\n"
                             "      Events:\n        Jobs:\n          Type: SQS\n"
                             "          Properties: {Queue: !GetAtt JobsQueue.Arn}\n\nOutputs:\n")
    found = iam_rules.problems(_translate_broken(tools_python, tmp_path, *extra))
    assert any("service-role/AWSLambdaSQSQueueExecutionRole" in problem for problem in found), found
