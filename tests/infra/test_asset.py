"""The Lambda code asset, really bundled (pip, no Docker): contents, pins, hash, and a handler
run from it in a clean interpreter against local AWS (moto's server) and the reference CRM."""

from __future__ import annotations

import importlib.util
import json
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Template
from moto.server import ThreadedMotoServer

from auth0_sync.names import LOCAL_REGION, STATE_TABLE_PK, Env
from auth0_sync.routing import ROUTES
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import MOTO_CREDENTIALS, LocalResources, create_resources
from infra import bundling
from infra.bundling import (
    ASSET_ROOT,
    LOCK,
    REQUIREMENTS,
    RUNTIME_PROVIDED,
    SHIPPED_PACKAGE,
    Target,
    asset_hash,
    build_asset,
)
from infra.stack import build_app
from tests.conftest import EVENTS_DIR
from tests.infra.conftest import CDK_JSON_CONTEXT, NO_BUNDLING

pytestmark = pytest.mark.infra

# What the Lambda Python runtime image provides besides the standard library.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
# Lambda allows 250 MB unzipped; this budget catches a dependency dragging in botocore & co.
ASSET_BUDGET_MB = 40
# The interpreter this test (and CI) runs: the one the asset is imported and run under below.
THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
STREAM_HEALTH_HANDLER = "auth0_sync.handlers.stream_health.handler"
REDRIVE_HANDLER = "auth0_sync.handlers.redrive.handler"
STREAM_HEALTH = {
    "auth0MgmtSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mgmt-AbCdEf",
    "auth0StreamId": "est_7W8uNfgHNxDzCgXVrt7JfH",
}


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock_pins(text: str) -> dict[str, str]:
    """name -> version of every `name==version` line (the requirements file format)."""
    return {
        _pep503(m.group(1)): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", text, re.MULTILINE)
    }


def _installed(folder: Path) -> dict[str, str]:
    """name -> version of every distribution pip installed into `folder` (its dist-info)."""
    found = {}
    for dist_info in folder.glob("*.dist-info"):
        name, version = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)
        found[_pep503(name)] = version
    return found


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """`cdk synth` with bundling on, exactly as `make synth`: (cloud assembly dir, template)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    stack = build_app({**CDK_JSON_CONTEXT, **STREAM_HEALTH}, outdir=str(outdir))
    stack.node.root.synth()  # type: ignore[attr-defined]
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return outdir, template


def _functions(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]


@pytest.fixture(scope="module")
def asset(synthesized: tuple[Path, dict[str, Any]]) -> Path:
    """The one asset folder every function's code points at."""
    outdir, template = synthesized
    keys = {f["Code"]["S3Key"] for f in _functions(template)}
    assert len(keys) == 1, f"expected one shared code asset, got {keys}"
    folder = outdir / f"asset.{keys.pop().removesuffix('.zip')}"
    assert folder.is_dir()
    return folder


@pytest.fixture(scope="module")
def host_asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same lock and source, built for this machine and this Python so it loads here."""
    out = tmp_path_factory.mktemp("host-asset")
    build_asset(
        out, Target(platform=f"manylinux2014_{platform.machine()}", python_version=THIS_PYTHON)
    )
    return out


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


def test_every_function_runs_the_python_this_test_runs_under(
    synthesized: tuple[Path, dict[str, Any]],
) -> None:
    """The runtime is the interpreter the handler below ran under, nothing CI never ran."""
    _, template = synthesized
    functions = _functions(template)

    assert {f["Handler"] for f in functions} == {
        *(r.handler for r in ROUTES),
        STREAM_HEALTH_HANDLER,
        REDRIVE_HANDLER,
    }
    assert {f["Runtime"] for f in functions} == {f"python{THIS_PYTHON}"}
    assert {f["Architectures"][0] for f in functions} == {"arm64"}


def test_the_asset_is_built_for_lambda_arm64_and_that_python(asset: Path) -> None:
    tag = THIS_PYTHON.replace(".", "")
    (binary,) = (asset / "pydantic_core").glob("_pydantic_core.*.so")

    assert binary.name == f"_pydantic_core.cpython-{tag}-aarch64-linux-gnu.so"


def test_the_asset_fits_its_size_budget(asset: Path) -> None:
    size = _size_mb(asset)

    assert size < ASSET_BUDGET_MB, f"asset is {size:.1f} MB unzipped"


def test_the_lock_pins_every_wheel_with_hashes_and_leaves_the_runtime_out() -> None:
    text = LOCK.read_text()
    pins = _lock_pins(text)
    # Every top-level requirement, at the same version (make lock after editing it).
    for name, version in _lock_pins(REQUIREMENTS.read_text()).items():
        assert pins.get(re.sub(r"\[.*\]$", "", name)) == version, name
    assert not set(pins) & RUNTIME_PROVIDED
    # Each pin carries at least one sha256 (two for a platform-specific wheel).
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 4)[-1]):
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), block


@pytest.mark.parametrize("build", ["lambda", "host"])
def test_the_installed_wheels_are_exactly_the_locked_ones(
    build: str, request: pytest.FixtureRequest
) -> None:
    folder: Path = request.getfixturevalue("asset" if build == "lambda" else "host_asset")

    assert _installed(folder) == _lock_pins(LOCK.read_text())


def _asset_key(outdir: Path) -> str:
    """The S3 key of the functions' code in a template synthesized without bundling."""
    stack = build_app(NO_BUNDLING, outdir=str(outdir))
    (key,) = {f["Code"]["S3Key"] for f in _functions(dict(Template.from_stack(stack).to_json()))}
    return str(key)


