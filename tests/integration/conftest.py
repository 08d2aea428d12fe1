"""Fixtures of the integration suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from auth0_sync.names import RedriveEnv
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from tests.integration.initial_sync import USERS, write_export
from tests.integration.lambda_double import (
    FUNCTIONS,
    MODULES,
    REDRIVE_FUNCTION,
    TIMEOUTS,
    LambdaDouble,
    serve_lambda_double,
)


@pytest.fixture
def lambda_api(sync_env: LocalResources) -> Iterator[LambdaDouble]:
    """Lambda's Invoke API on loopback, running the real handlers against `sync_env`."""
    with serve_lambda_double() as double:
        yield double


@pytest.fixture
def redrive_function(
    sync_env: LocalResources, lambda_api: LambdaDouble, monkeypatch: pytest.MonkeyPatch
) -> LambdaDouble:
    """The environment the stack gives the redrive function; Lambda is the double."""
    monkeypatch.setenv(
        RedriveEnv.SYNC_FUNCTIONS, ",".join(f"{t}={n}" for t, n in FUNCTIONS.items())
    )
    monkeypatch.setenv(RedriveEnv.RATE, "1000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambda_api.url)
    monkeypatch.setitem(MODULES, REDRIVE_FUNCTION, "auth0_sync.handlers.redrive")
    monkeypatch.setitem(TIMEOUTS, REDRIVE_FUNCTION, 120.0)
    return lambda_api


@pytest.fixture
def clocked_crm() -> Iterator[tuple[CrmServer, list[float]]]:
    """A CRM server whose rate-limit windows follow a clock the test moves by hand."""
    now = [100.25]
    with CrmServer(clock=lambda: now[0]) as server:
        yield server, now


@pytest.fixture
def unique_crm() -> Iterator[CrmServer]:
    """A reference CRM enforcing the contract's optional uniqueness rules."""
    with CrmServer(unique_emails=True) as server:
        yield server


@pytest.fixture
def users_export(tmp_path: Path) -> Path:
    """The initial-sync tenant's users (`initial_sync.USERS`) as a gzipped users export."""
    return write_export(tmp_path / "users.json.gz", USERS)
