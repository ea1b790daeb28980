"""`pip install cuecard` then `cuecard serve` runs on SQLite with no AWS library, moto or PyYAML installed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AWS_ONLY = ("boto3", "botocore", "s3transfer", "mangum", "aws_lambda_powertools", "yaml", "moto")

PROBE = """
import json, sys
from pathlib import Path
from dataclasses import replace
from handlers.container import build_container
from handlers.local_store import open_data_dir
from infra.settings import Settings

settings = replace(Settings.from_env({}), store="sqlite", data_dir=sys.argv[1])
stores = open_data_dir(Path(sys.argv[1]), settings)
container = build_container(settings, stores)
container.asgi_app()
container.service.create_prompt({"name": "probe", "string": "Hi {{who}}"})
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_serving_on_sqlite_imports_no_aws_library(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "data")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert not loaded & set(AWS_ONLY), sorted(loaded & set(AWS_ONLY))


def test_the_wheel_carries_every_package_and_the_sample_prompts(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: a build leaves build/ behind, and a stale one would hide a miss
    for name in ("core", "infra", "handlers", "examples"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
                            "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("cuecard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {path.relative_to(ROOT).as_posix() for folder in ("core", "infra", "handlers")
               for path in (ROOT / folder).rglob("*.py")}
    assert sources <= names, sorted(sources - names)
    samples = {f"cuecard_examples/prompts/{path.name}" for path in (ROOT / "examples" / "prompts").glob("*.json")}
    assert samples and samples <= names
    assert "cuecard_examples/virtual-keys.json" in names
