"""The stream health rules: disabled, warning near Auth0's auto-disable limits, healthy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from auth0_sync.streams.health import (
    DEFAULT_THRESHOLDS,
    HealthStatus,
    HealthThresholds,
    evaluate_health,
)
from auth0_sync.streams.source import (
    ACTIVE,
    DELETED,
    NOT_FOUND,
    PENDING,
    UNKNOWN,
    EventSourceState,
    EventSourceUnreadable,
    describe_event_source,
)

pytestmark = pytest.mark.unit

STREAM_ID = "est_7W8uNfgHNxDzCgXVrt7JfH"


SOURCE = "aws.partner/auth0.com/acme-5c8d1e0b/auth0.events"


def stream(status: str = "enabled", source: str | None = SOURCE) -> dict[str, Any]:
    """A stream as GET /api/v2/event-streams/{id} returns it (EventBridge destination)."""
    configuration = {"aws_account_id": "123456789012", "aws_region": "eu-west-1"}
    if source is not None:
        configuration["aws_partner_event_source"] = source
    return {
        "id": STREAM_ID,
        "name": "crm-sync",
        "status": status,
        "destination": {"type": "eventbridge", "configuration": configuration},
    }


def failures(count: int, *, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"evt_{n:022d}",
            "event_stream_id": STREAM_ID,
            "status": "failed",
            "event_type": "user.updated",
            "attempts": [
                {"status": "failed", "timestamp": f"2026-03-04T10:{n % 60:02d}:00Z"}
                for _ in range(4)
            ],
        }
        for n in range(start, start + count)
    ]


def test_default_thresholds_warn_at_half_of_each_auth0_limit() -> None:
    assert DEFAULT_THRESHOLDS.consecutive_limit == 500
    assert DEFAULT_THRESHOLDS.total_limit == 5000
    assert DEFAULT_THRESHOLDS.warn_consecutive == 250
    assert DEFAULT_THRESHOLDS.warn_total == 2500


def test_enabled_stream_without_failures_is_healthy() -> None:
    health = evaluate_health(stream(), [])
    assert health.status is HealthStatus.HEALTHY
    assert health.enabled
    assert (health.failed_deliveries, health.reasons, health.last_failure_at) == (0, (), None)


REDELIVER = (
    "{n} failed deliveries: these events are not on the bus until redelivered "
    f"(`auth0-sync streams redeliver {STREAM_ID} --all` once the cause is fixed)"
)


@pytest.mark.parametrize(("count", "reasons"), [(1, 1), (249, 1), (250, 2), (499, 2)])
def test_any_failed_delivery_warns_and_half_a_limit_says_so_too(count: int, reasons: int) -> None:
    # A failed delivery is an event missing from the bus until someone redelivers it.
    health = evaluate_health(stream(), failures(count))
    assert health.status is HealthStatus.WARNING
    assert health.failed_deliveries == count
    assert health.reasons[0] == REDELIVER.format(n=count)
    assert len(health.reasons) == reasons


def test_warning_names_the_limit_and_the_share_reached() -> None:
    health = evaluate_health(stream(), failures(260))
    assert health.reasons[1:] == (
        "260 failed deliveries: 52% of the 500 consecutive failures at which Auth0 disables "
        "the stream (failures are counted as possibly consecutive)",
    )
    assert health.last_failure_at == "2026-03-04T10:59:00Z"


def test_past_half_of_the_total_limit_both_limits_are_reported() -> None:
    health = evaluate_health(stream(), failures(2600))
    assert health.status is HealthStatus.WARNING
    assert len(health.reasons) == 3
    assert health.reasons[2] == (
        "2600 failed deliveries: 52% of the 5000 total failures at which Auth0 disables the stream"
    )


@pytest.mark.parametrize("status", ["disabled", "paused", None])
def test_a_stream_that_is_not_enabled_is_disabled_whatever_the_failures(
    status: str | None,
) -> None:
    health = evaluate_health({**stream(), "status": status}, failures(3))
    assert health.status is HealthStatus.DISABLED
    assert not health.enabled
    assert health.failed_deliveries == 3
    assert health.reasons[0].startswith(f"the stream is {status or 'unknown'}: Auth0 delivers")


def test_a_delivery_listed_twice_counts_once_and_only_failures_count() -> None:
    listed = failures(3) + failures(1)  # the first one again, as an inclusive `from` would
    listed.append({**failures(1, start=9)[0], "status": "succeeded"})
    assert evaluate_health(stream(), listed).failed_deliveries == 3


def test_custom_thresholds_and_dict_form() -> None:
    thresholds = HealthThresholds(consecutive_limit=10, total_limit=100, warn_ratio=0.8)
    health = evaluate_health(stream(), failures(8), thresholds)
    assert health.status is HealthStatus.WARNING
    assert len(health.reasons) == 2
    assert health.to_dict() == {
        "stream_id": STREAM_ID,
        "name": "crm-sync",
        "stream_status": "enabled",
        "status": "warning",
        "failed_deliveries": 8,
        "consecutive_limit": 10,
        "total_limit": 100,
        "warn_consecutive": 8,
        "warn_total": 80,
        "last_failure_at": "2026-03-04T10:07:00Z",
        "reasons": list(health.reasons),
        "event_source": None,
        "source_matches_stream": True,
    }


# -- the partner event source ----------------------------------------------------------


def test_an_active_source_of_the_stream_is_healthy() -> None:
    health = evaluate_health(stream(), [], source=EventSourceState(SOURCE, ACTIVE))
    assert health.status is HealthStatus.HEALTHY
    assert health.source_delivers is True
    assert health.reasons == ()


@pytest.mark.parametrize(
    ("state", "expires_at", "reason"),
    [
        (
            PENDING,
            "2026-03-18T10:00:00Z",
            f"the partner event source {SOURCE} is PENDING, and expires at "
            "2026-03-18T10:00:00Z: EventBridge accepts Auth0's events and delivers none "
            "(associate it with an event bus: deploy with createEventBus=true, or the "
            "console's 'Associate with event bus')",
        ),
        (
            DELETED,
            None,
            f"the partner event source {SOURCE} is DELETED: EventBridge accepts Auth0's events "
            "and delivers none (associate it with an event bus: deploy with "
            "createEventBus=true, or the console's 'Associate with event bus')",
        ),
        (
            NOT_FOUND,
            None,
            f"the partner event source {SOURCE} does not exist in this account and region "
            "(expired or deleted): EventBridge drops every event; recreate the stream",
        ),
    ],
)
def test_a_source_that_is_not_active_delivers_nothing(
    state: str, expires_at: str | None, reason: str
) -> None:
    # Auth0 sees an enabled stream and no failed deliveries: only the source tells.
    health = evaluate_health(stream(), [], source=EventSourceState(SOURCE, state, expires_at))
    assert health.status is HealthStatus.NOT_DELIVERING
    assert health.source_delivers is False
    assert health.reasons == (reason,)


def test_a_stream_publishing_to_another_source_delivers_nothing_here() -> None:
    other = "aws.partner/auth0.com/acme-0000/auth0.events"
    health = evaluate_health(stream(source=other), [], source=EventSourceState(SOURCE, ACTIVE))
    assert health.status is HealthStatus.NOT_DELIVERING
    assert health.source_delivers is False
    assert health.reasons == (
        f"the stream publishes to {other}, not to {SOURCE}: its events never reach this bus "
        "(deploy with that auth0EventSourceName, or watch the right stream)",
    )


def test_a_source_that_could_not_be_read_is_a_warning_not_a_verdict() -> None:
    source = EventSourceState(SOURCE, UNKNOWN, error="AccessDeniedException: not allowed")
    health = evaluate_health(stream(), [], source=source)
    assert health.status is HealthStatus.WARNING
    assert health.source_delivers is None
    assert health.reasons == (
        "could not read the partner event source's state: AccessDeniedException: not allowed",
    )


def test_a_disabled_stream_stays_disabled_whatever_its_source() -> None:
    health = evaluate_health(stream("disabled"), [], source=EventSourceState(SOURCE, PENDING))
    assert health.status is HealthStatus.DISABLED
    assert len(health.reasons) == 2


# DescribeEventSource as its API reference documents it (answer and errors), through
# botocore's own Stubber: no network, the service model validates both sides.


def _stubbed() -> tuple[Any, Stubber]:
    client = boto3.client(
        "events",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


def test_describe_reads_the_state_and_the_expiry() -> None:
    client, stubber = _stubbed()
    stubber.add_response(
        "describe_event_source",
        {
            "Arn": f"arn:aws:events:eu-west-1::event-source/{SOURCE}",
            "CreatedBy": "auth0.com",
            "CreationTime": datetime(2026, 3, 4, 10, 0, tzinfo=UTC),
            "ExpirationTime": datetime(2026, 3, 18, 10, 0, tzinfo=UTC),
            "Name": SOURCE,
            "State": "PENDING",
        },
        {"Name": SOURCE},
    )
    with stubber:
        state = describe_event_source(SOURCE, client)
    assert state == EventSourceState(SOURCE, PENDING, expires_at="2026-03-18T10:00:00Z")


def test_describe_turns_not_found_into_a_state_and_other_errors_into_ours() -> None:
    client, stubber = _stubbed()
    stubber.add_client_error(
        "describe_event_source", "ResourceNotFoundException", "Event source not found", 400
    )
    stubber.add_client_error(
        "describe_event_source", "AccessDeniedException", "not authorized to perform", 400
    )
    with stubber:
        assert describe_event_source(SOURCE, client).state == NOT_FOUND
        with pytest.raises(EventSourceUnreadable) as failure:
            describe_event_source(SOURCE, client)
    assert str(failure.value) == (
        f"events:DescribeEventSource {SOURCE}: AccessDeniedException: not authorized to perform"
    )
