"""Helpers for integration tests: invoke the real handlers, read the DLQ and the state."""

from __future__ import annotations

import copy
import importlib
import json
from typing import Any

import boto3

from auth0_sync.events import identity_of
from auth0_sync.routing import route_for
from auth0_sync.state import DynamoSyncStateStore, SyncState
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.runner import LocalContext, function_name_for

# A contact in the generic contract's fields (contracts/crm-contacts-api.yaml), as the core
# writes one: what the vendor adapters' tests create and read back. Read, never changed.
ALICE: dict[str, Any] = {
    "email": "alice@example.com",
    "given_name": "Alice",
    "family_name": "Liddell",
    "phone": "+15550100",
    "auth0_user_id": "auth0|alice",
    "status": "active",
    "source_updated_at": "2026-01-01T00:00:00Z",
}


def invoke(raw: dict[str, Any], timeout_seconds: float = 30.0) -> dict[str, Any]:
    """Call the Lambda handler the event's rule targets, as Lambda would."""
    route = route_for(identity_of(raw)["event_type"] or "")
    module = importlib.import_module(route.module if route else "auth0_sync.handlers.user_updated")
    result: dict[str, Any] = module.handler(
        raw, LocalContext(function_name_for(raw), timeout_seconds)
    )
    return result


def dlq_messages(aws: LocalResources) -> list[dict[str, Any]]:
    """Every message in the DLQ (received with a short visibility timeout, not deleted)."""
    sqs = boto3.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=aws.dlq_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        ).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            attributes = {
                k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()
            }
            found.append({"body": json.loads(message["Body"]), "attributes": attributes})


def state_of(aws: LocalResources, user_id: str) -> SyncState | None:
    return DynamoSyncStateStore(aws.state_table).get(user_id)


def variant(
    raw: dict[str, Any], event_id: str, *, when: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A copy of an event with a new id, optionally a new change time and profile fields."""
    event = copy.deepcopy(raw)
    event["detail"]["id"] = event_id
    obj = event["detail"]["data"]["object"]
    if when is not None:
        obj["deleted_at" if "deleted_at" in obj else "updated_at"] = when
    for name, value in fields.items():
        if value is None:
            obj.pop(name, None)
        else:
            obj[name] = value
    return event
