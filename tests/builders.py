"""Auth0 events as they arrive on the bus, written out by hand for tests (no project code)."""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
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


def identities(*user_ids: str) -> list[dict[str, Any]]:
    """A user's `identities[]`, one entry per account (the primary's first, then the
    accounts linked into it): `provider` and `user_id` split at the first `|` (Auth0's
    user.updated object, identities items: the Node SDK's
    `EventStreamCloudEventUserUpdatedObjectIdentitiesItemDatabase`; `connection` and
    `isSocial` are left out, the sync reads neither)."""
    return [{"provider": p, "user_id": rest} for p, _, rest in (u.partition("|") for u in user_ids)]


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


def sqs_batch(
    events: list[Any], *, receive_count: int = 1, queue: str = "auth0-sync-UserCreated"
) -> dict[str, Any]:
    """The event Lambda hands a function that reads an SQS queue (standard queue), one
    record per EventBridge event, its JSON the body: shaped from AWS's "Using Lambda with
    Amazon SQS" (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html, example
    standard queue message event); EventBridge's SQS target sends the event as the body
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html)."""
    records = []
    for event in events:
        body = event if isinstance(event, str) else json.dumps(event)
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"AQEB{uuid.uuid4().hex}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1545082649183",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1545082649185",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 (SQS's own)
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:eu-west-1:123456789012:{queue}",
                "awsRegion": "eu-west-1",
            }
        )
    return {"Records": records}
