"""Rules of the sync core's parts (`sync.py`'s frame, `upsert.py`, `deletion.py`,
`sync_base.py`) that mutants mutmut saw survive broke unnoticed (issue 28): each test
here failed when its rule was removed by hand, and expected values come from the rules
(`docs/sync-rules.md`), written out, never computed with the code under test.

The CRM is the in-memory one (`tests/fakes/memory_crm.py`), the state the memory store,
as in `tests/unit/test_rules_sync.py`, whose rig this file shares.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from auth0_sync.errors import AmbiguousMatch, EmailConflict, OwnedByOther, TransientError
from auth0_sync.events import parse_event
from auth0_sync.state import SyncState
from auth0_sync.sync import SyncCore
from tests.builders import at, created, deleted, identities, stamp, updated
from tests.fakes.memory_crm import Call, MemoryCrm
from tests.state_support import SettledLate
from tests.unit.test_rules_sync import (
    NOW,
    CountingStore,
    Rig,
    TimesOut,
    seed_mapping,
    writes_and_reads,
)

pytestmark = pytest.mark.unit

U, D, S = "auth0|u28p", "auth0|d28p", "google-oauth2|s28p"


def on(rig: Rig, crm: MemoryCrm) -> None:
    """Put the rig's core on another CRM (a subclass playing a moment of the CRM)."""
    crm.contacts = rig.crm.contacts
    rig.crm, rig.core = crm, SyncCore(rig.core.settings, crm, rig.state)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def commit(rig: Rig, state: SyncState) -> None:
    """Set a user's state as a store would hold it (states no event sequence here makes)."""
    rig.state.acquire(state.user_id, "seed", 30.0)
    rig.state.commit(state, "seed")


# Order: a delete over an update over a create, at an equal time (sync_base._advanced) -----


