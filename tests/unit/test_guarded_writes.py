"""Writes to a stored contact that are never wrong (`auth0_sync.writes`), against the
in-memory CRM with contract 1.2's conditional writes (a version per contact, 412).

- A write whose first attempt the CRM holds and applies late (after our retry succeeded
  and a newer change was written) is refused: the contact keeps the newer value.
- A contact a person gave to another user in the CRM is never written for its previous
  owner: that user's next change finds or creates its own contact, and costs no GET while
  nobody touched the contact.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from auth0_sync.errors import TransientError
from tests.builders import at, created, updated
from tests.fakes.memory_crm import Call
from tests.unit.test_sync_core import World

pytestmark = pytest.mark.unit

U, V = "auth0|u1", "auth0|v1"


def test_a_write_held_by_the_crm_and_applied_late_does_not_revert_a_newer_one() -> None:
    world = World()
    world.deliver([created(U, at(1), email="u@example.com", name="Zero")])
    contact_id = world.only_contact(U)["id"]
    world.crm.hold_next_write()  # "One": the first attempt is held, the retry applied
    world.deliver([updated(U, at(2), email="u@example.com", name="One")])
    world.deliver([updated(U, at(3), email="u@example.com", name="Two")])
    assert world.crm.contacts[contact_id]["name"] == "Two"
    # The held attempt of "One" lands now, with the version it was based on: refused.
    assert world.crm.land_held() is False
    assert world.crm.contacts[contact_id]["name"] == "Two"
    assert world.dead == []


def test_without_versions_a_write_of_unknown_outcome_holds_back_the_next_one() -> None:
    """HubSpot-like: no precondition, so after a write whose first attempt timed out the
    user's next write waits (`write_unconfirmed`) for as long as that attempt may land."""
    world = World()
    world.crm.versioned = False
    world.crm.late_write_seconds = 0.3
    world.deliver([created(U, at(1), email="u@example.com", name="Zero")])
    contact_id = world.only_contact(U)["id"]
    world.crm.hold_next_write()
    world.deliver([updated(U, at(2), email="u@example.com", name="One")])
    two = updated(U, at(3), email="u@example.com", name="Two")
    with pytest.raises(TransientError, match="write_unconfirmed"):
        world.apply(two)
    assert world.crm.land_held() is True  # "One" lands late, while "Two" waits
    time.sleep(0.35)
    world.deliver([two])
    assert world.crm.contacts[contact_id]["name"] == "Two"
    assert world.dead == []


def test_every_write_to_a_stored_contact_carries_the_version_our_last_write_left() -> None:
    world = World()
    world.deliver([created(U, at(1), email="u@example.com", name="Zero")])
    world.crm.calls.clear()
    world.deliver([updated(U, at(2), email="u@example.com", name="One")])
    world.deliver([updated(U, at(3), email="u@example.com", name="Two")])
    # No read before a write; each PATCH based on the version the one before left
    # (the create made "v1"; each write adds one).
    assert [(c.method, c.body and c.body.get("name"), c.version) for c in world.crm.calls] == [
        ("PATCH", "One", '"v1"'),
        ("PATCH", "Two", '"v2"'),
    ]
    assert world.only_contact(U)["name"] == "Two"


def test_a_persons_edit_costs_one_read_and_is_kept() -> None:
    world = World()
    world.deliver([created(U, at(1), email="u@example.com", name="Zero", phone_number="+1")])
    contact_id = world.only_contact(U)["id"]
    world.crm.edit(contact_id, phone="+1999")  # a sales rep fixes the phone by hand
    world.crm.calls.clear()
    world.deliver([updated(U, at(2), email="u@example.com", name="One", phone_number="+1")])
    assert [c.method for c in world.crm.calls] == ["PATCH", "GET", "PATCH"]
    assert world.crm.contacts[contact_id] == {
        "id": contact_id, "status": "active", "auth0_user_id": U, "email": "u@example.com",
        "name": "One", "phone": "+1999", "source_updated_at": "2026-03-01T09:02:00.000000+00:00",
    }  # fmt: skip


def test_a_contact_given_to_another_user_is_never_written_for_its_previous_owner() -> None:
    world = World()
    world.deliver([created(U, at(1), email="u@example.com", name="Una", phone_number="+1")])
    given = world.only_contact(U)["id"]
    # A person gives U's contact to V in the CRM (V's id and address).
    world.crm.edit(given, auth0_user_id=V, email="v@example.com", name="Vic", phone="+2")
    world.deliver([updated(U, at(2), email="u@example.com", name="Una B", phone_number="+3")])
    assert world.crm.contacts[given] == {
        "id": given, "status": "active", "auth0_user_id": V, "email": "v@example.com",
        "name": "Vic", "phone": "+2", "source_updated_at": "2026-03-01T09:01:00.000000+00:00",
    }  # fmt: skip
    mine = world.only_contact(U)
    assert mine["id"] != given
    assert (mine["email"], mine["name"], mine["phone"]) == ("u@example.com", "Una B", "+3")
    assert world.state.get(U) is not None
    assert world.state.get(U).contact_id == mine["id"]  # type: ignore[union-attr]
    assert world.dead == []


def test_a_contact_given_away_with_the_users_address_waits_for_a_person() -> None:
    """The person left U's address on the contact they gave V: U cannot have its own
    contact with that address on a CRM with unique emails, and V's is never written."""
    world = World()
    world.deliver([created(U, at(1), email="u@example.com", name="Una")])
    given = world.only_contact(U)["id"]
    world.crm.edit(given, auth0_user_id=V)
    world.deliver([updated(U, at(2), email="u@example.com", name="Una B")])
    assert world.crm.contacts[given]["name"] == "Una"
    assert world.crm.owned_by(U) == []
    assert world.dead == ["still retrying"]  # owned_by_other, retried, then the DLQ


def test_a_write_refused_again_and_again_is_retried_later() -> None:
    world = World()
    world.deliver([created(U, at(1), email="u@example.com", name="Zero")])
    contact_id = world.only_contact(U)["id"]

    class Busy:
        """Someone edits the contact between each of our reads and writes."""

        def __init__(self) -> None:
            self.inner = world.crm.get_contact

        def __call__(self, cid: str) -> dict[str, Any] | None:
            found = self.inner(cid)
            world.crm.edit(contact_id, phone="+1")
            return found

    world.crm.get_contact = Busy()  # type: ignore[method-assign,assignment]
    world.crm.edit(contact_id, phone="+0")
    world.crm.calls.clear()
    with pytest.raises(Exception, match="crm_412"):
        world.apply(updated(U, at(2), email="u@example.com", name="One"))
    assert [c.method for c in world.crm.calls] == ["PATCH", "GET", "PATCH", "GET", "PATCH", "GET"]
    assert world.crm.contacts[contact_id]["name"] == "Zero"


def test_calls_are_plain_writes_on_a_crm_without_versions() -> None:
    world = World()
    world.crm.versioned = False
    world.deliver([created(U, at(1), email="u@example.com", name="Zero")])
    world.crm.calls.clear()
    world.deliver([updated(U, at(2), email="u@example.com", name="One")])
    assert [c.method for c in world.crm.calls] == ["PATCH"]
    assert world.crm.calls[0] == Call(
        "PATCH",
        world.only_contact(U)["id"],
        {"name": "One", "source_updated_at": "2026-03-01T09:02:00.000000+00:00"},
        None,
    )
