"""Stream health: is Auth0 delivering, does it reach the bus, and how close is it to disabling?

Three ways events stop reaching the CRM without an error anywhere:
- the stream is disabled (by someone, or by Auth0 past its failure limits);
- the partner event source is not ACTIVE (no bus associated, bus deleted, source expired):
  EventBridge accepts Auth0's events and delivers none; only `DescribeEventSource` says so;
- deliveries fail: each failed event is missing from the bus until it is redelivered, so
  any number above zero is a warning.

Auth0 disables a stream by itself after 500 consecutive or 5,000 total failed deliveries.
The deliveries API lists failed deliveries only, so a run of consecutive failures cannot be
seen directly: every listed failure is counted as possibly consecutive. The check also says
when failures pass half of either limit (`STREAM_HEALTH_WARN_RATIO`), the point at which the
stream is at risk, not only its events.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from auth0_sync.names import (
    AUTH0_STREAM_MAX_CONSECUTIVE_FAILURES,
    AUTH0_STREAM_MAX_TOTAL_FAILURES,
    STREAM_HEALTH_WARN_RATIO,
)
from auth0_sync.streams.client import PARTNER_SOURCE_KEY
from auth0_sync.streams.source import NOT_FOUND, UNKNOWN, EventSourceState

if TYPE_CHECKING:
    from auth0_sync.streams.client import ManagementClient

STATUS_ENABLED = "enabled"
DELIVERY_FAILED = "failed"


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    WARNING = "warning"
    DISABLED = "disabled"
    # The stream is enabled but its events do not reach the bus (the source is not ACTIVE,
    # or it is not the source the stack listens on).
    NOT_DELIVERING = "not_delivering"


# Reads the partner event source for a stream (None: not checked, e.g. a webhook stream).
SourceReader = Callable[[Mapping[str, Any]], EventSourceState | None]


def partner_source_of(stream: Mapping[str, Any]) -> str | None:
    """The partner event source an EventBridge stream publishes to, if Auth0 says."""
    config = (stream.get("destination") or {}).get("configuration") or {}
    source = config.get(PARTNER_SOURCE_KEY)
    return str(source) if source else None


def region_of(stream: Mapping[str, Any]) -> str | None:
    """The AWS region of an EventBridge stream's destination."""
    config = (stream.get("destination") or {}).get("configuration") or {}
    region = config.get("aws_region")
    return str(region) if region else None


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
    # The partner event source as EventBridge reports it (None: not read).
    event_source: EventSourceState | None = None
    # False when the stream publishes to another source than the one read.
    source_matches_stream: bool = True

    @property
    def enabled(self) -> bool:
        return self.stream_status == STATUS_ENABLED

    @property
    def source_delivers(self) -> bool | None:
        """Whether the source passes the stream's events to the bus; None if not known."""
        if self.event_source is None or self.event_source.state == UNKNOWN:
            return None
        return self.event_source.active and self.source_matches_stream

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        data["reasons"] = list(self.reasons)
        data["event_source"] = None if self.event_source is None else self.event_source.to_dict()
        return data


def evaluate_health(
    stream: Mapping[str, Any],
    deliveries: Sequence[Mapping[str, Any]],
    thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
    source: EventSourceState | None = None,
) -> StreamHealth:
    """Disabled, not delivering (source not ACTIVE), warning (any failed delivery), healthy."""
    failed_ids = {
        str(d.get("id")) for d in deliveries if d.get("status", DELIVERY_FAILED) == DELIVERY_FAILED
    }
    failed = len(failed_ids)
    stream_id = str(stream.get("id", ""))
    stream_status = str(stream.get("status") or "unknown")
    reasons: list[str] = []
    if stream_status != STATUS_ENABLED:
        reasons.append(
            f"the stream is {stream_status}: Auth0 delivers nothing until it is enabled "
            "(if Auth0 disabled it, fix the destination, redeliver, then enable)"
        )
    matches = True
    if source is not None:
        published_to = partner_source_of(stream)
        matches = published_to is None or published_to == source.name
        reasons.extend(_source_reasons(source, published_to, matches))
    if failed:
        reasons.append(
            f"{failed} failed deliveries: these events are not on the bus until redelivered "
            f"(`auth0-sync streams redeliver {stream_id} --all` once the cause is fixed)"
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
    health = StreamHealth(
        stream_id=stream_id,
        name=str(stream.get("name", "")),
        stream_status=stream_status,
        status=HealthStatus.HEALTHY,
        failed_deliveries=failed,
        consecutive_limit=thresholds.consecutive_limit,
        total_limit=thresholds.total_limit,
        warn_consecutive=thresholds.warn_consecutive,
        warn_total=thresholds.warn_total,
        last_failure_at=_last_failure(deliveries),
        reasons=tuple(reasons),
        event_source=source,
        source_matches_stream=matches,
    )
    if stream_status != STATUS_ENABLED:
        status = HealthStatus.DISABLED
    elif health.source_delivers is False:
        status = HealthStatus.NOT_DELIVERING
    elif reasons:
        status = HealthStatus.WARNING
    else:
        status = HealthStatus.HEALTHY
    return replace(health, status=status)


def _source_reasons(source: EventSourceState, published_to: str | None, matches: bool) -> list[str]:
    if not matches:
        return [
            f"the stream publishes to {published_to}, not to {source.name}: its events never "
            "reach this bus (deploy with that auth0EventSourceName, or watch the right stream)"
        ]
    if source.state == UNKNOWN:
        return [f"could not read the partner event source's state: {source.error}"]
    if source.state == NOT_FOUND:
        return [
            f"the partner event source {source.name} does not exist in this account and "
            "region (expired or deleted): EventBridge drops every event; recreate the stream"
        ]
    if not source.active:
        expiry = f", and expires at {source.expires_at}" if source.expires_at else ""
        return [
            f"the partner event source {source.name} is {source.state}{expiry}: EventBridge "
            "accepts Auth0's events and delivers none (associate it with an event bus: deploy "
            "with createEventBus=true, or the console's 'Associate with event bus')"
        ]
    return []


def check_health(
    client: ManagementClient,
    stream_id: str,
    thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
    *,
    read_source: SourceReader | None = None,
) -> StreamHealth:
    """Read the stream, its failed deliveries (up to the total limit) and, with `read_source`,
    the partner event source; then evaluate."""
    stream = client.get_stream(stream_id)
    deliveries = client.list_deliveries(stream_id, limit=thresholds.total_limit)
    source = read_source(stream) if read_source is not None else None
    return evaluate_health(stream, deliveries, thresholds, source)


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
