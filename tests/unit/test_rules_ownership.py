"""The ownership rule (`auth0_sync/ownership.py`) at its own layer (issue 28): which
contact an email lookup may take, and when a contact may change hands. Each test failed
when its rule was removed by hand.

The CRM is the in-memory one (`tests/fakes/memory_crm.py`), the state the memory store.
"""

from __future__ import annotations

import logging

import pytest

from auth0_sync.errors import AmbiguousMatch, OwnedByOther, TransientError
from auth0_sync.events import Auth0BusEvent, parse_event
from auth0_sync.ownership import Correlation, Found, Ownership
from auth0_sync.state import MemorySyncStateStore, SyncState
from tests.builders import at, created, deleted, updated
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


# Which contact an event is about (Correlation.find / find_own / known_ids) ----------------


def event(kind: str, user_id: str = ME, **profile: object) -> Auth0BusEvent:
    build = {"created": created, "updated": updated, "deleted": deleted}[kind]
    return parse_event(build(user_id, at(1), **profile), now=at(60))


def test_find_looks_up_in_order_state_hint_id_email_then_linked() -> None:
    crm, _, correlation = rig()
    mapped = crm.add(email="mapped@example.com")
    hinted = crm.add(email="hinted@example.com")
    carrying = crm.add(email="carrying@example.com", auth0_user_id=ME)
    crm.unique_emails = False
    emailed = crm.add(email="ola@example.com")
    with_hint = event("updated", app_metadata={"crm_contact_id": hinted})
    plain = event("updated")
    state = SyncState(ME, contact_id=mapped)

    def how(ev: Auth0BusEvent, current: SyncState, email: str | None) -> tuple[str, str] | None:
        found = correlation.find(ev, current, [], email)
        return None if found is None else (found.id, found.how)

    assert how(with_hint, state, "ola@example.com") == (mapped, "state")
    assert how(with_hint, SyncState(ME), "ola@example.com") == (hinted, "app_metadata")
    assert how(plain, SyncState(ME), "ola@example.com") == (carrying, "auth0_user_id")
    del crm.contacts[carrying]
    assert how(plain, SyncState(ME), "ola@example.com") == (emailed, "email")
    assert how(plain, SyncState(ME), "nobody@example.com") is None
    # A mapping to a contact gone from the CRM falls through to the next way.
    del crm.contacts[mapped]
    assert how(plain, state, "ola@example.com") == (emailed, "email")
    # A mapped contact carrying the user is theirs.
    crm.contacts[emailed]["auth0_user_id"] = ME
    assert how(plain, SyncState(ME, contact_id=emailed), None) == (emailed, "state")


def test_find_with_hint_only_looks_at_nothing_but_the_known_ids() -> None:
    crm, _, correlation = rig()
    crm.add(email="ola@example.com", auth0_user_id=ME)
    assert correlation.find(event("created"), SyncState(ME), [], "ola@example.com",
                            hint_only=True) is None  # fmt: skip
    assert [c.method for c in crm.calls] == []


def test_find_takes_a_linked_secondarys_contact_last() -> None:
    crm, _, correlation = rig()
    theirs = crm.add(email="s@example.com", auth0_user_id=OTHER)
    found = correlation.find(event("updated"), SyncState(ME), [OTHER], "ola@example.com")
    assert found is not None
    assert (found.id, found.how) == (theirs, "linked")


def test_several_contacts_carrying_one_user_are_never_guessed_between() -> None:
    crm, _, correlation = rig()
    crm.add(email="a@example.com", auth0_user_id=ME)
    crm.add(email="b@example.com", auth0_user_id=ME)
    with pytest.raises(AmbiguousMatch) as ambiguous:
        correlation.find(event("updated"), SyncState(ME), [], "a@example.com")
    assert ambiguous.value.message == "2 CRM contacts carry auth0|me: ['c_1', 'c_2']"
    with pytest.raises(AmbiguousMatch) as again:
        correlation.find_own(event("deleted"), SyncState(ME))
    assert again.value.message == "2 CRM contacts carry auth0|me: ['c_1', 'c_2']"
    crm.contacts.clear()
    crm.add(email="s1@example.com", auth0_user_id=OTHER)
    crm.add(email="s2@example.com", auth0_user_id=OTHER)
    with pytest.raises(AmbiguousMatch) as linked:
        correlation.find(event("updated"), SyncState(ME), [OTHER], None)
    assert linked.value.message == "2 CRM contacts carry auth0|other: ['c_3', 'c_4']"


def test_a_hint_to_another_users_contact_is_logged_with_ids_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crm, _, correlation = rig()
    theirs = crm.add(email="x@example.com", auth0_user_id=OTHER)
    hinted = event("updated", app_metadata={"crm_contact_id": theirs})
    with caplog.at_level(logging.WARNING):
        assert correlation.find(hinted, SyncState(ME), [], None) is None
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage() == (
        "contact hint ignored: the contact belongs to another Auth0 user"
    )
    assert (record.event_id, record.user_id, record.contact_id) == (  # type: ignore[attr-defined]
        hinted.event_id,
        ME,
        theirs,
    )


