"""The DynamoDB state store's rules (`auth0_sync/state_dynamo.py`) that
`test_rules_state.py` did not hold yet (issue 28), against in-process moto (no socket),
with the in-memory store beside it where the contract is shared: when a lease held ends
and whose it is, an expired lease taken for a newer event, the states a lease for a newer
event answers with, a commit or a release ending the lease, a lost lease named, a commit
of an empty state, the quick path on an item written before `stated` existed and for an
event mapping no field, strongly consistent reads, a claim botocore will not send, and
the client the store was given. Each test failed when its rule was removed (mutmut's
mutants of state_dynamo.py).

Order keys are written out as `order_key_text` writes them: time | type rank | event id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from auth0_sync.errors import LeaseHeld, TransientError
from auth0_sync.names import STATE_TABLE_PK
from auth0_sync.state import DynamoSyncStateStore, Settled, StateStore, SyncState
from tests.state_support import (
    APPLIED,
    NEWER,
    OLDER,
    T5,
    T9,
    USER,
    applied,
    either_store,
    emptied,
    last_applied,
    seen,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.unit

# The lease's end is written to the millisecond (epoch seconds, a DynamoDB number).
MS = 0.001


@pytest.fixture
def dynamo(dynamodb: tuple[DynamoDBClient, str]) -> DynamoSyncStateStore:
    return emptied(dynamodb)


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> StateStore:
    return either_store(request)


# When a lease held ends -------------------------------------------------------------------


@pytest.mark.parametrize("newer", [False, True], ids=["plain lease", "lease for a newer event"])
def test_a_lease_held_says_when_it_ends(store: StateStore, newer: bool) -> None:
    """`LeaseHeld.until` is the holder's lease end, the time it took the lease plus the
    seconds it asked for (the local runner waits until then), however the holder and the
    one refused asked for the lease."""
    before = time.time()
    if newer:
        store.acquire_if_newer(USER, "holder", 30.0, APPLIED)
    else:
        store.acquire(USER, "holder", 30.0)
    after = time.time()
    takes: list[Callable[[], object]] = [
        lambda: store.acquire(USER, "other", 30.0),
        lambda: store.acquire_if_newer(USER, "other", 30.0, NEWER),
    ]
    for take in takes:
        with pytest.raises(LeaseHeld) as held:
            take()
        assert held.value.message == f"user {USER} is being synced by another invocation"
        assert held.value.until is not None
        assert before + 30.0 - MS <= held.value.until <= after + 30.0 + MS


def test_a_lease_for_a_newer_event_takes_over_an_expired_one(store: StateStore) -> None:
    """A lease left by a crashed invocation ends with its time: the next event takes it."""
    applied(store)
    store.acquire(USER, "crashed", -1.0)  # ended a second ago
    got = store.acquire_if_newer(USER, "next", 30.0, NEWER)
    assert isinstance(got, SyncState)
    assert got.last_event_id == "evt_b"


def test_the_answers_to_a_lease_for_a_newer_event_are_the_users_state(store: StateStore) -> None:
    """Leased or settled, the state answered is the user's, as last committed."""
    committed = last_applied()
    applied(store)
    settled = store.acquire_if_newer(USER, "late", 30.0, OLDER)
    assert isinstance(settled, Settled)
    assert settled.state == committed
    assert store.acquire_if_newer(USER, "newer", 30.0, NEWER) == committed
    assert store.acquire_if_newer("auth0|never", "first", 30.0, OLDER) == SyncState("auth0|never")


def test_a_newer_event_waits_for_a_lease_held_on_a_user_with_nothing_applied(
    store: StateStore,
) -> None:
    """Nothing was applied yet (no order key to compare with): the event is newer than
    nothing, so it waits for the lease rather than being settled."""
    store.acquire(USER, "first event", 30.0)
    with pytest.raises(LeaseHeld) as held:
        store.acquire_if_newer(USER, "second event", 30.0, OLDER)
    assert held.value.reason == "lease_held"


# Commits ----------------------------------------------------------------------------------


def test_a_commit_drops_the_lease_so_a_second_commit_needs_a_new_one(store: StateStore) -> None:
    """The lease covers one decision: once committed (or released), writing again without
    taking it again is refused, as it would be if the lease had been lost."""
    store.acquire(USER, "once", 30.0)
    store.commit(SyncState(USER, contact_id="c_1"), "once")
    with pytest.raises(TransientError) as lost:
        store.commit(SyncState(USER, contact_id="c_2"), "once")
    assert lost.value.reason == "lease_lost"
    store.acquire(USER, "released", 30.0)
    store.release(USER, "released")
    with pytest.raises(TransientError) as released:
        store.commit(SyncState(USER, contact_id="c_3"), "released")
    assert released.value.reason == "lease_lost"
    got = store.get(USER)
    assert got is not None
    assert got.contact_id == "c_1"


def test_a_lost_lease_names_the_user(store: StateStore) -> None:
    store.acquire(USER, "slow", -1.0)
    store.acquire(USER, "fast", 30.0)
    with pytest.raises(TransientError) as lost:
        store.commit(SyncState(USER, contact_id="c_slow"), "slow")
    assert (lost.value.reason, lost.value.message) == (
        "lease_lost",
        f"lease on user {USER} expired before the state was written",
    )


