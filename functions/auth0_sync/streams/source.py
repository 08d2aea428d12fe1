"""The partner event source Auth0 publishes to, as EventBridge reports it in this account.

While the source is not ACTIVE (no bus associated, the bus deleted, the source expired),
Auth0's `PutPartnerEvents` calls are accepted and nothing is delivered: the stream looks
healthy from Auth0's side. `events:DescribeEventSource` is the one place that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

# EventBridge's states (EventSource.State in its API reference) ...
ACTIVE = "ACTIVE"
PENDING = "PENDING"
DELETED = "DELETED"
# ... and ours: DescribeEventSource answered ResourceNotFoundException, or could not be read.
NOT_FOUND = "NOT_FOUND"
UNKNOWN = "UNKNOWN"


class EventSourceUnreadable(Exception):
    """DescribeEventSource failed (credentials, permission, throttling); names the source."""


@dataclass(frozen=True)
class EventSourceState:
    """What EventBridge says about one partner event source."""

    name: str
    state: str
    expires_at: str | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "expires_at": self.expires_at,
            "error": self.error,
        }


def describe_event_source(
    name: str, client: EventBridgeClient | None = None, *, region: str | None = None
) -> EventSourceState:
    """The source's state; a missing source is NOT_FOUND, any other failure raises."""
    # Without a client: a session of its own, so the credentials are today's environment's.
    events = client or boto3.session.Session().client("events", region_name=region)
    try:
        answer = events.describe_event_source(Name=name)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "error"))
        if code == "ResourceNotFoundException":
            return EventSourceState(name=name, state=NOT_FOUND)
        raise EventSourceUnreadable(
            f"events:DescribeEventSource {name}: {code}: {error.get('Message', '')}".rstrip(": ")
        ) from exc
    except BotoCoreError as exc:
        raise EventSourceUnreadable(f"events:DescribeEventSource {name}: {exc}") from exc
    expires = answer.get("ExpirationTime")
    return EventSourceState(
        name=name,
        state=str(answer.get("State", UNKNOWN)),
        expires_at=_iso(expires) if isinstance(expires, datetime) else None,
    )


def unreadable(name: str, exc: EventSourceUnreadable) -> EventSourceState:
    """The state to report when the source could not be read."""
    return EventSourceState(name=name, state=UNKNOWN, error=str(exc))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
