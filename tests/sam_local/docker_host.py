"""Docker for `./dev sam-local`: the daemon that answers, else one this run installs, starts and stops.

- A daemon that already answers (DOCKER_HOST, or the default socket) is used as it is, and left running.
- Otherwise, as root: `apt-get install docker.io` if dockerd is missing, then a dockerd of this run's
  own (its socket, data root and exec root under /run/cuecard-sam-local and /var/lib/cuecard-sam-local,
  so images stay cached between runs), stopped by its pid when the run ends. It is started so that
  containers reach nothing but each other and the host's published loopback ports: no iptables rules,
  no masquerading, no IP forwarding (the host's setting is left as it is), DNS pointed at the
  container's own loopback, and registry traffic sent to a closed loopback port (nothing is pulled).
- Where none of that is possible (not root, no apt, a daemon that cannot start), the run is skipped
  with `Skip`'s one-line reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from tests.sam_local.log import log

RUN_DIR = Path("/run/cuecard-sam-local")
STATE_DIR = Path("/var/lib/cuecard-sam-local")
CLOSED_PORT_PROXY = "http://127.0.0.1:9"  # discard port, nothing listens: a pull fails at once
START_TIMEOUT = 60.0


class Skip(Exception):
    """Docker cannot run here; the run is skipped for this reason."""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def ensure_apt_package(package: str, binary: str) -> str:
    """Installs `package` with apt-get (as root) and returns the path of `binary`, or raises Skip."""
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        raise Skip(f"{binary} is not installed, and this machine cannot install it here "
                   f"({'not root' if os.geteuid() != 0 else 'no apt-get'})")
    log(f"installing {package} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "--no-install-recommends", package]
    done = subprocess.run(install, capture_output=True, text=True, env=env)
    if done.returncode != 0:  # the package lists may be missing or stale
        subprocess.run([apt, "update", "-q"], capture_output=True, text=True, env=env)
        done = subprocess.run(install, capture_output=True, text=True, env=env)
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if done.returncode != 0 or found is None:
        raise Skip(f"apt-get install {package} failed: {_last_line(done.stderr or done.stdout)}")
    return found


class Docker:
    """The docker CLI against one daemon; `stop()` ends the daemon if this run started it."""

    def __init__(self, cli: str, host: str | None = None, daemon: subprocess.Popen[bytes] | None = None,
                 daemon_log: Path | None = None) -> None:
        self.cli = cli
        self.host = host  # None: the CLI's default (DOCKER_HOST or /var/run/docker.sock)
        self._daemon = daemon
        self._daemon_log = daemon_log
        self._containers: list[str] = []

    @property
    def started_daemon(self) -> bool:
        return self._daemon is not None

    def env(self) -> dict[str, str]:
        """An environment for programs that talk to this daemon (docker, sam)."""
        env = dict(os.environ)
        if self.host:
            env["DOCKER_HOST"] = self.host
        return env

    def run_cli(self, args: list[str], *, stdin: IO[bytes] | None = None, capture: bool = False,
                env: dict[str, str] | None = None, check: bool = True, timeout: float | None = 600) -> str:
        done = subprocess.run([self.cli, *args], stdin=stdin, capture_output=True, env={**self.env(), **(env or {})},
                              timeout=timeout)
        if check and done.returncode != 0:
            output = (done.stderr or done.stdout).decode(errors="replace")
            raise RuntimeError(f"docker {' '.join(args[:3])} failed ({done.returncode}):\n{output[-3000:]}")
        return done.stdout.decode(errors="replace") if capture else ""

    def has_image(self, tag: str) -> bool:
        return subprocess.run([self.cli, "image", "inspect", tag], capture_output=True, env=self.env()).returncode == 0

    def start_container(self, args: list[str]) -> str:
        """`docker run -d` with `args`; the container is removed, by id, when the run ends."""
        container = self.run_cli(["run", "-d", "--pull", "never", *args], capture=True).strip()
        self._containers.append(container)
        return container

    def container_ip(self, container: str) -> str:
        return self.run_cli(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", container], capture=True).strip()

    def published_port(self, container: str, port: int) -> int:
        mapping = self.run_cli(["port", container, f"{port}/tcp"], capture=True).split()[0]  # 127.0.0.1:49153
        return int(mapping.rsplit(":", 1)[1])

    def logs(self, container: str) -> str:
        done = subprocess.run([self.cli, "logs", "--tail", "60", container], capture_output=True, env=self.env())
        return (done.stdout + done.stderr).decode(errors="replace")

    def remove_container(self, container: str) -> None:
        subprocess.run([self.cli, "rm", "-f", container], capture_output=True, env=self.env(), timeout=60)
        if container in self._containers:
            self._containers.remove(container)

    def sam_containers(self) -> set[str]:
        """Ids of the containers SAM CLI made (its label), running or not."""
        listed = self.run_cli(["ps", "-aq", "--no-trunc", "--filter", "label=sam.cli.container.type=lambda"],
                              capture=True)
        return set(listed.split())

    def stop(self) -> None:
        for container in list(self._containers):
            self.remove_container(container)
        if self._daemon is None:
            return
        if self._daemon.poll() is not None:  # it never started, or died
            self._daemon = None
            return
        self._daemon.send_signal(signal.SIGTERM)
        try:
            self._daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._daemon.kill()
            self._daemon.wait(timeout=10)
        log(f"dockerd (pid {self._daemon.pid}) stopped")
        self._daemon = None


def _answers(cli: str, host: str | None) -> bool:
    env = dict(os.environ)
    if host:
        env["DOCKER_HOST"] = host
    try:
        done = subprocess.run([cli, "version", "--format", "{{.Server.Version}}"], capture_output=True, env=env,
                              timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def ensure_docker() -> Docker:
    """A Docker daemon that answers: the machine's, else one started here. Raises Skip where neither can be."""
    cli = shutil.which("docker")
    if cli and _answers(cli, None):
        log("docker: using the daemon that is already running")
        return Docker(cli)
    if os.geteuid() != 0:
        raise Skip("no Docker daemon answers, and starting one needs root")
    dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/bin")
    if dockerd is None:
        dockerd = ensure_apt_package("docker.io", "dockerd")
    cli = shutil.which("docker") or shutil.which("docker", path="/usr/bin:/usr/sbin")
    if cli is None:
        raise Skip("dockerd is installed but the docker CLI is not")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    socket = RUN_DIR / "docker.sock"
    host = f"unix://{socket}"
    if _answers(cli, host):
        raise Skip(f"a dockerd of an earlier run still serves {socket}; stop it first")
    daemon_log = RUN_DIR / "dockerd.log"
    command = [dockerd, "--host", host, "--data-root", str(STATE_DIR / "docker"), "--exec-root", str(RUN_DIR / "exec"),
               "--pidfile", str(RUN_DIR / "dockerd.pid"), "--iptables=false", "--ip6tables=false",
               "--ip-masq=false", "--ip-forward=false", "--dns", "127.0.0.1"]
    env: dict[str, Any] = {**os.environ, "HTTP_PROXY": CLOSED_PORT_PROXY, "HTTPS_PROXY": CLOSED_PORT_PROXY,
                           "NO_PROXY": ""}
    env.pop("DOCKER_HOST", None)
    with open(daemon_log, "wb") as output:
        daemon = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    docker = Docker(cli, host, daemon, daemon_log)
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(cli, host):
        if daemon.poll() is not None or time.monotonic() > deadline:
            docker.stop()
            raise Skip(f"dockerd could not start: {_last_line(daemon_log.read_text(errors='replace'))}")
        time.sleep(0.2)
    # Its data root is this harness's alone: whatever container is in it was left by a run that was killed.
    docker.run_cli(["container", "prune", "--force"], check=False)
    log(f"docker: started dockerd (pid {daemon.pid}, {host}; log {daemon_log})")
    return docker
