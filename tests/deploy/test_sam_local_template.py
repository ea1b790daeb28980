"""template.yaml under `sam local`, as shipped: what events/env.json sets reaches the functions, and a
deployed stack is not changed by what makes that so.

SAM CLI applies an --env-vars value only to a variable the template declares for the function, and
drops the others without a word. So every variable events/env.json or docs/sam-local.md sets is
declared, on every function: the local endpoints behind `SamLocalOnly`, a condition no deployed stack
meets, which SAM CLI does not evaluate (it gives such a variable its --env-vars value, or ""). These
checks run offline; `./dev sam-local` runs the functions themselves.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from infra.settings import Settings
from tests.deploy.conftest import HERE, ROOT, no_aws_env

ENV_FILE = ROOT / "events" / "env.json"
DOCS = ROOT / "docs" / "sam-local.md"
LOCAL_ONLY = {"Fn::If": ["SamLocalOnly", "", {"Ref": "AWS::NoValue"}]}
ENDPOINTS = set(re.findall(r'"(CUECARD_[A-Z_]+_ENDPOINT)"', (ROOT / "infra" / "settings.py").read_text()))
# What each function's environment held before the local declarations, and still holds once deployed.
DEPLOYED = {"CUECARD_TABLE", "CUECARD_POINTER_CACHE_TTL", "CUECARD_SECRET_PREFIX", "CUECARD_EVENT_BUS",
            "CUECARD_PROVIDER_CONNECT_TIMEOUT", "CUECARD_PROVIDER_FIRST_BYTE_TIMEOUT", "CUECARD_PROVIDER_READ_TIMEOUT",
            "CUECARD_PROVIDER_TOTAL_TIMEOUT"}
WEB_ADAPTER = {"AWS_LAMBDA_EXEC_WRAPPER", "AWS_LWA_INVOKE_MODE", "AWS_LWA_PORT", "AWS_LWA_READINESS_CHECK_PATH"}


def _functions(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}


def _deployed(value: Any, translated: dict[str, Any], parameters: dict[str, str]) -> Any:
    """`value` as CloudFormation resolves it in a deployed stack (only what environment variables use here)."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        condition, when_true, when_false = value["Fn::If"]
        return _deployed(when_true if _holds(translated["Conditions"][condition], parameters) else when_false,
                         translated, parameters)
    return value


def _holds(condition: dict[str, Any], parameters: dict[str, str]) -> bool:
    (function, arguments), = condition.items()
    if function == "Fn::Not":
        return not _holds(arguments[0], parameters)
    if function == "Fn::Equals":
        left, right = (parameters[a["Ref"]] if isinstance(a, dict) else a for a in arguments)
        return bool(left == right)
    raise AssertionError(f"unexpected condition {condition}")


def test_the_local_condition_never_holds_in_a_deployed_stack(translated: dict[str, Any]) -> None:
    # Every stack has a name (1 to 128 characters), so AWS::StackName is never "".
    assert translated["Conditions"]["SamLocalOnly"] == {"Fn::Equals": [{"Ref": "AWS::StackName"}, ""]}


def test_every_endpoint_setting_is_declared_for_sam_local_only(translated: dict[str, Any]) -> None:
    assert ENDPOINTS >= {"CUECARD_DYNAMODB_ENDPOINT", "CUECARD_SECRETS_ENDPOINT", "CUECARD_EVENTS_ENDPOINT",
                         "CUECARD_SQS_ENDPOINT"}
    for name, properties in _functions(translated).items():
        variables = properties["Environment"]["Variables"]
        assert {v: variables.get(v) for v in ENDPOINTS} == dict.fromkeys(ENDPOINTS, LOCAL_ONLY), name
        assert {v for v, value in variables.items() if "SamLocalOnly" in json.dumps(value)} == ENDPOINTS, name


def test_a_deployed_stack_has_the_environment_it_had(translated: dict[str, Any]) -> None:
    parameters = {name: str(p.get("Default", "")) for name, p in translated["Parameters"].items()}
    parameters["AWS::StackName"] = "cuecard"
    for name, properties in _functions(translated).items():
        variables = {v: _deployed(value, translated, parameters) for v, value in properties["Environment"]["Variables"].items()}
        present = {v for v, value in variables.items() if value != {"Ref": "AWS::NoValue"}}
        assert present == DEPLOYED | (WEB_ADAPTER if name == "StreamFunction" else set()), name
    # CUECARD_ADMIN_KEY is there only when the AdminKey parameter is set, as before.
    parameters["AdminKey"] = "cck_" + "x" * 40
    api = _functions(translated)["ApiFunction"]["Environment"]["Variables"]
    assert _deployed(api["CUECARD_ADMIN_KEY"], translated, parameters) == {"Ref": "AdminKey"}


def test_what_events_env_json_sets_is_declared_on_that_function(translated: dict[str, Any]) -> None:
    overrides = json.loads(ENV_FILE.read_text())
    functions = _functions(translated)
    assert set(overrides) == set(functions), "events/env.json has an entry for each function, and no other"
    for name, variables in overrides.items():
        undeclared = set(variables) - set(functions[name]["Environment"]["Variables"])
        assert not undeclared, f"SAM would silently drop {sorted(undeclared)} for {name}: declare them"


def test_what_the_docs_tell_users_to_set_locally_is_declared(translated: dict[str, Any]) -> None:
    named = set(re.findall(r"\bCUECARD_[A-Z_]+\b", DOCS.read_text()))
    assert named >= {"CUECARD_DYNAMODB_ENDPOINT", "CUECARD_ADMIN_KEY"}
    for name, properties in _functions(translated).items():
        undeclared = named - set(properties["Environment"]["Variables"])
        assert not undeclared, f"docs/sam-local.md names {sorted(undeclared)}, which {name} does not declare"


def test_sam_cli_gives_each_function_what_events_env_json_sets(tools_python: Path, tmp_path: Path) -> None:
    """SAM CLI's own resolution (tests/deploy/sam_local_env.py), offline: the values arrive; a local endpoint
    nobody sets arrives empty, which the settings read as unset."""
    env = {**no_aws_env(), "HOME": str(tmp_path), "SAM_CLI_TELEMETRY": "0", "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run([str(tools_python), str(HERE / "sam_local_env.py"), "--env-vars", str(ENV_FILE),
                           "--parameter-overrides", "Architecture=x86_64"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    resolved = json.loads(done.stdout)
    for function, variables in json.loads(ENV_FILE.read_text()).items():
        assert {name: resolved[function][name] for name in variables} == variables, function
    change_events = resolved["ChangeEventsFunction"]
    assert change_events["CUECARD_DYNAMODB_ENDPOINT"] == "" and change_events["CUECARD_SQS_ENDPOINT"] == ""
    assert Settings.from_env(change_events).dynamodb_endpoint is None
    assert Settings.from_env(resolved["WorkerFunction"]).sqs_endpoint == "http://host.docker.internal:8000"
