"""The state record (`auth0_sync/state_model.py`) and the in-memory store
(`auth0_sync/state_memory.py`, what the unit tests and local dry runs use) hold the rules
no other test held (issue 28): the record read back from a table item, its order key, the
quick path's condition one clause at a time, and a memory store that behaves like the
DynamoDB one (a state read is the caller's copy, a lease held says until when and holds
until its end included, a commit without the lease says whose it was, a commit writes no
link). Each test failed when its rule was removed by hand (and `make mutation` kills every
mutant of both modules).

Expected values are written out: an order key as `order_key_text` writes it is
time | type rank | event id (ranks: created 0, updated 1, deleted 2).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from auth0_sync.errors import LeaseHeld, TransientError
from auth0_sync.state import (
    MemorySyncStateStore,
    Settled,
    SyncState,
    Unchanged,
    _copy,
    _from_item,
    order_key_text,
)
from tests.state_support import APPLIED, NEWER, T5, T9, USER, last_applied, seen

pytestmark = pytest.mark.unit


# The record -------------------------------------------------------------------------------


def test_an_order_key_as_text_is_time_rank_and_event_id() -> None:
    assert order_key_text((T5, 2, "evt_d")) == "2026-03-01T09:05:00.000000+00:00|2|evt_d"
    assert order_key_text((T5, 0, "")) == "2026-03-01T09:05:00.000000+00:00|0|"


def test_the_order_key_of_a_state_keeps_its_rank_and_event_id() -> None:
    created = SyncState(USER, last_change_time=T5, last_rank=0, last_event_id="evt_a")
    assert created.order_key == (T5, 0, "evt_a")
    deleted = SyncState(USER, last_change_time=T9, last_rank=2, last_event_id="evt_z")
    assert deleted.order_key == (T9, 2, "evt_z")


def test_a_table_item_reads_back_as_the_state_it_holds() -> None:
    """An item as `_plain` deserializes it: numbers are Decimals, maps dicts, lists lists,
    and the table's own attributes (lease, order key, expiry) are not the state's."""
    item: dict[str, Any] = {
        "user_id": USER,
        "contact_id": "c_7",
        "matched_by": "email",
        "last_change_time": T5,
        "last_event_id": "evt_b",
        "last_rank": Decimal("2"),
        "written": {"name": "d-name"},
        "stated": {"name": APPLIED},
        "deleted_at": T5,
        "life_start": APPLIED,
        "delete_done": True,
        "linked_to": "auth0|primary",
        "linked": ["auth0|sec"],
        "version": '"e-1"',
        "unconfirmed": T5,
        "searched": [f"{T5}|evt_a"],
        "linked_at": APPLIED,
        "lease_owner": "someone",
        "lease_until": Decimal("1790000000.5"),
        "last_key": APPLIED,
        "expires_at": Decimal("1798000000"),
    }
    state = _from_item(USER, item)
    assert state == SyncState(
        USER,
        contact_id="c_7",
        matched_by="email",
        last_change_time=T5,
        last_event_id="evt_b",
        last_rank=2,
        written={"name": "d-name"},
        stated={"name": APPLIED},
        deleted_at=T5,
        life_start=APPLIED,
        delete_done=True,
        linked_to="auth0|primary",
        linked=["auth0|sec"],
        version='"e-1"',
        unconfirmed=T5,
        searched=[f"{T5}|evt_a"],
        linked_at=APPLIED,
    )
    assert type(state.last_rank) is int  # a Decimal would not go into JSON
    # The state is the reader's own: it shares no container with the item.
    item["written"]["name"] = "changed"
    item["stated"]["name"] = "changed"
    item["linked"].append("changed")
    item["searched"].append("changed")
    assert (state.written, state.stated) == ({"name": "d-name"}, {"name": APPLIED})
    assert (state.linked, state.searched) == (["auth0|sec"], [f"{T5}|evt_a"])


def test_an_item_without_values_reads_back_as_a_state_without_them() -> None:
    """Attributes absent or null read as the record's defaults."""
    assert _from_item(USER, {"user_id": USER, "contact_id": None}) == SyncState(USER)
    # A set-typed list (an item written by hand, a string set) reads as a list.
    assert _from_item(USER, {"linked": {"auth0|sec"}, "searched": ("k",)}) == SyncState(
        USER, linked=["auth0|sec"], searched=["k"]
    )


