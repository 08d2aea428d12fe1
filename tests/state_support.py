"""What the state stores' rule tests share (`tests/unit/test_rules_state*.py`): the user,
the times and order keys they speak of, a table emptied for each test, the state last
applied and an unchanged event. Written out by hand (no project code computes them).

Order keys are written out as `order_key_text` writes them: time | type rank | event id.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from auth0_sync.names import STATE_TABLE_PK
from auth0_sync.state import (
    DynamoSyncStateStore,
    MemorySyncStateStore,
    Settled,
    StateStore,
    SyncState,
    Unchanged,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

USER = "auth0|s28"
T5 = "2026-03-01T09:05:00.000000+00:00"
T9 = "2026-03-01T09:09:00.000000+00:00"
APPLIED = f"{T5}|1|evt_b"
NEWER = f"{T9}|1|evt_c"
OLDER = "2026-03-01T09:01:00.000000+00:00|1|evt_a"


def emptied(dynamodb: tuple[DynamoDBClient, str]) -> DynamoSyncStateStore:
    """A store on the module's table (the `dynamodb` fixture), emptied of earlier tests'
    items."""
    client, table = dynamodb
    for item in client.scan(TableName=table)["Items"]:
        client.delete_item(TableName=table, Key={STATE_TABLE_PK: item[STATE_TABLE_PK]})
    return DynamoSyncStateStore(table, client)


def either_store(request: pytest.FixtureRequest) -> StateStore:
    """The store a `params=["dynamodb", "memory"]` fixture asks for: the shared contract."""
    if request.param == "memory":
        return MemorySyncStateStore()
    return emptied(request.getfixturevalue("dynamodb"))


def last_applied(**values: object) -> SyncState:
    """The user's last applied event is evt_b at 09:05 (an update) on contact c_7, which was
    written with name digest "d-name" and spoken of by that event."""
    state = SyncState(
        USER,
        contact_id="c_7",
        last_change_time=T5,
        last_rank=1,
        last_event_id="evt_b",
        written={"name": "d-name"},
        stated={"name": APPLIED},
    )
    for name, value in values.items():
        setattr(state, name, value)
    return state


def applied(store: StateStore, **values: object) -> None:
    """Commits `last_applied(**values)` under a lease of its own."""
    store.acquire(USER, "first", 30.0)
    store.commit(last_applied(**values), "first")


def seen(key: str = NEWER, **values: object) -> Unchanged:
    """evt_c at 09:09, an update whose name maps to what was last written, with no link."""
    fields: dict[str, object] = {
        "key": key,
        "change_time": T9,
        "rank": 1,
        "event_id": "evt_c",
        "digests": {"name": "d-name"},
        "linked": [],
    }
    fields.update(values)
    return Unchanged(**fields)  # type: ignore[arg-type]


class SettledLate(MemorySyncStateStore):
    """A memory store whose lease-free read (`acquire_if_newer` answering `Settled`) shows
    the state as it was before `stale` was written over it, as when another invocation
    wrote those fields just after that read; what a lease reads is current."""

    def __init__(self, **stale: Any) -> None:
        super().__init__()
        self.stale = stale

    def acquire_if_newer(
        self, user_id: str, owner: str, lease_seconds: float, key: str
    ) -> SyncState | Settled:
        found = super().acquire_if_newer(user_id, owner, lease_seconds, key)
        if isinstance(found, Settled):
            return Settled(replace(found.state, **self.stale))
        return found
