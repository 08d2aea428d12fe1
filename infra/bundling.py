"""The Lambda code asset, built without Docker: pinned wheels for the Lambda platform + our package.

Why local pip bundling rather than the Powertools layer: one lock file decides every wheel the
handlers import, and there is no per-region layer ARN to keep current.

- `functions/requirements.txt` names what the handlers import (top level, pinned).
- `functions/requirements.lock` pins every wheel of the asset, transitive ones included, with
  the sha256 of each Lambda platform's wheel (`make lock` writes it from the former). pip
  installs it with `--require-hashes --no-deps`, so a rebuild ships the same bytes or fails.
- The asset hash covers the shipped source, the lock, the target and this module, so a new
  lock (or new bundling code) is a new asset, never new wheels under an old hash.
- The runtime is the Python version CI runs: tests/infra/test_asset.py builds the asset for
  this machine from the same lock and runs a handler from it under this interpreter.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import Acknowledgment, AssetHashType, BundlingOptions, ILocalBundling, Validations
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSET_ROOT = REPO_ROOT / "functions"
REQUIREMENTS = ASSET_ROOT / "requirements.txt"
LOCK = ASSET_ROOT / "requirements.lock"
# The one package that ships; auth0_sync_cli and everything else under functions/ stays home.
SHIPPED_PACKAGE = "auth0_sync"

# The Lambda runtime and architecture, and the matching wheels pip must pick. The Python
# version is the one CI (this machine: Debian's and the Makefile's python3) runs.
RUNTIME = lambda_.Runtime.PYTHON_3_11
ARCHITECTURE = lambda_.Architecture.ARM_64
PYTHON_VERSION = "3.11"
LAMBDA_PLATFORM = "manylinux2014_aarch64"
# The lock carries hashes for both Lambda architectures' wheels, so the asset test can build
# for an x86_64 (or arm64) CI machine from the very same pins.
LOCK_PLATFORMS = ("manylinux2014_aarch64", "manylinux2014_x86_64")

# Distributions the Lambda Python runtime already provides: never pinned nor shipped.
# Shipping them would shadow the runtime's own boto3/botocore pair with a mismatched
# botocore and add ~25 MB.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six"}
)

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")

# cdk-nag's rules (both packs) asking for the latest runtime, and why this one is kept.
LATEST_RUNTIME_RULES = (
    "AwsSolutions::AwsSolutions-L1",
    "Serverless::Serverless-LambdaLatestVersion",
)
RUNTIME_NOT_LATEST = (
    f"The runtime is {RUNTIME.name}, the Python that CI runs the bundled asset under "
    "(tests/infra/test_asset.py imports it and runs a handler from it against local AWS); "
    "a newer runtime would ship code no test has run."
)


def acknowledge_runtime(function: lambda_.IFunction) -> None:
    """Acknowledge the latest-runtime findings on a function of this asset, with the reason."""
    for rule in LATEST_RUNTIME_RULES:
        Validations.of(function).acknowledge(Acknowledgment(id=rule, reason=RUNTIME_NOT_LATEST))


@dataclass(frozen=True)
class Target:
    """Where the asset will run: pip's --platform and --python-version."""

    platform: str = LAMBDA_PLATFORM
    python_version: str = PYTHON_VERSION


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    out = name.lower()
    for separator in ("_", "."):
        out = out.replace(separator, "-")
    while "--" in out:
        out = out.replace("--", "-")
    return out


def build_asset(out: Path, target: Target = Target(), lock: Path | None = None) -> None:
    """Install exactly the locked wheels for `target` into `out`, then copy our package in."""
    lock = lock or LOCK
    subprocess.run(  # noqa: S603 - fixed argv, no shell
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--require-hashes", "--no-deps", "--requirement", str(lock),
            "--target", str(out), "--platform", target.platform,
            "--python-version", target.python_version, "--implementation", "cp",
            "--only-binary=:all:", "--upgrade",
        ],
        check=True,
    )  # fmt: skip
    # Console scripts serve nothing in Lambda.
    shutil.rmtree(out / "bin", ignore_errors=True)
    shutil.copytree(
        ASSET_ROOT / SHIPPED_PACKAGE, out / SHIPPED_PACKAGE, ignore=_IGNORED, dirs_exist_ok=True
    )


def asset_hash(target: Target = Target(), lock: Path | None = None) -> str:
    """sha256 over what decides the asset's bytes: source, lock, target, this module."""
    digest = hashlib.sha256()
    digest.update(f"{target.platform} {target.python_version}\n".encode())
    for label, path in (("lock", lock or LOCK), ("bundling", Path(__file__))):
        digest.update(label.encode() + b"\0" + path.read_bytes() + b"\0")
    package = ASSET_ROOT / SHIPPED_PACKAGE
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            relative = path.relative_to(ASSET_ROOT).as_posix()
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class _LocalPipBundling:
    # jsii hands the BundlingOptions over positionally or by keyword, by version; neither is
    # needed here.
    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        build_asset(Path(output_dir))
        return True


def lambda_code() -> lambda_.Code:
    """The one code asset every handler shares, bundled locally (never in Docker)."""
    return lambda_.Code.from_asset(
        str(ASSET_ROOT),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash(),
        # Not staged: the CLI and caches are no part of the asset.
        exclude=["auth0_sync_cli", "*.egg-info", "**/__pycache__", "**/*.pyc"],
        bundling=BundlingOptions(image=RUNTIME.bundling_image, local=_LocalPipBundling()),
    )
