"""The ownership rule (`auth0_sync/ownership.py`) at its own layer (issue 28): which
contact an email lookup may take, and when a contact may change hands. Each test failed
when its rule was removed by hand.

The CRM is the in-memory one (`tests/fakes/memory_crm.py`), the state the memory store.
"""

from __future__ import annotations

import pytest

from auth0_sync.errors import AmbiguousMatch, OwnedByOther, TransientError
from auth0_sync.ownership import Correlation, Found, Ownership
from auth0_sync.state import MemorySyncStateStore, SyncState
from tests.fakes.memory_crm import MemoryCrm

pytestmark = pytest.mark.unit

ME, OTHER, PRIMARY = "auth0|me", "auth0|other", "auth0|primary"


def rig() -> tuple[MemoryCrm, MemorySyncStateStore, Correlation]:
    crm, state = MemoryCrm(), MemorySyncStateStore()
    return crm, state, Correlation(crm, Ownership(state), "app_metadata.crm_contact_id")


def record(state: MemorySyncStateStore, user_id: str, **values: object) -> None:
    state.acquire(user_id, "t", 30.0)
    state.commit(SyncState(user_id, **values), "t")  # type: ignore[arg-type]


def test_an_email_lookup_never_takes_a_contact_carrying_another_users_id() -> None:
    crm, _, correlation = rig()
    contact_id = crm.add(email="ola@example.com", auth0_user_id=OTHER)
    with pytest.raises(OwnedByOther) as refused:
        correlation.by_email(ME, "OLA@example.com", [])
    assert refused.value.owner == OTHER
    assert refused.value.reason == "owned_by_other"
    assert contact_id in refused.value.message
    assert crm.writes() == []


def test_an_email_lookup_refuses_a_live_users_contact_even_with_a_state() -> None:
    """The other user is known and alive (no tombstone, not linked into me)."""
    crm, state, correlation = rig()
    crm.add(email="ola@example.com", auth0_user_id=OTHER)
    record(state, OTHER, contact_id="c_1", last_change_time="2026-03-01T09:00:00+00:00")
    with pytest.raises(OwnedByOther):
        correlation.by_email(ME, "ola@example.com", [])


def test_an_email_lookup_takes_an_unowned_or_own_contact() -> None:
    crm, _, correlation = rig()
    free = crm.add(email="free@example.com")
    mine = crm.add(email="mine@example.com", auth0_user_id=ME)
    found = correlation.by_email(ME, "free@example.com", [])
    assert found is not None
    assert (found.id, found.how) == (free, "email")
    found = correlation.by_email(ME, "mine@example.com", [])
    assert found is not None
    assert found.id == mine
    assert correlation.by_email(ME, "nobody@example.com", []) is None
    assert correlation.by_email(ME, "", []) is None
    assert correlation.by_email(ME, None, []) is None


def test_a_deleted_users_contact_may_change_hands() -> None:
    crm, state, correlation = rig()
    contact_id = crm.add(email="ola@example.com", auth0_user_id=OTHER)
    record(state, OTHER, deleted_at="2026-03-01T09:00:00+00:00")
    found = correlation.by_email(ME, "ola@example.com", [])
    assert found is not None
    assert found.id == contact_id


def test_a_secondary_linked_into_me_gives_me_its_contact() -> None:
    """Linked either way: the secondary is in my identities, or its state says it was
    linked into me."""
    crm, state, _ = rig()
    ownership = Ownership(state)
    contact = crm.contacts[crm.add(email="s@example.com", auth0_user_id=OTHER)]
    assert ownership.may_take(contact, PRIMARY, [OTHER])
    assert not ownership.may_take(contact, PRIMARY, [])
    state.mark_linked(OTHER, PRIMARY)
    assert ownership.may_take(contact, PRIMARY, [])
    assert not ownership.may_take(contact, ME, [])


def test_several_contacts_with_one_email_are_never_guessed_between() -> None:
    crm, _, correlation = rig()
    crm.unique_emails = False
    crm.add(email="twin@example.com")
    crm.add(email="twin@example.com")
    with pytest.raises(AmbiguousMatch) as ambiguous:
        correlation.by_email(ME, "twin@example.com", [])
    assert ambiguous.value.message == ("2 CRM contacts share the email of auth0|me: ['c_1', 'c_2']")


def test_a_claim_lost_to_another_user_is_a_retry() -> None:
    crm, state, _ = rig()
    ownership = Ownership(state)
    contact_id = crm.add(email="ola@example.com")
    assert state.claim_contact(contact_id, OTHER, None)
    with pytest.raises(TransientError) as lost:
        ownership.claim(Found(crm.contacts[contact_id], "email"), ME)
    assert lost.value.reason == "claim_conflict"
    assert not state.claim_contact(contact_id, "auth0|third", None)  # still the other's
