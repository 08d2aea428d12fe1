"""The state stores' lease contract, the same for DynamoDB (in-process moto) and memory:
a lease only for an event newer than the last one applied, else the state, at once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import boto3
import pytest

from auth0_sync.errors import TransientError
from auth0_sync.state import (
    DynamoSyncStateStore,
    MemorySyncStateStore,
    Settled,
    StateStore,
    SyncState,
)
from auth0_sync_cli.local_aws import LocalResources

pytestmark = pytest.mark.integration

USER = "auth0|s1"
# Order keys as `order_key_text` writes them: fixed-width UTC time | type rank | event id.
APPLIED = "2026-03-01T09:05:00.000000+00:00|1|evt_b"
OLDER = "2026-03-01T09:01:00.000000+00:00|1|evt_a"
NEWER = "2026-03-01T09:09:00.000000+00:00|1|evt_c"


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param == "memory":
        yield MemorySyncStateStore()
        return
    aws: LocalResources = request.getfixturevalue("aws")
    yield DynamoSyncStateStore(aws.state_table)


def applied(store: StateStore) -> None:
    """The user's last applied event is evt_b at 09:05 (an update), on contact c_7."""
    store.acquire(USER, "first", 30.0)
    store.commit(
        SyncState(
            USER,
            contact_id="c_7",
            last_change_time="2026-03-01T09:05:00.000000+00:00",
            last_rank=1,
            last_event_id="evt_b",
        ),
        "first",
    )


def test_a_newer_event_gets_the_lease_and_the_state(store: StateStore) -> None:
    applied(store)
    got = store.acquire_if_newer(USER, "newer", 30.0, NEWER)
    assert isinstance(got, SyncState)
    assert (got.contact_id, got.last_event_id) == ("c_7", "evt_b")
    with pytest.raises(TransientError) as held:
        store.acquire(USER, "someone else", 30.0)
    assert held.value.reason == "lease_held"


@pytest.mark.parametrize("key", [APPLIED, OLDER], ids=["duplicate", "stale"])
def test_an_event_not_newer_gets_the_state_and_no_lease(store: StateStore, key: str) -> None:
    applied(store)
    got = store.acquire_if_newer(USER, "late", 30.0, key)
    assert isinstance(got, Settled)
    assert (got.state.contact_id, got.state.last_event_id) == ("c_7", "evt_b")
    store.acquire(USER, "next", 30.0)  # nothing was leased: the next one takes it at once


def test_an_old_event_is_settled_even_while_a_newer_one_holds_the_lease(
    store: StateStore,
) -> None:
    applied(store)
    store.acquire(USER, "in flight", 30.0)
    assert isinstance(store.acquire_if_newer(USER, "late", 30.0, OLDER), Settled)
    with pytest.raises(TransientError) as held:
        store.acquire_if_newer(USER, "also newer", 30.0, NEWER)
    assert held.value.reason == "lease_held"


def test_a_user_never_seen_gets_the_lease(store: StateStore) -> None:
    got = store.acquire_if_newer("auth0|new", "first", 30.0, OLDER)
    assert isinstance(got, SyncState)
    assert (got.contact_id, got.last_event_id) == (None, None)
    with pytest.raises(TransientError):
        store.acquire("auth0|new", "someone else", 30.0)


def test_the_version_and_an_unconfirmed_write_are_kept_and_cleared(store: StateStore) -> None:
    """What `auth0_sync.writes` keeps per user: the contact's version after our last write
    (the precondition of the next), and when a write of unknown outcome was sent."""
    store.acquire(USER, "first", 30.0)
    store.commit(
        SyncState(USER, contact_id="c_7", version='"e-1"', unconfirmed="2026-03-01T09:05:00+00:00"),
        "first",
    )
    got = store.acquire(USER, "second", 30.0)
    assert (got.version, got.unconfirmed) == ('"e-1"', "2026-03-01T09:05:00+00:00")
    store.commit(SyncState(USER, contact_id="c_7", version='"e-2"'), "second")
    after = store.get(USER)
    assert after is not None
    assert (after.version, after.unconfirmed) == ('"e-2"', None)


def test_what_a_pending_delete_looked_up_in_vain_is_kept(store: StateStore) -> None:
    store.acquire(USER, "first", 30.0)
    searched = ["2026-03-01T09:05:00Z|evt_a", "2026-03-01T09:05:00Z|evt_b"]
    tombstone = SyncState(
        USER, deleted_at="2026-03-01T09:05:00Z", last_event_id="evt_c", searched=searched
    )
    store.commit(tombstone, "first")
    state = store.acquire(USER, "second", 30.0)
    assert state.searched == searched


def test_a_link_and_when_it_was_shown_survive_the_secondarys_own_commits(
    store: StateStore,
) -> None:
    # `mark_linked` writes without the lease; a commit of the secondary's own event (which
    # never carries the link) must not erase it.
    store.mark_linked(USER, "auth0|primary", APPLIED)
    current = store.acquire(USER, "own", 30.0)
    store.commit(SyncState(USER, contact_id="c_9", last_change_time=NEWER[:32]), "own")
    after = store.get(USER)
    assert after is not None
    assert (current.linked_to, current.linked_at) == ("auth0|primary", APPLIED)
    assert (after.contact_id, after.linked_to, after.linked_at) == (
        "c_9",
        "auth0|primary",
        APPLIED,
    )


def test_a_tombstone_ages_out_and_a_live_users_item_never_does(aws: LocalResources) -> None:
    # As `local-aws` and the stack create it: a TTL on `expires_at`.
    client = boto3.client("dynamodb")
    ttl = client.describe_time_to_live(TableName=aws.state_table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    store = DynamoSyncStateStore(aws.state_table)

    def expires_at() -> int | None:
        key = {"user_id": {"S": USER}}
        item = client.get_item(TableName=aws.state_table, Key=key)["Item"]
        return int(item["expires_at"]["N"]) if "expires_at" in item else None

    applied(store)
    assert expires_at() is None  # alive: kept for ever
    store.acquire(USER, "delete", 30.0)
    before = time.time()
    store.commit(
        SyncState(
            USER,
            last_change_time="2026-03-01T09:09:00.000000+00:00",
            last_rank=2,
            last_event_id="evt_c",
            deleted_at="2026-03-01T09:09:00.000000+00:00",
            life_start=NEWER,
            delete_done=True,
        ),
        "delete",
    )
    ninety_days = 90 * 24 * 3600
    expiry = expires_at()
    assert expiry is not None
    assert int(before) + ninety_days <= expiry <= int(time.time()) + ninety_days
    # A new life (a returning social user): the item is a live user's again.
    store.acquire(USER, "again", 30.0)
    store.commit(
        SyncState(USER, contact_id="c_7", last_change_time="2026-03-01T10:00:00.000000+00:00"),
        "again",
    )
    assert expires_at() is None