def test_a_delete_finds_only_a_contact_carrying_the_user_or_nobody() -> None:
    crm, _, correlation = rig()
    free = crm.add(email="ola@example.com")
    gone = event("deleted", email="ola@example.com")
    found = correlation.find_own(gone, SyncState(ME))
    assert found is not None
    assert (found.id, found.how) == (free, "email")
    found = correlation.find_own(gone, SyncState(ME, contact_id=free))
    assert found is not None
    assert (found.id, found.how) == (free, "state")
    crm.contacts[free]["auth0_user_id"] = OTHER
    assert correlation.find_own(gone, SyncState(ME, contact_id=free)) is None
    assert correlation.find_own(event("deleted"), SyncState(ME)) is None  # no email in it
    mine = crm.add(email="me@example.com", auth0_user_id=ME)
    found = correlation.find_own(event("deleted"), SyncState(ME))
    assert found is not None
    assert (found.id, found.how) == (mine, "auth0_user_id")


def test_a_deleted_email_shared_by_two_contacts_is_never_guessed_between() -> None:
    crm, _, correlation = rig()
    crm.unique_emails = False
    crm.add(email="twin@example.com")
    crm.add(email="twin@example.com")
    with pytest.raises(AmbiguousMatch) as ambiguous:
        correlation.find_own(event("deleted", email="twin@example.com"), SyncState(ME))
    assert ambiguous.value.message == ("2 CRM contacts share the deleted email: ['c_1', 'c_2']")


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("c_9", [("c_1", "state"), ("c_9", "app_metadata")]),
        (9, [("c_1", "state"), ("9", "app_metadata")]),
        ("c_1", [("c_1", "state")]),  # the stored mapping already: asked once
        ("", [("c_1", "state")]),
        (True, [("c_1", "state")]),
        (None, [("c_1", "state")]),
        ({"id": "c_9"}, [("c_1", "state")]),
    ],
)
def test_the_known_ids_are_the_mapping_then_a_usable_hint(
    hint: object, expected: list[tuple[str, str]]
) -> None:
    _, _, correlation = rig()
    hinted = event("updated", app_metadata={"crm_contact_id": hint})
    assert correlation.known_ids(SyncState(ME, contact_id="c_1"), hinted) == expected


@pytest.mark.parametrize(
    ("hint", "expected"),
    [("c_1", [("c_1", "app_metadata")]), (0, [("0", "app_metadata")]), ("", []), (False, [])],
)
def test_without_a_mapping_a_usable_hint_is_the_only_known_id(
    hint: object, expected: list[tuple[str, str]]
) -> None:
    _, _, correlation = rig()
    hinted = event("updated", app_metadata={"crm_contact_id": hint})
    assert correlation.known_ids(SyncState(ME), hinted) == expected


def test_a_mapping_gone_from_the_crm_falls_through_to_the_hint() -> None:
    crm, _, correlation = rig()
    hinted = crm.add(email="ola@example.com", auth0_user_id=ME)
    with_hint = event("updated", app_metadata={"crm_contact_id": hinted})
    found = correlation.find(with_hint, SyncState(ME, contact_id="c_gone"), [], None)
    assert found is not None
    assert (found.id, found.how) == (hinted, "app_metadata")


def test_an_email_lookup_takes_the_contact_of_an_account_linked_into_the_user() -> None:
    """The secondary's state says it was linked into me (its event came first): its
    contact, found by my email, is mine to take, even before my profile lists it."""
    crm, state, correlation = rig()
    theirs = crm.add(email="ola@example.com", auth0_user_id=OTHER)
    state.mark_linked(OTHER, ME)
    found = correlation.find(event("updated"), SyncState(ME), [], "ola@example.com")
    assert found is not None
    assert (found.id, found.how) == (theirs, "email")


def test_a_deletes_email_lookup_asks_for_that_email_only() -> None:
    crm, _, correlation = rig()
    crm.add(email="someone@example.com")  # nobody's, another address
    free = crm.add(email="ola@example.com")
    found = correlation.find_own(event("deleted", email="ola@example.com"), SyncState(ME))
    assert found is not None
    assert found.id == free
    assert crm.calls[-1].body == {"email": "ola@example.com", "auth0_user_id": None}


def test_a_claim_from_the_previous_owner_succeeds_once() -> None:
    """A transfer: the claim item names the owner read from the CRM, so the new owner's
    claim replaces it; anyone else's is refused afterwards."""
    crm, state, _ = rig()
    ownership = Ownership(state)
    contact_id = crm.add(email="ola@example.com", auth0_user_id=OTHER)
    assert state.claim_contact(contact_id, OTHER, None)
    ownership.claim(Found(crm.contacts[contact_id], "email"), ME)
    assert not state.claim_contact(contact_id, OTHER, None)
    assert state.claim_contact(contact_id, ME, None)


def test_a_claim_is_recorded_for_the_user() -> None:
    crm, state, _ = rig()
    contact_id = crm.add(email="ola@example.com")
    Ownership(state).claim(Found(crm.contacts[contact_id], "email"), ME)
    assert not state.claim_contact(contact_id, OTHER, None)
    assert state.claim_contact(contact_id, ME, None)


def test_a_lost_claim_says_which_contact() -> None:
    crm, state, _ = rig()
    contact_id = crm.add(email="ola@example.com")
    assert state.claim_contact(contact_id, OTHER, None)
    with pytest.raises(TransientError) as lost:
        Ownership(state).claim(Found(crm.contacts[contact_id], "email"), ME)
    assert lost.value.message == "contact c_1 is being claimed by another Auth0 user"
