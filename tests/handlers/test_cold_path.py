"""What the Lambda API function imports at a cold start: nothing that only some calls need."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The same offline environment tests/deploy/test_lambda_package.py imports the entry points with.
ENVIRONMENT = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "CUECARD_TABLE": "cuecard",
               "CUECARD_EVENT_BUS": "cuecard-events", "CUECARD_SECRET_PREFIX": "cuecard/test/",
               "AWS_EC2_METADATA_DISABLED": "true", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
PROBE = "import json, sys, handlers.lambda_api; print(json.dumps(sorted(sys.modules)))"


def test_importing_the_lambda_handler_loads_no_json_schema_library() -> None:
    """jsonschema costs about 50 ms: only a write with a variables_schema or a strict render loads it."""
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=ENVIRONMENT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "core.variables" in loaded  # the module that uses it is there, so the check means something
    assert not {name.split(".")[0] for name in loaded} & {"jsonschema", "referencing", "rpds"}
