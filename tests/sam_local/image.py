"""The Lambda-like Python 3.13 image, built offline from Debian packages, and cached by its recipe.

1. `debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates trixie` into a scratch
   folder (Debian's mirror is the only download), trimmed, then `docker import`ed: the root filesystem.
2. `image/requirements.txt` (awslambdaric, pinned) installed on the host with pip for CPython 3.13 and
   this machine's platform, into the build context's `runtime/`.
3. `docker build` of `image/Dockerfile` on those: no RUN step, no pull, no network.

The image's name carries a hash of everything above (the files in image/, the suite, the packages,
the architecture): an unchanged recipe is never rebuilt, and a changed one builds a new image and
removes the older ones. The name, not just the tag: SAM CLI keeps the image it derives for each
function (`<name>:rapid-<architecture>`, the emulator added) by name, and would otherwise reuse the
one derived from an older recipe. Images are kept between runs: they are the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.sam_local.docker_host import Docker, Skip, ensure_apt_package
from tests.sam_local.log import log

HERE = Path(__file__).resolve().parent / "image"
SUITE = "trixie"  # Debian 13: Python 3.13, the template's Runtime
PACKAGES = ("python3", "python3-venv", "ca-certificates")
MIRROR = os.environ.get("CUECARD_SAM_LOCAL_MIRROR", "http://deb.debian.org/debian")
REPOSITORY = "cuecard-sam-local/python3.13"  # + "-<recipe hash>"
TAG = "lambda"
PYTHON_VERSION = "3.13"
# Trimmed from the root filesystem: nothing in it reads them.
TRIM = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info",
        "usr/share/locale")


def machine() -> str:
    """x86_64 or arm64: the Lambda architecture of this machine, for the template's Architecture parameter."""
    name = os.uname().machine
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(name, name)


def pip_platform(architecture: str) -> str:
    """The wheel platform of `architecture` (the Makefile's LAMBDA_PLATFORM)."""
    return {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}[architecture]


def pip_install_for_lambda(target: Path, architecture: str, requirements: list[str]) -> None:
    """pip install --target, wheels only, for CPython 3.13 on `architecture` (whatever this machine runs)."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile",
                           "--target", str(target), "--platform", pip_platform(architecture), "--implementation", "cp",
                           "--python-version", PYTHON_VERSION, "--only-binary=:all:", *requirements],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(requirements)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def recipe_key(architecture: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(HERE.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(repr((SUITE, PACKAGES, architecture)).encode())
    return digest.hexdigest()[:16]


def ensure_image(docker: Docker, architecture: str) -> str:
    """The image's tag, built first if this recipe has never been built here."""
    tag = f"{REPOSITORY}-{recipe_key(architecture)}:{TAG}"
    if docker.has_image(tag):
        log(f"image {tag}: cached")
        return tag
    log(f"image {tag}: building it (debootstrap {SUITE}, then docker import and build; about a minute)")
    if os.geteuid() != 0:
        raise Skip("building the Python 3.13 image needs debootstrap as root")
    debootstrap = shutil.which("debootstrap") or ensure_apt_package("debootstrap", "debootstrap")
    rootfs_tag = f"cuecard-sam-local/{SUITE}-rootfs:{recipe_key(architecture)}"
    scratch = Path(tempfile.mkdtemp(prefix="cuecard-sam-local-image-"))
    try:
        rootfs = scratch / "rootfs"
        subprocess.run([debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs),
                        MIRROR], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for trimmed in TRIM:
            shutil.rmtree(rootfs / trimmed, ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        docker.run_cli(["import", "-", rootfs_tag], stdin=tar.stdout)
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError("tar of the root filesystem failed")
        context = scratch / "context"
        shutil.copytree(HERE, context)
        pip_install_for_lambda(context / "runtime", architecture, ["-r", str(HERE / "requirements.txt")])
        docker.run_cli(["build", "--pull=false", "--network", "none", "--build-arg", f"ROOTFS={rootfs_tag}",
                        "-t", tag, str(context)], env={"DOCKER_BUILDKIT": "0"})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    docker.run_cli(["image", "rm", rootfs_tag])  # the built image keeps its layers
    version = docker.run_cli(["run", "--rm", "--pull", "never", "--network", "none", "--env", "PYTHONPATH=/var/runtime",
                              tag, "python3", "-c",
                              "import sys, awslambdaric; print(sys.version.split()[0])"], capture=True).strip()
    for stale in docker.run_cli(["images", "--format", "{{.Repository}}:{{.Tag}}"], capture=True).split():
        if stale.startswith(f"{REPOSITORY}-") and not stale.startswith(tag.split(":")[0] + ":"):
            docker.run_cli(["image", "rm", stale], check=False)  # an older recipe's, and SAM's images of it
    log(f"image {tag}: built (Python {version})")
    return tag
