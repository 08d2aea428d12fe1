"""The Lambda code asset, really bundled (pip, no Docker): contents, size, and clean imports."""

from __future__ import annotations

import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from auth0_sync.routing import ROUTES
from infra.bundling import PYTHON_VERSION, RUNTIME, SHIPPED_PACKAGE, Target, build_asset
from infra.stack import build_app
from tests.infra.conftest import CDK_JSON_CONTEXT

pytestmark = pytest.mark.infra

# What the Lambda Python runtime image provides besides the standard library.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
# Lambda allows 250 MB unzipped; this budget catches a dependency dragging in botocore & co.
ASSET_BUDGET_MB = 40


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """`cdk synth` with bundling on, exactly as `make synth`: (cloud assembly dir, template)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    stack = build_app(CDK_JSON_CONTEXT, outdir=str(outdir))
    stack.node.root.synth()  # type: ignore[attr-defined]
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return outdir, template


@pytest.fixture(scope="module")
def asset(synthesized: tuple[Path, dict[str, Any]]) -> Path:
    """The one asset folder every function's code points at."""
    outdir, template = synthesized
    keys = {
        r["Properties"]["Code"]["S3Key"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert len(keys) == 1, f"expected one shared code asset, got {keys}"
    folder = outdir / f"asset.{keys.pop().removesuffix('.zip')}"
    assert folder.is_dir()
    return folder


def test_the_asset_holds_every_handler_module(asset: Path) -> None:
    for route in ROUTES:
        assert (asset / route.handler_file).is_file(), route.handler_file


def test_the_asset_ships_what_the_handlers_import_and_nothing_else(asset: Path) -> None:
    top_level = {p.name for p in asset.iterdir()}

    assert SHIPPED_PACKAGE in top_level
    assert {"aws_lambda_powertools", "pydantic", "pydantic_core", "requests"} <= top_level
    for unwanted in ("auth0_sync_cli", "aws_cdk", "constructs", "cdk_nag", "boto3", "botocore"):
        assert unwanted not in top_level, unwanted
    assert not list(asset.rglob("__pycache__"))
    assert not list(asset.rglob("*.pyc"))


def test_the_asset_is_built_for_lambda_arm64_and_its_python(asset: Path) -> None:
    tag = PYTHON_VERSION.replace(".", "")
    (binary,) = (asset / "pydantic_core").glob("_pydantic_core.*.so")

    assert binary.name == f"_pydantic_core.cpython-{tag}-aarch64-linux-gnu.so"
    assert RUNTIME.name == f"python{PYTHON_VERSION}"


def test_the_asset_fits_its_size_budget(asset: Path) -> None:
    size = _size_mb(asset)

    assert size < ASSET_BUDGET_MB, f"asset is {size:.1f} MB unzipped"


@pytest.fixture(scope="module")
def host_asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same requirements and source, built for this machine so its binaries load here."""
    out = tmp_path_factory.mktemp("host-asset")
    machine = platform.machine()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    build_asset(out, Target(platform=f"manylinux2014_{machine}", python_version=version))
    return out


@pytest.fixture(scope="module")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only what the Lambda runtime adds to the standard library."""
    folder = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_MODULES:
        spec = importlib.util.find_spec(name)
        assert spec is not None, name
        assert spec.origin is not None, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (folder / source.name).symlink_to(source)
    return folder


def test_each_handler_imports_from_the_asset_in_a_clean_interpreter(
    host_asset: Path, lambda_runtime: Path, synthesized: tuple[Path, dict[str, Any]]
) -> None:
    _, template = synthesized
    (function,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == ROUTES[0].handler
    ]
    # The environment the functions get, references replaced by placeholder values.
    environment = {
        name: value if isinstance(value, str) else f"placeholder-{name.lower()}"
        for name, value in function["Environment"]["Variables"].items()
    }
    script = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(host_asset)!r}, {str(lambda_runtime)!r}]\n"
        "assert not [p for p in sys.path if 'site-packages' in p], sys.path\n"
        f"for name in {[route.module for route in ROUTES]!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    assert callable(module.handler), name\n"
        "    print('imported', name, 'from', module.__file__)\n"
    )

    # -I: no user site, no PYTHON* variables; -S: no site-packages at all.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        env={"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1", **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    for route in ROUTES:
        assert f"imported {route.module} from {host_asset}" in result.stdout
