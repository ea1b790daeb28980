"""The offline template checks CI runs (tests/deploy/validate_template.py), and what each one catches.

`sam validate --lint` lints the SAM template as written, where a function URL's InvokeMode and a
function's Runtime are free strings; cfn-lint on SAM's expansion checks them. These tests break a copy
of template.yaml in those two places and show the second check failing where the first passes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, run_validate

TEMPLATE = ROOT / "template.yaml"


def _broken_copy(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = TEMPLATE.read_text()
    for old, new in replacements:
        assert old in text, f"template.yaml no longer contains {old!r}; update this test"
        text = text.replace(old, new)
    copy = tmp_path / "template.yaml"
    copy.write_text(text)
    return copy


BAD_INVOKE_MODE = ("InvokeMode: RESPONSE_STREAM", "InvokeMode: RESPONSE_STREEM")
BAD_RUNTIME = ("Runtime: python3.13", "Runtime: python3.99")


def test_the_template_passes_every_check_offline(tools_python: Path) -> None:
    result = run_validate(tools_python, TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr
    for step in ("sam-validate", "sam-lint", "translated-lint"):
        assert f"{step}: ok" in result.stdout


@pytest.mark.parametrize("mistake, finding", [
    (BAD_INVOKE_MODE, "E3030 Resources/StreamFunctionUrl/Properties/InvokeMode: 'RESPONSE_STREEM' is not one of"),
    (BAD_RUNTIME, "E3030 Resources/WorkerFunction/Properties/Runtime: 'python3.99' is not one of"),
])
def test_the_translated_lint_catches_what_sam_lint_misses(tools_python: Path, tmp_path: Path, mistake, finding) -> None:
    broken = _broken_copy(tmp_path, mistake)

    missed = run_validate(tools_python, broken, "sam-validate", "sam-lint")
    # If this starts failing, `sam validate --lint` has learned to check SAM resources' values: good news,
    # but then the translated lint below may no longer be needed. Look before changing either.
    assert missed.returncode == 0, "sam validate --lint now catches this:\n" + missed.stdout + missed.stderr

    caught = run_validate(tools_python, broken, "translated-lint")
    assert caught.returncode != 0
    assert finding in caught.stdout, caught.stdout + caught.stderr
    assert "translated-lint: FAILED" in caught.stdout


def test_both_mistakes_at_once_are_all_reported(tools_python: Path, tmp_path: Path) -> None:
    caught = run_validate(tools_python, _broken_copy(tmp_path, BAD_INVOKE_MODE, BAD_RUNTIME), "translated-lint")
    assert caught.returncode != 0
    functions = ("ApiFunction", "StreamFunction", "WorkerFunction", "ChangeEventsFunction")
    for name in functions:  # the runtime is set once, in Globals, and every function inherits it
        assert f"Resources/{name}/Properties/Runtime: 'python3.99'" in caught.stdout, caught.stdout
    assert "Resources/StreamFunctionUrl/Properties/InvokeMode" in caught.stdout

