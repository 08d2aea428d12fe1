"""The state stores' rules (`auth0_sync/state.py`) that no other test held (issue 28), the
same for DynamoDB (moto, in process: no socket) and memory: a lease lost is never written
through, a commit removes what the state no longer holds, the quick path's conditions, and
the contact claims. Each test failed when its rule was removed by hand.

Order keys are written out as `order_key_text` writes them: time | type rank | event id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from auth0_sync.errors import PermanentError, TransientError
from auth0_sync.state import DynamoSyncStateStore, Settled, StateStore, SyncState, Unchanged
from tests.state_support import (
    APPLIED,
    NEWER,
    OLDER,
    T5,
    USER,
    applied,
    either_store,
    seen,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.unit


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> StateStore:
    return either_store(request)


# Leases ---------------------------------------------------------------------------------


def test_a_commit_after_the_lease_was_lost_is_refused(store: StateStore) -> None:
    """Our lease expired and another invocation took it: our commit must not land."""
    store.acquire(USER, "slow", -1.0)  # already expired
    taken = store.acquire(USER, "fast", 30.0)
    assert taken.user_id == USER
    with pytest.raises(TransientError) as lost:
        store.commit(SyncState(USER, contact_id="c_slow"), "slow")
    assert lost.value.reason == "lease_lost"
    after = store.get(USER)
    assert after is not None
    assert after.contact_id is None
    # The other invocation's commit lands, and its lease was not dropped by ours.
    store.commit(SyncState(USER, contact_id="c_fast"), "fast")
    after = store.get(USER)
    assert after is not None
    assert after.contact_id == "c_fast"


def test_a_lease_held_is_not_taken_and_not_released_by_someone_else(store: StateStore) -> None:
    store.acquire(USER, "holder", 30.0)
    with pytest.raises(TransientError) as held:
        store.acquire(USER, "other", 30.0)
    assert held.value.reason == "lease_held"
    store.release(USER, "other")  # not theirs to drop
    with pytest.raises(TransientError):
        store.acquire(USER, "other", 30.0)
    store.release(USER, "holder")
    assert store.acquire(USER, "other", 30.0).user_id == USER


def test_an_expired_lease_is_taken_over(store: StateStore) -> None:
    store.acquire(USER, "crashed", -1.0)
    assert store.acquire(USER, "next", 30.0).user_id == USER


def test_a_commit_drops_the_lease(store: StateStore) -> None:
    applied(store)
    assert store.acquire(USER, "next", 30.0).contact_id == "c_7"


# What a commit writes --------------------------------------------------------------------


def test_a_commit_writes_every_field_and_removes_what_the_state_no_longer_holds(
    store: StateStore,
) -> None:
    applied(
        store,
        matched_by="email",
        deleted_at="2026-03-01T09:04:00.000000+00:00",
        life_start=OLDER,
        delete_done=True,
        linked=["auth0|sec"],
    )
    got = store.get(USER)
    assert got == SyncState(
        USER,
        contact_id="c_7",
        matched_by="email",
        last_change_time=T5,
        last_event_id="evt_b",
        last_rank=1,
        written={"name": "d-name"},
        stated={"name": APPLIED},
        deleted_at="2026-03-01T09:04:00.000000+00:00",
        life_start=OLDER,
        delete_done=True,
        linked=["auth0|sec"],
    )
    store.acquire(USER, "second", 30.0)
    store.commit(SyncState(USER, last_change_time=T5, last_rank=2, last_event_id="evt_d"), "second")
    assert store.get(USER) == SyncState(
        USER, last_change_time=T5, last_rank=2, last_event_id="evt_d"
    )


def test_a_commit_keeps_a_link_marked_without_the_lease(store: StateStore) -> None:
    """`mark_linked` writes without the lease; a commit in flight must not undo it."""
    store.acquire(USER, "in flight", 30.0)
    store.mark_linked(USER, "auth0|primary")
    store.commit(SyncState(USER, contact_id="c_7"), "in flight")
    got = store.get(USER)
    assert got is not None
    assert (got.linked_to, got.contact_id) == ("auth0|primary", "c_7")


def test_the_order_key_committed_decides_what_is_newer(store: StateStore) -> None:
    applied(store)
    assert isinstance(store.acquire_if_newer(USER, "dup", 30.0, APPLIED), Settled)
    got = store.acquire_if_newer(USER, "newer", 30.0, NEWER)
    assert isinstance(got, SyncState)
    # A state without an order (nothing applied yet) leases any event.
    store.commit(SyncState(USER, contact_id="c_7"), "newer")
    assert isinstance(store.acquire_if_newer(USER, "any", 30.0, OLDER), SyncState)


# The quick path (record_unchanged) --------------------------------------------------------


def test_a_newer_unchanged_event_is_recorded_without_the_lease(store: StateStore) -> None:
    applied(store)
    assert store.record_unchanged(USER, seen()) is None
    got = store.get(USER)
    assert got is not None
    assert (got.last_change_time, got.last_rank, got.last_event_id) == (
        "2026-03-01T09:09:00.000000+00:00",
        1,
        "evt_c",
    )
    assert got.stated == {"name": NEWER}
    assert got.written == {"name": "d-name"}
    # The recorded order is what the next event is compared with.
    assert isinstance(store.acquire_if_newer(USER, "late", 30.0, NEWER), Settled)


@pytest.mark.parametrize(
    ("why", "event"),
    [
        ("stale", seen(key=OLDER)),
        ("duplicate", seen(key=APPLIED)),
        ("a value differs", seen(digests={"name": "d-other"})),
        ("a field never written", seen(digests={"name": "d-name", "phone": "d-phone"})),
        ("a new link", seen(linked=["auth0|sec"])),
    ],
)
def test_an_event_the_quick_path_cannot_settle_gets_the_state_back(
    store: StateStore, why: str, event: Unchanged
) -> None:
    applied(store)
    got = store.record_unchanged(USER, event)
    assert isinstance(got, SyncState), why
    assert (got.contact_id, got.last_event_id, got.stated) == ("c_7", "evt_b", {"name": APPLIED})


def test_the_quick_path_waits_for_a_lease_held(store: StateStore) -> None:
    applied(store)
    store.acquire(USER, "in flight", 30.0)
    got = store.record_unchanged(USER, seen())
    assert isinstance(got, SyncState)
    assert got.last_event_id == "evt_b"


def test_the_quick_path_never_records_for_a_deleted_or_unmapped_user(store: StateStore) -> None:
    applied(store, deleted_at=T5)
    assert isinstance(store.record_unchanged(USER, seen()), SyncState)
    applied(store, contact_id=None)
    assert isinstance(store.record_unchanged(USER, seen()), SyncState)
    unseen = store.record_unchanged("auth0|never", seen())
    assert unseen == SyncState("auth0|never")


def test_the_quick_path_accepts_links_it_already_knows(store: StateStore) -> None:
    applied(store, linked=["auth0|sec"])
    assert store.record_unchanged(USER, seen(linked=["auth0|sec"])) is None


# Contact claims ------------------------------------------------------------------------


def test_a_contact_claim_is_won_once(store: StateStore) -> None:
    assert store.claim_contact("c_1", "auth0|a", None)
    assert store.claim_contact("c_1", "auth0|a", None)  # again, by the same user
    assert not store.claim_contact("c_1", "auth0|b", None)
    # Taking it over from the owner one read from the CRM (a transfer) succeeds once.
    assert store.claim_contact("c_1", "auth0|b", "auth0|a")
    assert not store.claim_contact("c_1", "auth0|c", "auth0|a")
    assert not store.claim_contact("c_1", "auth0|a", None)


def test_a_claim_is_not_a_users_state(store: StateStore) -> None:
    assert store.claim_contact("c_1", "auth0|a", None)
    assert store.get("auth0|a") is None


# The table's failures as domain errors (DynamoDB only) ------------------------------------


@pytest.fixture
def missing_table(dynamodb: tuple[DynamoDBClient, str]) -> DynamoSyncStateStore:
    client, _ = dynamodb
    return DynamoSyncStateStore("no-such-table", client)


def test_an_unreachable_table_is_transient_and_says_what_was_tried(
    missing_table: DynamoSyncStateStore,
) -> None:
    store = missing_table
    calls: dict[str, Callable[[], object]] = {
        "taking the lease": lambda: store.acquire(USER, "o", 30.0),
        "taking the lease ": lambda: store.acquire_if_newer(USER, "o", 30.0, NEWER),
        "writing the state": lambda: store.commit(SyncState(USER, contact_id="c_1"), "o"),
        "recording an unchanged event": lambda: store.record_unchanged(USER, seen()),
        "reading a user's state": lambda: store.get(USER),
        "claiming a contact": lambda: store.claim_contact("c_1", USER, None),
        "marking a linked account": lambda: store.mark_linked(USER, "auth0|primary"),
    }
    for what, call in calls.items():
        with pytest.raises(TransientError) as failed:
            call()
        assert failed.value.reason == "state_unavailable", what
        assert failed.value.message.startswith(f"state table ({what.strip()}): "), what
        assert "ResourceNotFoundException" in failed.value.message, what  # the table's answer
    store.release(USER, "o")  # a release that fails leaves a lease that expires: no error


def test_a_request_the_table_rejects_is_permanent(
    dynamodb: tuple[DynamoDBClient, str],
) -> None:
    client, table = dynamodb
    store = DynamoSyncStateStore(table, client)
    with pytest.raises(PermanentError) as rejected:
        store.get("")  # DynamoDB refuses an empty key
    assert rejected.value.reason == "state_rejected"
    assert rejected.value.message.startswith("state table rejected reading a user's state: ")
    assert "ValidationException" in rejected.value.message


def test_the_order_key_of_a_state_reads_a_missing_rank_as_an_update() -> None:
    state = SyncState(USER, last_change_time="2026-03-01T10:05:00+01:00", last_event_id="e")
    assert state.order_key == ("2026-03-01T09:05:00.000000+00:00", 1, "e")
    assert SyncState(USER, last_change_time=T5).order_key == (T5, 1, "")
    assert SyncState(USER, last_rank=2).order_key is None
    assert state.last_change is not None
    assert state.last_change.isoformat() == "2026-03-01T10:05:00+01:00"
    assert SyncState(USER).last_change is None


def test_a_failure_before_the_table_answers_is_transient_and_says_what_was_tried(
    dynamodb: tuple[DynamoDBClient, str],
) -> None:
    """botocore's own failures (no connection, a request it cannot build) are
    `BotoCoreError`s, not answers: transient, like an unreachable table. A key that is not
    text is one botocore refuses before sending anything."""
    client, table = dynamodb
    store = DynamoSyncStateStore(table, client)
    bad: Any = 123
    calls: dict[str, Callable[[], object]] = {
        "taking the lease": lambda: store.acquire(bad, "o", 30.0),
        "taking the lease ": lambda: store.acquire_if_newer(bad, "o", 30.0, NEWER),
        "writing the state": lambda: store.commit(SyncState(bad, contact_id="c_1"), "o"),
        "recording an unchanged event": lambda: store.record_unchanged(bad, seen()),
        "reading a user's state": lambda: store.get(bad),
        "marking a linked account": lambda: store.mark_linked(bad, "auth0|primary"),
    }
    for what, call in calls.items():
        with pytest.raises(TransientError) as failed:
            call()
        assert failed.value.reason == "state_unavailable", what
        assert failed.value.message.startswith(f"state table ({what.strip()}): "), what
        assert "Parameter validation failed" in failed.value.message, what  # botocore's
    store.release(bad, "o")  # no error: the lease expires on its own


def test_a_lease_left_by_a_crashed_invocation_does_not_block_the_quick_path(
    store: StateStore,
) -> None:
    applied(store)
    store.acquire(USER, "crashed", -1.0)  # expired a second ago
    assert store.record_unchanged(USER, seen()) is None
