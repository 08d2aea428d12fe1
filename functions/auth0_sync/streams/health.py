"""Stream health: is Auth0 still delivering, and how close is it to disabling the stream?

Auth0 disables a stream by itself after 500 consecutive or 5,000 total failed deliveries.
The deliveries API lists failed deliveries only, so a run of consecutive failures cannot be
seen directly: every listed failure is counted as possibly consecutive, which makes the
check err on the side of warning early.

Warning thresholds: half of each limit (250 failures, 2,500 failures; `STREAM_HEALTH_WARN_RATIO`).
Half leaves as many failures again before Auth0 acts, which at a 5-minute check interval is
time for someone to fix the destination and redeliver. The stack's alarm uses the same figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from auth0_sync.names import (
    AUTH0_STREAM_MAX_CONSECUTIVE_FAILURES,
    AUTH0_STREAM_MAX_TOTAL_FAILURES,
    STREAM_HEALTH_WARN_RATIO,
)

if TYPE_CHECKING:
    from auth0_sync.streams.client import ManagementClient

STATUS_ENABLED = "enabled"
DELIVERY_FAILED = "failed"


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    WARNING = "warning"
    DISABLED = "disabled"


@dataclass(frozen=True)
class HealthThresholds:
    """Auth0's auto-disable limits and the share of them at which we warn."""

    consecutive_limit: int = AUTH0_STREAM_MAX_CONSECUTIVE_FAILURES
    total_limit: int = AUTH0_STREAM_MAX_TOTAL_FAILURES
    warn_ratio: float = STREAM_HEALTH_WARN_RATIO

    @property
    def warn_consecutive(self) -> int:
        return math.ceil(self.consecutive_limit * self.warn_ratio)

    @property
    def warn_total(self) -> int:
        return math.ceil(self.total_limit * self.warn_ratio)


DEFAULT_THRESHOLDS = HealthThresholds()


@dataclass(frozen=True)
class StreamHealth:
    """The verdict on one stream, with the numbers behind it."""

    stream_id: str
    name: str
    stream_status: str
    status: HealthStatus
    failed_deliveries: int
    consecutive_limit: int
    total_limit: int
    warn_consecutive: int
    warn_total: int
    last_failure_at: str | None
    reasons: tuple[str, ...]

    @property
    def enabled(self) -> bool:
        return self.stream_status == STATUS_ENABLED

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        data["reasons"] = list(self.reasons)
        return data


def evaluate_health(
    stream: Mapping[str, Any],
    deliveries: Sequence[Mapping[str, Any]],
    thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
) -> StreamHealth:
    """Disabled if the stream is not enabled; warning at `warn_ratio` of either failure limit."""
    failed_ids = {
        str(d.get("id")) for d in deliveries if d.get("status", DELIVERY_FAILED) == DELIVERY_FAILED
    }
    failed = len(failed_ids)
    stream_status = str(stream.get("status") or "unknown")
    reasons: list[str] = []
    if stream_status != STATUS_ENABLED:
        reasons.append(
            f"the stream is {stream_status}: Auth0 delivers nothing until it is enabled "
            "(if Auth0 disabled it, fix the destination, redeliver, then enable)"
        )
    if failed >= thresholds.warn_consecutive:
        reasons.append(
            f"{failed} failed deliveries: {_share(failed, thresholds.consecutive_limit)} of the "
            f"{thresholds.consecutive_limit} consecutive failures at which Auth0 disables "
            "the stream (failures are counted as possibly consecutive)"
        )
    if failed >= thresholds.warn_total:
        reasons.append(
            f"{failed} failed deliveries: {_share(failed, thresholds.total_limit)} of the "
            f"{thresholds.total_limit} total failures at which Auth0 disables the stream"
        )
    if stream_status != STATUS_ENABLED:
        status = HealthStatus.DISABLED
    elif reasons:
        status = HealthStatus.WARNING
    else:
        status = HealthStatus.HEALTHY
    return StreamHealth(
        stream_id=str(stream.get("id", "")),
        name=str(stream.get("name", "")),
        stream_status=stream_status,
        status=status,
        failed_deliveries=failed,
        consecutive_limit=thresholds.consecutive_limit,
        total_limit=thresholds.total_limit,
        warn_consecutive=thresholds.warn_consecutive,
        warn_total=thresholds.warn_total,
        last_failure_at=_last_failure(deliveries),
        reasons=tuple(reasons),
    )


def check_health(
    client: ManagementClient, stream_id: str, thresholds: HealthThresholds = DEFAULT_THRESHOLDS
) -> StreamHealth:
    """Read the stream and its failed deliveries (up to the total limit), then evaluate."""
    stream = client.get_stream(stream_id)
    deliveries = client.list_deliveries(stream_id, limit=thresholds.total_limit)
    return evaluate_health(stream, deliveries, thresholds)


def _share(count: int, limit: int) -> str:
    return f"{100 * count / limit:.0f}%"


def _last_failure(deliveries: Sequence[Mapping[str, Any]]) -> str | None:
    # RFC 3339 UTC timestamps from one server compare correctly as strings.
    times = [
        str(attempt["timestamp"])
        for d in deliveries
        for attempt in (d.get("attempts") or [])
        if isinstance(attempt, Mapping) and attempt.get("timestamp")
    ]
    return max(times) if times else None
