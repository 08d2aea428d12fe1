"""Auth0 events as they arrive on the bus, written out by hand for tests (no project code)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SOURCE = "aws.partner/auth0.com/acme-5c8d1e0b/auth0.events"
_ids = itertools.count(1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bus_event(
    event_type: str,
    obj: dict[str, Any],
    *,
    when: datetime,
    event_id: str | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_object"] = previous
    return {
        "version": "0",
        "id": f"eb-{next(_ids)}",
        "detail-type": event_type,
        "source": SOURCE,
        "account": "123456789012",
        "time": stamp(when),
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "specversion": "1.0",
            "type": event_type,
            "source": "urn:auth0:acme.eu.auth0.com",
            "id": event_id or f"evt_{next(_ids):022d}",
            "time": stamp(when),
            "a0tenant": "acme",
            "a0stream": "est_9hQw2ZpL6rTy4KmN8bVx3s",
            "data": data,
        },
    }


def user_event(
    event_type: str,
    user_id: str,
    when: datetime,
    *,
    previous: dict[str, Any] | None = None,
    event_id: str | None = None,
    identities: list[dict[str, Any]] | None = None,
    **profile: Any,
) -> dict[str, Any]:
    """user.created / user.updated with the full profile given (None values kept as null)."""
    provider, _, rest = user_id.partition("|")
    obj: dict[str, Any] = {
        "user_id": user_id,
        "created_at": stamp(T0),
        "updated_at": stamp(when),
        "identities": identities or [{"provider": provider, "user_id": rest}],
        **profile,
    }
    return bus_event(event_type, obj, when=when, event_id=event_id, previous=previous)


def created(user_id: str, when: datetime, **profile: Any) -> dict[str, Any]:
    return user_event("user.created", user_id, when, **profile)


def updated(user_id: str, when: datetime, **profile: Any) -> dict[str, Any]:
    return user_event("user.updated", user_id, when, **profile)


def deleted(user_id: str, when: datetime, **profile: Any) -> dict[str, Any]:
    """user.deleted; with no profile, the minimal shape older tenants send."""
    obj = {"user_id": user_id, "deleted_at": stamp(when), **profile}
    return bus_event("user.deleted", obj, when=when)