def test_an_update_at_the_signups_own_time_is_newer_whatever_the_event_ids() -> None:
    """At an equal change time an update is newer than a create, whatever the event ids
    say: so it is applied as the newest change (the contact deleted in the CRM meanwhile is
    created again), not as a late event (which would fail on the gone contact)."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola", event_id="evt_b"))
    rig.crm.contacts.clear()
    outcome = rig.apply(updated(U, at(0), email="ola@example.com", name="Ola N.", event_id="evt_a"))
    assert (outcome.status, outcome.reason) == ("applied", "created")
    (contact,) = rig.crm.contacts.values()
    assert (contact["name"], contact["auth0_user_id"]) == ("Ola N.", U)


# An email the CRM refused: the event is not advanced (sync_base._done) --------------------


def test_an_event_whose_email_is_owed_leaves_the_previous_event_the_last_applied() -> None:
    """U's 09:01 event is applied; its 09:02 event gets every field but its email (another
    contact holds it): the state is not advanced, so it still knows the 09:01 event as the
    last one applied: a redelivery of it is a duplicate, and an older event (09:00:30) is
    stale, each with no CRM call, not a change that would put an older name back."""
    rig = Rig()
    rig.crm.add(email="b@example.com", auth0_user_id=D)
    rig.apply(created(U, at(0), email="a@example.com", name="Ola"))
    first = updated(U, at(1), email="a@example.com", name="Ola One")
    rig.apply(first)
    with pytest.raises(EmailConflict):
        rig.apply(updated(U, at(2), email="b@example.com", name="Ola Two"))
    rig.crm.calls.clear()
    again = rig.apply(first)
    older = rig.apply(updated(U, at(0.5), email="a@example.com", name="Ola Half"))
    assert [(o.status, o.reason) for o in (again, older)] == [
        ("skipped", "duplicate"),
        ("skipped", "stale"),
    ]
    assert rig.crm.calls == []
    assert rig.crm.contacts["c_2"]["name"] == "Ola Two"


@pytest.mark.parametrize(
    ("before", "owing"),
    [
        # The last event applied is newer by its event id than the one that owes its email.
        (
            updated(U, at(1), email="a@example.com", name="Ola One", event_id="evt_z"),
            updated(U, at(2), email="b@example.com", name="Ola Two", event_id="evt_a"),
        ),
        # ... or by its type at an equal time (the signup's own time).
        (
            created(U, at(2), email="a@example.com", name="Ola", event_id="evt_z"),
            updated(U, at(2), email="b@example.com", name="Ola Two", event_id="evt_a"),
        ),
    ],
    ids=["by-event-id", "by-type"],
)
def test_the_retry_of_an_event_that_owes_its_email_writes_it(
    before: dict[str, Any], owing: dict[str, Any]
) -> None:
    """The event owing its email is not advanced in any part of the order key (time, type,
    event id): its retry, once the other contact let the address go, is newer than the last
    change applied and writes the email."""
    rig = Rig()
    held = rig.crm.add(email="b@example.com", auth0_user_id=D)
    if before["detail"]["type"] == "user.updated":
        rig.apply(created(U, at(0), email="a@example.com", name="Ola"))
    rig.apply(before)
    with pytest.raises(EmailConflict):
        rig.apply(owing)
    rig.crm.edit(held, email="d@example.com")
    outcome = rig.apply(owing)
    assert (outcome.status, outcome.reason) == ("applied", "updated")
    (own,) = rig.crm.owned_by(U)
    assert (own["email"], own["name"]) == ("b@example.com", "Ola Two")


def test_an_email_refused_on_a_contact_of_unknown_version_is_read_once() -> None:
    """A state from before versions were kept knows the contact but not its version: the
    write reads it first (one GET), and when the CRM refuses the email the write with the
    placeholder address is based on that read, not on another one."""
    rig = Rig()
    rig.crm.add(email="b@example.com", auth0_user_id=D)
    rig.apply(created(U, at(0), email="a@example.com", name="Ola"))  # c_2, "v1"
    state = rig.state.get(U)
    assert state is not None
    commit(rig, replace(state, version=None))
    rig.crm.calls.clear()
    with pytest.raises(EmailConflict):
        rig.apply(updated(U, at(1), email="b@example.com", name="Ola N."))
    assert writes_and_reads(rig) == [("GET", None), ("PATCH", '"v1"'), ("PATCH", '"v1"')]


# The wait for another invocation's lease (sync_base._acquire) ----------------------------


def test_an_event_waits_for_a_held_lease_at_most_a_quarter_of_its_own() -> None:
    """Another invocation holds the user's lease for 0.8 s more. An event whose own lease
    is 0.4 s waits at most a quarter of it (0.1 s, under the 2 s cap) and fails with
    `lease_held` for Lambda to retry; it does not outwait the other lease."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.state.acquire(U, "another-invocation", 0.8)
    event = parse_event(updated(U, at(1), email="ola@example.com", name="One"), now=NOW)
    with pytest.raises(TransientError) as held:
        rig.core.apply(event, lease_seconds=0.4)
    assert held.value.reason == "lease_held"
    assert rig.crm.contacts["c_1"]["name"] == "Ola"


# A pending delete, settled without the lease, done under it (sync._decide) ---------------


def test_an_older_event_of_a_delete_done_meanwhile_is_skipped_with_no_crm_call() -> None:
    """Read without the lease, the delete looked pending (its contact not found yet); under
    the lease it is done: the older event is skipped as `deleted`, nothing looked up or
    deactivated again."""
    # The lease-free read does not show yet that the user's delete is done, as when another
    # invocation deactivated the revealed contact just after that read.
    rig = Rig(state=SettledLate(delete_done=False))
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    assert rig.apply(deleted(U, at(5))).reason == "deactivated"
    rig.crm.calls.clear()
    older = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola N."))
    assert (older.status, older.reason) == ("skipped", "deleted")
    assert rig.crm.calls == []


# Writes of unknown outcome: only a write waits (sync._decide) ----------------------------


def unsure_state_rig() -> tuple[Rig, TimesOut]:
    """A HubSpot-like CRM (no versions: a write may land up to 60 s late)."""
    rig = Rig()
    crm = TimesOut()
    on(rig, crm)
    return rig, crm


