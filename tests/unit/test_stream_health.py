"""The stream health rules: disabled, warning near Auth0's auto-disable limits, healthy."""

from __future__ import annotations

from typing import Any

import pytest

from auth0_sync.streams.health import (
    DEFAULT_THRESHOLDS,
    HealthStatus,
    HealthThresholds,
    evaluate_health,
)

pytestmark = pytest.mark.unit

STREAM_ID = "est_7W8uNfgHNxDzCgXVrt7JfH"


def stream(status: str = "enabled") -> dict[str, Any]:
    return {"id": STREAM_ID, "name": "crm-sync", "status": status}


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


@pytest.mark.parametrize(
    ("count", "expected"),
    [(249, HealthStatus.HEALTHY), (250, HealthStatus.WARNING), (499, HealthStatus.WARNING)],
)
def test_failures_warn_from_half_of_the_consecutive_limit(
    count: int, expected: HealthStatus
) -> None:
    health = evaluate_health(stream(), failures(count))
    assert health.status is expected
    assert health.failed_deliveries == count


def test_warning_names_the_limit_and_the_share_reached() -> None:
    health = evaluate_health(stream(), failures(260))
    assert health.reasons == (
        "260 failed deliveries: 52% of the 500 consecutive failures at which Auth0 disables "
        "the stream (failures are counted as possibly consecutive)",
    )
    assert health.last_failure_at == "2026-03-04T10:59:00Z"


def test_past_half_of_the_total_limit_both_limits_are_reported() -> None:
    health = evaluate_health(stream(), failures(2600))
    assert health.status is HealthStatus.WARNING
    assert len(health.reasons) == 2
    assert health.reasons[1] == (
        "2600 failed deliveries: 52% of the 5000 total failures at which Auth0 disables the stream"
    )


@pytest.mark.parametrize("status", ["disabled", "paused", None])
def test_a_stream_that_is_not_enabled_is_disabled_whatever_the_failures(
    status: str | None,
) -> None:
    health = evaluate_health({"id": STREAM_ID, "name": "crm-sync", "status": status}, failures(3))
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
    }
