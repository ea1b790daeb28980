"""Fixtures for the deployment checks: the deploy-tools venv, the translated template, the Lambda package.

`./dev test` installs what these need (.venv/deploy-tools from requirements-deploy-tools.txt, and
.venv/lambda-package from requirements-lambda.txt); a test that finds them missing fails and says so.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS_PYTHON = ROOT / ".venv" / "deploy-tools" / "bin" / "python"
LAMBDA_PACKAGE = ROOT / ".venv" / "lambda-package"
HERE = Path(__file__).resolve().parent


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: {what}. `./dev test` installs it (see the ./dev script).", pytrace=False)
    return path


@pytest.fixture(scope="session")
def tools_python() -> Path:
    return _require(TOOLS_PYTHON, "the deploy tools venv (SAM CLI, aws-sam-translator, cfn-lint)")


@pytest.fixture(scope="session")
def lambda_package() -> Path:
    return _require(LAMBDA_PACKAGE / ".installed", "requirements-lambda.txt installed as the Lambda build ships it").parent


def no_aws_env() -> dict[str, str]:
    """This process's environment without any AWS_* variable: the translation needs no credentials."""
    return {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}


def translate(tools_python: Path, template: Path, output: Path) -> dict[str, Any]:
    """`template` as SAM expands it (tests/deploy/sam_translate.py), offline."""
    result = subprocess.run([str(tools_python), str(HERE / "sam_translate.py"), str(template), str(output)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, env=no_aws_env())
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(output.read_text())


def run_validate(tools_python: Path, template: Path, *steps: str) -> subprocess.CompletedProcess[str]:
    """tests/deploy/validate_template.py on `template`, only `steps` (all when none are given)."""
    command = [str(tools_python), str(HERE / "validate_template.py"), "--template", str(template)]
    for step in steps:
        command += ["--step", step]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture(scope="session")
def translated(tools_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """template.yaml as SAM expands it: the CloudFormation that `sam deploy` hands over."""
    return translate(tools_python, ROOT / "template.yaml", tmp_path_factory.mktemp("translated") / "template.json")
