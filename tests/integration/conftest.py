"""Fixtures of the integration suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auth0_sync_cli.local_aws import LocalResources
from tests.integration.lambda_double import LambdaDouble, serve_lambda_double


@pytest.fixture
def lambda_api(sync_env: LocalResources) -> Iterator[LambdaDouble]:
    """Lambda's Invoke API on loopback, running the real handlers against `sync_env`."""
    with serve_lambda_double() as double:
        yield double
