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


def test_a_misspelled_key_stops_the_synth_naming_the_valid_one(tmp_path: Path) -> None:
    result = run_app(tmp_path, {"crmBaseUrll": "https://crm.acme.test"}, AUTH0_SYNC_DEPLOY="0")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "auth0-sync: invalid CDK context: unknown key 'crmBaseUrll': did you mean 'crmBaseUrl'?"
    ]


def _make(*argv: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    # Not the flags of a `make test` this may run under.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["make", "--no-print-directory", *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def _recipe(
    target: str, cdk_args: str, *variables: str, needle: str = "npx cdk", path: str | None = None
) -> str:
    """The command `make TARGET` would run for cdk (make -n: printed, not run)."""
    result = _make("-n", target, f"CDK_ARGS={cdk_args}", *variables, path=path)
    (line,) = [line for line in result.stdout.splitlines() if needle in line]
    return line


def _assignments(recipe: str) -> dict[str, str]:
    """The VAR=value words a recipe line starts with (the environment it gives the CLI)."""
    found: dict[str, str] = {}
    for word in recipe.split():
        name, eq, value = word.partition("=")
        if not eq or not name.isupper():
            break
        found[name] = value
    return found


def _fake_node(tmp_path: Path, version: str) -> str:
    """A directory holding a `node` that reports `version`."""
    folder = tmp_path / f"node-{version}"
    folder.mkdir()
    node = folder / "node"
    node.write_text(f"#!/bin/sh\necho {version}\n")
    node.chmod(0o755)
    return str(folder)


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


CLI_ENVIRONMENT = {
    # What the CDK CLI hands the app on `cdk bootstrap` too: the credentials' account and
    # region (it runs the app of the folder's cdk.json even when given aws://ACCOUNT/REGION).
    "CDK_DEFAULT_ACCOUNT": "123456789012",
    "CDK_DEFAULT_REGION": "eu-west-1",
}


def test_make_synth_and_make_bootstrap_build_the_placeholder_offline(tmp_path: Path) -> None:
    # One run of the app (a synth costs seconds): both recipes give it the same environment.
    recipe = _recipe("bootstrap", "", "BOOTSTRAP_ENV=aws://123456789012/eu-west-1")
    assert "npx cdk bootstrap --no-notices aws://123456789012/eu-west-1" in recipe
    synth = _assignments(_recipe("synth", ""))
    assert _assignments(recipe)["AUTH0_SYNC_DEPLOY"] == synth["AUTH0_SYNC_DEPLOY"] == "0"

    result = run_app(tmp_path, {}, **_assignments(recipe), **CLI_ENVIRONMENT)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cdk.out" / "Auth0Sync.template.json").is_file()


def test_a_plain_cdk_bootstrap_is_refused_with_the_command_that_works(tmp_path: Path) -> None:
    result = run_app(tmp_path, {}, **CLI_ENVIRONMENT)

    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "to bootstrap the account, `make bootstrap`" in line
    assert "AUTH0_SYNC_DEPLOY=0 npx cdk bootstrap" in line


def test_an_old_node_gets_a_one_line_note_naming_the_node_to_install(tmp_path: Path) -> None:
    node_20 = _fake_node(tmp_path, "v20.20.2")
    old = _make("check-node", path=node_20)
    new = _make("check-node", path=_fake_node(tmp_path, "v22.12.0"))

    assert old.stderr.strip().splitlines() == [
        "auth0-sync: note: Node 20 is older than the CDK supports; install Node 22 LTS or "
        "newer (https://nodejs.org/)"
    ]
    assert new.stderr == ""
    for target in ("synth", "deploy", "destroy", "bootstrap"):
        assert "Node 20 is older" in _recipe(target, "", needle="is older", path=node_20)


def test_jsii_s_node_warning_is_silenced_for_pytest_only(tmp_path: Path) -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    pytest_line = _recipe("test", "", needle="bin/pytest")

    assert "export JSII_SILENCE" not in makefile
    assert pytest_line.startswith("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=")
    assert "JSII_SILENCE" not in _recipe("synth", "")
    assert "JSII_SILENCE" not in _recipe("deploy", "")
