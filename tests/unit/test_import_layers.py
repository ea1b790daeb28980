"""The layers' import rules (DEVELOPERS.md), read from the source: handlers -> infra -> core, never back.

Every import statement counts, including those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What each layer may not import (top-level package names).
FORBIDDEN = {
    "core": {"infra", "handlers", "boto3", "botocore", "fastapi", "starlette", "mangum", "httpx", "httpcore", "aiohttp",
             "uvicorn", "moto", "yaml", "sqlite3", "aws_lambda_powertools"},
    "infra": {"handlers", "fastapi", "starlette", "mangum", "uvicorn"},
}


def imported_packages(path: Path) -> set[tuple[int, str]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, alias.name.split(".")[0]) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.lineno, node.module.split(".")[0]))
    return found


def sources(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_it_may_not(layer: str) -> None:
    broken = [f"{path.relative_to(ROOT)}:{line} imports {package}"
              for path in sources(layer) for line, package in sorted(imported_packages(path))
              if package in FORBIDDEN[layer]]
    assert not broken, "\n".join(broken)


def test_the_rule_sees_lazy_imports(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text("def f():\n    import boto3\n    from infra.cache import x\n")
    assert {package for _, package in imported_packages(source)} == {"boto3", "infra"}


# Packages worth tens of milliseconds of a Lambda cold start, which only some calls need: imported inside the
# function that needs them, never at a module's top level (an `if TYPE_CHECKING:` block aside).
LAZY = {"jsonschema", "referencing"}


def top_level_packages(path: Path) -> set[tuple[int, str]]:
    """The packages a module imports when it is imported: outside functions and `if TYPE_CHECKING:` blocks."""
    found = set()
    pending = list(ast.parse(path.read_text(), filename=str(path)).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            found |= {(node.lineno, alias.name.split(".")[0]) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            pending.extend(node.orelse)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))
    return found


def test_costly_packages_are_imported_only_where_they_are_used() -> None:
    eager = [f"{path.relative_to(ROOT)}:{line} imports {package} at its top level"
             for layer in ("core", "infra", "handlers") for path in sources(layer)
             for line, package in sorted(top_level_packages(path)) if package in LAZY]
    assert not eager, "\n".join(eager)
    assert {package for _, package in imported_packages(ROOT / "core" / "variables.py")} >= LAZY  # the rule bites


def test_the_lazy_rule_sees_top_level_imports_and_skips_functions_and_type_checking(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import jsonschema\n"
                      "def f():\n    import referencing\nclass C:\n    import jsonschema.validators\n")
    assert {package for _, package in top_level_packages(source)} == {"typing", "jsonschema"}