def test_a_copy_of_a_state_shares_nothing_with_it() -> None:
    state = SyncState(
        USER, written={"name": "d"}, stated={"name": APPLIED}, linked=["s"], searched=["k"]
    )
    copy = _copy(state)
    assert copy == state
    copy.written["phone"] = "d2"
    copy.stated["phone"] = NEWER
    copy.linked.append("t")
    copy.searched.append("l")
    assert state == SyncState(
        USER, written={"name": "d"}, stated={"name": APPLIED}, linked=["s"], searched=["k"]
    )


# The quick path's condition, one clause at a time -----------------------------------------


def mapped(**values: object) -> SyncState:
    """Applied: evt_b at 09:05 (an update) on contact c_7, name and phone written as "d-name"
    and "d-phone", linked with auth0|sec."""
    written = {"name": "d-name", "phone": "d-phone"}
    return last_applied(**{"written": written, "stated": {}, "linked": ["auth0|sec"], **values})


def unchanged(key: str = NEWER, **values: object) -> Unchanged:
    """evt_c at 09:09, whose name maps to what was last written, linked with auth0|sec."""
    return seen(key, **{"linked": ["auth0|sec"], **values})


def test_a_newer_event_with_the_values_written_matches() -> None:
    assert unchanged().matches(mapped())
    assert unchanged(digests={"name": "d-name", "phone": "d-phone"}).matches(mapped())
    assert unchanged(digests={}, linked=[]).matches(mapped())  # nothing to compare


@pytest.mark.parametrize(
    ("why", "state", "event"),
    [
        ("no contact", mapped(contact_id=None), unchanged()),
        ("deleted", mapped(deleted_at=T5), unchanged()),
        ("nothing applied", mapped(last_change_time=None), unchanged()),
        ("a duplicate", mapped(), unchanged(key=APPLIED)),
        ("older", mapped(), unchanged(key="2026-03-01T09:01:00.000000+00:00|1|evt_a")),
        ("same time, lower rank", mapped(), unchanged(key=f"{T5}|0|evt_z")),
        ("a value differs", mapped(), unchanged(digests={"name": "d-other"})),
        ("a field never written", mapped(), unchanged(digests={"email": "d-email"})),
        ("one of two differs", mapped(), unchanged(digests={"name": "d-name", "phone": "x"})),
        ("a new link", mapped(), unchanged(linked=["auth0|sec", "auth0|other"])),
        ("a link never known", mapped(linked=[]), unchanged()),
    ],
)
def test_an_event_that_is_not_newer_and_unchanged_does_not_match(
    why: str, state: SyncState, event: Unchanged
) -> None:
    assert not event.matches(state), why


def test_a_later_event_of_the_same_time_matches() -> None:
    """The rank, then the event id, order events of the same time."""
    assert unchanged(key=f"{T5}|2|evt_a").matches(mapped())
    assert unchanged(key=f"{T5}|1|evt_c").matches(mapped())


# The memory store -------------------------------------------------------------------------


def test_a_lease_held_says_whose_user_and_until_when() -> None:
    """What the local runner waits on: the end of the lease held (epoch seconds)."""
    store = MemorySyncStateStore()
    before = time.time()
    store.acquire(USER, "holder", 30.0)
    after = time.time()
    with pytest.raises(LeaseHeld) as held:
        store.acquire(USER, "other", 30.0)
    assert held.value.until is not None
    assert before + 30.0 <= held.value.until <= after + 30.0
    assert held.value.message == f"user {USER} is being synced by another invocation"


def test_a_first_lease_gets_an_empty_state_for_the_user() -> None:
    store = MemorySyncStateStore()
    assert store.acquire(USER, "first", 30.0) == SyncState(USER)
    assert store.get(USER) == SyncState(USER)
    other = store.acquire_if_newer("auth0|other", "first", 30.0, NEWER)
    assert other == SyncState("auth0|other")


def test_a_state_read_is_the_callers_copy_until_committed() -> None:
    """Like a state read from the table: changing it changes nothing stored."""
    store = MemorySyncStateStore()
    store.acquire(USER, "first", 30.0)
    store.commit(mapped(stated={"name": APPLIED}), "first")
    for read in (
        store.get(USER),
        store.acquire(USER, "second", 30.0),
        store.acquire_if_newer(USER, "late", 30.0, APPLIED),
    ):
        state = read.state if isinstance(read, Settled) else read
        assert state is not None
        state.contact_id = "c_other"
        state.written["name"] = "d-other"
        state.stated["name"] = NEWER
        state.linked.append("auth0|other")
        state.searched.append("k")
    assert store.get(USER) == mapped(stated={"name": APPLIED})


