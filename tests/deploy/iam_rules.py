"""cuecard's IAM rules, checked on the CloudFormation that SAM expands template.yaml into.

The expansion, not the SAM template, is what gets deployed: it is where SAM's event sources would
attach their managed policies (AWSLambdaSQSQueueExecutionRole, AWSLambdaDynamoDBExecutionRole, both on
Resource "*") and where SAM policy templates such as DynamoDBCrudPolicy (which grants Scan and
BatchWriteItem) turn into statements. `problems()` lists every breach; an empty list is a pass.
"""

from __future__ import annotations

from typing import Any, Iterator

SECRET_ARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:cuecard/${AWS::StackName}/*"
SECRET_PREFIX = "cuecard/${AWS::StackName}/"  # CUECARD_SECRET_PREFIX: must name the same secrets

# DynamoDB: what the functions may do, and on what. No Scan, no BatchWriteItem, no wildcards.
DYNAMODB_ACTIONS = {
    "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    # the stream, for the change-event function's event source mapping
    "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
}
DYNAMODB_RESOURCES = {
    "GetAtt:PromptsTable.Arn", "${PromptsTable.Arn}/index/*", "${PromptsTable.Arn}/stream/*",
    "GetAtt:PromptsTable.StreamArn",
}

# SQS actions on messages already in a queue (consuming, delaying a retry): the jobs queue only.
SQS_QUEUE_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"}
SQS_QUEUE_RESOURCES = {"GetAtt:JobsQueue.Arn"}


def resource_names(value: Any) -> list[str]:
    """A statement's Resource as comparable strings: `GetAtt:X.Arn`, `Ref:X`, a Sub's text; both If branches."""
    if isinstance(value, list):
        return [name for item in value for name in resource_names(item)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), = value.items()
        if function == "Fn::GetAtt":
            return [f"GetAtt:{'.'.join(argument) if isinstance(argument, list) else argument}"]
        if function == "Ref":
            return [f"Ref:{argument}"]
        if function == "Fn::Sub":
            return [argument if isinstance(argument, str) else argument[0]]
        if function == "Fn::If":
            return resource_names(argument[1]) + resource_names(argument[2])
    return [repr(value)]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_roles(translated: dict[str, Any]) -> dict[str, str]:
    """Function logical id -> the logical id of its role (`Role: !GetAtt <Role>.Arn`)."""
    roles = {}
    for name, resource in translated["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            role = resource["Properties"]["Role"]
            roles[name] = role["Fn::GetAtt"][0] if isinstance(role, dict) and "Fn::GetAtt" in role else repr(role)
    return roles


def statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies") or []:
        yield from _as_list(policy["PolicyDocument"]["Statement"])


def grants(translated: dict[str, Any], function: str) -> dict[str, set[str]]:
    """Action -> the resources a function's role allows it on (Deny statements aside: see `denials`)."""
    role = translated["Resources"][function_roles(translated)[function]]
    granted: dict[str, set[str]] = {}
    for statement in statements(role):
        if statement.get("Effect") != "Allow":
            continue
        for action in _as_list(statement.get("Action", [])):
            granted.setdefault(action, set()).update(resource_names(statement.get("Resource")))
    return granted


def problems(translated: dict[str, Any]) -> list[str]:
    found: list[str] = []
    resources = translated["Resources"]
    for name, resource in resources.items():
        kind = resource["Type"]
        if kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy", "AWS::IAM::User", "AWS::IAM::Group"):
            found.append(f"{name}: a separate {kind}; cuecard's permissions are inline on each function's role")
        if kind != "AWS::IAM::Role":
            continue
        properties = resource["Properties"]
        for arn in properties.get("ManagedPolicyArns") or []:
            found.append(f"{name}: managed policy {resource_names(arn)[0]} (SAM event sources and policy names add "
                         f"these); write the statements inline")
        for statement in statements(resource):
            where = f"{name} statement {statement.get('Sid', '?')}"
            if statement.get("Effect") not in ("Allow", "Deny") or "NotAction" in statement or "NotResource" in statement:
                found.append(f"{where}: only plain Allow and Deny statements (no NotAction/NotResource)")
            if statement.get("Effect") == "Deny":
                continue  # a Deny only narrows what the role may do
            actions = _as_list(statement.get("Action", []))
            targets = resource_names(statement.get("Resource"))
            for action in actions:
                if "*" in action:
                    found.append(f"{where}: wildcard action {action}")
                if action.startswith("dynamodb:") and action not in DYNAMODB_ACTIONS:
                    found.append(f"{where}: {action} is not one cuecard needs (no Scan, no BatchWriteItem)")
            if "*" in targets:
                found.append(f"{where}: Resource \"*\" for {', '.join(actions)}")
            if any(action.startswith("dynamodb:") for action in actions):
                found.extend(f"{where}: DynamoDB access to {target}, not cuecard's table"
                             for target in targets if target not in DYNAMODB_RESOURCES)
            if any(action in SQS_QUEUE_ACTIONS for action in actions):
                found.extend(f"{where}: SQS message access to {target}, not cuecard's jobs queue"
                             for target in targets if target not in SQS_QUEUE_RESOURCES)
            if any(action.startswith("secretsmanager:") for action in actions):
                found.extend(f"{where}: secrets outside cuecard's prefix: {target}"
                             for target in targets if target != SECRET_ARN)
            if any(action.startswith("logs:") for action in actions):
                found.extend(f"{where}: logs outside the function's own log group: {target}"
                             for target in targets if not (target.startswith("GetAtt:") and target.endswith("LogGroup.Arn")))
    return found


def denials(translated: dict[str, Any], function: str) -> dict[str, set[str]]:
    """Action -> the resources a function's role explicitly denies it."""
    role = translated["Resources"][function_roles(translated)[function]]
    denied: dict[str, set[str]] = {}
    for statement in statements(role):
        if statement.get("Effect") == "Deny":
            for action in _as_list(statement.get("Action", [])):
                denied.setdefault(action, set()).update(resource_names(statement.get("Resource")))
    return denied