def test_a_stale_event_with_nothing_to_write_is_not_held_back_by_an_unsure_write() -> None:
    """The user's last change is at 09:10, its contact unknown, and a write of unknown
    outcome was sent a moment ago: an older event (09:05), which can write nothing, is
    skipped as stale at once; it does not wait (`write_unconfirmed`) like a write."""
    rig, crm = unsure_state_rig()
    commit(
        rig,
        SyncState(
            U,
            last_change_time="2026-03-01T09:10:00.000000+00:00",
            last_rank=1,
            last_event_id="evt_last",
            unconfirmed=now_iso(),
        ),
    )
    outcome = rig.apply(updated(U, at(5), email="ola@example.com", name="Ola"))
    assert (outcome.status, outcome.reason) == ("skipped", "stale")
    assert crm.calls == []


def test_a_late_delete_waits_for_a_write_of_unknown_outcome() -> None:
    """A state that knows the contact but not what was written (rebuilt), whose phone was
    last spoken of at 09:01 by a past life, and a write of unknown outcome sent a moment
    ago: a late delete (09:05, before the 09:10 re-signup) would clear that phone, so it
    waits (`write_unconfirmed`, retried) and writes nothing yet."""
    rig, crm = unsure_state_rig()
    contact = crm.add(email="ola@example.com", phone="+4790000001", auth0_user_id=U)
    commit(
        rig,
        SyncState(
            U,
            contact_id=contact,
            matched_by="state",
            last_change_time="2026-03-01T09:10:00.000000+00:00",
            last_rank=0,
            last_event_id="evt_last",
            stated={"phone": "2026-03-01T09:01:00.000000+00:00|1|evt_past"},
            unconfirmed=now_iso(),
        ),
    )
    with pytest.raises(TransientError) as waiting:
        rig.apply(deleted(U, at(5)))
    assert waiting.value.reason == "write_unconfirmed"
    assert crm.writes() == []
    assert crm.contacts[contact]["phone"] == "+4790000001"


# The tombstone keeps nothing of the past life but its order (deletion._delete) ------------


def test_an_anonymizing_delete_leaves_a_state_that_keeps_only_the_order() -> None:
    """`DELETE_POLICY=anonymize`: "our state keeps only the tombstone's order" (sync-rules,
    Lifecycle): no contact, no digests, no field's last word, no linked accounts."""
    rig = Rig(delete_policy="anonymize")
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola", phone_number="+4790000001"))
    rig.apply(updated(U, at(1), email="ola@example.com", identities=identities(U, S)))
    rig.apply(deleted(U, at(5)))
    state = rig.state.get(U)
    assert state is not None
    assert (state.contact_id, state.written, state.stated, state.linked) == (None, {}, {}, [])
    assert (state.deleted_at, state.last_change_time) == (
        "2026-03-01T09:05:00.000000+00:00",
        "2026-03-01T09:05:00.000000+00:00",
    )


def test_a_re_signup_never_takes_the_contact_of_a_past_lifes_linked_account() -> None:
    """U linked S's account in its past life; U was deleted (its contact anonymized), then
    signs up again with the same id and a new address. The new life starts clean: S is not
    linked to it, so S's contact (found through the link) is not taken; U gets its own."""
    rig = Rig(delete_policy="anonymize")
    rig.apply(created(S, at(0), email="s@example.com", name="Sol"))  # c_1
    rig.apply(created(U, at(1), email="ola@example.com", name="Ola"))  # c_2
    rig.apply(updated(U, at(2), email="ola@example.com", identities=identities(U, S)))
    rig.apply(deleted(U, at(5)))
    outcome = rig.apply(updated(U, at(10), email="ola.new@example.com", name="Ola"))
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", "created", "c_3")
    assert (rig.crm.contacts["c_1"]["auth0_user_id"], rig.crm.contacts["c_1"]["name"]) == (
        S,
        "Sol",
    )


# A delete writes only the contact it decided on (deletion._deactivate) --------------------