def test_a_committed_state_is_not_changed_by_its_writer_afterwards() -> None:
    store = MemorySyncStateStore()
    store.acquire(USER, "first", 30.0)
    state = mapped(stated={"name": APPLIED})
    store.commit(state, "first")
    state.written["name"] = "d-other"
    state.linked.append("auth0|other")
    assert store.get(USER) == mapped(stated={"name": APPLIED})


def test_a_commit_without_the_lease_says_whose_it_was() -> None:
    store = MemorySyncStateStore()
    store.acquire(USER, "slow", -1.0)
    store.acquire(USER, "fast", 30.0)
    with pytest.raises(TransientError) as lost:
        store.commit(SyncState(USER, contact_id="c_slow"), "slow")
    assert lost.value.reason == "lease_lost"
    assert lost.value.message == f"lease on user {USER} expired before the state was written"


def test_a_release_of_a_user_never_seen_does_nothing() -> None:
    store = MemorySyncStateStore()
    store.release(USER, "anyone")
    assert store.get(USER) is None


def test_a_link_is_marked_on_a_user_never_seen_and_keeps_when_it_was_shown() -> None:
    store = MemorySyncStateStore()
    store.mark_linked(USER, "auth0|primary", APPLIED)
    assert store.get(USER) == SyncState(USER, linked_to="auth0|primary", linked_at=APPLIED)
    # Marked again without a time: the time already known stays.
    store.mark_linked(USER, "auth0|primary2")
    assert store.get(USER) == SyncState(USER, linked_to="auth0|primary2", linked_at=APPLIED)
    store.mark_linked(USER, "auth0|primary3", NEWER)
    assert store.get(USER) == SyncState(USER, linked_to="auth0|primary3", linked_at=NEWER)


def test_the_quick_path_records_the_event_as_the_one_applied() -> None:
    store = MemorySyncStateStore()
    store.acquire(USER, "first", 30.0)
    # The last one applied was the user's create (rank 0); the unchanged one an update.
    store.commit(mapped(last_rank=0, stated={"name": APPLIED, "phone": APPLIED}), "first")
    assert store.record_unchanged(USER, unchanged(key=f"{T9}|1|evt_c")) is None
    assert store.get(USER) == mapped(
        last_change_time=T9,
        last_rank=1,
        last_event_id="evt_c",
        stated={"name": f"{T9}|1|evt_c", "phone": APPLIED},
    )


class Clock:
    """Epoch seconds that move only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_lease_holds_until_its_end_included_as_in_dynamodb() -> None:
    """DynamoDB's condition `lease_until < :now`: a lease ending at 1030 is free only after."""
    clock = Clock(1000.0)
    store = MemorySyncStateStore(clock=clock)
    store.acquire(USER, "holder", 30.0)
    clock.now = 1030.0
    with pytest.raises(LeaseHeld) as held:
        store.acquire(USER, "next", 30.0)
    assert held.value.until == 1030.0
    clock.now = 1030.001
    assert store.acquire(USER, "next", 30.0) == SyncState(USER)
    with pytest.raises(LeaseHeld) as again:
        store.acquire(USER, "third", 30.0)
    assert again.value.until == 1060.001


def test_the_quick_path_waits_for_a_lease_until_its_end_included() -> None:
    clock = Clock(1000.0)
    store = MemorySyncStateStore(clock=clock)
    store.acquire(USER, "first", 30.0)
    store.commit(mapped(stated={"name": APPLIED}), "first")
    store.acquire(USER, "in flight", 30.0)  # until 1030
    clock.now = 1030.0
    waiting = store.record_unchanged(USER, unchanged())
    assert waiting == mapped(stated={"name": APPLIED})
    clock.now = 1030.001  # the holder crashed: its lease is over
    assert store.record_unchanged(USER, unchanged()) is None


def test_a_commit_writes_no_link_only_mark_linked_does() -> None:
    """As DynamoDB's commit, which leaves `linked_to`/`linked_at` to `mark_linked`: a state
    committed with a link the store does not hold does not link the user."""
    store = MemorySyncStateStore()
    store.acquire(USER, "own", 30.0)
    store.commit(SyncState(USER, contact_id="c_7", linked_to="auth0|p", linked_at=APPLIED), "own")
    assert store.get(USER) == SyncState(USER, contact_id="c_7")
