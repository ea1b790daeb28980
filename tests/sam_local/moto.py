"""The DynamoDB-compatible endpoint the function containers use: moto, in a container of the same image.

The functions reach it as `host.docker.internal:8000`, the address events/env.json names (SAM CLI's
--add-host maps that name to this container); this process reaches it on a port published on
127.0.0.1. moto and its dependencies are the versions of the dev venv's, installed once for CPython 3.13
and this machine's platform into .venv/sam-local/moto-<hash>, and mounted read-only.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from tests.sam_local.docker_host import Docker
from tests.sam_local.image import PYTHON_VERSION, pip_install_for_lambda
from tests.sam_local.log import log
from tests.sam_local.moto_main import PORT

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".venv" / "sam-local"
SERVICES = "dynamodb,events,sqs,secretsmanager"
SERVER_PACKAGES = ("flask", "flask-cors")  # what moto's server mode adds to its services


def _constraints() -> str:
    """The dev venv's versions, so the container's moto is the one the tests use."""
    pins = set()
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name and name.lower() != "cuecard":
            pins.add(f"{name}=={distribution.version}")
    return "\n".join(sorted(pins)) + "\n"


def ensure_packages(architecture: str) -> Path:
    requirements = [f"moto[{SERVICES}]=={importlib.metadata.version('moto')}", *SERVER_PACKAGES]
    constraints = _constraints()
    key = hashlib.sha256(repr((requirements, constraints, architecture, PYTHON_VERSION)).encode()).hexdigest()[:16]
    target = CACHE / f"moto-{key}"
    if (target / ".installed").exists():
        return target
    log(f"installing {requirements[0]} for Python {PYTHON_VERSION} into {target.relative_to(ROOT)}")
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as pinned:
        pinned.write(constraints)
        pinned.flush()
        pip_install_for_lambda(target, architecture, ["-c", pinned.name, *requirements])
    (target / ".installed").touch()
    for stale in CACHE.glob("moto-*"):  # older versions' packages
        if stale != target:
            shutil.rmtree(stale, ignore_errors=True)
    return target


class MotoContainer:
    def __init__(self, docker: Docker, image: str, packages: Path) -> None:
        self.docker = docker
        self.image = image
        self.packages = packages
        self.container: str | None = None
        self.ip = ""
        self.endpoint = ""  # from this host: http://127.0.0.1:<published port>

    def __enter__(self) -> MotoContainer:
        self.container = self.docker.start_container([
            "--dns", "127.0.0.1", "--publish", f"127.0.0.1::{PORT}",
            "--volume", f"{self.packages}:/opt/moto:ro", "--volume", f"{ROOT / 'tests'}:/src/tests:ro",
            "--env", "PYTHONPATH=/opt/moto:/src", "--env", "PYTHONDONTWRITEBYTECODE=1",
            self.image, "python3", "-m", "tests.sam_local.moto_main"])
        self.ip = self.docker.container_ip(self.container)
        self.endpoint = f"http://127.0.0.1:{self.docker.published_port(self.container, PORT)}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.endpoint + "/moto-api/", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"moto did not start:\n{self.docker.logs(self.container)}") from None
                time.sleep(0.2)
        log(f"moto: container {self.container[:12]} at {self.ip}:{PORT} (host.docker.internal for the functions), "
            f"{self.endpoint} from here")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.container:
            self.docker.remove_container(self.container)
            self.container = None
