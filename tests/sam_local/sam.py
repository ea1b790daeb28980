"""SAM CLI (from .venv/deploy-tools) as `./dev sam-local` runs it: build, invoke, start-api.

Every command runs with a scrubbed environment: no AWS_*, CUECARD_* or SAM_* variable of the caller's
(SAM hands a function the shell's value of any variable the template declares), placeholder AWS
credentials (so neither SAM nor boto3 looks further, the instance metadata service included), a HOME
of its own under .venv/sam-local (no ~/.aws; pip's cache for `sam build` persists there), and no
telemetry or version check.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from infra.aws_clients import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY
from tests.sam_local.docker_host import Docker
from tests.sam_local.image import pip_platform

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".venv" / "deploy-tools" / "bin"
CACHE = ROOT / ".venv" / "sam-local"
BUILD_DIR = ROOT / ".aws-sam" / "sam-local"
ENV_VARS = ROOT / "events" / "env.json"
REGION = "us-east-1"
CONTAINER_HOST = "127.0.0.1"


class SamFailed(AssertionError):
    pass


class Sam:
    def __init__(self, docker: Docker, architecture: str) -> None:
        self.docker = docker
        self.architecture = architecture
        self.home = CACHE / "home"
        self.image: str | None = None
        self.moto_ip: str | None = None

    @property
    def template(self) -> Path:
        return BUILD_DIR / "template.yaml"

    def env(self) -> dict[str, str]:
        env = {name: value for name, value in self.docker.env().items()
               if not name.startswith(("AWS_", "CUECARD_", "SAM_"))}
        metadata = self.home / ".aws-sam" / "metadata.json"
        metadata.parent.mkdir(parents=True, exist_ok=True)
        metadata.write_text(json.dumps({"lastVersionCheck": time.time(), "telemetryEnabled": False}))
        env.update(HOME=str(self.home), SAM_CLI_TELEMETRY="0", AWS_EC2_METADATA_DISABLED="true",
                   AWS_ACCESS_KEY_ID=LOCAL_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=LOCAL_SECRET_KEY,
                   AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, PIP_DISABLE_PIP_VERSION_CHECK="1",
                   # the Makefile's wheels for this machine (the template's Architecture parameter, below)
                   LAMBDA_PLATFORM=pip_platform(self.architecture),
                   PATH=f"{TOOLS_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}")
        return env

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(TOOLS_BIN / "sam"), *args], cwd=ROOT, env=self.env(), capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise SamFailed(f"sam {' '.join(args[:3])} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                            f"{done.stderr[-5000:]}")
        return done

    def build(self) -> None:
        """`sam build` of every function for this machine's architecture, in the source tree (the Makefile
        writes only to each function's ARTIFACTS_DIR), so the repository (and .venv) is never copied."""
        self._run(["build", "--template-file", str(ROOT / "template.yaml"), "--build-dir", str(BUILD_DIR),
                   "--build-in-source", "--parallel", "--parameter-overrides", f"Architecture={self.architecture}",
                   "--region", REGION], timeout=900)

    def local_options(self) -> list[str]:
        """What every `sam local` command here takes: the built template for this architecture, events/env.json
        as shipped, the offline image, and host.docker.internal mapped to the moto container."""
        assert self.image and self.moto_ip
        return ["--template-file", str(self.template), "--parameter-overrides", f"Architecture={self.architecture}",
                "--env-vars", str(ENV_VARS), "--invoke-image", self.image, "--skip-pull-image",
                "--add-host", f"host.docker.internal:{self.moto_ip}", "--container-host", CONTAINER_HOST,
                "--container-host-interface", CONTAINER_HOST, "--container-dns", "127.0.0.1", "--region", REGION]

    def invoke(self, function: str, event: Path) -> dict[str, Any]:
        """`sam local invoke FUNCTION -e EVENT`: the function's answer (SAM prints it as the last stdout line)."""
        done = self._run(["local", "invoke", function, "--event", str(event), *self.local_options()], timeout=300)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        if not lines:
            raise SamFailed(f"sam local invoke {function} printed no answer:\n{done.stderr[-5000:]}")
        try:
            answer: dict[str, Any] = json.loads(lines[-1])
        except ValueError:
            raise SamFailed(f"sam local invoke {function}: not JSON: {lines[-1][:500]}\n{done.stderr[-5000:]}") from None
        if isinstance(answer, dict) and answer.get("errorType"):
            raise SamFailed(f"{function} raised {answer.get('errorType')}: {answer.get('errorMessage')}\n"
                            f"{done.stderr[-5000:]}")
        return answer

    def resolved_env(self, function: str) -> dict[str, str]:
        """The environment `sam local invoke` would give `function` (tests/deploy/sam_local_env.py)."""
        done = subprocess.run([str(TOOLS_BIN / "python"), str(ROOT / "tests" / "deploy" / "sam_local_env.py"),
                               "--template", str(self.template), "--env-vars", str(ENV_VARS), "--function", function,
                               "--parameter-overrides", f"Architecture={self.architecture}"],
                              cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=120, check=True)
        resolved: dict[str, str] = json.loads(done.stdout)
        return resolved


class StartApi:
    """`sam local start-api` on 127.0.0.1, as a process of its own, stopped by its pid."""

    def __init__(self, sam: Sam, log_path: Path) -> None:
        self.sam = sam
        self.log_path = log_path
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StartApi:
        with open(self.log_path, "wb") as output:
            self.process = subprocess.Popen(
                [str(TOOLS_BIN / "sam"), "local", "start-api", "--host", "127.0.0.1", "--port", str(self.port),
                 "--warm-containers", "LAZY", *self.sam.local_options()],
                cwd=ROOT, env=self.sam.env(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise SamFailed(f"sam local start-api did not start:\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def __exit__(self, *exc: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # SAM CLI stops its warm containers on Ctrl-C
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