class FreedAfterRead(MemoryCrm):
    """Right after the next read of a contact, a person clears its `auth0_user_id` in the
    CRM (a new version): the delete's write, based on what it read, meets 412."""

    free_next_read: bool = False

    def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        contact = super().get_contact(contact_id)
        if self.free_next_read and contact is not None:
            self.free_next_read = False
            self.edit(contact_id, auth0_user_id=None)
        return contact


def test_a_delete_never_writes_a_contact_taken_off_the_user_after_its_read() -> None:
    """The delete read the user's contact; before its write a person took the user off it.
    The contact is no longer the one the delete decided on: nothing is written (a retry,
    `crm_404`). The retry decides again: a contact carrying nobody is the user's to
    deactivate, and it gets the user's id back (as if the older events came first)."""
    rig = Rig()
    crm = FreedAfterRead()
    on(rig, crm)
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    crm.free_next_read = True
    delete = deleted(U, at(5))
    with pytest.raises(TransientError) as retried:
        rig.apply(delete)
    assert retried.value.reason == "crm_404"
    assert (crm.contacts["c_1"]["status"], crm.contacts["c_1"]["auth0_user_id"]) == ("active", None)
    assert rig.apply(delete).reason == "deactivated"
    assert (crm.contacts["c_1"]["status"], crm.contacts["c_1"]["auth0_user_id"]) == (
        "deactivated",
        U,
    )


# A contact changing hands (upsert._take, _take_now) --------------------------------------


class Meanwhile(MemoryCrm):
    """Runs `meanwhile` right after the next read of a contact by its id (once)."""

    meanwhile: Any = None

    def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        contact = super().get_contact(contact_id)
        if self.meanwhile is not None:
            step, self.meanwhile = self.meanwhile, None
            step(contact_id)
        return contact


def deleted_owner_rig() -> tuple[Rig, Meanwhile]:
    """D's contact (c_1), D deleted: U's signup with D's address will take it over."""
    rig = Rig()
    crm = Meanwhile()
    on(rig, crm)
    rig.apply(created(D, at(0), email="ola@example.com", name="Ola", phone_number="+4790000001"))
    rig.apply(deleted(D, at(1)))
    crm.calls.clear()
    return rig, crm


def test_while_a_contact_changes_hands_its_previous_owner_is_held() -> None:
    """U takes over deleted D's contact under D's lease too: an invocation for D meanwhile
    (a late event of D) cannot take D's lease until the transfer is done."""
    rig, crm = deleted_owner_rig()
    answers: list[str] = []

    def d_event_meanwhile(contact_id: str) -> None:
        try:
            rig.state.acquire(D, "d-invocation", 30.0)
            answers.append("lease taken")
        except TransientError as exc:
            answers.append(exc.reason)

    crm.meanwhile = d_event_meanwhile
    outcome = rig.apply(created(U, at(2), email="ola@example.com", name="Ola"))
    assert (outcome.reason, outcome.contact_id) == ("linked", "c_1")
    assert answers == ["lease_held"]


def test_a_contact_changing_hands_is_read_once_and_written_on_that_read() -> None:
    """The transfer reads the contact again (one GET) and writes on the version that read
    saw: no second read ("Costs ... one CRM read, on transfers only")."""
    rig, crm = deleted_owner_rig()  # c_1 is at "v2" after D's create and delete
    rig.apply(created(U, at(2), email="ola@example.com", name="Ola"))
    reads = [c.contact_id for c in crm.calls if c.method == "GET" and c.contact_id]
    assert reads == ["c_1"]
    assert [(c.method, c.version) for c in crm.writes()] == [("POST", None), ("PATCH", '"v2"')]


def test_a_contact_edited_while_it_changes_hands_is_still_taken_on_its_new_version() -> None:
    """Right after the transfer's read, a person edits D's contact (a new version): the
    write meets 412, reads it again, finds it still D's, the deleted owner it is being
    taken from, and writes it on the new version: it becomes U's, without D's values; the
    person's edit of a field the write did not change stays (sync-rules, "Writes")."""
    rig, crm = deleted_owner_rig()
    crm.meanwhile = lambda contact_id: crm.edit(contact_id, given_name="Edited")
    outcome = rig.apply(created(U, at(2), email="ola@example.com", name="Ola"))
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", "linked", "c_1")
    contact = crm.contacts["c_1"]
    assert (contact["auth0_user_id"], contact["name"], contact["phone"]) == (U, "Ola", None)
    assert contact["given_name"] == "Edited"


