"""Translates template.yaml into plain CloudFormation offline, as `sam validate` and CloudFormation do.

Run with the deploy-tools venv (`./dev validate` sets it up), never on the Lambda path:

    .venv/deploy-tools/bin/python tests/deploy/sam_translate.py template.yaml translated.json

`sam validate --lint` lints the SAM template as written: cfn-lint checks `AWS::Serverless::*` resources
against SAM's own schema, which does not know, say, that `InvokeMode` is BUFFERED or RESPONSE_STREAM or
which runtimes exist. Those values are checked only on the resources SAM expands them into
(`AWS::Lambda::Url`, `AWS::Lambda::Function`), so this writes that expansion for cfn-lint to check.

No AWS credentials and no network: local `CodeUri`s become a placeholder S3 URI (as `sam validate`
does) and the region is given. SAM resolves the AWS managed policy names it ships a list of; any
other name in `Policies` would need IAM to resolve, and is refused instead of looked up. (cuecard
uses neither: tests/deploy/test_iam.py holds the template to inline statements.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PLACEHOLDER_S3_URI = "s3://cuecard-validate-placeholder/code.zip"


class _OfflineManagedPolicies:
    """Stands in for SAM's IAM-backed loader: cuecard's policies are inline, so nothing needs looking up."""

    def load(self) -> dict[str, str]:
        raise SystemExit("a managed policy name in Policies needs IAM to resolve; write the policy inline")


def _local_code_to_s3(template: dict[str, Any]) -> None:
    globals_function = (template.get("Globals") or {}).get("Function") or {}
    if isinstance(globals_function.get("CodeUri"), str) and not globals_function["CodeUri"].startswith("s3://"):
        globals_function["CodeUri"] = PLACEHOLDER_S3_URI
    for resource in (template.get("Resources") or {}).values():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and properties.get("PackageType", "Zip") == "Zip":
            code = properties.get("CodeUri", globals_function.get("CodeUri"))
            if code is None or (isinstance(code, str) and not code.startswith("s3://")):
                properties["CodeUri"] = PLACEHOLDER_S3_URI
        if resource.get("Type") == "AWS::Serverless::LayerVersion" and isinstance(properties.get("ContentUri"), str):
            properties["ContentUri"] = PLACEHOLDER_S3_URI


def translate(template_path: Path, region: str) -> dict[str, Any]:
    import boto3
    from samcli.yamlhelper import yaml_parse
    from samtranslator.parser.parser import Parser
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.translator import Translator

    template = yaml_parse(template_path.read_text(encoding="utf-8"))
    _local_code_to_s3(template)
    loader = _OfflineManagedPolicies()
    translator = Translator(managed_policy_map=None, sam_parser=Parser(), plugins=[],
                            boto_session=boto3.session.Session(region_name=region))
    try:
        return translator.translate(sam_template=template, parameter_values={}, get_managed_policy_map=loader.load)
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise SystemExit(f"{template_path}: SAM could not translate it: {causes}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("output", type=Path, help="where to write the CloudFormation JSON")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    translated = translate(args.template, args.region)
    args.output.write_text(json.dumps(translated, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
