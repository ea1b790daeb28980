"""Every function's entry point imports from what the Lambda build ships, and from nothing else.

The dev venv has everything (moto, PyYAML, pytest...), so importing a handler there proves little
about the deployed function. Here the code is copied as the Makefile copies it, next to
requirements-lambda.txt installed on its own (.venv/lambda-package, by ./dev), and each entry point
is imported by a Python that sees no site-packages: a module the handlers need but the build does not
ship fails here instead of at the first cold start.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.table_definition import load_template
from tests.deploy.conftest import ROOT


def _entry_points() -> dict[str, tuple[str, str]]:
    """Function -> (module, attribute) Lambda (or, for run.sh, uvicorn) loads."""
    entry_points = {}
    for name, resource in load_template()["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        handler = resource["Properties"]["Handler"]
        if handler == "run.sh":  # `python3 -m uvicorn handlers.asgi:app` behind the Lambda Web Adapter
            module, attribute = re.search(r"uvicorn (\S+):(\S+)", (ROOT / "run.sh").read_text()).groups()
        else:
            module, _, attribute = handler.rpartition(".")
        entry_points[name] = (module, attribute)
    return entry_points


@pytest.fixture(scope="module")
def artifact(lambda_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The function code as the Makefile's `package` copies it."""
    copied = re.search(r'cp -R (.+) "\$\(ARTIFACTS_DIR\)/"', (ROOT / "Makefile").read_text()).group(1).split()
    target = tmp_path_factory.mktemp("artifact")
    for folder in copied:
        shutil.copytree(ROOT / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return target


ENTRY_POINTS = _entry_points()


@pytest.mark.parametrize("function", sorted(ENTRY_POINTS))
def test_the_entry_point_imports_from_the_lambda_build_alone(function: str, artifact: Path, lambda_package: Path) -> None:
    module, attribute = ENTRY_POINTS[function]
    code = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(artifact)!r}, {str(lambda_package)!r}]\n"
        "assert not any('site-packages' in p for p in sys.path), sys.path\n"
        f"module = importlib.import_module({module!r})\n"
        f"assert callable(getattr(module, {attribute!r}))\n"
        "local_only = {'moto', 'yaml', 'pytest', 'werkzeug'} & set(sys.modules)\n"
        "assert not local_only, local_only\n"
    )
    if function == "StreamFunction":
        code += "import uvicorn, uvloop, httptools\n"  # what `uvicorn` on Lambda runs with (run.sh)
    result = _run_alone(code, artifact)
    assert result.returncode == 0, f"{function} ({module}.{attribute}):\n{result.stderr}"


def test_what_core_imports_on_first_use_is_in_the_build_too(artifact: Path, lambda_package: Path) -> None:
    """jsonschema is imported by the first write with a variables_schema or strict render, not at a cold start,
    so importing the entry points does not prove the build ships it: a schema check and a strict check do."""
    code = (
        f"import sys\nsys.path[:0] = [{str(artifact)!r}, {str(lambda_package)!r}]\n"
        "from core.variables import check_variables, check_variables_schema\n"
        "schema = {'type': 'object', 'properties': {'a': {'$ref': '#/$defs/text'}}, '$defs': {'text': {'type': 'string'}}}\n"
        "check_variables_schema(schema)\n"
        "check_variables(schema, {'a': 'x'}, subject='probe')\n"
    )
    result = _run_alone(code, artifact)
    assert result.returncode == 0, result.stderr


def _run_alone(code: str, artifact: Path) -> subprocess.CompletedProcess[str]:
    environment = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "CUECARD_TABLE": "cuecard",
                   "CUECARD_EVENT_BUS": "cuecard-events", "CUECARD_SECRET_PREFIX": "cuecard/test/",
                   "AWS_EC2_METADATA_DISABLED": "true", "PATH": "/usr/bin:/bin"}
    # -I: no PYTHONPATH, no user site; -S: no site-packages. Only the stdlib, the code and the build's packages.
    return subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=artifact, env=environment,
                          capture_output=True, text=True, timeout=120)
