"""Rules of the sync core that no other test held (issue 28): each test here failed when
its rule was removed by hand (a mutation of `auth0_sync/sync.py`), and expected values are
written out, never computed with the code under test.

The CRM is the in-memory one (`tests/fakes/memory_crm.py`), the state the memory store.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from auth0_sync.errors import CrmRejected, EmailConflict, OwnedByOther, TransientError
from auth0_sync.events import parse_event
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore, Settled, SyncState
from auth0_sync.sync import Outcome, SyncCore
from tests.builders import at, created, deleted, identities, stamp, updated
from tests.fakes.memory_crm import Call, MemoryCrm
from tests.state_support import SettledLate

pytestmark = pytest.mark.unit

NOW = at(60 * 24 * 30)
U, D = "auth0|u28", "auth0|d28"
CrmT = TypeVar("CrmT", bound=MemoryCrm)


class Rig:
    """One core over a memory CRM and a memory state store."""

    def __init__(
        self,
        *,
        unique_emails: bool = True,
        state: MemorySyncStateStore | None = None,
        **settings: Any,
    ) -> None:
        self.crm = MemoryCrm(unique_emails=unique_emails)
        self.state = state or MemorySyncStateStore()
        config = Settings(crm_base_url="http://crm.invalid", crm_api_token="t", **settings)
        self.core = SyncCore(config, self.crm, self.state)

    def apply(self, raw: dict[str, Any]) -> Outcome:
        return self.core.apply(parse_event(raw, now=NOW), lease_seconds=30.0)

    def use(self, crm: CrmT) -> CrmT:
        """Go on with `crm` (one that misbehaves on cue), holding the contacts so far."""
        crm.contacts = self.crm.contacts
        self.crm, self.core = crm, SyncCore(self.core.settings, crm, self.state)
        return crm


class CommitFailsOnce(MemorySyncStateStore):
    """A state store whose first commit fails after the CRM write (a throttled table)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def commit(self, state: SyncState, owner: str) -> None:
        if not self.failed:
            self.failed = True
            raise TransientError("state table: throttled", "state_unavailable")
        super().commit(state, owner)


def seed_mapping(rig: Rig, contact_id: str, user_id: str = U) -> None:
    """A state that knows the user's contact but not what was written (a rebuilt state)."""
    rig.state.acquire(user_id, "seed", 30.0)
    rig.state.commit(
        SyncState(
            user_id,
            contact_id=contact_id,
            matched_by="auth0_user_id",
            last_change_time="2026-03-01T09:00:00.000000+00:00",
            last_rank=0,
            last_event_id="evt_seed",
        ),
        "seed",
    )


# A create's idempotency key -------------------------------------------------------------


def test_a_retried_create_makes_no_second_contact() -> None:
    """The create reached the CRM, the state commit failed, Lambda retries the event: the
    retry must send the same idempotency key (whatever it is made of, it depends only on
    the user and the event), so the CRM answers the first contact. The CRM here does not
    enforce unique emails, so nothing but the key can stop a second contact."""
    rig = Rig(unique_emails=False, state=CommitFailsOnce())
    signup = created(U, at(0), email="ola@example.com", name="Ola")
    with pytest.raises(TransientError):
        rig.apply(signup)
    outcome = rig.apply(signup)
    assert outcome.reason == "created"
    assert [c["email"] for c in rig.crm.contacts.values()] == ["ola@example.com"]
    assert [c.method for c in rig.crm.writes()] == ["POST", "POST"]  # the retry did send


def test_two_users_creates_are_two_contacts() -> None:
    """The key is per event: two signups on a CRM without unique emails are two contacts."""
    rig = Rig(unique_emails=False)
    rig.apply(created(U, at(0), email="same@example.com"))
    rig.apply(created(D, at(1), email="same@example.com"))
    assert sorted(c["auth0_user_id"] for c in rig.crm.contacts.values()) == [D, U]


# The source_updated_at stamp -----------------------------------------------------------


def test_a_created_contact_carries_the_events_change_time() -> None:
    rig = Rig()
    rig.apply(created(U, at(5), email="ola@example.com"))
    (contact,) = rig.crm.contacts.values()
    assert contact["source_updated_at"] == "2026-03-01T09:05:00.000000+00:00"
    assert contact["status"] == "active"
    assert contact["auth0_user_id"] == U


def test_an_update_and_a_delete_stamp_their_own_change_time() -> None:
    rig = Rig()
    rig.apply(created(U, at(5), email="ola@example.com", name="Ola"))
    rig.apply(updated(U, at(7), email="ola@example.com", name="Ola N."))
    (contact,) = rig.crm.contacts.values()
    assert contact["source_updated_at"] == "2026-03-01T09:07:00.000000+00:00"
    rig.apply(deleted(U, at(9)))
    assert contact["source_updated_at"] == "2026-03-01T09:09:00.000000+00:00"
    assert contact["status"] == "deactivated"


# What an applied event is reported (and counted) as -------------------------------------


def test_a_plain_update_of_a_known_contact_is_an_update() -> None:
    rig = Rig()
    assert rig.apply(created(U, at(0), email="ola@example.com", name="Ola")).reason == "created"
    outcome = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola N."))
    assert (outcome.status, outcome.reason) == ("applied", "updated")


def test_an_update_through_a_mapping_without_digests_is_an_update_not_a_reactivation() -> None:
    """A state that knows the contact but not what was written (as after a state rebuild)
    reaches the contact through the stored mapping: still a plain update, not a new life."""
    rig = Rig()
    contact_id = rig.crm.add(email="ola@example.com", name="Ola", auth0_user_id=U)
    seed_mapping(rig, contact_id)
    outcome = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola N."))
    assert (outcome.reason, outcome.contact_id) == ("updated", contact_id)
    assert rig.crm.contacts[contact_id]["name"] == "Ola N."


def test_a_mapped_contact_that_lost_the_users_id_gets_it_back_as_a_link() -> None:
    """Reached through the stored mapping, but the contact no longer carries the user (an
    operator cleared it): writing the id on it again is a link, not a plain update."""
    rig = Rig()
    contact_id = rig.crm.add(email="ola@example.com", name="Ola")
    seed_mapping(rig, contact_id)
    outcome = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola N."))
    assert (outcome.reason, outcome.contact_id) == ("linked", contact_id)
    assert rig.crm.contacts[contact_id]["auth0_user_id"] == U


def test_an_update_of_a_contact_found_by_its_auth0_user_id_is_an_update() -> None:
    rig = Rig()
    contact_id = rig.crm.add(email="ola@example.com", name="Ola", auth0_user_id=U)
    outcome = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola N."))
    assert (outcome.reason, outcome.contact_id) == ("updated", contact_id)


def test_a_re_signup_on_the_same_contact_is_a_reactivation() -> None:
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.apply(deleted(U, at(1)))
    outcome = rig.apply(created(U, at(2), email="ola@example.com", name="Ola"))
    assert outcome.reason == "reactivated"
    (contact,) = rig.crm.contacts.values()
    assert contact["status"] == "active"


def test_a_contact_taken_over_from_a_deleted_user_is_a_transfer() -> None:
    """A deleted user's contact taken by a new identity with the same email is reported
    as `linked` (it changed hands), never as a plain update."""
    rig = Rig()
    rig.apply(created(D, at(0), email="ola@example.com", name="Ola"))
    rig.apply(deleted(D, at(1)))
    outcome = rig.apply(created(U, at(2), email="ola@example.com", name="Ola"))
    assert outcome.reason == "linked"
    (contact,) = rig.crm.contacts.values()
    assert (contact["auth0_user_id"], contact["status"]) == (U, "active")


