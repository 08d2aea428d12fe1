"""The organization state stores (DynamoDB through in-process moto, and memory): one lease
per organization, the state round-trips, the user's pending item; and the organization
items never touch a user's item in the shared table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auth0_sync.errors import TransientError
from auth0_sync.org_state import (
    DynamoOrgStateStore,
    MemberState,
    MemoryOrgStateStore,
    OrgStateStore,
    RoleMark,
)
from auth0_sync.state import DynamoSyncStateStore
from auth0_sync_cli.local_aws import LocalResources

pytestmark = pytest.mark.integration

ORG = "org_W8cRZbK2fN7pQ4tx"
USER = "auth0|u1"


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[OrgStateStore]:
    if request.param == "memory":
        yield MemoryOrgStateStore()
        return
    aws: LocalResources = request.getfixturevalue("aws")
    yield DynamoOrgStateStore(aws.state_table)


def test_the_lease_is_one_at_a_time_and_the_state_round_trips(store: OrgStateStore) -> None:
    state = store.acquire(ORG, "first", 30.0)
    with pytest.raises(TransientError, match="being synced by another invocation"):
        store.acquire(ORG, "second", 30.0)
    state.company_id = "co_1"
    state.members[USER] = MemberState(
        key="k1", present=True, roles={"rol_a": RoleMark("k2", "admin", True)}, written=["admin"]
    )
    store.commit(state, "first")
    again = store.acquire(ORG, "second", 30.0)
    assert again == state
    with pytest.raises(TransientError, match="lease"):
        store.commit(again, "not-the-owner")
    store.release(ORG, "second")
    store.acquire(ORG, "third", 30.0)


def test_the_pending_item_names_the_waiting_organizations(store: OrgStateStore) -> None:
    assert store.pending(USER) == set()
    store.add_pending(USER, ORG)
    store.add_pending(USER, "org_2")
    store.drop_pending(USER, ORG)
    assert store.pending(USER) == {"org_2"}


def test_the_users_item_also_names_the_organizations_of_its_written_memberships(
    store: OrgStateStore,
) -> None:
    store.add_pending(USER, ORG)
    store.add_member(USER, "org_2")
    store.add_member(USER, "org_3")
    store.drop_member(USER, "org_3")
    assert store.pending(USER) == {ORG}  # a user's events read only the waiting ones
    assert store.orgs_of(USER) == {ORG, "org_2"}  # the user's delete reads both
    store.drop_pending(USER, ORG)
    store.drop_member(USER, "org_2")
    assert store.orgs_of(USER) == set()


def test_organization_items_never_touch_the_users_items(aws: LocalResources) -> None:
    users = DynamoSyncStateStore(aws.state_table)
    orgs = DynamoOrgStateStore(aws.state_table)
    orgs.add_pending(USER, ORG)
    state = orgs.acquire(ORG, "o", 30.0)
    orgs.commit(state, "o")
    assert users.get(USER) is None  # the user's own item is still absent
    users.acquire(USER, "u", 30.0)
    assert orgs.pending(USER) == {ORG}
