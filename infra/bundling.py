"""The Lambda code asset, built without Docker: pip wheels for the Lambda platform + our package.

Why local pip bundling rather than the Powertools layer: one pinned requirements file
(functions/requirements.txt) decides every version the handlers import, the same file the
local mode and the tests install, and there is no per-region layer ARN to keep current.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSET_ROOT = REPO_ROOT / "functions"
REQUIREMENTS = ASSET_ROOT / "requirements.txt"
# The one package that ships; auth0_sync_cli and everything else under functions/ stays home.
SHIPPED_PACKAGE = "auth0_sync"

# The Lambda runtime and architecture, and the matching wheels pip must pick.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
PYTHON_VERSION = "3.14"
LAMBDA_PLATFORM = "manylinux2014_aarch64"

# Distributions the Lambda Python runtime already provides. Pip pulls some in as
# dependencies (aws-xray-sdk needs botocore); shipping them would shadow the runtime's own
# boto3/botocore pair with a mismatched botocore and add ~25 MB.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six"}
)

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


@dataclass(frozen=True)
class Target:
    """Where the asset will run: pip's --platform and --python-version."""

    platform: str = LAMBDA_PLATFORM
    python_version: str = PYTHON_VERSION


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _prune_runtime_provided(out: Path) -> None:
    """Delete what the runtime provides, file by file from each wheel's RECORD."""
    for dist_info in out.glob("*.dist-info"):
        name = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        if _normalise(name) not in RUNTIME_PROVIDED:
            continue
        for line in (dist_info / "RECORD").read_text(encoding="utf-8").splitlines():
            path = out / line.split(",", 1)[0]
            if path.is_file():
                path.unlink()
        shutil.rmtree(dist_info, ignore_errors=True)
    # Emptied package folders and console scripts (bin/) serve nothing in Lambda.
    for folder in sorted(out.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    shutil.rmtree(out / "bin", ignore_errors=True)


def build_asset(out: Path, target: Target = Target()) -> None:
    """Install the handlers' requirements for `target` into `out`, then copy our package in."""
    subprocess.run(  # noqa: S603 - fixed argv, no shell
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--requirement", str(REQUIREMENTS), "--target", str(out),
            "--platform", target.platform, "--python-version", target.python_version,
            "--implementation", "cp", "--only-binary=:all:", "--upgrade",
        ],
        check=True,
    )  # fmt: skip
    _prune_runtime_provided(out)
    shutil.copytree(
        ASSET_ROOT / SHIPPED_PACKAGE, out / SHIPPED_PACKAGE, ignore=_IGNORED, dirs_exist_ok=True
    )


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
        # Left out of the asset hash: a change to the CLI or a cache is no new deployment.
        exclude=["auth0_sync_cli", "*.egg-info", "**/__pycache__", "**/*.pyc"],
        bundling=BundlingOptions(image=RUNTIME.bundling_image, local=_LocalPipBundling()),
    )