def test_an_unmapped_contact_with_the_users_email_is_linked_not_updated() -> None:
    """A contact nobody owns yet, found by email, gets the user's id: a link."""
    rig = Rig()
    contact_id = rig.crm.add(email="ola@example.com", name="Ola")
    outcome = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola N."))
    assert (outcome.reason, outcome.contact_id) == ("linked", contact_id)
    assert rig.crm.contacts[contact_id]["auth0_user_id"] == U


# Anonymize ----------------------------------------------------------------------------


def test_an_anonymized_contact_loses_the_auth0_user_id_and_the_state_its_mapping() -> None:
    rig = Rig(delete_policy="anonymize")
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola", phone_number="+4790000001"))
    outcome = rig.apply(deleted(U, at(5)))
    assert outcome.reason == "anonymized"
    (contact,) = rig.crm.contacts.values()
    assert contact["auth0_user_id"] == ""
    assert contact["email"].endswith("@anonymized.invalid")
    assert (contact["name"], contact["phone"], contact["status"]) == (None, None, "deactivated")
    state = rig.state.get(U)
    assert state is not None
    assert (state.contact_id, state.matched_by, state.written) == (None, None, {})


def test_a_re_signup_after_anonymize_gets_a_new_contact() -> None:
    """What the dropped mapping means: the anonymized contact is never written again for
    the person (a kept mapping would reactivate it with their data)."""
    rig = Rig(delete_policy="anonymize")
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.apply(deleted(U, at(5)))
    (anonymized,) = rig.crm.contacts
    outcome = rig.apply(created(U, at(10), email="ola@example.com", name="Ola"))
    assert outcome.reason == "created"
    assert outcome.contact_id != anonymized
    assert rig.crm.contacts[anonymized]["auth0_user_id"] == ""
    assert rig.crm.contacts[anonymized]["name"] is None


# A late event's field-level order -------------------------------------------------------


def test_a_late_event_that_changes_nothing_still_records_its_word_on_each_field() -> None:
    """Events at 09:00 (signup), 09:03 (the name only), then late ones at 09:02 and 09:01.
    The 09:02 event repeats the email already written: nothing to write, but it is now the
    last word on the email, so the 09:01 event's older email must not be written."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.apply(updated(U, at(3), name="Ola N."))
    late = rig.apply(updated(U, at(2), email="ola@example.com", name="Ola"))
    assert (late.status, late.reason, late.contact_id) == ("skipped", "stale", "c_1")
    older = rig.apply(updated(U, at(1), email="old@example.com", name="Ola"))
    assert (older.status, older.reason) == ("skipped", "stale")
    (contact,) = rig.crm.contacts.values()
    assert (contact["email"], contact["name"]) == ("ola@example.com", "Ola N.")


def test_a_late_event_sets_a_field_no_newer_event_spoke_of() -> None:
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.apply(updated(U, at(3), name="Ola N."))
    late = rig.apply(updated(U, at(2), name="Ola", phone_number="+4790000001"))
    assert (late.status, late.reason) == ("applied", "updated")
    (contact,) = rig.crm.contacts.values()
    assert (contact["name"], contact["phone"]) == ("Ola N.", "+4790000001")


# A contact gone, a CRM that disagrees with itself ---------------------------------------


class VanishingCrm(MemoryCrm):
    """A CRM where a contact is deleted by someone else right before our next write."""

    def __init__(self) -> None:
        super().__init__()
        self.vanish_on_write = False

    def update_contact(
        self, contact_id: str, fields: Any, if_match: str | None = None
    ) -> dict[str, Any] | None:
        if self.vanish_on_write:
            self.contacts.pop(contact_id, None)
        return super().update_contact(contact_id, fields, if_match)


class LaggingSearch(MemoryCrm):
    """A CRM whose search does not see a contact yet (its index lags) while its create
    already refuses the email (409)."""

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[dict[str, Any]]:
        super().find_contacts(email=email, auth0_user_id=auth0_user_id)
        return []


def test_a_contact_deleted_in_the_crm_is_created_again_on_the_next_change() -> None:
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.crm.contacts.clear()  # someone deleted it in the CRM
    rig.crm.calls.clear()
    outcome = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola N."))
    assert outcome.reason == "created"
    # The PATCH said 404: the gone contact is not asked for again; the user's id and
    # email are looked up, then a new contact is created.
    assert [(c.method, c.contact_id) for c in rig.crm.calls] == [
        ("PATCH", "c_1"),
        ("GET", None),
        ("GET", None),
        ("POST", None),
    ]
    (contact,) = rig.crm.contacts.values()
    assert (contact["id"], contact["name"], contact["auth0_user_id"]) == ("c_2", "Ola N.", U)
    state = rig.state.get(U)
    assert state is not None
    assert (state.contact_id, state.matched_by) == ("c_2", "created")


def test_with_missing_contacts_skipped_an_update_creates_nothing() -> None:
    rig = Rig(missing_contact_policy="skip")
    outcome = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola"))
    assert (outcome.status, outcome.reason) == ("skipped", "contact_missing")
    assert rig.crm.contacts == {}
    state = rig.state.get(U)
    assert state is not None
    assert (state.contact_id, state.written, state.last_event_id) == (None, {}, outcome.event_id)
    # A signup still creates.
    assert rig.apply(created(U, at(2), email="ola@example.com")).reason == "created"


def test_a_late_delete_clears_what_only_the_past_life_said() -> None:
    """Signup at 09:00 with a phone; re-signup (same id) at 09:10 without one; the delete
    of 09:05 arrives last: the phone was the past life's alone, so it is cleared; the
    name the new life gave stays, and the contact stays active."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola", phone_number="+4790000001"))
    rig.apply(created(U, at(10), email="ola@example.com", name="Ola N."))
    outcome = rig.apply(deleted(U, at(5)))
    assert (outcome.status, outcome.reason) == ("applied", "updated")
    (contact,) = rig.crm.contacts.values()
    assert (contact["name"], contact["phone"], contact["status"]) == ("Ola N.", None, "active")
    # Another delete of that moment finds nothing left to clear.
    again = rig.apply(deleted(U, at(5)))
    assert again.status == "skipped"
    assert len(rig.crm.writes()) == 3


def test_a_contact_that_already_holds_the_users_values_costs_no_write() -> None:
    """A state rebuilt (or lost): the contact carrying the user already holds every value
    the event sends; it is mapped again without a write."""
    rig = Rig()
    contact_id = rig.crm.add(email="ola@example.com", name="Ola", auth0_user_id=U)
    outcome = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola"))
    assert (outcome.status, outcome.reason, outcome.contact_id) == (
        "skipped",
        "unchanged",
        contact_id,
    )
    assert rig.crm.writes() == []
    state = rig.state.get(U)
    assert state is not None
    assert (state.contact_id, state.matched_by) == (contact_id, "auth0_user_id")
    # The next change writes only what differs from what the contact held.
    rig.apply(updated(U, at(2), email="ola@example.com", name="Ola N."))
    assert [c.body for c in rig.crm.writes()] == [
        {"name": "Ola N.", "source_updated_at": "2026-03-01T09:02:00.000000+00:00"}
    ]


def test_a_409_on_create_with_no_contact_found_is_permanent() -> None:
    rig = Rig()
    rig.crm = LaggingSearch()
    rig.core = SyncCore(rig.core.settings, rig.crm, rig.state)
    rig.crm.add(email="ola@example.com")
    with pytest.raises(CrmRejected) as refused:
        rig.apply(created(U, at(0), email="ola@example.com"))
    assert refused.value.reason == "crm_409"
    assert refused.value.message == (
        "crm POST /contacts: HTTP 409: email taken; but no contact has that email"
    )


