"""SYNC_MODE=create_only (`auth0_sync.modes`) in the core, in every arrival order with a
duplicate: the sync never overwrites what a contact holds (a field with a value stays,
whoever put it there), fills the fields it has no value for, creates a new contact with
everything, and still claims, blocks and deactivates by the usual rules. In-memory CRM and
state; Lambda's retries of transient failures are replayed; expected values by hand."""

from __future__ import annotations

from typing import Any

import pytest

from auth0_sync.settings import Settings
from auth0_sync_cli.reconcile import compare
from tests.builders import at, created, deleted, updated
from tests.delivery import ModeWorld, orders_with_a_duplicate

pytestmark = pytest.mark.unit

NOW = at(60 * 24 * 30)
USER = "auth0|co1"
SIGNUP = created(USER, at(0), email="kim@example.com", name="Kim A")
RENAMED = updated(USER, at(5), email="kim@example.com", name="Kim B", given_name="Kim")
GONE = deleted(USER, at(9))


class World(ModeWorld):
    def __init__(self, mode: str = "create_only") -> None:
        super().__init__(mode)

    def sales_contact(self) -> str:
        """A contact sales made before the sync ran: a name, no given name."""
        return self.crm.add(email="kim@example.com", name="From sales", phone="+1 555 0100")


orders = orders_with_a_duplicate


@pytest.mark.parametrize("events", orders(SIGNUP, RENAMED))
def test_create_only_creates_with_everything_and_then_only_fills_empty_fields(
    events: list[dict[str, Any]],
) -> None:
    world = World()

    world.deliver(events)

    (contact,) = world.crm.contacts.values()
    # The first event to arrive created the contact: its name stays; the given name, which
    # only the rename carries, is set either way (created with it, or filled in).
    first_name = "Kim A" if events[0] is SIGNUP else "Kim B"
    assert (contact["auth0_user_id"], contact["name"]) == (USER, first_name)
    assert contact["given_name"] == "Kim"
    assert world.dead == []


@pytest.mark.parametrize("events", orders(SIGNUP, RENAMED))
def test_create_only_claims_the_sales_contact_and_keeps_what_it_holds(
    events: list[dict[str, Any]],
) -> None:
    world = World()
    existing = world.sales_contact()

    world.deliver(events)

    assert list(world.crm.contacts) == [existing]
    contact = world.crm.contacts[existing]
    assert contact["auth0_user_id"] == USER  # the ownership rule is the same in every mode
    assert (contact["name"], contact["phone"]) == ("From sales", "+1 555 0100")
    assert contact["given_name"] == "Kim"  # it had no value: filled
    assert contact["status"] == "active"
    assert world.dead == []


@pytest.mark.parametrize("events", orders(SIGNUP, RENAMED, GONE))
def test_create_only_still_deactivates_on_delete(events: list[dict[str, Any]]) -> None:
    world = World()
    existing = world.sales_contact()

    world.deliver(events)

    assert list(world.crm.contacts) == [existing]
    contact = world.crm.contacts[existing]
    assert (contact["status"], contact["name"]) == ("deactivated", "From sales")
    assert world.dead == []


@pytest.mark.parametrize("events", orders(SIGNUP, RENAMED))
def test_upsert_overwrites_the_sales_contact(events: list[dict[str, Any]]) -> None:
    world = World("upsert")
    existing = world.sales_contact()

    world.deliver(events)

    assert world.crm.contacts[existing]["name"] == "Kim B"


def test_an_update_that_would_only_overwrite_is_a_counted_skip_without_a_write() -> None:
    world = World()
    world.deliver([SIGNUP])
    writes = len(world.crm.writes())

    world.deliver([updated(USER, at(5), email="kim@example.com", name="Kim B")])

    assert world.outcomes[-1].reason == "held_by_crm"
    assert len(world.crm.writes()) == writes
    (contact,) = world.crm.contacts.values()
    assert contact["name"] == "Kim A"


def test_the_next_event_with_the_same_values_costs_no_crm_call() -> None:
    """Login noise stays free: the state remembers what Auth0 said for a held field."""
    world = World()
    world.deliver([SIGNUP, RENAMED])  # the name is held: one read, the given name filled
    calls = len(world.crm.calls)

    world.deliver([updated(USER, at(7), email="kim@example.com", name="Kim B", given_name="Kim")])

    assert world.outcomes[-1].reason == "unchanged"
    assert len(world.crm.calls) == calls


def test_reconcile_after_a_held_value_finds_no_drift() -> None:
    world = World()
    world.deliver([SIGNUP, RENAMED])
    (contact,) = world.crm.contacts.values()
    user = {
        "user_id": USER,
        "email": "kim@example.com",
        "name": "Kim B",
        "given_name": "Kim",
        "updated_at": "2026-03-02T08:00:00Z",  # after the events: the export is newer
    }
    state = world.state.get(USER)
    assert state is not None
    config = Settings(crm_base_url="http://crm.invalid", crm_api_token="t", sync_mode="create_only")

    found = compare([user], {contact["id"]: contact}, {USER: state}, config)

    assert found.drift == []


def test_a_value_sales_cleared_is_filled_by_the_next_change() -> None:
    world = World()
    world.deliver([SIGNUP])
    (contact_id,) = world.crm.contacts
    world.crm.edit(contact_id, name="")

    world.deliver([RENAMED])

    assert world.crm.contacts[contact_id]["name"] == "Kim B"


def test_create_only_still_shows_a_block() -> None:
    """The status is the lifecycle's (BLOCKED_POLICY), not the contact's data."""
    world = World()
    world.deliver([SIGNUP])

    world.deliver([updated(USER, at(5), email="kim@example.com", name="Kim A", blocked=True)])

    (contact,) = world.crm.contacts.values()
    assert contact["status"] == "deactivated"


def test_reconcile_counts_a_held_value_as_drift_only_outside_create_only() -> None:
    user = {
        "user_id": USER,
        "email": "kim@example.com",
        "name": "Kim B",
        "given_name": "Kim",
        "updated_at": "2026-02-10T08:00:00Z",
    }
    # Sales renamed the contact, and it has no given name.
    contact = {"id": "c_1", "auth0_user_id": USER, "email": "kim@example.com", "name": "Sales"}

    def drift(mode: str) -> list[tuple[str, str | None]]:
        config = Settings(crm_base_url="http://crm.invalid", crm_api_token="t", sync_mode=mode)
        found = compare([user], {"c_1": contact}, {}, config).drift
        return sorted((d.kind, d.field) for d in found)

    assert drift("upsert") == [("field_differs", "given_name"), ("field_differs", "name")]
    assert drift("create_only") == [("field_differs", "given_name")]
