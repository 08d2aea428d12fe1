"""The live path's deactivation brake: at most so many deactivations in any window of time.

Auth0 sends a `user.deleted` per user; a script that deletes users in bulk (or a wrong
tenant cleanup) sends thousands within minutes, and each would deactivate a contact. The
core asks `admit()` just before it deactivates (never for creates, updates, or a delete that
settles as a duplicate, stale or without a contact), so the brake costs nothing on every
other event.

The window slides: a deactivation is admitted while fewer than `DEACTIVATION_WINDOW_LIMIT`
were admitted in the `DEACTIVATION_WINDOW_SECONDS` before it, whenever the window started (a
fixed hourly window let twice the limit through across an hour's boundary). The admitted
times are kept in one item of the state table (`#deactivations#sliding`: the times still in
the window, at most the limit of them, and their count); `admit` reads it and writes it back
on the condition that no other invocation wrote it meanwhile (a read and a conditional
write per deactivation, tried again on a race). Past the limit, the delete raises
`DeactivationHeld` and goes to the DLQ with the reason `deactivation_limit`. It is not
transient: the redrive leaves it, and the `DeadLetteredDeactivationLimit` alarm fires; a
person checks the deletes are real and releases them with
`auth0-sync replay --allow-deactivations N` (which runs them past the window), or waits for
the window to slide past the burst.
"""

from __future__ import annotations

import time
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


# The one item holding the admitted times, and how often a race for it is tried again.
WINDOW_KEY = f"{DEACTIVATION_WINDOW_KEY_PREFIX}sliding"
STAMPS_ATTRIBUTE = "admitted_ms"
VERSION_ATTRIBUTE = "version"
RACE_ATTEMPTS = 8


def in_window(stamps: list[int], now_ms: int, window_seconds: int) -> list[int]:
    """The admitted times (ms) that still count at `now_ms`: those less than a window old.
    One admitted exactly a window ago no longer counts."""
    return [s for s in stamps if now_ms - s < window_seconds * 1000]


class DynamoDeactivationWindow:
    """The admitted times in one item of the state table (a read, a conditional write)."""

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
        try:
            for _ in range(RACE_ATTEMPTS):
                admitted = self._try_admit()
                if admitted is not None:
                    return admitted
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(
                f"state table (deactivation window): {exc}", "state_unavailable"
            ) from exc
        raise TransientError(
            "state table (deactivation window): too many deletes racing for the window",
            "state_unavailable",
        )

    def _try_admit(self) -> bool | None:
        """True or False; None when another invocation wrote the item first."""
        key = {STATE_TABLE_PK: {"S": WINDOW_KEY}}
        item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get(
            "Item", {}
        )
        now_ms = int(self.clock() * 1000)
        stamps = [int(s["N"]) for s in item.get(STAMPS_ATTRIBUTE, {}).get("L", [])]
        stamps = in_window(stamps, now_ms, self.window_seconds)
        if len(stamps) >= self.limit:
            return False
        stamps.append(now_ms)
        version = item.get(VERSION_ATTRIBUTE, {}).get("N")
        condition = "attribute_not_exists(#v)" if version is None else "#v = :version"
        values: dict[str, Any] = {
            ":stamps": {"L": [{"N": str(s)} for s in stamps]},
            ":count": {"N": str(len(stamps))},
            ":next": {"N": str(int(version or 0) + 1)},
            ":expires": {"N": str(now_ms // 1000 + 2 * self.window_seconds)},
        }
        if version is not None:
            values[":version"] = {"N": version}
        try:
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET #s = :stamps, #n = :count, #v = :next, #e = :expires",
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    "#s": STAMPS_ATTRIBUTE,
                    "#n": COUNT_ATTRIBUTE,
                    "#v": VERSION_ATTRIBUTE,
                    "#e": EXPIRES_ATTRIBUTE,
                },
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return True


class MemoryDeactivationWindow:
    """The same sliding window in memory (local mode without AWS, unit tests)."""

    def __init__(
        self, limit: int, window_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        self.admitted: list[int] = []  # the admitted times (ms) still in the window

    def admit(self) -> bool:
        now_ms = int(self.clock() * 1000)
        self.admitted = in_window(self.admitted, now_ms, self.window_seconds)
        if len(self.admitted) >= self.limit:
            return False
        self.admitted.append(now_ms)
        return True