def test_a_contact_vanishing_as_it_is_written_or_deactivated_is_a_retry() -> None:
    rig = Rig()
    crm = rig.use(VanishingCrm())
    crm.add(email="ola@example.com", auth0_user_id=U, name="Ola")
    crm.vanish_on_write = True
    with pytest.raises(TransientError) as gone:
        rig.apply(updated(U, at(1), email="ola@example.com", name="Ola N."))
    assert (gone.value.reason, gone.value.message) == (
        "crm_404",
        "contact c_1 vanished while it was written",
    )
    crm.vanish_on_write = False
    crm.add(email="ola@example.com", auth0_user_id=U, name="Ola")
    crm.vanish_on_write = True
    with pytest.raises(TransientError) as deleting:
        rig.apply(deleted(U, at(2)))
    assert (deleting.value.reason, deleting.value.message) == (
        "crm_404",
        "contact c_2 vanished while it was deleted",
    )


# The quick path and late events (mutants mutmut saw survive) ------------------------------


def login(when_minutes: float, **profile: Any) -> dict[str, Any]:
    """A `user.updated` shaped like a login: `last_login` equal to `updated_at`."""
    return updated(U, at(when_minutes), last_login=stamp(at(when_minutes)), **profile)


def test_a_login_that_changes_nothing_is_recorded_as_the_last_event() -> None:
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    first = login(1, email="ola@example.com", name="Ola")
    outcome = rig.apply(first)
    assert (outcome.status, outcome.reason) == ("skipped", "unchanged")
    assert rig.crm.writes()[1:] == []
    state = rig.state.get(U)
    assert state is not None
    assert (state.last_event_id, state.last_change_time) == (
        first["detail"]["id"],
        "2026-03-01T09:01:00.000000+00:00",
    )
    assert rig.apply(first).reason == "duplicate"


