"""An exported user as the bus event the handlers already know: a `user.updated` snapshot.

A snapshot is the user as it stood at its `updated_at`, so it is ordered like any event of
that time: it never overwrites a newer event already applied, and a later event wins over
it. Its event id is derived from the user id and `updated_at`, so running the same export
twice is a duplicate the state item turns away without a CRM call. It carries no
`a0purpose` (it is not a test event).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from auth0_sync.names import SERVICE_NAME, EventType

SNAPSHOT_PREFIX = "backfill_"
# A user exported without any time is older than every event: it never wins over one.
NO_TIME = "1970-01-01T00:00:00.000Z"


def snapshot_time(user: dict[str, Any]) -> str:
    """When the snapshot was true: `updated_at`, else `created_at`, else the epoch."""
    for name in ("updated_at", "created_at"):
        value = user.get(name)
        if isinstance(value, str) and value:
            return value
    return NO_TIME


def snapshot_id(user_id: str, moment: str, prefix: str = SNAPSHOT_PREFIX) -> str:
    """The same user at the same time gives the same id (a rerun is a duplicate)."""
    digest = hashlib.sha256(f"{user_id}|{moment}".encode()).hexdigest()[:32]
    return prefix + digest


def bus_envelope(detail: dict[str, Any], detail_type: str, moment: str) -> dict[str, Any]:
    """An EventBridge envelope around an Auth0 CloudEvent, as the bus hands it to Lambda."""
    return {
        "version": "0",
        "id": f"eb-{detail.get('id')}",
        "detail-type": detail_type,
        "source": f"{SERVICE_NAME}.cli",
        "account": "000000000000",
        "time": _second(moment),
        "region": "local",
        "resources": [],
        "detail": detail,
    }


def snapshot_event(user: dict[str, Any], *, id_prefix: str = SNAPSHOT_PREFIX) -> dict[str, Any]:
    """The synthetic `user.updated` for one exported user."""
    moment = snapshot_time(user)
    event_id = snapshot_id(str(user.get("user_id")), moment, id_prefix)
    detail = {
        "specversion": "1.0",
        "type": str(EventType.USER_UPDATED),
        "source": f"urn:{SERVICE_NAME}:backfill",
        "id": event_id,
        "time": moment,
        "data": {"object": user},
    }
    return bus_envelope(detail, str(EventType.USER_UPDATED), moment)


def deletion_event(user_id: str, deleted_at: str, *, id_prefix: str) -> dict[str, Any]:
    """A synthetic `user.deleted` (a user gone from Auth0 whose contact is still active)."""
    event_id = snapshot_id(user_id, deleted_at, id_prefix)
    detail = {
        "specversion": "1.0",
        "type": str(EventType.USER_DELETED),
        "source": f"urn:{SERVICE_NAME}:reconcile",
        "id": event_id,
        "time": deleted_at,
        "data": {"object": {"user_id": user_id, "deleted_at": deleted_at}},
    }
    return bus_envelope(detail, str(EventType.USER_DELETED), deleted_at)


def _second(moment: str) -> str:
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return moment  # the sync reports the bad time, naming the field
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
