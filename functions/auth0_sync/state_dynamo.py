"""The sync state in DynamoDB: the store the Lambdas use, the lease of one item of the
state table (shared with `auth0_sync.org_state`) and the table's errors as ours."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.errors import LeaseHeld, PermanentError, TransientError
from auth0_sync.names import STATE_TABLE_PK, STATE_TTL_ATTRIBUTE, TOMBSTONE_RETENTION_DAYS
from auth0_sync.state_model import (
    _FIELDS,
    Settled,
    SyncState,
    Unchanged,
    _from_item,
    order_key_text,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


CLAIM_KEY_PREFIX = "#contact#"
TOMBSTONE_RETENTION_SECONDS = TOMBSTONE_RETENTION_DAYS * 86400


def tombstone_expiry(now: float) -> int:
    """When DynamoDB may forget a tombstone written at `now` (its TTL, epoch seconds)."""
    return int(now) + TOMBSTONE_RETENTION_SECONDS


def _state_error(exc: ClientError | BotoCoreError, what: str) -> TransientError | PermanentError:
    """The table's answer as a domain error: a request it rejects is permanent."""
    if isinstance(exc, ClientError) and exc.response["Error"]["Code"] == "ValidationException":
        return PermanentError("state_rejected", f"state table rejected {what}: {exc}")
    return TransientError(f"state table ({what}): {exc}", "state_unavailable")


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _values(values: dict[str, Any]) -> dict[str, AttributeValueTypeDef]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _lease_until(exc: ClientError) -> float | None:
    """When the lease that failed our condition ends (the item returned with the failure)."""
    item = cast("dict[str, Any] | None", exc.response.get("Item")) or {}
    until = item.get("lease_until", {}).get("N")
    return float(until) if until is not None else None


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


