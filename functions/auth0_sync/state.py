"""Per-user sync state: what was last applied to the CRM for each Auth0 user.

Every change for one user runs under a short lease taken with a conditional write, and the
result is written back on the condition that we still hold it. Two invocations for the same
user therefore never interleave, so an older change can never overwrite a newer one; a lease
left by a crashed invocation expires with that invocation's time budget.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from auth0_sync.errors import TransientError
from auth0_sync.names import STATE_TABLE_PK

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


@dataclass
class SyncState:
    """One user's record. Times are ISO-8601 UTC strings."""

    user_id: str
    contact_id: str | None = None
    matched_by: str | None = None  # state | app_metadata | auth0_user_id | email | created
    last_change_time: str | None = None
    last_event_id: str | None = None
    fingerprint: str | None = None
    deleted_at: str | None = None

    @property
    def last_change(self) -> datetime | None:
        return datetime.fromisoformat(self.last_change_time) if self.last_change_time else None


_FIELDS = (
    "contact_id",
    "matched_by",
    "last_change_time",
    "last_event_id",
    "fingerprint",
    "deleted_at",
)


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601, so stored strings also sort in time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _from_item(user_id: str, item: dict[str, Any]) -> SyncState:
    return SyncState(user_id=user_id, **{name: item.get(name) for name in _FIELDS})


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _values(values: dict[str, Any]) -> dict[str, AttributeValueTypeDef]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


class DynamoSyncStateStore:
    """Sync state in DynamoDB (one item per user, key `user_id`).

    It speaks through a low-level client, which the idempotency layer can share: a boto3
    resource alone costs ~150 ms of cold start to build, a second client ~70 ms.
    """

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table_name = table_name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:  # created lazily: after moto starts, in tests
            self._client = boto3.client("dynamodb")
        return self._client

    def _key(self, user_id: str) -> dict[str, AttributeValueTypeDef]:
        return {STATE_TABLE_PK: {"S": user_id}}

    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState:
        """Take the user's lease and return its state; `TransientError` if someone holds it."""
        now = time.time()
        try:
            response = self.client.update_item(
                TableName=self._table_name,
                Key=self._key(user_id),
                UpdateExpression="SET lease_owner = :owner, lease_until = :until",
                ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now",
                ExpressionAttributeValues=_values(
                    {
                        ":owner": owner,
                        ":until": Decimal(str(round(now + lease_seconds, 3))),
                        ":now": Decimal(str(round(now, 3))),
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TransientError(
                    f"user {user_id} is being synced by another invocation", "lease_held"
                ) from exc
            raise TransientError(f"state table: {exc}", "state_unavailable") from exc
        return _from_item(user_id, _plain(response.get("Attributes", {})))

    def commit(self, state: SyncState, owner: str) -> None:
        """Write the new state and drop the lease, only if we still hold it."""
        values: dict[str, Any] = {f":{name}": getattr(state, name) for name in _FIELDS}
        values[":owner"] = owner
        assignments = ", ".join(f"{name} = :{name}" for name in _FIELDS)
        try:
            self.client.update_item(
                TableName=self._table_name,
                Key=self._key(state.user_id),
                UpdateExpression=f"SET {assignments} REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues=_values(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TransientError(
                    f"lease on user {state.user_id} expired before the state was written",
                    "lease_lost",
                ) from exc
            raise TransientError(f"state table: {exc}", "state_unavailable") from exc

    def release(self, user_id: str, owner: str) -> None:
        """Drop the lease without changing the state (after a failure)."""
        # A failed condition means the lease expired or was taken over: nothing of ours.
        with contextlib.suppress(ClientError):
            self.client.update_item(
                TableName=self._table_name,
                Key=self._key(user_id),
                UpdateExpression="REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues=_values({":owner": owner}),
            )

    def get(self, user_id: str) -> SyncState | None:
        """Read one user's state (for operators and tests)."""
        item = self.client.get_item(
            TableName=self._table_name, Key=self._key(user_id), ConsistentRead=True
        ).get("Item")
        return _from_item(user_id, _plain(item)) if item else None


@dataclass
class _Held:
    state: SyncState
    owner: str | None = None
    until: float = 0.0


@dataclass
class MemorySyncStateStore:
    """The same contract in process memory, for `auth0-sync process` without AWS."""

    _items: dict[str, _Held] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState:
        with self._lock:
            held = self._items.setdefault(user_id, _Held(SyncState(user_id)))
            if held.owner is not None and held.until >= time.time():
                raise TransientError(
                    f"user {user_id} is being synced by another invocation", "lease_held"
                )
            held.owner, held.until = owner, time.time() + lease_seconds
            return SyncState(**vars(held.state))

    def commit(self, state: SyncState, owner: str) -> None:
        with self._lock:
            held = self._items[state.user_id]
            if held.owner != owner:
                raise TransientError(
                    f"lease on user {state.user_id} expired before the state was written",
                    "lease_lost",
                )
            self._items[state.user_id] = _Held(SyncState(**vars(state)))

    def release(self, user_id: str, owner: str) -> None:
        with self._lock:
            held = self._items.get(user_id)
            if held is not None and held.owner == owner:
                held.owner = None

    def get(self, user_id: str) -> SyncState | None:
        with self._lock:
            held = self._items.get(user_id)
            return SyncState(**vars(held.state)) if held else None