# Which contact a create meets (upsert._create, _unverified) -------------------------------


class AnswersWith(MemoryCrm):
    """A CRM whose next create answers with an existing contact (as a server keying
    idempotency on the event id alone would answer a replayed file's event)."""

    answer_with: str | None = None

    def create_contact(self, fields: Any, idempotency_key: str) -> dict[str, Any]:
        if self.answer_with is not None:
            contact_id, self.answer_with = self.answer_with, None
            self.calls.append(Call("POST", None, dict(fields)))
            return dict(self.contacts[contact_id])
        return super().create_contact(fields, idempotency_key)


def test_a_create_answered_with_a_deleted_users_contact_takes_it_over_clean() -> None:
    """The ownership rule decides for the contact a create answers with, as for any found:
    deleted D's contact changes hands to U (a link), keeping none of D's values."""
    rig = Rig(unique_emails=False)
    crm = AnswersWith(unique_emails=False)
    on(rig, crm)
    rig.apply(created(D, at(0), email="d@example.com", name="Dag", phone_number="+4790000001"))
    rig.apply(deleted(D, at(1)))
    crm.answer_with = "c_1"
    outcome = rig.apply(created(U, at(2), email="ola@example.com", name="Ola"))
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", "linked", "c_1")
    contact = crm.contacts["c_1"]
    assert (contact["auth0_user_id"], contact["email"], contact["name"]) == (
        U,
        "ola@example.com",
        "Ola",
    )
    assert (contact["phone"], contact["status"]) == (None, "active")


def test_a_create_answered_with_a_live_users_contact_is_owned_by_other() -> None:
    rig = Rig(unique_emails=False)
    crm = AnswersWith(unique_emails=False)
    on(rig, crm)
    rig.apply(created(D, at(0), email="d@example.com", name="Dag"))
    crm.answer_with = "c_1"
    with pytest.raises(OwnedByOther) as refused:
        rig.apply(created(U, at(2), email="ola@example.com", name="Ola"))
    assert refused.value.owner == D
    assert (crm.contacts["c_1"]["auth0_user_id"], crm.contacts["c_1"]["name"]) == (D, "Dag")


def test_a_create_answered_with_a_linked_accounts_contact_takes_it_as_a_link() -> None:
    """U's signup lists S's account (linked into U): the contact the create answers with
    carries S, so it changes hands to U (a link), written with U's values."""
    rig = Rig(unique_emails=False)
    crm = AnswersWith(unique_emails=False)
    on(rig, crm)
    rig.apply(created(S, at(0), email="s@example.com", name="Sol"))
    crm.answer_with = "c_1"
    signup = created(U, at(2), email="ola@example.com", name="Ola", identities=identities(U, S))
    outcome = rig.apply(signup)
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", "linked", "c_1")
    contact = crm.contacts["c_1"]
    assert (contact["auth0_user_id"], contact["email"], contact["name"]) == (
        U,
        "ola@example.com",
        "Ola",
    )


def test_a_signup_meeting_a_live_users_address_names_both_users() -> None:
    """A case twin: the 409, then the email lookup finds D's contact; the error a person
    reads in the DLQ names the contact, this user and the owner."""
    rig = Rig()
    rig.apply(created(D, at(0), email="Ola@example.com", name="Dag"))
    with pytest.raises(OwnedByOther) as refused:
        rig.apply(created(U, at(1), email="ola@example.com", name="Ola"))
    assert refused.value.message == (
        f"contact c_1 has the email of Auth0 user {U} but belongs to Auth0 user {D}; "
        "link the accounts in Auth0, or free the contact"
    )