def test_a_commit_of_an_empty_state_clears_the_user_and_drops_the_lease(
    store: StateStore,
) -> None:
    """A state holding nothing (every field empty, no order key) is written as such: every
    field removed, and the lease dropped like any commit's."""
    applied(store, matched_by="email", linked=["auth0|sec"], version='"e-1"')
    store.acquire(USER, "clearing", 30.0)
    store.commit(SyncState(USER), "clearing")
    assert store.get(USER) == SyncState(USER)
    assert store.acquire(USER, "next", 30.0) == SyncState(USER)


# The quick path on an item written before `stated` existed --------------------------------


def _without_stated(client: DynamoDBClient, table: str) -> None:
    client.update_item(
        TableName=table, Key={STATE_TABLE_PK: {"S": USER}}, UpdateExpression="REMOVE stated"
    )


def test_the_quick_path_leaves_an_item_without_stated_to_the_slow_path(
    dynamodb: tuple[DynamoDBClient, str], dynamo: DynamoSyncStateStore
) -> None:
    """An update through a map that is not there is refused by DynamoDB ("The document path
    provided in the update expression is invalid for update"): the quick path must check
    for `stated` first and answer with the state, never fail on it."""
    applied(dynamo)
    _without_stated(*dynamodb)
    got = dynamo.record_unchanged(USER, seen())
    assert got == SyncState(
        USER,
        contact_id="c_7",
        last_change_time=T5,
        last_rank=1,
        last_event_id="evt_b",
        written={"name": "d-name"},
    )


@pytest.mark.parametrize("with_stated", [True, False], ids=["stated", "before stated"])
def test_an_event_that_maps_no_field_is_recorded(
    dynamodb: tuple[DynamoDBClient, str], dynamo: DynamoSyncStateStore, with_stated: bool
) -> None:
    """A login of a user none of whose mapped attributes are set: nothing to note per
    field, so the event is recorded without the per-field maps (which it must not name:
    DynamoDB refuses an expression attribute name that the expressions do not use)."""
    applied(dynamo)
    if not with_stated:
        _without_stated(*dynamodb)
    assert dynamo.record_unchanged(USER, seen(digests={})) is None
    got = dynamo.get(USER)
    assert got is not None
    assert (got.last_change_time, got.last_event_id) == (T9, "evt_c")
    assert got.stated == ({"name": APPLIED} if with_stated else {})


# Reads ----------------------------------------------------------------------------------------


def test_a_read_of_a_users_state_is_strongly_consistent(
    dynamodb: tuple[DynamoDBClient, str], dynamo: DynamoSyncStateStore
) -> None:
    """GetItem reads eventually consistent data unless the request sets `ConsistentRead`
    (DynamoDB Developer Guide, "Read consistency"): an ownership check or an operator reading
    the state right after a commit must see that commit. moto is always consistent, so the
    request itself, as sent, is what shows it."""
    client, _ = dynamodb
    sent: list[dict[str, object]] = []

    def keep(request: Any, **_: object) -> None:
        sent.append(json.loads(request.body))

    client.meta.events.register("request-created.dynamodb.GetItem", keep)
    try:
        applied(dynamo)
        got = dynamo.get(USER)
    finally:
        client.meta.events.unregister("request-created.dynamodb.GetItem", keep)
    assert got is not None
    assert got.contact_id == "c_7"
    assert [request.get("ConsistentRead") for request in sent] == [True]


# The table's failures as domain errors ------------------------------------------------------


def test_a_claim_botocore_refuses_to_send_is_transient_and_says_what_was_tried(
    dynamodb: tuple[DynamoDBClient, str],
) -> None:
    """A request botocore will not build (a table name shorter than DynamoDB's minimum of
    one character) fails before the table answers: a `BotoCoreError`, transient."""
    client, _ = dynamodb
    with pytest.raises(TransientError) as failed:
        DynamoSyncStateStore("", client).claim_contact("c_1", USER, None)
    assert failed.value.reason == "state_unavailable"
    assert failed.value.message.startswith("state table (claiming a contact): ")
    assert "Parameter validation failed" in failed.value.message  # botocore's


# The client ---------------------------------------------------------------------------------


def test_the_store_speaks_through_the_client_it_was_given(
    dynamodb: tuple[DynamoDBClient, str],
) -> None:
    """A store given a client (another region's, here) uses it, not a default one."""
    _, table = dynamodb
    elsewhere = boto3.client("dynamodb", region_name="eu-central-1")
    elsewhere.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": STATE_TABLE_PK, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": STATE_TABLE_PK, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        store = DynamoSyncStateStore(table, elsewhere)
        store.acquire(USER, "o", 30.0)
        store.commit(SyncState(USER, contact_id="c_eu"), "o")
        item = elsewhere.get_item(TableName=table, Key={STATE_TABLE_PK: {"S": USER}})["Item"]
        assert item["contact_id"] == {"S": "c_eu"}
        assert store.client is elsewhere
    finally:
        elsewhere.delete_table(TableName=table)
