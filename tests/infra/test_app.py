"""app.py as the CDK CLI runs it (context in CDK_CONTEXT_JSON), and the Makefile's cdk commands.

The CLI runs the app as a subprocess and shows its stderr; a refusal must be one line, exit
non-zero, and come before anything reaches CloudFormation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import REPO_ROOT
from tests.infra.conftest import NO_BUNDLING

pytestmark = pytest.mark.infra

SOURCE = "aws.partner/auth0.com/acme-5c8d1e0b/auth0.events"


def run_app(
    tmp_path: Path, context: dict[str, Any], **environ: str
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        # What the CDK CLI hands the app.
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "CDK_CONTEXT_JSON": json.dumps({**NO_BUNDLING, **context}),
        **environ,
    }
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_deploy_refuses_the_placeholder_source_in_one_line(tmp_path: Path) -> None:
    result = run_app(tmp_path, {}, AUTH0_SYNC_DEPLOY="1")

    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "auth0-sync: not deploying: context 'auth0EventSourceName' is still the placeholder"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cdk.out" / "Auth0Sync.template.json").exists()


def test_make_synth_still_builds_the_placeholder_offline(tmp_path: Path) -> None:
    result = run_app(tmp_path, {}, AUTH0_SYNC_DEPLOY="0", CDK_DEFAULT_ACCOUNT="123456789012")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cdk.out" / "Auth0Sync.template.json").is_file()


def test_a_misspelled_key_stops_the_synth_naming_the_valid_one(tmp_path: Path) -> None:
    result = run_app(tmp_path, {"crmBaseUrll": "https://crm.acme.test"}, AUTH0_SYNC_DEPLOY="0")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "auth0-sync: invalid CDK context: unknown key 'crmBaseUrll': did you mean 'crmBaseUrl'?"
    ]


def _recipe(target: str, cdk_args: str) -> str:
    """The command `make TARGET` would run for cdk (make -n: printed, not run)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"CDK_ARGS={cdk_args}"],
        cwd=REPO_ROOT,
        # Not the flags of a `make test` this may run under.
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (line,) = [line for line in result.stdout.splitlines() if "npx cdk" in line]
    return line


def test_make_synth_and_deploy_pass_cdk_args_and_run_without_a_terminal() -> None:
    args = f"-c auth0EventSourceName={SOURCE} -c createEventBus=true"

    synth = _recipe("synth", args)
    deploy = _recipe("deploy", args)
    destroy = _recipe("destroy", args)

    assert synth.endswith(f"npx cdk synth --no-notices --quiet {args}")
    assert synth.startswith("AUTH0_SYNC_DEPLOY=0 CDK_DISABLE_CLI_TELEMETRY=true ")
    assert deploy.startswith("AUTH0_SYNC_DEPLOY=1 CDK_DISABLE_CLI_TELEMETRY=true ")
    # No approval prompt: a deploy in CI has no terminal to answer it.
    assert deploy.endswith(f"npx cdk deploy --no-notices --require-approval never {args}")
    assert destroy.endswith(f"npx cdk destroy --no-notices --force {args}")
    assert "CDK_DISABLE_CLI_TELEMETRY=true" in destroy
