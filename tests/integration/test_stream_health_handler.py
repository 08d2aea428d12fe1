"""The scheduled stream health Lambda: secret in moto, Auth0 on loopback, metrics as EMF."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.stub import Stubber
from moto import mock_aws

from auth0_sync.errors import ConfigError, ManagementApiError
from auth0_sync.handlers import stream_health
from auth0_sync.names import LOCAL_REGION, METRICS_NAMESPACE, SERVICE_NAME, Env
from auth0_sync.streams.client import TOKEN_CACHE
from auth0_sync.streams.source import EventSourceUnreadable
from auth0_sync_cli.runner import LocalContext
from tests.fakes.auth0_mgmt import CLIENT_ID, CLIENT_SECRET, FakeAuth0


class _Keep(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def health_logs() -> Iterator[list[logging.LogRecord]]:
    """Records of the service's logger, caught at the logger itself: pytest's caplog
    depends on propagation, which Powertools loggers created earlier in the run alter."""
    records: list[logging.LogRecord] = []
    keep = _Keep(records)
    service_logger = logging.getLogger(SERVICE_NAME)
    service_logger.addHandler(keep)
    yield records
    service_logger.removeHandler(keep)


pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"  # moto's account


@pytest.fixture
def fake() -> Iterator[FakeAuth0]:
    with FakeAuth0() as server:
        yield server


@pytest.fixture
def secret_arn(fake: FakeAuth0, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The M2M credentials secret in moto, and the environment the construct sets."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", LOCAL_REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv(Env.POWERTOOLS_SERVICE_NAME, SERVICE_NAME)
    monkeypatch.setenv(Env.POWERTOOLS_METRICS_NAMESPACE, METRICS_NAMESPACE)
    with mock_aws():
        secret = {"domain": fake.base_url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        arn = boto3.client("secretsmanager").create_secret(
            Name="auth0-sync/auth0-mgmt", SecretString=json.dumps(secret)
        )["ARN"]
        monkeypatch.setenv(Env.AUTH0_MGMT_SECRET_ARN, arn)
        # A cold start: settings, the secret and the token are all read afresh.
        stream_health.settings.cache_clear()
        parameters.clear_caches()  # type: ignore[no-untyped-call]
        TOKEN_CACHE.clear()
        yield arn
        stream_health.settings.cache_clear()
        TOKEN_CACHE.clear()


def watch(
    fake: FakeAuth0,
    monkeypatch: pytest.MonkeyPatch,
    status: str = "enabled",
    *,
    source_state: str | None = "ACTIVE",
) -> str:
    """A stream to watch, and its partner event source in moto as the stack configures it
    (ACTIVE: a bus is associated; DELETED: the partner deleted it; None: not created)."""
    stream = fake.add_stream("crm-sync", status=status)
    source = stream["destination"]["configuration"]["aws_partner_event_source"]
    monkeypatch.setenv(Env.AUTH0_STREAM_ID, stream["id"])
    monkeypatch.setenv(Env.AUTH0_EVENT_SOURCE_NAME, source)
    if source_state is not None:
        events = boto3.client("events")
        events.create_partner_event_source(Name=source, Account=ACCOUNT)
        if source_state == "DELETED":
            events.delete_partner_event_source(Name=source, Account=ACCOUNT)
        assert events.describe_event_source(Name=source)["State"] == source_state
    stream_id: str = stream["id"]
    return stream_id


def invoke() -> dict[str, Any]:
    context = cast(LambdaContext, LocalContext("stream-health"))  # the parts Powertools reads
    result: dict[str, Any] = stream_health.handler({}, context)
    return result


def emitted(stdout: str) -> list[dict[str, Any]]:
    """The EMF documents printed by Powertools Metrics (log lines are JSON too: skip them)."""
    documents = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [d for d in documents if "_aws" in d]


def metric_values(stdout: str) -> dict[str, tuple[float, dict[str, str]]]:
    """Metric name -> (the one value emitted, its dimensions)."""
    values = {}
    for doc in emitted(stdout):
        [directive] = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == METRICS_NAMESPACE
        [dimension_names] = directive["Dimensions"]
        for metric in directive["Metrics"]:
            name = metric["Name"]
            assert metric["Unit"] == "Count"
            [value] = doc[name]  # Powertools writes each value as a one-item list
            values[name] = (value, {d: doc[d] for d in dimension_names})
    return values


def test_healthy_stream_publishes_its_failures_and_enabled(
    fake: FakeAuth0,
    secret_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream_id = watch(fake, monkeypatch)
    fake.add_failed_deliveries(stream_id, 3)
    result = invoke()
    # Three events missing from the bus until redelivered: a warning.
    assert (result["status"], result["failed_deliveries"]) == ("warning", 3)
    dimensions = {"service": SERVICE_NAME, "stream": stream_id}
    assert metric_values(capsys.readouterr().out) == {
        "FailedDeliveries": (3, dimensions),
        "StreamEnabled": (1, dimensions),
        "EventSourceActive": (1, dimensions),
    }
    [token_request] = fake.token_requests()
    assert token_request.json["client_secret"] == CLIENT_SECRET
    assert token_request.json["audience"] == fake.audience


def test_near_the_threshold_the_check_warns_and_publishes_the_count(
    fake: FakeAuth0,
    secret_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    health_logs: list[logging.LogRecord],
) -> None:
    stream_id = watch(fake, monkeypatch)
    fake.add_failed_deliveries(stream_id, 260)
    assert invoke()["status"] == "warning"
    out = capsys.readouterr().out
    assert metric_values(out)["FailedDeliveries"][0] == 260
    [log] = [r for r in health_logs if r.getMessage() == "stream health"]
    assert (log.levelname, log.__dict__["health"], log.__dict__["failed_deliveries"]) == (
        "WARNING",
        "warning",
        260,
    )


def test_disabled_stream_publishes_stream_enabled_zero(
    fake: FakeAuth0,
    secret_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    watch(fake, monkeypatch, status="disabled")
    assert invoke()["status"] == "disabled"
    values = metric_values(capsys.readouterr().out)
    assert (values["StreamEnabled"][0], values["FailedDeliveries"][0]) == (0, 0)


def test_an_enabled_stream_whose_source_is_gone_publishes_event_source_active_zero(
    fake: FakeAuth0,
    secret_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Auth0 sees nothing wrong; EventBridge accepts its events and delivers none.
    watch(fake, monkeypatch, source_state="DELETED")
    result = invoke()
    assert result["status"] == "not_delivering"
    assert result["event_source"]["state"] == "DELETED"
    values = metric_values(capsys.readouterr().out)
    assert (values["StreamEnabled"][0], values["EventSourceActive"][0]) == (1, 0)


def test_a_stream_publishing_to_another_source_than_the_stacks_is_not_delivering(
    fake: FakeAuth0,
    secret_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    watch(fake, monkeypatch)
    other = "aws.partner/auth0.com/acme-other/auth0.events"
    boto3.client("events").create_partner_event_source(Name=other, Account=ACCOUNT)
    monkeypatch.setenv(Env.AUTH0_EVENT_SOURCE_NAME, other)
    stream_health.settings.cache_clear()
    assert invoke()["status"] == "not_delivering"
    assert metric_values(capsys.readouterr().out)["EventSourceActive"][0] == 0


def test_a_source_that_cannot_be_read_fails_the_run_after_publishing_the_rest(
    fake: FakeAuth0,
    secret_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    watch(fake, monkeypatch)
    # The role lacks events:DescribeEventSource: EventBridge's documented error, through
    # botocore's Stubber on a real client.
    client = boto3.client("events")
    stubber = Stubber(client)
    stubber.add_client_error(
        "describe_event_source", "AccessDeniedException", "not authorized to perform", 400
    )
    monkeypatch.setattr(stream_health, "events_client", lambda: client)
    with stubber, pytest.raises(EventSourceUnreadable) as failure:
        invoke()
    assert str(failure.value).endswith(": AccessDeniedException: not authorized to perform")
    # What Auth0 said is published; the source's state is not guessed.
    assert set(metric_values(capsys.readouterr().out)) == {"FailedDeliveries", "StreamEnabled"}


def test_missing_event_source_name_is_named_at_cold_start(
    secret_arn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(Env.AUTH0_STREAM_ID, "est_7W8uNfgHNxDzCgXVrt7JfH")
    monkeypatch.delenv(Env.AUTH0_EVENT_SOURCE_NAME, raising=False)
    with pytest.raises(ConfigError, match="AUTH0_EVENT_SOURCE_NAME: Field required"):
        invoke()


def test_warm_invocations_reuse_the_secret_and_the_token(
    fake: FakeAuth0,
    secret_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    watch(fake, monkeypatch)
    for _ in range(3):
        invoke()
    assert len(fake.token_requests()) == 1
    assert len(fake.api_requests()) == 6
    # Rotating the secret's value is seen once the cached copy ages out, not before.
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret_arn, SecretString=json.dumps({"domain": "x"})
    )
    invoke()
    assert len(emitted(capsys.readouterr().out)) == 4 * 3


def test_auth0_refusal_raises_and_publishes_nothing(
    fake: FakeAuth0,
    secret_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    health_logs: list[logging.LogRecord],
) -> None:
    stream_id = watch(fake, monkeypatch)
    fake.scopes = frozenset({"read:event_streams"})
    with pytest.raises(ManagementApiError) as failure:
        invoke()
    assert failure.value.status == 403
    assert failure.value.call == f"GET /api/v2/event-streams/{stream_id}/deliveries"
    out = capsys.readouterr().out
    # No datapoint: the run fails, which the HealthCheckFailing alarm counts.
    assert emitted(out) == []
    [log] = [r for r in health_logs if r.getMessage() == "stream health check failed"]
    assert (log.levelname, log.__dict__["status"]) == ("ERROR", 403)
    assert all(CLIENT_SECRET not in str(r.__dict__) for r in health_logs)


@pytest.mark.parametrize("status", [400, 403, 404, 500])
def test_what_auth0_says_in_an_error_never_puts_personal_data_in_the_logs(
    fake: FakeAuth0,
    secret_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    health_logs: list[logging.LogRecord],
    status: int,
) -> None:
    stream_id = watch(fake, monkeypatch)
    hostile = ("ada.lovelace@example.com", "+44 20 7946 0958", "eyJhbGciOiJSUzI1NiJ9.e30.sig")
    fake.fail_next(
        "GET",
        f"/api/v2/event-streams/{stream_id}",
        status,
        message=f"user {hostile[0]} (phone {hostile[1]}) token: {hostile[2]} is refused",
    )
    with pytest.raises(ManagementApiError) as failure:
        invoke()
    raised = str(failure.value)  # what Lambda writes to its log for the failed run
    assert "is refused" in raised  # Auth0's words are kept, what they quote is not
    printed = capsys.readouterr()
    logged = raised + printed.out + printed.err + "".join(str(r.__dict__) for r in health_logs)
    assert health_logs, "the check logged nothing: the test would prove nothing"
    for value in hostile:
        assert value not in logged


def test_a_secret_without_credentials_is_named(
    fake: FakeAuth0, secret_arn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch(fake, monkeypatch)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret_arn, SecretString=json.dumps({"domain": fake.base_url})
    )
    with pytest.raises(ConfigError, match="AUTH0_MGMT_SECRET_ARN: the secret lacks client_id, "):
        invoke()
    assert fake.requests == []


def test_missing_stream_id_is_named_at_cold_start(
    secret_arn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(Env.AUTH0_STREAM_ID, raising=False)
    with pytest.raises(ConfigError, match="AUTH0_STREAM_ID: Field required"):
        invoke()