def test_a_late_delete_starts_the_new_life_even_with_nothing_to_clear() -> None:
    """Signup 09:00, re-signup 09:10, then the 09:05 delete: whatever is older than the
    delete belongs to the past life, cleared or not."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.apply(created(U, at(10), email="ola@example.com", name="Ola N."))
    late_delete = rig.apply(deleted(U, at(5)))
    assert (late_delete.status, late_delete.reason) == ("skipped", "stale")
    older = rig.apply(updated(U, at(3), email="ola@example.com", phone_number="+4790000001"))
    assert (older.status, older.reason) == ("skipped", "deleted")
    (contact,) = rig.crm.contacts.values()
    assert "phone" not in contact


def test_a_late_delete_that_clears_also_starts_the_new_life() -> None:
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola", phone_number="+4790000001"))
    rig.apply(created(U, at(10), email="ola@example.com", name="Ola N."))
    rig.apply(deleted(U, at(5)))
    older = rig.apply(updated(U, at(3), email="ola@example.com", phone_number="+4790000002"))
    assert (older.status, older.reason) == ("skipped", "deleted")
    (contact,) = rig.crm.contacts.values()
    assert contact["phone"] is None


def test_a_late_event_reports_its_contact_and_remembers_what_it_wrote() -> None:
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.apply(updated(U, at(3), name="Ola N."))
    stale = rig.apply(updated(U, at(2), name="Ola"))
    assert (stale.reason, stale.contact_id) == ("stale", "c_1")
    late = rig.apply(updated(U, at(2.5), phone_number="+4790000001"))
    assert (late.reason, late.contact_id) == ("updated", "c_1")
    writes = len(rig.crm.writes())
    # A newer event with the same phone writes nothing: the late write was remembered.
    newer = rig.apply(updated(U, at(4), name="Ola N.", phone_number="+4790000001"))
    assert newer.reason == "unchanged"
    assert len(rig.crm.writes()) == writes


def test_a_late_event_for_a_contact_gone_from_the_crm_is_a_retry() -> None:
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.apply(updated(U, at(3), name="Ola N."))
    rig.crm.contacts.clear()
    with pytest.raises(TransientError) as gone:
        rig.apply(updated(U, at(2), phone_number="+4790000001"))
    assert (gone.value.reason, gone.value.message) == (
        "crm_404",
        "contact c_1 is gone from the CRM",
    )


def test_a_late_events_email_held_by_another_contact_is_owed() -> None:
    rig = Rig()
    rig.crm.add(email="b@example.com", auth0_user_id=D)
    rig.apply(created(U, at(0), email="a@example.com", name="Ola"))
    rig.apply(updated(U, at(3), name="Ola N."))
    with pytest.raises(EmailConflict):
        rig.apply(updated(U, at(2), email="b@example.com", phone_number="+4790000001"))
    contact = rig.crm.contacts["c_2"]
    assert contact["phone"] == "+4790000001"
    assert contact["email"].endswith("@email-conflict.invalid")


def test_an_older_event_revealing_no_contact_after_a_pending_delete_creates_none() -> None:
    rig = Rig()
    assert rig.apply(deleted(U, at(5))).reason == "contact_missing"
    older = rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    assert (older.status, older.reason, older.user_id) == ("skipped", "deleted", U)
    assert rig.crm.contacts == {}


class HubSpotDeletesCrm(MemoryCrm):
    """The in-memory CRM with HubSpot's two deletes, each of which leaves the contacts, and
    each False for a contact that is gone (the adapter's answer to a 404):
    - archive (DELETE /crm/v3/objects/contacts/{id},
      https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/delete-contact:
      the contact is deleted, restorable for 90 days);
    - GDPR delete (POST /crm/v3/objects/contacts/gdpr-delete with `{"objectId": id}`,
      https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact:
      deleted for good, not restorable)."""

    def __init__(self) -> None:
        super().__init__()
        self.archived: list[str] = []
        self.erased: list[str] = []

    def archive_contact(self, contact_id: str) -> bool:
        return self._remove(Call("DELETE", contact_id), self.archived)

    def erase_contact(self, contact_id: str) -> bool:
        return self._remove(Call("POST", contact_id), self.erased)

    def _remove(self, call: Call, removed: list[str]) -> bool:
        self.calls.append(call)
        if call.contact_id is None or self.contacts.pop(call.contact_id, None) is None:
            return False
        removed.append(call.contact_id)
        return True


def hubspot_rig(delete_policy: str) -> tuple[Rig, HubSpotDeletesCrm]:
    rig = Rig(crm_type="hubspot", delete_policy=delete_policy)
    crm = rig.use(HubSpotDeletesCrm())
    return rig, crm


# HubSpot's deletes: the policy, the outcome it reports, what the CRM recorded, the method.
HUBSPOT_DELETES = [
    pytest.param("archive", "archived", "archive_contact", id="archive"),
    pytest.param("erase", "erased", "erase_contact", id="erase"),
]


@pytest.mark.parametrize(("policy", "reason", "method"), HUBSPOT_DELETES)
def test_with_a_hubspot_delete_policy_a_delete_removes_and_forgets_the_contact(
    policy: str, reason: str, method: str
) -> None:
    rig, crm = hubspot_rig(policy)
    rig.apply(created(U, at(0), email="ola@example.com", given_name="Ola"))
    outcome = rig.apply(deleted(U, at(5)))
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", reason, "c_1")
    assert (crm.archived, crm.erased, crm.contacts) == (
        ["c_1"] if policy == "archive" else [],
        ["c_1"] if policy == "erase" else [],
        {},
    )
    state = rig.state.get(U)
    assert state is not None
    assert (state.contact_id, state.matched_by, state.delete_done) == (None, None, True)
    # A late event of the past life reveals nothing; a re-signup gets a new contact.
    assert rig.apply(created(U, at(3), email="ola@example.com")).reason == "deleted"
    again = rig.apply(created(U, at(10), email="ola@example.com", given_name="Ola"))
    assert (again.reason, again.contact_id) == ("created", "c_2")


@pytest.mark.parametrize(("policy", "reason", "method"), HUBSPOT_DELETES)
def test_removing_a_contact_already_gone_is_a_retry(policy: str, reason: str, method: str) -> None:
    rig, crm = hubspot_rig(policy)
    rig.apply(created(U, at(0), email="ola@example.com"))
    original = getattr(crm, method)

    def gone(contact_id: str) -> bool:
        crm.contacts.pop(contact_id, None)
        return bool(original(contact_id))

    setattr(crm, method, gone)
    with pytest.raises(TransientError) as vanished:
        rig.apply(deleted(U, at(5)))
    assert (vanished.value.reason, vanished.value.message) == (
        "crm_404",
        f"contact c_1 vanished while {reason}",
    )


# Deletes (mutants mutmut saw survive) ------------------------------------------------------


def test_a_pending_delete_remembers_the_last_32_older_events_that_revealed_nothing() -> None:
    """A delete that found no contact stays pending; each older event then looks the
    contact up, and one that found nothing is noted so its duplicate costs no CRM call.
    The note keeps the last 32 such events (MAX_SEARCHED): of 33, the first is forgotten."""
    rig = Rig()
    assert rig.apply(deleted(U, at(100))).reason == "contact_missing"
    older = [updated(U, at(i), email=f"u{i}@example.com") for i in range(33)]
    for raw in older:
        assert rig.apply(raw).reason == "deleted"
    rig.crm.calls.clear()
    for kept in (older[32], older[1]):
        assert rig.apply(kept).reason == "deleted"
    assert rig.crm.calls == []
    assert rig.apply(older[0]).reason == "deleted"
    assert rig.crm.calls != []


def test_a_delete_deactivates_a_contact_nobody_owned_as_the_users() -> None:
    """A contact found by the deleted user's email, carrying nobody: it is deactivated and
    gets the user's id, as if the user's older events had come first."""
    rig = Rig()
    free = rig.crm.add(email="ola@example.com", name="Ola")
    outcome = rig.apply(deleted(U, at(5), email="ola@example.com"))
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", "deactivated", free)
    contact = rig.crm.contacts[free]
    assert (contact["status"], contact["auth0_user_id"]) == ("deactivated", U)


def test_a_delete_of_the_users_own_contact_leaves_its_owner_alone() -> None:
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com"))
    rig.apply(deleted(U, at(5)))
    assert rig.crm.writes()[-1].body == {
        "status": "deactivated",
        "source_updated_at": "2026-03-01T09:05:00.000000+00:00",
    }


def test_a_delete_remembers_the_contact_it_found_so_a_re_signup_reactivates_it() -> None:
    rig = Rig()
    mine = rig.crm.add(email="ola@example.com", auth0_user_id=U)  # state never saw it
    rig.apply(deleted(U, at(5)))
    state = rig.state.get(U)
    assert state is not None
    assert (state.contact_id, state.matched_by, state.delete_done) == (
        mine,
        "auth0_user_id",
        True,
    )
    back = rig.apply(created(U, at(10), email="ola@example.com"))
    assert (back.reason, back.contact_id) == ("reactivated", mine)


def test_an_anonymized_contact_is_never_written_again_by_an_older_event() -> None:
    rig = Rig(delete_policy="anonymize")
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.apply(deleted(U, at(5)))
    writes = len(rig.crm.writes())
    older = rig.apply(updated(U, at(3), name="Ola", app_metadata={"crm_contact_id": "c_1"}))
    assert (older.status, older.reason) == ("skipped", "deleted")
    assert len(rig.crm.writes()) == writes


def test_a_delete_that_finds_no_contact_is_skipped_naming_the_last_known_one() -> None:
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com"))
    rig.crm.contacts.clear()
    outcome = rig.apply(deleted(U, at(5)))
    assert (outcome.status, outcome.reason, outcome.contact_id) == (
        "skipped",
        "contact_missing",
        "c_1",
    )


class CountingState(MemorySyncStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.leases = 0

    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState:
        self.leases += 1
        return super().acquire(user_id, owner, lease_seconds)


def test_a_past_lifes_event_after_a_re_signup_is_settled_without_the_lease() -> None:
    state = CountingState()
    rig = Rig(state=state)
    rig.apply(created(U, at(0), email="ola@example.com"))
    rig.apply(deleted(U, at(5)))
    rig.apply(created(U, at(10), email="ola@example.com"))
    leases = state.leases
    past = rig.apply(updated(U, at(3), email="ola@example.com", name="Ola"))
    assert (past.status, past.reason) == ("skipped", "deleted")
    assert state.leases == leases


class VanishingOnRead(MemoryCrm):
    """A contact deleted by someone else between our search and our read of it."""

    def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        self.contacts.pop(contact_id, None)
        return super().get_contact(contact_id)


def test_a_contact_vanishing_while_it_changes_hands_is_a_retry() -> None:
    rig = Rig()
    rig.apply(created(D, at(0), email="ola@example.com"))
    rig.apply(deleted(D, at(1)))
    rig.use(VanishingOnRead())
    with pytest.raises(TransientError) as gone:
        rig.apply(created(U, at(2), email="ola@example.com"))
    assert (gone.value.reason, gone.value.message) == (
        "crm_404",
        "contact c_1 vanished while it changed hands",
    )


def test_a_hinted_contact_whose_new_email_is_taken_gets_the_rest_and_owes_the_email() -> None:
    rig = Rig()
    free = rig.crm.add(email="old@example.com", name="Ola")
    rig.crm.add(email="b@example.com", auth0_user_id=D)
    hinted = updated(U, at(1), email="b@example.com", name="Ola N.",
                     app_metadata={"crm_contact_id": free})  # fmt: skip
    with pytest.raises(EmailConflict):
        rig.apply(hinted)
    contact = rig.crm.contacts[free]
    assert (contact["name"], contact["auth0_user_id"]) == ("Ola N.", U)
    assert contact["email"].endswith("@email-conflict.invalid")


# Transfers (mutants mutmut saw survive) ---------------------------------------------------


def test_a_duplicate_is_settled_naming_the_contact() -> None:
    rig = Rig()
    signup = created(U, at(0), email="ola@example.com")
    rig.apply(signup)
    again = rig.apply(signup)
    assert (again.status, again.reason, again.contact_id) == ("skipped", "duplicate", "c_1")


def test_a_transfer_drops_the_previous_owners_mapping_and_frees_their_lease() -> None:
    rig = Rig()
    rig.apply(created(D, at(0), email="ola@example.com", name="Ola"))
    rig.apply(deleted(D, at(1)))
    rig.apply(created(U, at(2), email="ola@example.com", name="Ola"))
    theirs = rig.state.get(D)
    assert theirs is not None
    assert (theirs.contact_id, theirs.matched_by, theirs.written) == (None, None, {})
    mine = rig.state.get(U)
    assert mine is not None
    assert (mine.contact_id, mine.matched_by) == ("c_1", "email")
    assert rig.state.acquire(D, "next", 30.0).user_id == D


def test_a_transfer_from_an_owner_whose_state_never_mapped_it_frees_their_lease() -> None:
    rig = Rig()
    contact_id = rig.crm.add(email="ola@example.com", auth0_user_id=D)
    rig.state.acquire(D, "seed", 30.0)
    rig.state.commit(
        SyncState(D, deleted_at="2026-03-01T09:01:00.000000+00:00", delete_done=True), "seed"
    )
    outcome = rig.apply(created(U, at(2), email="ola@example.com"))
    assert (outcome.reason, outcome.contact_id) == ("linked", contact_id)
    assert rig.state.acquire(D, "next", 30.0).user_id == D


def test_a_transfer_that_fails_frees_the_previous_owners_lease() -> None:
    rig = Rig()
    rig.apply(created(D, at(0), email="ola@example.com"))
    rig.apply(deleted(D, at(1)))
    rig.use(VanishingOnRead())
    with pytest.raises(TransientError):
        rig.apply(created(U, at(2), email="ola@example.com"))
    assert rig.state.acquire(D, "next", 30.0).user_id == D


class TakenMeanwhile(MemoryCrm):
    """Between our search and our read, a third identity took the contact."""

    def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        if contact_id in self.contacts:
            self.contacts[contact_id]["auth0_user_id"] = "auth0|third"
        return super().get_contact(contact_id)


def test_a_contact_taken_by_someone_else_while_changing_hands_is_refused() -> None:
    rig = Rig()
    rig.apply(created(D, at(0), email="ola@example.com"))
    rig.apply(deleted(D, at(1)))
    rig.use(TakenMeanwhile())
    with pytest.raises(OwnedByOther) as refused:
        rig.apply(created(U, at(2), email="ola@example.com"))
    assert refused.value.owner == "auth0|third"
    assert refused.value.message == (
        f"contact c_1 changed hands to Auth0 user auth0|third while Auth0 user {U} was taking it"
    )


def test_an_unowned_contact_found_by_email_keeps_what_the_event_does_not_mention() -> None:
    """Only a contact taken over from a deleted user starts clean."""
    rig = Rig()
    free = rig.crm.add(email="ola@example.com", name="Ola", phone="+4790000001")
    rig.apply(updated(U, at(1), email="ola@example.com", name="Ola N."))
    assert rig.crm.contacts[free]["phone"] == "+4790000001"


# A late write and the contact's version (contract 1.2: ETag / If-Match) -----------------


def writes_and_reads(rig: Rig) -> list[tuple[str, str | None]]:
    """The CRM calls since the last clear: each method with the version a write carried."""
    return [(c.method, c.version) for c in rig.crm.calls]


def test_a_late_write_is_based_on_the_last_version_and_keeps_the_new_one() -> None:
    """The memory CRM's version starts at "v1" with the create and moves by one with each
    write. A late event's PATCH carries the version the previous write left (no read
    first), and the next write carries the one the late write left."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))  # v1
    rig.apply(updated(U, at(3), name="Ola N."))  # based on v1, leaves v2
    rig.crm.calls.clear()
    late = rig.apply(updated(U, at(2), name="Ola", phone_number="+4790000001"))
    assert (late.status, late.reason, late.contact_id) == ("applied", "updated", "c_1")
    rig.apply(updated(U, at(4), name="Ola Nordmann"))
    assert writes_and_reads(rig) == [("PATCH", '"v2"'), ("PATCH", '"v3"')]