def test_an_unverified_signup_whose_new_address_is_taken_still_owes_it_to_its_own_contact() -> None:
    """A create whose answer was lost left U's contact (its id on it, an old address); the
    retried signup, unverified, brings an address D's contact holds: the 409 does not claim
    D's contact, U's own is found by its id and gets every field but the email, which is
    owed (`email_conflict`)."""
    rig = Rig()
    own = rig.crm.add(email="old@example.com", name="Ola", auth0_user_id=U)
    rig.crm.add(email="taken@example.com", auth0_user_id=D)
    signup = created(U, at(0), email="taken@example.com", email_verified=False, name="Ola N.")
    with pytest.raises(EmailConflict):
        rig.apply(signup)
    contact = rig.crm.contacts[own]
    assert (contact["name"], contact["auth0_user_id"]) == ("Ola N.", U)
    assert contact["email"].endswith("@email-conflict.invalid")


# The email a lookup uses is the mapped one (upsert._upsert, _create) ----------------------

WORK_EMAIL = {"user_metadata.work_email": "email", "name": "name"}


def test_a_signup_meeting_its_mapped_address_links_the_contact_holding_it() -> None:
    """FIELD_MAPPING sends `user_metadata.work_email` as the CRM's email: the signup's 409
    is settled by looking up that address (not the Auth0 login address)."""
    rig = Rig(field_mapping=WORK_EMAIL)
    sales = rig.crm.add(email="ola@work.example", name="From sales")
    signup = created(U, at(0), email="ola@home.example", name="Ola",
                     user_metadata={"work_email": "ola@work.example"})  # fmt: skip
    outcome = rig.apply(signup)
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", "linked", sales)
    assert rig.crm.contacts[sales]["name"] == "Ola"


def test_an_update_finds_the_contact_by_its_mapped_address() -> None:
    """As above for an update, looked up before any create: on a CRM that does not refuse
    a second contact with one address, the contact holding the mapped address is linked."""
    rig = Rig(unique_emails=False, field_mapping=WORK_EMAIL)
    sales = rig.crm.add(email="ola@work.example", name="From sales")
    update = updated(U, at(0), email="ola@home.example", name="Ola",
                     user_metadata={"work_email": "ola@work.example"})  # fmt: skip
    outcome = rig.apply(update)
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", "linked", sales)
    assert list(rig.crm.contacts) == [sales]


# What a decision leaves in the state for the next event (upsert._upsert, _take_now) -------


def test_a_contact_found_already_right_is_written_next_on_the_version_read() -> None:
    """A state that knows the contact but not what was written: the event reads the
    contact through the mapping (it holds the event's values: nothing to write), and the
    next change is one PATCH on the version that read saw ("v0": the memory CRM's version
    of a contact no one wrote yet), with no second read."""
    rig = Rig()
    own = rig.crm.add(email="ola@example.com", name="Ola", auth0_user_id=U)
    seed_mapping(rig, own, U)
    same = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola"))
    assert (same.status, same.reason) == ("skipped", "unchanged")
    rig.crm.calls.clear()
    assert rig.apply(updated(U, at(2), email="ola@example.com", name="Ola N.")).reason == "updated"
    assert writes_and_reads(rig) == [("PATCH", '"v0"')]


def test_a_primarys_login_after_a_link_costs_one_request() -> None:
    """The state remembers the accounts the primary lists: its next login, listing the same
    secondary with the same values, is settled by one request (no lease), no CRM call."""
    store = CountingStore()
    rig = Rig(state=store)
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    linking = updated(U, at(1), email="ola@example.com", name="Ola N.", identities=identities(U, S))
    assert rig.apply(linking).reason == "updated"
    store.requests.clear()
    rig.crm.calls.clear()
    login = updated(U, at(2), email="ola@example.com", name="Ola N.",
                    identities=identities(U, S), last_login=stamp(at(2)))  # fmt: skip
    outcome = rig.apply(login)
    assert (outcome.status, outcome.reason) == ("skipped", "unchanged")
    assert store.requests == ["record_unchanged"]
    assert rig.crm.calls == []


