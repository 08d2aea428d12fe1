"""The live path's deactivation brake: at most so many deactivations per window.

Auth0 sends a `user.deleted` per user; a script that deletes users in bulk (or a wrong
tenant cleanup) sends thousands within minutes, and each would deactivate a contact. The
core asks `admit()` just before it deactivates (never for creates, updates, or a delete that
settles as a duplicate, stale or without a contact), so the counter costs one conditional
DynamoDB update per deactivation and nothing on every other event.

The window is fixed (the counter item of the window the clock is in, keyed
`#deactivations#<window start>` in the state table, expiring two windows later): past
`DEACTIVATION_WINDOW_LIMIT` in one window, the delete raises `DeactivationHeld` and goes to
the DLQ with the reason `deactivation_limit`. It is not transient: the redrive leaves it,
and the `DeadLetteredDeactivationLimit` alarm fires; a person checks the deletes are real and
releases them with `auth0-sync replay --allow-deactivations N` (which runs them past the
window's counter).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.errors import PermanentError, TransientError
from auth0_sync.names import (
    DEACTIVATION_WINDOW_KEY_PREFIX,
    REASON_DEACTIVATION_LIMIT,
    STATE_TABLE_PK,
    Env,
)

COUNT_ATTRIBUTE = "deactivations"
EXPIRES_ATTRIBUTE = "expires_at"


class DeactivationHeld(PermanentError):
    """The window's deactivations are spent: the delete waits in the DLQ for a person."""

    def __init__(self, limit: int, window_seconds: int) -> None:
        super().__init__(
            REASON_DEACTIVATION_LIMIT,
            f"more than {limit} deactivations within {window_seconds}s "
            f"({Env.DEACTIVATION_WINDOW_LIMIT}): held for a person; if the deletes are real, "
            "`auth0-sync replay --allow-deactivations N` releases them",
        )


class DeactivationWindow(Protocol):
    limit: int
    window_seconds: int

    def admit(self) -> bool:
        """Count one deactivation in the current window; False when the window is full."""
        ...


def hold_unless_admitted(window: DeactivationWindow | None) -> None:
    """The core's one call before a deactivation: raises `DeactivationHeld` past the limit."""
    if window is not None and not window.admit():
        raise DeactivationHeld(window.limit, window.window_seconds)


def _window_start(now: float, window_seconds: int) -> int:
    return int(now // window_seconds) * window_seconds


class DynamoDeactivationWindow:
    """The counter item of each window in the state table (one conditional update)."""

    def __init__(
        self,
        table: str,
        limit: int,
        window_seconds: int,
        client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.limit = limit
        self.window_seconds = window_seconds
        self.client = client or boto3.client("dynamodb")
        self.clock = clock

    def admit(self) -> bool:
        start = _window_start(self.clock(), self.window_seconds)
        try:
            self.client.update_item(
                TableName=self.table,
                Key={STATE_TABLE_PK: {"S": f"{DEACTIVATION_WINDOW_KEY_PREFIX}{start}"}},
                UpdateExpression="ADD #n :one SET #e = :expires",
                ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
                ExpressionAttributeNames={"#n": COUNT_ATTRIBUTE, "#e": EXPIRES_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(self.limit)},
                    ":expires": {"N": str(start + 2 * self.window_seconds)},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise TransientError(
                f"state table (deactivation window): {exc}", "state_unavailable"
            ) from exc
        except BotoCoreError as exc:
            raise TransientError(
                f"state table (deactivation window): {exc}", "state_unavailable"
            ) from exc
        return True


class MemoryDeactivationWindow:
    """The same counter in memory (local mode without AWS, unit tests)."""

    def __init__(
        self, limit: int, window_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        self.counts: Counter[int] = Counter()

    def admit(self) -> bool:
        start = _window_start(self.clock(), self.window_seconds)
        if self.counts[start] >= self.limit:
            return False
        self.counts[start] += 1
        return True