def test_a_late_delete_is_based_on_the_last_version_and_keeps_the_new_one() -> None:
    """As above for the late delete that clears what only the past life said."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola", phone_number="+4790000001"))
    rig.apply(created(U, at(10), email="ola@example.com", name="Ola N."))  # leaves v2
    rig.crm.calls.clear()
    outcome = rig.apply(deleted(U, at(5)))
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", "updated", "c_1")
    rig.apply(updated(U, at(11), name="Ola Nordmann"))
    assert writes_and_reads(rig) == [("PATCH", '"v2"'), ("PATCH", '"v3"')]


def test_a_late_delete_whose_contact_is_gone_from_the_crm_is_retried_later() -> None:
    """The contact was deleted in the CRM (by someone else) before the late delete's write:
    a transient error naming the contact, with the reason `crm_404`."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola", phone_number="+4790000001"))
    rig.apply(created(U, at(10), email="ola@example.com", name="Ola N."))
    rig.crm.contacts.clear()
    with pytest.raises(TransientError) as caught:
        rig.apply(deleted(U, at(5)))
    assert caught.value.reason == "crm_404"
    assert caught.value.message == "contact c_1 is gone from the CRM"


# A link only a late event shows ---------------------------------------------------------


def test_a_late_event_showing_a_link_marks_the_secondary_unless_it_is_marked_already() -> None:
    """The primary's late event (09:05, after its 09:06 one) is the only one that lists a
    secondary: the secondary is marked as linked into it. A secondary already marked as
    linked into another primary keeps that mark."""
    s1, s2, other = "google-oauth2|s1", "google-oauth2|s2", "auth0|q28"
    rig = Rig()
    rig.apply(created(other, at(0), email="q@example.com"))
    rig.apply(updated(other, at(1), email="q@example.com", identities=identities(other, s2)))
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.apply(updated(U, at(6), email="ola@example.com", name="Ola N."))
    rig.apply(updated(U, at(5), email="ola@example.com", identities=identities(U, s1, s2)))
    first, second = rig.state.get(s1), rig.state.get(s2)
    assert first is not None
    assert second is not None
    assert (first.linked_to, second.linked_to) == (U, other)


# A late write to a contact that left the user --------------------------------------------


def test_a_late_event_never_writes_a_contact_someone_took_the_user_off() -> None:
    """Between the user's last write and a late event, a person cleared the contact's
    `auth0_user_id` in the CRM (a new version): the late write is refused (412), the
    contact read again carries nobody, so it is not written; retried later."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.apply(updated(U, at(3), name="Ola N."))
    rig.crm.edit("c_1", auth0_user_id=None)
    with pytest.raises(TransientError):
        rig.apply(updated(U, at(2), name="Ola", phone_number="+4790000001"))
    assert rig.crm.contacts["c_1"].get("phone") is None


def test_a_late_delete_never_writes_a_contact_someone_took_the_user_off() -> None:
    """As above for the late delete that would clear what only the past life said."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola", phone_number="+4790000001"))
    rig.apply(created(U, at(10), email="ola@example.com", name="Ola N."))
    rig.crm.edit("c_1", auth0_user_id=None)
    with pytest.raises(TransientError):
        rig.apply(deleted(U, at(5)))
    assert rig.crm.contacts["c_1"]["phone"] == "+4790000001"


# SYNC_MODE=create_only: a late event whose fields the contact holds ----------------------


def test_create_only_a_late_event_the_contact_holds_is_said_not_written() -> None:
    """Sales put a phone on the contact; a late event (09:03, after 09:05) brings another
    phone, which no newer event spoke of: in create_only the contact keeps its phone (the
    event is skipped as held by the CRM), and the event's phone counts as said: an older
    event's phone is stale, and the same phone again costs no CRM call."""
    rig = Rig(sync_mode="create_only")
    rig.apply(created(U, at(0), email="kim@example.com", name="Kim A"))
    rig.apply(updated(U, at(5), email="kim@example.com", name="Kim B"))
    rig.crm.edit("c_1", phone="+1 555 0100")
    held = rig.apply(updated(U, at(3), phone_number="+4790000001"))
    assert (held.status, held.reason, held.contact_id) == ("skipped", "held_by_crm", "c_1")
    assert rig.crm.contacts["c_1"]["phone"] == "+1 555 0100"
    rig.crm.calls.clear()
    older = rig.apply(updated(U, at(2), phone_number="+4790000002"))
    again = rig.apply(updated(U, at(4), phone_number="+4790000001"))
    assert [(o.status, o.reason) for o in (older, again)] == [("skipped", "stale")] * 2
    assert rig.crm.calls == []
    assert rig.crm.contacts["c_1"]["phone"] == "+1 555 0100"


# Deletes: what the state keeps, what the CRM is asked ------------------------------------


def test_with_delete_policy_none_a_delete_is_skipped_and_costs_no_crm_call() -> None:
    rig = Rig(delete_policy="none")
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.crm.calls.clear()
    outcome = rig.apply(deleted(U, at(5)))
    assert (outcome.status, outcome.reason) == ("skipped", "delete_policy_none")
    assert rig.crm.calls == []


def test_a_delete_reads_the_contact_once_and_writes_on_the_version_it_read() -> None:
    """The memory CRM's version is "v1" after the create: the delete reads the contact
    (is it still the user's?) and its PATCH carries that version, with no second read."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.crm.calls.clear()
    rig.apply(deleted(U, at(5)))
    assert writes_and_reads(rig) == [("GET", None), ("PATCH", '"v1"')]


def test_a_delete_that_finds_no_contact_forgets_the_one_it_knew() -> None:
    """The user's contact was deleted in the CRM: the delete finds nothing, and the state no
    longer points at the gone contact (a re-signup creates a new one, no PATCH to it)."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.crm.contacts.clear()
    outcome = rig.apply(deleted(U, at(5)))
    assert (outcome.status, outcome.reason) == ("skipped", "contact_missing")
    state = rig.state.get(U)
    assert state is not None
    assert (state.contact_id, state.matched_by, state.delete_done) == (None, None, False)
    rig.crm.calls.clear()
    again = rig.apply(created(U, at(10), email="ola@example.com", name="Ola"))
    assert (again.reason, again.contact_id) == ("created", "c_2")
    assert "PATCH" not in [c.method for c in rig.crm.calls]