def test_a_secondarys_event_skipped_as_linked_is_a_duplicate_when_delivered_again() -> None:
    """S's contact changed hands to its primary U (with S's address) at the link (09:02);
    S's 09:01 event, arriving after, reaches that contact by its address: skipped as
    `account_linked` and recorded, so its redelivery is a duplicate with no CRM call."""
    rig = Rig()
    rig.apply(created(S, at(0), email="s@example.com", name="Sol"))  # c_1
    linking = updated(U, at(2), email="s@example.com", name="Ola", identities=identities(U, S))
    assert rig.apply(linking).reason == "linked"
    late = updated(S, at(1), email="s@example.com", name="Sol N.")
    first = rig.apply(late)
    assert (first.status, first.reason) == ("skipped", "account_linked")
    rig.crm.calls.clear()
    again = rig.apply(late)
    assert (again.status, again.reason) == ("skipped", "duplicate")
    assert rig.crm.calls == []
    assert (rig.crm.contacts["c_1"]["auth0_user_id"], rig.crm.contacts["c_1"]["name"]) == (
        U,
        "Ola",
    )


def test_an_unverified_signup_meeting_two_contacts_of_its_own_names_them() -> None:
    """Two contacts carry the user (made by hand): ambiguous, never guessed; the error
    names the contacts and what they share."""
    rig = Rig()
    rig.crm.add(email="one@example.com", auth0_user_id=U)
    rig.crm.add(email="two@example.com", auth0_user_id=U)
    rig.crm.add(email="ola@example.com")
    with pytest.raises(AmbiguousMatch) as ambiguous:
        rig.apply(created(U, at(0), email="ola@example.com", email_verified=False))
    assert ambiguous.value.message == f"2 CRM contacts carry {U}: ['c_1', 'c_2']"


def test_create_only_a_new_life_taking_its_linked_accounts_contact_starts_clean() -> None:
    """SYNC_MODE=create_only keeps what a contact holds, but a new life starts clean in
    every mode: U, deleted (its contact anonymized), signs up again listing S's account;
    S's contact changes hands to U with U's values only, none of S's kept."""
    rig = Rig(sync_mode="create_only", delete_policy="anonymize")
    rig.apply(created(S, at(0), email="s@example.com", name="Sol", phone_number="+4790000001"))
    rig.apply(created(U, at(1), email="ola@example.com", name="Ola"))  # c_2
    rig.apply(deleted(U, at(2)))
    again = updated(U, at(5), email="ola.new@example.com", name="Ola N.",
                    identities=identities(U, S))  # fmt: skip
    outcome = rig.apply(again)
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", "linked", "c_1")
    contact = rig.crm.contacts["c_1"]
    assert (contact["auth0_user_id"], contact["email"], contact["name"]) == (
        U,
        "ola.new@example.com",
        "Ola N.",
    )
    assert contact["phone"] is None


def test_update_only_a_user_whose_known_contact_is_gone_forgets_it() -> None:
    """SYNC_MODE=update_only: the state knows a contact that is gone from the CRM; the
    update finds no other and is skipped as `contact_missing`. Its later events look again
    (by the user's id, by email), never at the gone contact."""
    rig = Rig(sync_mode="update_only")
    seed_mapping(rig, "c_gone", U)
    first = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola"))
    assert (first.status, first.reason) == ("skipped", "contact_missing")
    rig.crm.calls.clear()
    later = rig.apply(updated(U, at(2), email="ola@example.com", name="Ola N."))
    assert (later.status, later.reason) == ("skipped", "contact_missing")
    assert "c_gone" not in [c.contact_id for c in rig.crm.calls]


