"""What `make demo` and `make test` install, read from the Makefile (make -n) and the files."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from infra.bundling import LOCK, REPO_ROOT

pytestmark = pytest.mark.infra

# What the demo and the CLI never import: the CDK app, its checks, the test and type tools.
NOT_FOR_THE_DEMO = re.compile(
    r"^(aws-cdk-lib|constructs|cdk-nag|mypy|mypy-boto3-.*|boto3-stubs|types-.*|pytest.*|"
    r"hypothesis|schemathesis|ruff|cfn-lint|pyinstrument)$"
)


def _closure(name: str) -> dict[str, str]:
    """Distribution -> its requirement line, following `-r` includes from `name`."""
    found: dict[str, str] = {}
    path = REPO_ROOT / name
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(_closure(str((path.parent / line[3:].strip()).relative_to(REPO_ROOT))))
        elif line:
            found[re.split(r"[\[=<>]", line, maxsplit=1)[0].lower()] = line
    return found


def _dry_run(target: str, tmp_path: Path) -> list[str]:
    """The commands `make TARGET` would run in a fresh clone (a virtualenv not yet made)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"VENV={tmp_path / 'venv'}"],
        cwd=REPO_ROOT,
        # Not the flags of a `make test` this may run under.
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.splitlines()


def test_the_demo_requirements_hold_nothing_the_demo_does_not_use() -> None:
    demo = _closure("requirements.txt")

    assert [name for name in demo if NOT_FOR_THE_DEMO.match(name)] == []
    assert {"boto3", "moto", "flask", "waitress", "aws-lambda-powertools", "pydantic"} <= set(demo)
    # moto only for the services local-aws serves, not its whole server (cfn-lint, sympy...).
    assert demo["moto"] == "moto[dynamodb,sqs,secretsmanager]==5.2.5"


def test_the_test_requirements_add_the_cdk_app_and_the_tools() -> None:
    dev = _closure("requirements-dev.txt")

    assert {"aws-cdk-lib", "constructs", "cdk-nag", "mypy", "pytest", "cfn-lint"} <= set(dev)
    assert set(_closure("requirements.txt")) <= set(dev)
    for line in dev.values():
        assert "==" in line, f"not pinned: {line}"


def test_make_demo_installs_only_the_demo_requirements(tmp_path: Path) -> None:
    commands = _dry_run("demo", tmp_path)

    installs = [c for c in commands if " install " in c and "pip" in c]
    assert any("-r requirements.txt" in c for c in installs), commands
    assert not any("requirements-dev.txt" in c or "requirements-cdk.txt" in c for c in installs)
    assert commands[-1].endswith("/bin/auth0-sync demo")


def test_make_test_installs_everything_and_both_use_the_lambda_pins(tmp_path: Path) -> None:
    commands = _dry_run("test", tmp_path)

    installs = [c for c in commands if " install " in c and "pip" in c]
    assert any("-r requirements.txt" in c for c in installs), commands
    assert any("-r requirements-dev.txt" in c for c in installs), commands
    # Both installs are constrained by the Lambda lock's pins (its hashes stripped).
    constrained = [c for c in installs if "-r requirements" in c]
    assert all("-c " in c for c in constrained), constrained
    (extract,) = [c for c in commands if c.startswith("sed ")]
    assert extract.endswith(
        f"{LOCK.relative_to(REPO_ROOT)} > {tmp_path}/venv/lambda-constraints.txt"
    )
    # Run it: the constraints are every pin of the lock, and no hash (pip would enforce
    # hashes on every requirement then).
    (tmp_path / "venv").mkdir()
    subprocess.run(["bash", "-c", extract], cwd=REPO_ROOT, check=True, timeout=30)
    constraints = (tmp_path / "venv" / "lambda-constraints.txt").read_text().splitlines()
    pins = re.findall(r"^([A-Za-z0-9][^ ]*==[^ ]+) \\$", LOCK.read_text(), re.MULTILINE)
    assert constraints == pins
    assert len(pins) >= 10
