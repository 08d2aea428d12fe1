"""`reconcile` never holds a source whole: the export, the listing and the states are drawn
a batch at a time, and what was drawn is let go before much more is drawn (issue #25)."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from auth0_sync.settings import Settings
from auth0_sync.state import SyncState
from auth0_sync_cli.reconcile import compare
from auth0_sync_cli.reconcile_index import BATCH

pytestmark = pytest.mark.unit

USERS = 3_000  # six batches of each source
UPDATED = "2026-02-10T08:00:00.000Z"


class Record(dict[str, Any]):
    """A plain dict that can be watched (a dict subclass takes weak references)."""


class State(SyncState):
    """A sync state that can be watched."""


@dataclass
class Watch:
    """The records a source has handed out that are still alive somewhere."""

    live: int = 0
    most: int = 0

    def hand_out(self, record: Any) -> Any:
        self.live += 1
        self.most = max(self.most, self.live)
        weakref.finalize(record, self.let_go)
        return record

    def let_go(self) -> None:
        self.live -= 1


def user_id(index: int) -> str:
    return f"auth0|{index:05d}"


def users(watch: Watch) -> Iterator[dict[str, Any]]:
    for i in range(USERS):
        record = Record(
            user_id=user_id(i), email=f"u{i}@example.com", name=f"User {i}", updated_at=UPDATED
        )
        yield watch.hand_out(record)


def contacts(watch: Watch) -> Iterator[tuple[str, dict[str, Any]]]:
    for i in range(USERS):
        name = "Someone Else" if i % 1000 == 7 else f"User {i}"  # three contacts drifted
        record = Record(
            id=f"c_{i:05d}",
            email=f"u{i}@example.com",
            name=name,
            status="active",
            auth0_user_id=user_id(i),
        )
        yield f"c_{i:05d}", watch.hand_out(record)


def states(watch: Watch) -> Iterator[tuple[str, SyncState]]:
    for i in range(USERS):
        yield user_id(i), watch.hand_out(State(user_id(i), contact_id=f"c_{i:05d}"))


def test_each_source_is_drawn_a_batch_at_a_time_and_let_go() -> None:
    settings = Settings(crm_base_url="http://crm.invalid", crm_api_token="t")
    seen = {name: Watch() for name in ("users", "contacts", "states")}

    found = compare(
        users(seen["users"]),
        contacts(seen["contacts"]),
        states(seen["states"]),
        settings,
    )

    assert (found.users, found.contacts, found.states) == (USERS, USERS, USERS)
    assert [(d.kind, d.user_id, d.field) for d in found.drift] == [
        ("field_differs", user_id(i), "name") for i in (7, 1007, 2007)
    ]
    # A source held whole would keep all 3,000 of its records alive at its last draw.
    most = {name: watch.most for name, watch in seen.items()}
    assert most["users"] <= 2, most
    # The listing and the states: the batch being written, and the one being drawn.
    assert most["contacts"] <= 2 * BATCH < USERS, most
    assert most["states"] <= 2 * BATCH < USERS, most
