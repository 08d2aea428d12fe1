"""Fixtures shared by every suite. Keep each fixture small and say why it exists."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from auth0_sync import lambda_app
from auth0_sync.names import LOCAL_REGION, METRICS_NAMESPACE, Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources, create_resources

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@pytest.fixture(autouse=True)
def _output_folder_of_the_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Files a command writes unasked go to $XDG_STATE_HOME/auth0-sync: the test's own,
    never the developer's."""
    folder = tmp_path / "xdg-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(folder))
    return folder / "auth0-sync"


@pytest.fixture(autouse=True)
def _no_network_in_unit_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unit tests test the pure core: any socket connection there is a bug in the test."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(self: socket.socket, address: object) -> None:
        raise RuntimeError(f"unit tests must not use the network (tried to connect to {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture(scope="session")
def crm_server() -> Iterator[CrmServer]:
    """One reference CRM server on a free loopback port for the whole session."""
    with CrmServer() as server:
        yield server


@pytest.fixture
def crm(crm_server: CrmServer) -> Iterator[CrmServer]:
    """The shared CRM server, emptied and with every fault off, so each test starts clean
    and leaves no fault behind for tests that use the session server directly."""
    crm_server.clear_faults()
    crm_server.reset()
    yield crm_server
    crm_server.clear_faults()


@pytest.fixture
def crm_without_aws(crm: CrmServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CrmServer:
    """The CLI's environment against the reference CRM with no AWS endpoint, run from the
    test's own folder."""
    monkeypatch.setenv(Env.CRM_BASE_URL, crm.base_url)
    monkeypatch.setenv(Env.CRM_API_TOKEN, crm.token)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return crm


EVENTS_DIR = Path(__file__).parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A JSON fixture from tests/events (each is validated against the model in test_events)."""
    data: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return data


# In-process moto is not thread-safe (one thread deep-copies an item another one updates:
# "dictionary changed size during iteration"); DynamoDB applies each request atomically.
# Serialising moto's requests gives the concurrency tests exactly that, and no more.
_MOTO_REQUESTS = threading.RLock()


def _one_request_at_a_time(
    stub: BotocoreStubber, event_name: str, request: Any, **kwargs: Any
) -> Any:
    with _MOTO_REQUESTS:
        return _MOTO_CALL(stub, event_name, request, **kwargs)


_MOTO_CALL = BotocoreStubber.__call__


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalResources]:
    """In-process moto with the stack's tables, DLQ and secret (as `local-aws` creates them)."""
    monkeypatch.setattr(BotocoreStubber, "__call__", _one_request_at_a_time)
    _moto_environment(monkeypatch)
    with mock_aws():
        yield create_resources(None)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[tuple[DynamoDBClient, str]]:
    """In-process moto with the stack's state table, once for the module (a client costs
    about a second to build on a busy machine; each test empties the table instead, with
    `tests.state_support.emptied`)."""
    with pytest.MonkeyPatch.context() as env:
        _moto_environment(env)
        with mock_aws():
            table = create_resources(None).state_table
            yield boto3.client("dynamodb", region_name=LOCAL_REGION), table


def _moto_environment(env: pytest.MonkeyPatch) -> None:
    """Credentials and region for moto, and no endpoint or profile of the developer's."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.delenv(name, raising=False)
    env.setenv("AWS_ACCESS_KEY_ID", "testing")
    env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env.setenv("AWS_DEFAULT_REGION", LOCAL_REGION)


@pytest.fixture
def sync_env(
    aws: LocalResources, crm: CrmServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalResources]:
    """The environment the stack gives the handlers, pointing at moto and the CRM server."""
    env = aws.environment()
    env.pop("AWS_ENDPOINT_URL")
    env[Env.CRM_BASE_URL] = crm.base_url
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(Env.CRM_API_TOKEN, raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)
    lambda_app.service.cache_clear()  # settings are read once per cold start
    yield aws
    lambda_app.service.cache_clear()