def test_a_linked_secondarys_delete_that_finds_no_contact_is_done() -> None:
    """A secondary linked into a primary has no contact of its own: its delete is skipped as
    a link and is done (an older event of the secondary looks nothing up)."""
    secondary = "google-oauth2|s28"
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.apply(updated(U, at(2), email="ola@example.com", identities=identities(U, secondary)))
    outcome = rig.apply(deleted(secondary, at(3)))
    assert (outcome.status, outcome.reason) == ("skipped", "account_linked")
    state = rig.state.get(secondary)
    assert state is not None
    assert (state.contact_id, state.delete_done) == (None, True)
    rig.crm.calls.clear()
    older = rig.apply(created(secondary, at(1), email="sec@example.com"))
    assert (older.status, older.reason) == ("skipped", "deleted")
    assert rig.crm.calls == []


def test_an_older_event_noted_under_the_lease_is_skipped_without_a_lookup() -> None:
    """A pending delete and an older event that revealed nothing: its duplicate, seen
    unnoted before the lease, is still skipped as deleted with no CRM call under it."""
    # The lease-free read does not show the delete's lookup notes yet, as when another
    # invocation noted the same event just after that read.
    rig = Rig(state=SettledLate(searched=[]))
    assert rig.apply(deleted(U, at(5))).reason == "contact_missing"
    older = updated(U, at(1), email="ola@example.com")
    assert rig.apply(older).reason == "deleted"
    rig.crm.calls.clear()
    again = rig.apply(older)
    assert (again.status, again.reason) == ("skipped", "deleted")
    assert rig.crm.calls == []


# Requests to the state table (SyncCore.apply: a login that changes nothing costs 1, a
# duplicate or stale event 1, a change 2, 3 when it looked like a login) ------------------


class CountingStore(MemorySyncStateStore):
    """The memory store, noting which request each call would be on the table."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []
        self._inside = False  # the memory store's acquire_if_newer calls acquire

    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState:
        if not self._inside:
            self.requests.append("acquire")
        return super().acquire(user_id, owner, lease_seconds)

    def acquire_if_newer(
        self, user_id: str, owner: str, lease_seconds: float, key: str
    ) -> SyncState | Settled:
        self.requests.append("acquire_if_newer")
        self._inside = True
        try:
            return super().acquire_if_newer(user_id, owner, lease_seconds, key)
        finally:
            self._inside = False

    def record_unchanged(self, user_id: str, seen: Any) -> SyncState | None:
        self.requests.append("record_unchanged")
        return super().record_unchanged(user_id, seen)


def counting_rig() -> tuple[Rig, CountingStore]:
    store = CountingStore()
    rig = Rig(state=store)
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    store.requests.clear()
    return rig, store


def test_an_update_whose_previous_object_shows_a_change_takes_the_lease_at_once() -> None:
    """Shaped like a login (last_login == updated_at), but previous_object shows the name
    changed: no lease-free try first."""
    rig, store = counting_rig()
    when = stamp(at(2))
    outcome = rig.apply(
        updated(U, at(2), email="ola@example.com", name="Ola N.", last_login=when,
                previous={"email": "ola@example.com", "name": "Ola"})
    )  # fmt: skip
    assert (outcome.status, outcome.reason) == ("applied", "updated")
    assert store.requests == ["acquire_if_newer"]


def test_an_update_whose_previous_object_differs_in_no_mapped_field_tries_without_lease() -> None:
    """previous_object shows only last_login moved (not a mapped attribute): one request,
    no lease, nothing written."""
    rig, store = counting_rig()
    outcome = rig.apply(
        updated(U, at(2), email="ola@example.com", name="Ola", last_login=stamp(at(2)),
                previous={"email": "ola@example.com", "name": "Ola",
                          "last_login": stamp(at(1))})
    )  # fmt: skip
    assert (outcome.status, outcome.reason) == ("skipped", "unchanged")
    assert store.requests == ["record_unchanged"]


def test_a_redelivered_late_event_costs_no_lease() -> None:
    """A late event that set a field, delivered again: it has nothing left to say (its word
    is the last on the field), so it is skipped on the state read alone."""
    rig, store = counting_rig()
    rig.apply(updated(U, at(3), email="ola@example.com", name="Ola N."))
    late = updated(U, at(2), phone_number="+4790000001")
    assert rig.apply(late).reason == "updated"
    store.requests.clear()
    again = rig.apply(late)
    assert (again.status, again.reason) == ("skipped", "stale")
    assert "acquire" not in store.requests


def test_a_noted_older_event_of_a_pending_delete_costs_no_lease_when_delivered_again() -> None:
    store = CountingStore()
    rig = Rig(state=store)
    assert rig.apply(deleted(U, at(5))).reason == "contact_missing"
    older = updated(U, at(1), email="ola@example.com")
    assert rig.apply(older).reason == "deleted"
    store.requests.clear()
    again = rig.apply(older)
    assert (again.status, again.reason) == ("skipped", "deleted")
    assert "acquire" not in store.requests


# A write of unknown outcome (a CRM without versions: it may land late) -------------------


class TimesOut(MemoryCrm):
    """A HubSpot-like CRM (no versions; a write may land up to `late_write_seconds` late)
    whose next PATCH times out after it was sent: of unknown outcome, a transient error."""

    def __init__(self) -> None:
        super().__init__(versioned=False, late_write_seconds=60.0)
        self.time_out_next = False

    def update_contact(
        self, contact_id: str, fields: Any, if_match: str | None = None
    ) -> dict[str, Any] | None:
        if self.time_out_next:
            self.time_out_next = False
            self.unsure += 1
            raise TransientError("crm PATCH: read timed out", "crm_timeout")
        return super().update_contact(contact_id, fields, if_match)


def unsure_rig() -> tuple[Rig, TimesOut]:
    rig = Rig()
    crm = rig.use(TimesOut())
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    return rig, crm


def test_a_write_that_timed_out_holds_back_the_users_next_write() -> None:
    rig, crm = unsure_rig()
    crm.time_out_next = True
    with pytest.raises(TransientError):
        rig.apply(updated(U, at(1), email="ola@example.com", name="One"))
    with pytest.raises(TransientError) as waiting:
        rig.apply(updated(U, at(2), email="ola@example.com", name="Two"))
    assert waiting.value.reason == "write_unconfirmed"
    assert crm.contacts["c_1"]["name"] == "Ola"


def test_an_event_applied_through_a_retried_write_is_recorded_as_applied() -> None:
    """The first attempt of the write is held by the CRM (unknown outcome), the retry
    applied: the event is recorded as applied, so its redelivery is a duplicate."""
    rig, crm = unsure_rig()
    crm.hold_next_write()
    event = updated(U, at(1), email="ola@example.com", name="One")
    assert rig.apply(event).reason == "updated"
    again = rig.apply(event)
    assert (again.status, again.reason) == ("skipped", "duplicate")


def test_an_older_event_for_a_state_that_knows_the_contact_but_no_fields_writes_nothing() -> None:
    """A rebuilt state (the contact known, nothing recorded as written or said) and an event
    older than its last change: not a late event to merge (there is no per-field record to
    merge against), so skipped as stale, with no CRM call."""
    rig = Rig()
    contact_id = rig.crm.add(email="ola@example.com", name="Ola", auth0_user_id=U)
    seed_mapping(rig, contact_id)  # last change at 09:00
    rig.crm.calls.clear()
    outcome = rig.apply(updated(U, at(-1), email="ola@example.com", name="Old"))
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("skipped", "stale", contact_id)
    assert rig.crm.calls == []
    assert rig.crm.contacts[contact_id]["name"] == "Ola"


def test_a_late_event_waits_for_a_write_of_unknown_outcome() -> None:
    """The 09:03 write's first attempt was held by the CRM (it may still land), its retry
    applied; a late 09:02 event that would set the phone waits: nothing is written before
    the unsure attempt settles."""
    rig, crm = unsure_rig()
    crm.hold_next_write()
    assert rig.apply(updated(U, at(3), email="ola@example.com", name="Three")).reason == "updated"
    with pytest.raises(TransientError) as waiting:
        rig.apply(updated(U, at(2), phone_number="+4790000001"))
    assert waiting.value.reason == "write_unconfirmed"
    assert "phone" not in crm.contacts["c_1"]


def test_a_login_shaped_update_that_changes_something_costs_three_requests() -> None:
    """No previous_object and the stamps of a login, but the name changed: the lease-free
    try finds it changed, then the lease is taken and the change committed."""
    rig, store = counting_rig()
    when = stamp(at(2))
    outcome = rig.apply(updated(U, at(2), email="ola@example.com", name="Ola N.", last_login=when))
    assert (outcome.status, outcome.reason) == ("applied", "updated")
    assert store.requests == ["record_unchanged", "acquire"]
    assert rig.crm.contacts["c_1"]["name"] == "Ola N."


# The user's lease ---------------------------------------------------------------------


class FailsOnce(MemoryCrm):
    """A CRM whose next PATCH fails before it was sent (a transient error, nothing sent)."""

    fail_next: bool = False

    def update_contact(
        self, contact_id: str, fields: Any, if_match: str | None = None
    ) -> dict[str, Any] | None:
        if self.fail_next:
            self.fail_next = False
            raise TransientError("crm PATCH: connection refused", "crm_unreachable")
        return super().update_contact(contact_id, fields, if_match)


def test_an_event_that_failed_releases_the_lease_for_its_retry() -> None:
    rig = Rig()
    crm = rig.use(FailsOnce())
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    crm.fail_next = True
    event = parse_event(updated(U, at(1), email="ola@example.com", name="One"), now=NOW)
    with pytest.raises(TransientError):
        rig.core.apply(event, lease_seconds=30.0)
    # Retried at once, with a short wait for a held lease: applied, not `lease_held`.
    assert rig.core.apply(event, lease_seconds=0.2).reason == "updated"


class MeanwhileCrm(MemoryCrm):
    """A CRM during whose next PATCH another event of the same user arrives."""

    meanwhile: Any = None
    answer: Any = None

    def update_contact(
        self, contact_id: str, fields: Any, if_match: str | None = None
    ) -> dict[str, Any] | None:
        if self.meanwhile is not None:
            other, self.meanwhile = self.meanwhile, None
            try:
                self.answer = other()
            except TransientError as exc:
                self.answer = exc.reason
        return super().update_contact(contact_id, fields, if_match)


def test_another_invocation_for_the_same_user_waits_for_the_lease() -> None:
    rig = Rig()
    crm = rig.use(MeanwhileCrm())
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    other = parse_event(updated(U, at(2), email="ola@example.com", name="Two"), now=NOW)
    crm.meanwhile = lambda: rig.core.apply(other, lease_seconds=0.2)
    assert rig.apply(updated(U, at(1), email="ola@example.com", name="One")).reason == "updated"
    assert crm.answer == "lease_held"
    assert crm.contacts["c_1"]["name"] == "One"


# An email another contact holds (sync_base._write) ----------------------------------------


def test_an_email_refused_is_owed_alone_and_written_once_the_other_contact_lets_it_go() -> None:
    """D's contact holds b@; U's change to b@ and a new name: the CRM refuses the email
    (409), so the name is written with a placeholder address on the same version (no read
    in between), and the event fails with EmailConflict naming the contact. Its retry, once
    D's contact let b@ go, writes the email alone (the name is already there)."""
    rig = Rig()
    held_by_d = rig.crm.add(email="b@example.com", auth0_user_id=D)
    rig.apply(created(U, at(0), email="a@example.com", name="Ola"))  # c_2, "v1"
    rig.crm.calls.clear()
    event = updated(U, at(1), email="b@example.com", name="Ola N.")
    with pytest.raises(EmailConflict) as owed:
        rig.apply(event)
    assert owed.value.message == (
        "crm PATCH /contacts/c_2: HTTP 409: email taken: contact c_2 got every other field; "
        "its email follows when the contact holding it lets it go"
    )
    assert rig.crm.contacts["c_2"]["name"] == "Ola N."
    rig.crm.edit(held_by_d, email="d@example.com")
    assert rig.apply(event).reason == "updated"
    assert rig.crm.contacts["c_2"]["email"] == "b@example.com"
    assert writes_and_reads(rig) == [("PATCH", '"v1"'), ("PATCH", '"v1"'), ("PATCH", '"v2"')]
    last = rig.crm.calls[-1].body
    assert last is not None
    assert sorted(last) == ["email", "source_updated_at"]


