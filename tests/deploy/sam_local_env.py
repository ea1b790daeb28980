"""The environment `sam local invoke` gives each function, resolved by SAM CLI's own code, offline.

    .venv/deploy-tools/bin/python tests/deploy/sam_local_env.py [--template T] [--env-vars events/env.json]
        [--parameter-overrides Name=Value ...] [--function F]

Prints a JSON object: function logical id -> {variable: value}, exactly what SAM CLI passes to the
container (the template's variables, overridden by the shell's and then by --env-vars, plus the
AWS_* variables it adds). SAM only overrides variables the template declares for the function, which
is what tests/deploy/test_sam_local_template.py checks with this; `./dev sam-local` uses it for the
streaming function's environment, which it runs in a container of its own. Runs in the deploy-tools
venv (SAM CLI) and makes no network call: AWS credentials come from the environment, else they are
SAM's placeholders (the instance metadata service and container credentials are never asked).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def resolve(template: Path, env_vars: Path | None, overrides: dict[str, str]) -> dict[str, dict[str, str]]:
    # SAM CLI reads credentials with boto3's chain; keep it to the environment and files.
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        os.environ.pop(name, None)
    from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    stacks, _ = SamLocalStackProvider.get_stacks(str(template), parameter_overrides=overrides)
    provider = SamFunctionProvider(stacks)
    values = json.loads(env_vars.read_text()) if env_vars else {}
    runner = LocalLambdaRunner(local_runtime=None, function_provider=provider, cwd=str(template.parent),  # type: ignore[arg-type]
                               real_path=str(template.parent), aws_region="us-east-1", env_vars_values=values)
    return {function.name: runner._make_env_vars(function).resolve() for function in provider.get_all()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--env-vars", type=Path)
    parser.add_argument("--parameter-overrides", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--function", help="print this function's environment only")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)
    overrides = dict(item.split("=", 1) for item in args.parameter_overrides)
    resolved = resolve(args.template.resolve(), args.env_vars, overrides)
    json.dump(resolved[args.function] if args.function else resolved, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