def test_a_skip_held_by_the_crm_keeps_the_version_its_read_saw() -> None:
    """create_only: a person edited the contact ("v2"); the user's rename, which the
    contact's own name holds back, reads it (seeing "v2") and is skipped as held by the
    CRM. The state keeps the version that read saw: once the operator moves to
    SYNC_MODE=upsert (no read before a write), the next change is one PATCH on "v2"."""
    rig = Rig(sync_mode="create_only")
    rig.apply(created(U, at(0), email="kim@example.com", name="Kim A"))  # "v1"
    rig.crm.edit("c_1", phone="+1 555 0100")  # "v2"
    held = rig.apply(updated(U, at(5), email="kim@example.com", name="Kim B"))
    assert (held.status, held.reason) == ("skipped", "held_by_crm")
    upsert = Rig(state=rig.state)  # SYNC_MODE=upsert, on the same CRM and state
    upsert.crm, upsert.core = rig.crm, SyncCore(upsert.core.settings, rig.crm, rig.state)
    rig.crm.calls.clear()
    outcome = upsert.apply(updated(U, at(6), email="kim@example.com", name="Kim C"))
    assert (outcome.status, outcome.reason) == ("applied", "updated")
    assert writes_and_reads(upsert) == [("PATCH", '"v2"')]


# A secondary unlinked since the link keeps its contact (upsert._take) ---------------------


def unlinked_rig() -> Rig:
    """S's contact c_1, P's c_2; P's 09:02 event links S; S's own 09:03 event (after an
    unlink, S is a user of its own again); then P's contact is deleted in the CRM."""
    rig = Rig()
    rig.apply(created(S, at(0), email="s@example.com", name="Sol"))
    rig.apply(created(U, at(1), email="ola@example.com", name="Ola"))
    rig.apply(updated(U, at(2), email="ola@example.com", name="Ola", identities=identities(U, S)))
    assert rig.apply(updated(S, at(3), email="s@example.com", name="Sol N.")).reason == "updated"
    del rig.crm.contacts["c_2"]
    return rig


def test_a_primary_never_takes_the_contact_of_a_secondary_unlinked_since() -> None:
    """P (U here) looks for a contact again and reaches S's through the link it knew: S has
    had an event of its own since the link, so the contact is S's again; P gets its own."""
    rig = unlinked_rig()
    outcome = rig.apply(updated(U, at(4), email="ola@example.com", name="Ola N."))
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", "created", "c_3")
    assert (rig.crm.contacts["c_1"]["auth0_user_id"], rig.crm.contacts["c_1"]["name"]) == (
        S,
        "Sol N.",
    )


def test_a_primary_reaching_an_unlinked_secondarys_address_is_told_why() -> None:
    """P's unlink event (09:03:30) no longer lists S; P then takes S's address: the contact
    holding it is S's again (S spoke since the link), refused with a reason a person can
    act on."""
    rig = unlinked_rig()
    rig.apply(updated(U, at(3.5), email="ola@example.com", name="Ola"))
    with pytest.raises(OwnedByOther) as refused:
        rig.apply(updated(U, at(4), email="s@example.com", name="Ola N."))
    assert refused.value.owner == S
    assert refused.value.message == (
        f"contact c_1 belongs to Auth0 user {S}, unlinked from Auth0 user {U} since the link"
    )
    assert rig.crm.contacts["c_1"]["name"] == "Sol N."


def test_a_link_only_a_late_event_showed_is_dated_so_a_later_unlink_is_seen() -> None:
    """P's late 09:05 event (after its 09:06 one) is the only one listing S: S is marked as
    linked at 09:05. S's own 09:07 event comes from after an unlink, so when P later takes
    S's address, the contact holding it is S's again: refused, not taken."""
    rig = Rig()
    rig.apply(created(S, at(0), email="s@example.com", name="Sol"))  # c_1
    rig.apply(created(U, at(1), email="ola@example.com", name="Ola"))  # c_2
    rig.apply(updated(U, at(6), email="ola@example.com", name="Ola N."))
    rig.apply(updated(U, at(5), email="ola@example.com", identities=identities(U, S)))
    assert rig.apply(updated(S, at(7), email="s@example.com", name="Sol N.")).reason == "updated"
    del rig.crm.contacts["c_2"]
    with pytest.raises(OwnedByOther) as refused:
        rig.apply(updated(U, at(8), email="s@example.com", name="Ola M."))
    assert refused.value.owner == S
    assert (rig.crm.contacts["c_1"]["auth0_user_id"], rig.crm.contacts["c_1"]["name"]) == (
        S,
        "Sol N.",
    )