# SYNC_MODE=create_only: the read before a write (sync_base._spared) -----------------------


def test_create_only_a_contact_given_to_another_user_is_left_to_the_write_to_find() -> None:
    """A person gave U's contact to V in the CRM; U's rename would change nothing in
    create_only (the contact holds a name), yet it is not skipped as held: the write finds
    the contact left U, and the email lookup finds V's contact: owned by another."""
    rig = Rig(sync_mode="create_only")
    rig.apply(created(U, at(0), email="kim@example.com", name="Kim A"))
    rig.crm.edit("c_1", auth0_user_id="auth0|v28")
    with pytest.raises(OwnedByOther):
        rig.apply(updated(U, at(5), email="kim@example.com", name="Kim B"))
    assert rig.crm.contacts["c_1"]["name"] == "Kim A"


def test_create_only_writes_on_the_version_its_read_saw() -> None:
    """A person edited the contact (its version moved past the one the state knows): the
    read before the write sees the new version, and the one PATCH carries it."""
    rig = Rig(sync_mode="create_only")
    rig.apply(created(U, at(0), email="kim@example.com", name="Kim A"))  # "v1"
    rig.crm.edit("c_1", phone="+1 555 0100")  # "v2"
    rig.crm.calls.clear()
    outcome = rig.apply(updated(U, at(5), email="kim@example.com", name="Kim B", given_name="Kim"))
    assert (outcome.status, outcome.reason) == ("applied", "updated")
    assert writes_and_reads(rig) == [("GET", None), ("PATCH", '"v2"')]
    contact = rig.crm.contacts["c_1"]
    assert (contact["name"], contact["given_name"]) == ("Kim A", "Kim")


