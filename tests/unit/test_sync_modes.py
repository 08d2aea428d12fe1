"""SYNC_MODE (`auth0_sync.modes`) in the core, each in every arrival order with a duplicate:
`update_only` never creates a contact (a user without one is skipped as `contact_missing`)
and still finds, links and updates one that exists; `upsert` creates. In-memory CRM and
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
USER = "auth0|m1"
SIGNUP = created(USER, at(0), email="kim@example.com", name="Kim A")
RENAMED = updated(USER, at(5), email="kim@example.com", name="Kim B")
GONE = deleted(USER, at(9))


orders = orders_with_a_duplicate


@pytest.mark.parametrize("events", orders(SIGNUP, RENAMED))
def test_update_only_never_creates(events: list[dict[str, Any]]) -> None:
    world = ModeWorld("update_only")

    world.deliver(events)

    assert world.crm.contacts == {}
    assert world.dead == []
    assert {o.reason for o in world.outcomes if o.status == "applied"} == set()
    assert "contact_missing" in {o.reason for o in world.outcomes}


@pytest.mark.parametrize("events", orders(SIGNUP, RENAMED, GONE))
def test_update_only_with_a_delete_still_creates_nothing(events: list[dict[str, Any]]) -> None:
    world = ModeWorld("update_only")

    world.deliver(events)

    assert world.crm.contacts == {}
    assert world.dead == []


@pytest.mark.parametrize("events", orders(SIGNUP, RENAMED))
def test_update_only_links_and_updates_a_contact_the_crm_has(
    events: list[dict[str, Any]],
) -> None:
    world = ModeWorld("update_only")
    existing = world.crm.add(email="kim@example.com", name="From sales")

    world.deliver(events)

    assert list(world.crm.contacts) == [existing]
    contact = world.crm.contacts[existing]
    assert (contact["auth0_user_id"], contact["name"]) == (USER, "Kim B")


@pytest.mark.parametrize("events", orders(SIGNUP, RENAMED))
def test_upsert_creates_the_contact(events: list[dict[str, Any]]) -> None:
    world = ModeWorld("upsert")

    world.deliver(events)

    (contact,) = world.crm.contacts.values()
    assert (contact["auth0_user_id"], contact["name"]) == (USER, "Kim B")


def test_a_user_skipped_by_update_only_finds_the_contact_created_later() -> None:
    world = ModeWorld("update_only")
    world.deliver([SIGNUP])
    existing = world.crm.add(email="kim@example.com", name="From sales")

    world.deliver([RENAMED])

    assert world.crm.contacts[existing]["auth0_user_id"] == USER
    assert world.crm.contacts[existing]["name"] == "Kim B"


def test_reconcile_does_not_count_a_missing_contact_as_drift_under_update_only() -> None:
    user = {"user_id": USER, "email": "kim@example.com", "updated_at": "2026-02-10T08:00:00Z"}

    def drift(mode: str) -> list[str]:
        config = Settings(crm_base_url="http://crm.invalid", crm_api_token="t", sync_mode=mode)
        return [d.kind for d in compare([user], {}, {}, config).drift]

    assert drift("upsert") == ["no_contact"]
    assert drift("update_only") == []


def test_update_only_a_signup_looks_for_the_contact_by_email() -> None:
    """Not creating, a signup cannot lean on the CRM's 409: it looks first."""
    world = ModeWorld("update_only")
    existing = world.crm.add(email="kim@example.com", name="From sales")

    world.deliver([SIGNUP])

    assert world.crm.contacts[existing]["auth0_user_id"] == USER
    assert world.crm.contacts[existing]["name"] == "Kim A"