class StateTable:
    """A store on the state table, through a low-level client made on first use."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table_name = table_name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:  # created lazily: after moto starts, in tests
            self._client = boto3.client("dynamodb")
        return self._client

    def _write_holding_lease(
        self,
        key: dict[str, AttributeValueTypeDef],
        update: str,
        values: dict[str, Any],
        *,
        holder: str,
        what: str,
    ) -> None:
        """Write one item only while our lease (`values[":owner"]`) holds it; a lease lost
        meanwhile is a `TransientError` naming `holder` (the retry starts over)."""
        try:
            self.client.update_item(
                TableName=self._table_name,
                Key=key,
                UpdateExpression=update,
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues=_values(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TransientError(
                    f"lease on {holder} expired before the state was written", "lease_lost"
                ) from exc
            raise _state_error(exc, what) from exc
        except BotoCoreError as exc:
            raise _state_error(exc, what) from exc

    def _drop_lease(self, key: dict[str, AttributeValueTypeDef], owner: str) -> None:
        """Drop our lease of one item without changing it (after a failure)."""
        # A failed condition means the lease expired or was taken over: nothing of ours. Any
        # other failure leaves a lease that expires with the invocation's budget.
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.update_item(
                TableName=self._table_name,
                Key=key,
                UpdateExpression="REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues=_values({":owner": owner}),
            )


class DynamoSyncStateStore(StateTable):
    """Sync state in DynamoDB (one item per user, key `user_id`).

    It speaks through a low-level client: a boto3 resource alone costs ~150 ms of cold
    start to build, a second client ~70 ms.
    """

    def _key(self, user_id: str) -> dict[str, AttributeValueTypeDef]:
        return {STATE_TABLE_PK: {"S": user_id}}

    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState:
        """Take the user's lease and return its state; `TransientError` if someone holds it."""
        item = take_lease(
            self.client,
            self._table_name,
            self._key(user_id),
            owner,
            lease_seconds,
            held=lambda until: LeaseHeld(user_id, until),
            what="taking the lease",
        )
        return _from_item(user_id, item)

    def acquire_if_newer(
        self, user_id: str, owner: str, lease_seconds: float, key: str
    ) -> SyncState | Settled:
        """Take the lease only for an event newer than the last one applied (`key`, its
        order key text): a duplicate or a stale event costs this one request, answered with
        the state (`Settled`). `TransientError` if someone holds the lease of a newer one."""
        now = time.time()
        try:
            response = self.client.update_item(
                TableName=self._table_name,
                Key=self._key(user_id),
                UpdateExpression="SET lease_owner = :owner, lease_until = :until",
                ConditionExpression=(
                    "(attribute_not_exists(lease_until) OR lease_until < :now) "
                    "AND (attribute_not_exists(last_key) OR last_key < :key)"
                ),
                ExpressionAttributeValues=_values(
                    {
                        ":owner": owner,
                        ":until": Decimal(str(round(now + lease_seconds, 3))),
                        ":now": Decimal(str(round(now, 3))),
                        ":key": key,
                    }
                ),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                item = _plain(cast("dict[str, Any] | None", exc.response.get("Item")) or {})
                last_key = item.get("last_key")
                if isinstance(last_key, str) and last_key >= key:
                    return Settled(_from_item(user_id, item))
                raise LeaseHeld(user_id, _lease_until(exc)) from exc
            raise _state_error(exc, "taking the lease") from exc
        except BotoCoreError as exc:
            raise _state_error(exc, "taking the lease") from exc
        return _from_item(user_id, _plain(response.get("Attributes", {})))

    def commit(self, state: SyncState, owner: str) -> None:
        """Write the new state and drop the lease, only if we still hold it."""
        # `linked_to`/`linked_at` are written only by `mark_linked`, which takes no lease.
        fields = [name for name in _FIELDS if name not in ("linked_to", "linked_at")]
        present = [name for name in fields if getattr(state, name) not in (None, {}, [])]
        absent = [name for name in fields if name not in present]
        values: dict[str, Any] = {f":{name}": getattr(state, name) for name in present}
        values[":owner"] = owner
        # The order key in one sortable string, for `record_unchanged`'s condition.
        key = state.order_key
        if key is not None:
            present.append("last_key")
            values[":last_key"] = order_key_text(key)
        else:
            absent.append("last_key")
        # A tombstone ages out (DynamoDB TTL); a live user's item never does.
        if state.deleted_at is not None:
            present.append(STATE_TTL_ATTRIBUTE)
            values[f":{STATE_TTL_ATTRIBUTE}"] = tombstone_expiry(time.time())
        else:
            absent.append(STATE_TTL_ATTRIBUTE)
        assignments = ", ".join(f"{name} = :{name}" for name in present)
        removals = ", ".join([*absent, "lease_owner", "lease_until"])
        update = (f"SET {assignments} " if present else "") + f"REMOVE {removals}"
        self._write_holding_lease(
            self._key(state.user_id),
            update,
            values,
            holder=f"user {state.user_id}",
            what="writing the state",
        )

    def record_unchanged(self, user_id: str, seen: Unchanged) -> SyncState | None:
        """Record a newer event whose values are what was last written, in one conditional
        write and without the lease; None when recorded, else the state as it stands (so
        the caller can tell a duplicate or a stale event without another request)."""
        now = time.time()
        # DynamoDB refuses a name given but not used: `#w`/`#s` only with field digests.
        names: dict[str, str] = {"#k": "last_key"}
        values: dict[str, Any] = {
            ":key": seen.key,
            ":t": seen.change_time,
            ":r": seen.rank,
            ":id": seen.event_id,
            ":now": Decimal(str(round(now, 3))),
        }
        conditions = [
            "(attribute_not_exists(lease_until) OR lease_until < :now)",
            "attribute_exists(contact_id)",
            "attribute_not_exists(deleted_at)",
            "#k < :key",
        ]
        updates = ["#k = :key", "last_change_time = :t", "last_rank = :r"]
        updates.append("last_event_id = :id")
        if seen.digests:
            names.update({"#w": "written", "#s": "stated"})
            conditions.append("attribute_exists(#s)")
        for n, (name, value) in enumerate(sorted(seen.digests.items())):
            names[f"#f{n}"], values[f":d{n}"] = name, value
            conditions.append(f"#w.#f{n} = :d{n}")
            updates.append(f"#s.#f{n} = :key")
        for n, linked in enumerate(seen.linked):
            values[f":l{n}"] = linked
            conditions.append(f"contains(linked, :l{n})")
        try:
            self.client.update_item(
                TableName=self._table_name,
                Key=self._key(user_id),
                UpdateExpression="SET " + ", ".join(updates),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_values(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                item = cast("dict[str, Any] | None", exc.response.get("Item"))
                return _from_item(user_id, _plain(item)) if item else SyncState(user_id)
            raise _state_error(exc, "recording an unchanged event") from exc
        except BotoCoreError as exc:
            raise _state_error(exc, "recording an unchanged event") from exc
        return None

    def release(self, user_id: str, owner: str) -> None:
        """Drop the lease without changing the state (after a failure)."""
        self._drop_lease(self._key(user_id), owner)

    def get(self, user_id: str) -> SyncState | None:
        """Read one user's state (ownership checks, operators and tests)."""
        try:
            item = self.client.get_item(
                TableName=self._table_name, Key=self._key(user_id), ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise _state_error(exc, "reading a user's state") from exc
        return _from_item(user_id, _plain(item)) if item else None

    def claim_contact(self, contact_id: str, user_id: str, expected_owner: str | None) -> bool:
        """Record `user_id` as the contact's owner, unless another user claimed it first.

        Succeeds when nobody claimed the contact, when `user_id` already did, or when the
        claim still names `expected_owner` (the owner the caller read from the CRM).
        """
        condition = "attribute_not_exists(claimed_by) OR claimed_by = :me"
        values: dict[str, Any] = {":me": user_id}
        if expected_owner:
            condition += " OR claimed_by = :expected"
            values[":expected"] = expected_owner
        try:
            self.client.update_item(
                TableName=self._table_name,
                Key=self._key(CLAIM_KEY_PREFIX + contact_id),
                UpdateExpression="SET claimed_by = :me",
                ConditionExpression=condition,
                ExpressionAttributeValues=_values(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise _state_error(exc, "claiming a contact") from exc
        except BotoCoreError as exc:
            raise _state_error(exc, "claiming a contact") from exc
        return True

    def mark_linked(self, secondary_id: str, primary_id: str, at: str | None = None) -> None:
        """Note on a secondary account that it was linked into `primary_id` (no lease), by
        the primary's event of order key `at`."""
        values: dict[str, Any] = {":primary": primary_id}
        update = "SET linked_to = :primary"
        if at:
            update, values[":at"] = update + ", linked_at = :at", at
        try:
            self.client.update_item(
                TableName=self._table_name,
                Key=self._key(secondary_id),
                UpdateExpression=update,
                ExpressionAttributeValues=_values(values),
            )
        except (ClientError, BotoCoreError) as exc:
            raise _state_error(exc, "marking a linked account") from exc


def take_lease(
    client: DynamoDBClient,
    table_name: str,
    key: dict[str, AttributeValueTypeDef],
    owner: str,
    lease_seconds: float,
    *,
    held: Callable[[float | None], Exception],
    what: str,
) -> dict[str, Any]:
    """Take the lease of one item of the state table (a user's, an organization's) and
    return the item; `held(until)` is raised when another owner's lease has not ended."""
    now = time.time()
    try:
        response = client.update_item(
            TableName=table_name,
            Key=key,
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
            ReturnValuesOnConditionCheckFailure="ALL_OLD",  # whose lease, until when
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise held(_lease_until(exc)) from exc
        raise _state_error(exc, what) from exc
    except BotoCoreError as exc:
        raise _state_error(exc, what) from exc
    return _plain(response.get("Attributes", {}))