def test_an_event_waits_a_moment_for_a_lease_about_to_end() -> None:
    """Another invocation holds the user's lease for 0.1 s more: the event waits for it
    (up to 2 s, or a quarter of its own lease) rather than fail with `lease_held`."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.state.acquire(U, "another-invocation", 0.1)
    assert rig.apply(updated(U, at(1), email="ola@example.com", name="One")).reason == "updated"
    assert rig.crm.contacts["c_1"]["name"] == "One"


# An unverified email the CRM already holds (upsert._unverified) ---------------------------


def test_an_unverified_signup_never_claims_the_contact_holding_its_email() -> None:
    """Auth0's guidance: match accounts by email only when the address is verified. The
    CRM's 409 names a contact of nobody holding the address: not claimed, no write; the
    user waits, counted as `email_unverified`."""
    rig = Rig()
    sales = rig.crm.add(email="ola@example.com", name="From sales")
    outcome = rig.apply(created(U, at(0), email="ola@example.com", email_verified=False))
    assert (outcome.status, outcome.reason) == ("skipped", "email_unverified")
    contact = rig.crm.contacts[sales]
    assert (contact["name"], contact.get("auth0_user_id")) == ("From sales", None)
    assert [c.method for c in rig.crm.writes()] == ["POST"]  # the create the CRM refused


def test_an_unverified_signup_finds_its_own_contact_by_its_id() -> None:
    """A create whose answer was lost left the user's own contact (it carries the user's
    id); the retried signup's create meets a 409, and the contact is found by the id."""
    rig = Rig()
    own = rig.crm.add(email="ola@example.com", name="Ola", auth0_user_id=U)
    outcome = rig.apply(
        created(U, at(0), email="ola@example.com", email_verified=False, name="Ola N.")
    )
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("applied", "updated", own)
    assert rig.crm.contacts[own]["name"] == "Ola N."
    state = rig.state.get(U)
    assert state is not None
    assert (state.contact_id, state.matched_by) == (own, "auth0_user_id")


# Taking a contact found in the CRM (upsert._take_now) --------------------------------------


def test_a_contact_found_already_right_is_mapped_with_what_it_holds() -> None:
    """A rebuilt state: the contact carrying the user holds every value (no write), and is
    remembered as holding them: the same values again cost no CRM call."""
    rig = Rig()
    own = rig.crm.add(email="ola@example.com", name="Ola", auth0_user_id=U)
    first = rig.apply(updated(U, at(1), email="ola@example.com", name="Ola"))
    assert (first.status, first.reason, first.contact_id) == ("skipped", "unchanged", own)
    rig.crm.calls.clear()
    assert rig.apply(updated(U, at(2), email="ola@example.com", name="Ola")).reason == "unchanged"
    assert rig.crm.calls == []


def test_create_only_a_contact_found_holding_other_values_is_skipped_as_held() -> None:
    rig = Rig(sync_mode="create_only")
    own = rig.crm.add(email="kim@example.com", name="From sales", auth0_user_id=U)
    outcome = rig.apply(updated(U, at(1), email="kim@example.com", name="Kim"))
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("skipped", "held_by_crm", own)
    assert rig.crm.contacts[own]["name"] == "From sales"


def test_create_only_a_new_life_starts_clean() -> None:
    """The rule of order holds in every SYNC_MODE: after a delete, a re-signup's values
    replace the past life's on the contact, held or not."""
    rig = Rig(sync_mode="create_only")
    rig.apply(created(U, at(0), email="kim@example.com", name="Kim A"))
    rig.apply(deleted(U, at(5)))
    outcome = rig.apply(created(U, at(10), email="kim@example.com", name="Kim B"))
    assert (outcome.status, outcome.reason) == ("applied", "reactivated")
    contact = rig.crm.contacts["c_1"]
    assert (contact["name"], contact["status"]) == ("Kim B", "active")


def test_create_only_a_deleted_users_contact_taken_over_keeps_none_of_their_values() -> None:
    """D signed up and was deleted; U signs up with the same address and takes D's
    deactivated contact: none of D's values stay on it, in create_only too."""
    rig = Rig(sync_mode="create_only")
    rig.apply(created(D, at(0), email="kim@example.com", name="Dee", phone_number="+4790000001"))
    rig.apply(deleted(D, at(5)))
    outcome = rig.apply(created(U, at(10), email="kim@example.com", name="Kim"))
    assert (outcome.status, outcome.contact_id) == ("applied", "c_1")
    contact = rig.crm.contacts["c_1"]
    assert (contact["name"], contact["phone"], contact["auth0_user_id"]) == ("Kim", None, U)


# Upserts under the lease (upsert._upsert) -------------------------------------------------


def test_an_edit_back_to_what_was_written_costs_no_crm_call_and_counts_as_seen() -> None:
    """previous_object shows the name changed (so the lease is taken at once), but the
    name is back to what the sync last wrote: skipped as unchanged, no CRM call, and the
    event is recorded (its redelivery is a duplicate)."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    rig.crm.calls.clear()
    back = updated(U, at(2), email="ola@example.com", name="Ola",
                   previous={"email": "ola@example.com", "name": "Ola B"})  # fmt: skip
    outcome = rig.apply(back)
    assert (outcome.status, outcome.reason, outcome.contact_id) == ("skipped", "unchanged", "c_1")
    assert rig.crm.calls == []
    again = rig.apply(back)
    assert (again.status, again.reason) == ("skipped", "duplicate")


def test_a_re_signup_clears_what_only_the_past_life_had() -> None:
    """A new life starts clean: the re-signup has no phone, so the past life's is cleared."""
    rig = Rig()
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola", phone_number="+4790000001"))
    rig.apply(deleted(U, at(5)))
    outcome = rig.apply(created(U, at(10), email="ola@example.com", name="Ola"))
    assert (outcome.status, outcome.reason) == ("applied", "reactivated")
    contact = rig.crm.contacts["c_1"]
    assert (contact["phone"], contact["status"]) == (None, "active")


def test_create_only_a_change_the_contact_holds_is_skipped_and_remembered() -> None:
    """In create_only the contact keeps its name: the rename is skipped as held by the CRM
    (naming the contact), and the same name again costs no CRM call."""
    rig = Rig(sync_mode="create_only")
    rig.apply(created(U, at(0), email="kim@example.com", name="Kim A"))
    held = rig.apply(updated(U, at(5), email="kim@example.com", name="Kim B"))
    assert (held.status, held.reason, held.contact_id) == ("skipped", "held_by_crm", "c_1")
    rig.crm.calls.clear()
    again = rig.apply(updated(U, at(6), email="kim@example.com", name="Kim B"))
    assert (again.status, again.reason) == ("skipped", "unchanged")
    assert rig.crm.calls == []
    assert rig.crm.contacts["c_1"]["name"] == "Kim A"


def test_a_user_without_an_email_whose_contact_is_known_is_still_written() -> None:
    """No email to create a contact with only matters when there is no contact: a state
    that knows the user's contact (rebuilt, nothing recorded as written) writes to it."""
    rig = Rig()
    own = rig.crm.add(email="ola@example.com", name="Ola", auth0_user_id=U)
    seed_mapping(rig, own)
    outcome = rig.apply(updated(U, at(1), name="Ola N."))
    assert (outcome.status, outcome.contact_id) == ("applied", own)
    assert rig.crm.contacts[own]["name"] == "Ola N."


def test_a_signup_without_an_email_is_skipped_with_no_crm_call() -> None:
    rig = Rig()
    outcome = rig.apply(created(U, at(0), name="Ola"))
    assert (outcome.status, outcome.reason) == ("skipped", "no_email")
    assert rig.crm.calls == []


class CommitFailsWhenAsked(MemorySyncStateStore):
    """A state store whose next commit fails (a throttled table)."""

    fail_next = False

    def commit(self, state: SyncState, owner: str) -> None:
        if self.fail_next:
            self.fail_next = False
            raise TransientError("state table: throttled", "state_unavailable")
        super().commit(state, owner)


def test_a_failed_event_whose_unsure_write_could_not_be_noted_still_releases_the_lease() -> None:
    """The write timed out (unknown outcome) and noting that in the state failed too: the
    lease is released all the same, so the event's retry runs at once."""
    store = CommitFailsWhenAsked()
    rig = Rig(state=store)
    crm = rig.use(TimesOut())
    rig.apply(created(U, at(0), email="ola@example.com", name="Ola"))
    crm.time_out_next, store.fail_next = True, True
    event = parse_event(updated(U, at(1), email="ola@example.com", name="One"), now=NOW)
    with pytest.raises(TransientError):
        rig.core.apply(event, lease_seconds=30.0)
    assert rig.core.apply(event, lease_seconds=0.2).reason == "updated"
    assert crm.contacts["c_1"]["name"] == "One"