def test_the_asset_hash_changes_with_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another lock is another asset: never other wheels under the same hash."""
    before = _asset_key(tmp_path / "before")
    same = tmp_path / "same.lock"
    shutil.copy(LOCK, same)
    other = tmp_path / "other.lock"
    other.write_text(LOCK.read_text().replace("\nidna==", "\nidna==0.0.0.dev0+", 1))

    monkeypatch.setattr(bundling, "LOCK", same)
    assert _asset_key(tmp_path / "same") == before
    monkeypatch.setattr(bundling, "LOCK", other)
    assert _asset_key(tmp_path / "other") != before


def test_the_asset_hash_covers_the_target() -> None:
    assert asset_hash(Target(platform="manylinux2014_x86_64")) != asset_hash()
    assert asset_hash(Target(python_version="3.12")) != asset_hash()


def test_the_asset_hash_changes_with_the_shipped_source(tmp_path: Path) -> None:
    probe = ASSET_ROOT / SHIPPED_PACKAGE / "_asset_hash_probe.py"
    before = asset_hash()
    try:
        probe.write_text("# a change to the shipped package\n")
        assert asset_hash() != before
    finally:
        probe.unlink()
    assert asset_hash() == before


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


@pytest.fixture
def local_aws() -> Iterator[LocalResources]:
    """`local-aws` as the demo runs it: moto's server on a free loopback port, the stack's
    tables, DLQ and CRM-token secret created in it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield create_resources(f"http://{host}:{port}")
    finally:
        server.stop()


def _clean_python(script: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # -I: no user site, no PYTHON* variables; -S: no site-packages at all.
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _prelude(host_asset: Path, lambda_runtime: Path) -> str:
    return (
        "import importlib, json, sys\n"
        f"sys.path[:0] = [{str(host_asset)!r}, {str(lambda_runtime)!r}]\n"
        "assert not [p for p in sys.path if 'site-packages' in p], sys.path\n"
    )


def test_each_handler_imports_from_the_asset_in_a_clean_interpreter(
    host_asset: Path, lambda_runtime: Path, synthesized: tuple[Path, dict[str, Any]]
) -> None:
    _, template = synthesized
    (function,) = [f for f in _functions(template) if f["Handler"] == ROUTES[0].handler]
    # The environment the functions get, references replaced by placeholder values.
    environment = {
        name: value if isinstance(value, str) else f"placeholder-{name.lower()}"
        for name, value in function["Environment"]["Variables"].items()
    }
    modules = [route.module for route in ROUTES] + [
        h.rsplit(".", 1)[0] for h in (STREAM_HEALTH_HANDLER, REDRIVE_HANDLER)
    ]
    script = _prelude(host_asset, lambda_runtime) + (
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    assert callable(module.handler), name\n"
        "    print('imported', name, 'from', module.__file__)\n"
    )

    result = _clean_python(
        script, {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1", **environment}
    )

    assert result.returncode == 0, result.stderr
    for name in modules:
        assert f"imported {name} from {host_asset}" in result.stdout


def test_a_handler_from_the_asset_applies_an_event_against_local_aws_and_the_crm(
    host_asset: Path,
    lambda_runtime: Path,
    synthesized: tuple[Path, dict[str, Any]],
    local_aws: LocalResources,
    crm: CrmServer,
) -> None:
    """The code Lambda runs (the locked wheels + our package, under this Python, with only the
    runtime's boto3 added) applies a user.created: the contact in the CRM, the state stored."""
    _, template = synthesized
    route = next(r for r in ROUTES if r.event_type == "user.created")
    (function,) = [f for f in _functions(template) if f["Handler"] == route.handler]
    # The stack's environment: its literal values as they are, its references pointed at the
    # local resources (what `local-aws` prints) and the loopback CRM.
    local = {
        **local_aws.environment(),
        Env.CRM_BASE_URL: crm.base_url,
        "AWS_REGION": LOCAL_REGION,
    }
    stack_env = function["Environment"]["Variables"]
    environment = {
        name: value if isinstance(value, str) and name != Env.CRM_BASE_URL else local[name]
        for name, value in stack_env.items()
    }
    environment.update({k: v for k, v in local.items() if k not in environment})
    module, _, attribute = route.handler.rpartition(".")
    script = _prelude(host_asset, lambda_runtime) + (
        "class Context:\n"
        "    function_name = 'UserCreated'\n"
        "    memory_limit_in_mb = 256\n"
        "    invoked_function_arn = 'arn:aws:lambda:us-east-1:123456789012:function:UserCreated'\n"
        "    aws_request_id = 'asset-test-1'\n"
        "    def get_remaining_time_in_millis(self):\n"
        "        return 30000\n"
        f"handler = getattr(importlib.import_module({module!r}), {attribute!r})\n"
        f"event = json.load(open({str(EVENTS_DIR / 'user_created.json')!r}))\n"
        "print('RESULT', json.dumps(handler(event, Context())))\n"
    )

    result = _clean_python(script, environment)

    assert result.returncode == 0, result.stderr
    event = json.loads((EVENTS_DIR / "user_created.json").read_text())
    user = event["detail"]["data"]["object"]
    (contact,) = crm.contacts()
    assert (contact["email"], contact["auth0_user_id"]) == (user["email"], user["user_id"])
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=local_aws.endpoint_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=MOTO_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=MOTO_CREDENTIALS["aws_secret_access_key"],
    )
    item = dynamodb.get_item(
        TableName=local_aws.state_table, Key={STATE_TABLE_PK: {"S": user["user_id"]}}
    )["Item"]
    assert item[STATE_TABLE_PK]["S"] == user["user_id"]
    assert "RESULT " in result.stdout
