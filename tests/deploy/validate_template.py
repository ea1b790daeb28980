"""Checks template.yaml offline, with no AWS credentials: what `./dev validate` and .ci/run run.

    .venv/deploy-tools/bin/python tests/deploy/validate_template.py [--template T] [--step NAME ...]

Steps, in order (all by default):
  sam-validate    `sam validate`: SAM's own translation of the template succeeds.
  sam-lint        `sam validate --lint`: cfn-lint on the template as written. cfn-lint checks the
                  `AWS::Serverless::*` resources against SAM's schema, which accepts any string as a
                  function URL's InvokeMode or a function's Runtime.
  translated-lint cfn-lint on the template SAM expands (tests/deploy/sam_translate.py), where
                  those values sit on `AWS::Lambda::Url` and `AWS::Lambda::Function` and are checked.

The offline recipe, which is the point of this script: every `AWS_*` variable is dropped, HOME is a
fresh directory (so no ~/.aws and no SAM CLI settings of the user's), the region is passed explicitly
(`--region us-east-1`; sam validate refuses to run without one), SAM_CLI_TELEMETRY=0, and SAM's
weekly PyPI version check is marked as just done in that HOME. Where the machine allows it (root, or
user namespaces), each step runs in a new network namespace (`unshare -n`), which has no network at
all, so a step that tried to reach AWS would fail instead of quietly depending on it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = Path(sys.executable).parent
STEPS = ("sam-validate", "sam-lint", "translated-lint")
DEFAULT_REGION = "us-east-1"


def offline_env(home: Path) -> dict[str, str]:
    """The environment every step runs in: no AWS_* variables, a throwaway HOME, no telemetry."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(HOME=str(home), SAM_CLI_TELEMETRY="0", AWS_EC2_METADATA_DISABLED="true",
               PATH=f"{TOOLS_BIN}{os.pathsep}{env.get('PATH', '')}")
    sam_dir = home / ".aws-sam"
    sam_dir.mkdir(parents=True, exist_ok=True)
    # SAM CLI asks PyPI for a newer version at most once a week, after the command; mark it as done.
    (sam_dir / "metadata.json").write_text(json.dumps({"lastVersionCheck": time.time(), "telemetryEnabled": False}))
    return env


def no_network_prefix() -> list[str]:
    """`unshare -n` where it works here, else nothing (the scrubbed environment still applies)."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


def step_commands(step: str, template: Path, region: str, workdir: Path) -> list[list[str]]:
    sam = str(TOOLS_BIN / "sam")
    if step == "sam-validate":
        return [[sam, "validate", "--template-file", str(template), "--region", region]]
    if step == "sam-lint":
        return [[sam, "validate", "--lint", "--template-file", str(template), "--region", region]]
    if step == "translated-lint":
        translated = workdir / "translated.json"
        return [
            [sys.executable, str(Path(__file__).with_name("sam_translate.py")), str(template), str(translated),
             "--region", region],
            [str(TOOLS_BIN / "cfn-lint"), "--format", "json", "--regions", region, "--", str(translated)],
        ]
    raise ValueError(step)


def report_lint(output: str) -> str:
    """cfn-lint's JSON findings as `E3030 Resources/StreamFunctionUrl/Properties/InvokeMode: message` lines.

    The translated template keeps the SAM template's logical ids (a function URL becomes `<Function>Url`,
    an event `<Function><Event>`), so the path says where to look in template.yaml.
    """
    try:
        findings = json.loads(output or "[]")
    except json.JSONDecodeError:
        return output
    lines = []
    for finding in findings:
        path = "/".join(str(part) for part in finding.get("Location", {}).get("Path") or [])
        lines.append(f"{finding['Rule']['Id']} {path}: {finding['Message']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--step", action="append", choices=STEPS, help="run only this step (repeatable)")
    parser.add_argument("--keep-translated", type=Path, help="also copy the translated template here")
    args = parser.parse_args(argv)
    template = args.template.resolve()
    prefix = no_network_prefix()
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cuecard-validate-") as tmp:
        workdir = Path(tmp)
        env = offline_env(workdir / "home")
        print(f"validating {template} offline (region {args.region}, "
              f"{'in a network namespace with no network' if prefix else 'no network namespace here: credentials scrubbed only'})",
              flush=True)
        for step in args.step or STEPS:
            started = time.monotonic()
            ok = True
            for command in step_commands(step, template, args.region, workdir):
                # cwd: the template's folder, as `sam validate` looks for samconfig.toml beside it.
                is_lint = "--format" in command
                result = subprocess.run(prefix + command, env=env, cwd=template.parent, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE if is_lint else None, text=True)
                if is_lint and result.stdout.strip() not in ("", "[]"):
                    print(report_lint(result.stdout), flush=True)
                if result.returncode != 0:
                    ok = False
                    break
            print(f"{step}: {'ok' if ok else 'FAILED'} ({time.monotonic() - started:.1f} s)", flush=True)
            if not ok:
                failed.append(step)
        if args.keep_translated and (workdir / "translated.json").exists():
            shutil.copyfile(workdir / "translated.json", args.keep_translated)
    if failed:
        print(f"template checks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
