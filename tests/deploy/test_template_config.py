"""template.yaml's configuration: functions, event sources, queues, settings, outputs and the table.

Checked on the template as SAM expands it where SAM fills things in (Globals, event source mappings),
and against the files the build and the code read (Makefile, infra/settings.py), so they cannot drift.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.models import Kind
from infra.table_definition import load_template
from tests.deploy.conftest import ROOT

FUNCTIONS = {
    "ApiFunction": "handlers.lambda_api.handler",
    "StreamFunction": "run.sh",  # the Lambda Web Adapter runs it; it starts uvicorn on handlers.asgi:app
    "WorkerFunction": "handlers.worker.handler",
    "ChangeEventsFunction": "handlers.change_events.handler",
}


def _functions(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}


def _mapping(translated: dict[str, Any], function: str) -> dict[str, Any]:
    (mapping,) = [r["Properties"] for r in translated["Resources"].values()
                  if r["Type"] == "AWS::Lambda::EventSourceMapping" and r["Properties"]["FunctionName"] == {"Ref": function}]
    return mapping


def test_the_functions_and_their_handlers(translated: dict[str, Any]) -> None:
    assert {name: p["Handler"] for name, p in _functions(translated).items()} == FUNCTIONS


def test_every_function_is_arm64_on_the_python_the_build_targets(translated: dict[str, Any]) -> None:
    """One runtime for all, and it is the Python version the Makefile downloads wheels for. One architecture
    for all: the Architecture parameter, arm64 by default (the Makefile's wheels), and arm64 in any deployed
    stack (a rule refuses x86_64, which is for `sam local` on x86_64 machines: docs/sam-local.md)."""
    lambda_python = re.search(r"^LAMBDA_PYTHON \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    platform = re.search(r"^LAMBDA_PLATFORM \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert platform.endswith("_aarch64")
    parameter = translated["Parameters"]["Architecture"]
    assert parameter["Default"] == "arm64" and parameter["AllowedValues"] == ["arm64", "x86_64"]
    assertions = [a["Assert"] for rule in translated["Rules"].values() for a in rule["Assertions"]
                  if "Condition" not in rule]
    assert {"Fn::Equals": [{"Ref": "Architecture"}, "arm64"]} in assertions, translated["Rules"]
    for name, properties in _functions(translated).items():
        assert properties["Architectures"] == [{"Ref": "Architecture"}], name
        assert properties["Runtime"] == f"python{lambda_python}", name


def test_the_web_adapter_layer_matches_the_architecture(translated: dict[str, Any]) -> None:
    (layer,) = _functions(translated)["StreamFunction"]["Layers"]
    arn, names = layer["Fn::Sub"]
    assert arn.endswith(":753240598075:layer:${Layer}:${WebAdapterLayerVersion}"), arn
    assert names == {"Layer": {"Fn::If": ["IsArm64", "LambdaAdapterLayerArm64", "LambdaAdapterLayerX86"]}}
    assert translated["Conditions"]["IsArm64"] == {"Fn::Equals": [{"Ref": "Architecture"}, "arm64"]}
    # cfn-lint's deprecated-runtime rules (translated-lint) say whether that runtime is still current.


def test_every_function_has_a_build_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for name, resource in load_template()["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            assert resource["Metadata"] == {"BuildMethod": "makefile"}, name
            assert re.search(rf"^build-{name}:", makefile, re.M), f"Makefile has no build-{name} target for sam build"


def test_the_worker_consumes_the_jobs_queue(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    mapping = _mapping(translated, "WorkerFunction")
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= mapping["BatchSize"] <= 10
    worker_timeout = _functions(translated)["WorkerFunction"]["Timeout"]
    queue = resources["JobsQueue"]["Properties"]
    # Lambda's advice: at least 6x the function timeout (plus the batching window), and 5 receives.
    assert queue["VisibilityTimeout"] >= 6 * worker_timeout + mapping.get("MaximumBatchingWindowInSeconds", 0)
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5
    dead_letters = resources["JobsDeadLetterQueue"]["Properties"]
    assert dead_letters["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]  # never expires before its source


def test_the_change_event_function_reads_the_table_stream(translated: dict[str, Any]) -> None:
    mapping = _mapping(translated, "ChangeEventsFunction")
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["PromptsTable", "StreamArn"]}
    assert mapping["StartingPosition"] == "LATEST"
    assert mapping["BisectBatchOnFunctionError"] is True
    assert 0 <= mapping["MaximumRetryAttempts"] <= 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": ["ChangeEventsFailureQueue", "Arn"]}}}
    assert mapping["ParallelizationFactor"] == 1


def test_long_provider_calls_fit_the_functions_that_make_them(translated: dict[str, Any]) -> None:
    total = translated["Parameters"]["ProviderTotalTimeoutSeconds"]
    for name in ("WorkerFunction", "StreamFunction"):
        assert _functions(translated)[name]["Timeout"] > int(total["MaxValue"]) >= int(total["Default"]), name


def test_every_setting_the_template_sets_is_one_the_code_reads(translated: dict[str, Any]) -> None:
    read = set(re.findall(r'"(CUECARD_[A-Z_]+)"', (ROOT / "infra" / "settings.py").read_text()))
    wrapper = {"AWS_LAMBDA_EXEC_WRAPPER", "AWS_LWA_INVOKE_MODE", "AWS_LWA_PORT", "AWS_LWA_READINESS_CHECK_PATH"}
    for name, properties in _functions(translated).items():
        variables = properties["Environment"]["Variables"]
        unknown = set(variables) - read - (wrapper if name == "StreamFunction" else set())
        assert not unknown, f"{name} sets {sorted(unknown)}, which infra/settings.py never reads"
        assert variables["CUECARD_EVENT_BUS"] == {"Ref": "EventBus"}, name
        assert variables["CUECARD_TABLE"] == {"Ref": "PromptsTable"}, name
        for setting, parameter in (("CUECARD_PROVIDER_CONNECT_TIMEOUT", "ProviderConnectTimeoutSeconds"),
                                   ("CUECARD_PROVIDER_FIRST_BYTE_TIMEOUT", "ProviderFirstByteTimeoutSeconds"),
                                   ("CUECARD_PROVIDER_READ_TIMEOUT", "ProviderReadTimeoutSeconds"),
                                   ("CUECARD_PROVIDER_TOTAL_TIMEOUT", "ProviderTotalTimeoutSeconds"),
                                   ("CUECARD_POINTER_CACHE_TTL", "PointerCacheTtlSeconds")):
            assert variables[setting] == {"Ref": parameter}, (name, setting)
        assert properties["LoggingConfig"]["ApplicationLogLevel"] == {"Ref": "LogLevel"}, name
        assert properties["LoggingConfig"]["LogFormat"] == "JSON", name  # log-level filtering needs JSON


def test_the_streaming_url_streams_and_its_auth_is_a_deliberate_choice(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    url = resources["StreamFunctionUrl"]["Properties"]
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    assert url["AuthType"] == {"Ref": "StreamingUrlAuth"}
    assert translated["Parameters"]["StreamingUrlAuth"]["AllowedValues"] == ["NONE", "AWS_IAM"]
    # SAM adds a public URL's permissions only for a literal AuthType NONE, so the template declares them,
    # both of them (required together since October 2025), and only when the parameter says NONE.
    permissions = {r["Properties"]["Action"]: r for r in resources.values()
                   if r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["FunctionName"] == {"Ref": "StreamFunction"}}
    assert set(permissions) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert translated["Conditions"][permissions["lambda:InvokeFunction"]["Condition"]] == {
        "Fn::Equals": [{"Ref": "StreamingUrlAuth"}, "NONE"]}
    assert permissions["lambda:InvokeFunctionUrl"]["Condition"] == permissions["lambda:InvokeFunction"]["Condition"]
    assert permissions["lambda:InvokeFunctionUrl"]["Properties"]["FunctionUrlAuthType"] == "NONE"
    assert permissions["lambda:InvokeFunction"]["Properties"]["InvokedViaFunctionUrl"] is True


def test_the_outputs_a_deployer_needs() -> None:
    outputs = load_template()["Outputs"]
    assert {"ApiUrl", "StreamingUrl", "Region", "PromptsTableName", "PromptsTableStreamArn", "JobsQueueUrl",
            "JobsQueueArn", "JobsDeadLetterQueueUrl", "ChangeEventsFailureQueueUrl", "EventBusName",
            "EventBusArn"} <= set(outputs)
    assert outputs["EventBusName"]["Value"] == {"Ref": "EventBus"}
    assert outputs["StreamingUrl"]["Value"] == {"Fn::Sub": "${StreamFunctionUrl.FunctionUrl}v1"}


def test_the_stream_filter_passes_every_record_that_can_make_an_event(translated: dict[str, Any]) -> None:
    """The mapping's filter must let through every item change events come from (infra/stream_records.py):
    a prompt's or partial's, whose pk starts with its Kind."""
    (pattern,) = [json.loads(f["Pattern"]) for f in _mapping(translated, "ChangeEventsFunction")["FilterCriteria"]["Filters"]]
    prefixes = {rule["prefix"] for rule in pattern["dynamodb"]["Keys"]["pk"]["S"]}
    assert prefixes == {f"{kind.value}#" for kind in Kind}
