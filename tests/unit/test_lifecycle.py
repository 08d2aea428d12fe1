"""Lifecycles the plain rules do not cover (issue 23): users without an email, unverified
emails, unlinking, blocked users.

Each case runs in every arrival order with a duplicate, against the in-memory CRM (unique
emails unless said), with a bystander contact that must stay exactly as it was. Expected
values are written out here from the Auth0 history by hand.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth0_sync.errors import ConfigError
from auth0_sync.names import Env
from auth0_sync.settings import Settings
from tests.builders import at, created, deleted, identities, updated
from tests.unit.test_sync_core import World, ids, orders

pytestmark = pytest.mark.unit

BYSTANDER = "auth0|bystander"


def with_bystander(world: World) -> tuple[str, dict[str, Any]]:
    contact_id = world.crm.add(
        auth0_user_id=BYSTANDER, email="by@example.com", name="By Stander", phone="+15550000"
    )
    return contact_id, dict(world.crm.contacts[contact_id])


# Users without an email (NO_EMAIL_POLICY) ---------------------------------------------------

SMS = "sms|5f1a2b3c4d5e6f7a8b9c0d1e"  # passwordless SMS: a phone number, no email


def sms_profile(**extra: Any) -> dict[str, Any]:
    # A passwordless SMS user's profile carries `phone_number`/`phone_verified` and no email
    # (https://auth0.com/docs/authenticate/passwordless/authentication-methods/sms-otp).
    return {"phone_number": "+15550101", "phone_verified": True, **extra}


def test_a_user_without_an_email_costs_no_crm_call_and_no_dead_letter() -> None:
    history = [
        created(SMS, at(0), **sms_profile(name="+15550101")),
        updated(SMS, at(1), **sms_profile(name="+15550101", last_login=at(1).isoformat())),
        updated(SMS, at(2), **sms_profile(name="Sam Sms")),
    ]
    for order in orders(history):
        world = World()
        bystander, before = with_bystander(world)
        world.deliver(order)
        assert world.dead == [], ids(order)
        assert world.crm.calls == [], ids(order)
        assert {o.reason for o in world.outcomes} == {"no_email"}, ids(order)
        assert world.crm.contacts == {bystander: before}


def test_a_user_without_an_email_and_its_delete_write_nothing() -> None:
    history = [
        created(SMS, at(0), **sms_profile()),
        updated(SMS, at(1), **sms_profile(name="Sam")),
        deleted(SMS, at(2)),
    ]
    for order in orders(history):
        world = World()
        bystander, before = with_bystander(world)
        world.deliver(order)
        assert world.dead == [], ids(order)
        assert world.crm.writes() == [], ids(order)
        assert world.crm.contacts == {bystander: before}


def test_a_user_who_gains_an_email_is_created_then_with_the_latest_values() -> None:
    history = [
        created(SMS, at(0), **sms_profile()),
        updated(SMS, at(1), **sms_profile(name="Sam")),
        updated(SMS, at(2), **sms_profile(name="Sam", email="sam@example.com")),
        updated(SMS, at(3), **sms_profile(name="Sam S", email="sam@example.com")),
    ]
    for order in orders(history):
        world = World()
        bystander, before = with_bystander(world)
        world.deliver(order)
        assert world.dead == [], ids(order)
        contact = world.only_contact(SMS)
        assert (contact["email"], contact["name"], contact["phone"], contact["status"]) == (
            "sam@example.com",
            "Sam S",
            "+15550101",
            "active",
        ), ids(order)
        assert world.crm.contacts[bystander] == before


def test_a_user_who_had_a_contact_keeps_it_when_the_email_goes() -> None:
    user = "auth0|lose1"
    world = World()
    world.deliver(
        [
            created(user, at(0), email="lee@example.com", name="Lee"),
            updated(user, at(1), email=None, name="Lee B"),
        ]
    )
    assert world.dead == []
    contact = world.only_contact(user)
    assert (contact["email"], contact["name"]) == ("lee@example.com", "Lee B")


@pytest.mark.parametrize("crm_type", ["rest", "hubspot", "salesforce"])
def test_creating_contacts_without_an_email_is_refused_where_the_destination_needs_one(
    crm_type: str,
) -> None:
    env: dict[str, str] = {
        Env.CRM_TYPE: crm_type,
        Env.CRM_BASE_URL: "https://crm.example.com",
        Env.CRM_API_TOKEN: "t",
        Env.NO_EMAIL_POLICY: "create",
    }
    with pytest.raises(ConfigError, match=r"NO_EMAIL_POLICY=create needs a destination"):
        Settings.from_env(env)
    assert Settings.from_env({**env, Env.NO_EMAIL_POLICY: "skip"}).no_email_policy == "skip"


# Claims by email only for verified addresses (CLAIM_UNVERIFIED_EMAIL) ----------------------

FAKE, REAL = "auth0|64f0aa11bb22cc33dd44ee55", "google-oauth2|108866442200"


def imported(world: World) -> tuple[str, dict[str, Any]]:
    """A contact that was in the CRM before the sync: nobody's yet."""
    contact_id = world.crm.add(email="kim@example.com", name="Kim (imported)")
    return contact_id, dict(world.crm.contacts[contact_id])


def test_an_unverified_signup_never_takes_a_contact_its_verified_owner_claims_later() -> None:
    history = [
        # A database signup: Auth0 sends `email_verified: false` until the link is clicked.
        created(FAKE, at(0), email="kim@example.com", email_verified=False, name="Kim?"),
        updated(FAKE, at(1), email="kim@example.com", email_verified=False, name="Kim Fake"),
        # The owner of the address signs up with a social login that verified it.
        created(REAL, at(2), email="kim@example.com", email_verified=True, name="Kim Real"),
        updated(
            REAL, at(3), email="kim@example.com", email_verified=True, name="Kim Real",
            phone_number="+15550303",
        ),
    ]  # fmt: skip
    for order in orders(history):
        world = World()  # unique emails
        bystander, before = with_bystander(world)
        kim, _ = imported(world)
        world.deliver(order)
        assert world.dead == [], ids(order)
        assert world.crm.contacts[kim] == {
            "id": kim, "status": "active", "auth0_user_id": REAL, "email": "kim@example.com",
            "name": "Kim Real", "phone": "+15550303",
            "source_updated_at": "2026-03-01T09:03:00.000000+00:00",
        }, ids(order)  # fmt: skip
        assert world.crm.owned_by(FAKE) == [], ids(order)
        fake = {o.reason for o in world.outcomes if o.user_id == FAKE}
        assert fake <= {"email_unverified", "duplicate", "stale"}, (ids(order), fake)
        assert "email_unverified" in fake, ids(order)
        assert world.crm.contacts[bystander] == before


def test_an_unverified_user_gets_its_own_contact_on_a_crm_without_unique_emails() -> None:
    history = [
        # A user whose first event here is an update (signed up before the sync ran).
        updated(FAKE, at(1), email="kim@example.com", email_verified=False, name="Kim Fake"),
        updated(
            FAKE, at(2), email="kim@example.com", email_verified=False, name="Kim Fake",
            last_login=at(2).isoformat(),
        ),
    ]  # fmt: skip
    for order in orders(history):
        world = World(unique_emails=False)
        bystander, before = with_bystander(world)
        kim, kim_before = imported(world)
        world.deliver(order)
        assert world.dead == [], ids(order)
        assert world.crm.contacts[kim] == kim_before, ids(order)
        mine = world.only_contact(FAKE)
        assert (mine["email"], mine["name"]) == ("kim@example.com", "Kim Fake")
        assert world.crm.contacts[bystander] == before


def test_an_unverified_user_claims_once_the_address_is_verified() -> None:
    history = [
        created(FAKE, at(0), email="kim@example.com", email_verified=False, name="Kim"),
        updated(FAKE, at(1), email="kim@example.com", email_verified=True, name="Kim"),
    ]
    for order in orders(history):
        world = World()
        kim, _ = imported(world)
        world.deliver(order)
        assert world.dead == [], ids(order)
        assert (world.crm.contacts[kim]["auth0_user_id"], world.crm.contacts[kim]["name"]) == (
            FAKE,
            "Kim",
        )
        assert len(world.crm.contacts) == 1


def test_claims_by_unverified_email_can_be_allowed() -> None:
    world = World(settings={"claim_unverified_email": True})
    kim, _ = imported(world)
    world.deliver([created(FAKE, at(0), email="kim@example.com", email_verified=False, name="K")])
    assert world.crm.contacts[kim]["auth0_user_id"] == FAKE


# Unlinking ------------------------------------------------------------------------------------

PRIMARY, SECONDARY = "auth0|65a1b2c3d4e5f60718293a4b", "google-oauth2|110022003300"


def deliveries(history: list[dict[str, Any]]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Any arrival order of the history, with up to three duplicates (720 orders of six
    events are too many to run each time: hypothesis samples them)."""
    extra = st.lists(st.sampled_from(history), max_size=3)
    return extra.flatmap(lambda dups: st.permutations(history + dups))


UNLINK_RUNS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def link_then_unlink(later_email: str) -> list[dict[str, Any]]:
    """The secondary signs up; it is linked into the primary (the primary's update lists
    it, its delete follows), then unlinked (the primary's update no longer lists it) and
    changes its profile at once and again a week later."""
    week = 7 * 24 * 60
    return [
        created(SECONDARY, at(0), email="dee@example.com", email_verified=True, name="Dee G"),
        updated(
            PRIMARY, at(2), email="dee@example.com", email_verified=True, name="Dee",
            identities=identities(PRIMARY, SECONDARY),
        ),
        deleted(SECONDARY, at(2)),
        updated(
            PRIMARY, at(4), email="dee@example.com", email_verified=True, name="Dee",
            identities=identities(PRIMARY),
        ),
        updated(SECONDARY, at(5), email=later_email, email_verified=True, name="Dee Google"),
        updated(
            SECONDARY, at(5 + week), email=later_email, email_verified=True, name="Dee Google",
            phone_number="+15550505",
        ),
    ]  # fmt: skip


@UNLINK_RUNS
@given(order=deliveries(link_then_unlink("dee@example.com")))
def test_an_unlinked_secondary_writes_its_own_contact_never_the_primarys(
    order: list[dict[str, Any]],
) -> None:
    # The two accounts share the address, on a CRM that takes a second contact with it.
    world = World(unique_emails=False)
    bystander, before = with_bystander(world)
    world.deliver(order)
    assert world.dead == [], ids(order)
    [primary] = world.active(PRIMARY)
    assert (primary["email"], primary["name"], primary.get("phone")) == (
        "dee@example.com",
        "Dee",
        None,
    ), ids(order)
    [secondary] = world.active(SECONDARY)
    assert (secondary["email"], secondary["name"], secondary["phone"]) == (
        "dee@example.com",
        "Dee Google",
        "+15550505",
    ), ids(order)
    assert world.crm.contacts[bystander] == before


@UNLINK_RUNS
@given(order=deliveries(link_then_unlink("dee.g@example.com")))
def test_an_unlinked_secondary_with_its_own_address_on_a_unique_email_crm(
    order: list[dict[str, Any]],
) -> None:
    world = World()
    bystander, before = with_bystander(world)
    world.deliver(order)
    assert world.dead == [], ids(order)
    [primary] = world.active(PRIMARY)
    assert (primary["email"], primary["name"]) == ("dee@example.com", "Dee"), ids(order)
    [secondary] = world.active(SECONDARY)
    assert (secondary["email"], secondary["name"], secondary["phone"]) == (
        "dee.g@example.com",
        "Dee Google",
        "+15550505",
    ), ids(order)
    assert world.crm.contacts[bystander] == before


@UNLINK_RUNS
@given(order=deliveries(link_then_unlink("dee@example.com")))
def test_an_unlinked_secondary_sharing_the_address_on_a_unique_email_crm_waits_for_a_person(
    order: list[dict[str, Any]],
) -> None:
    # Two live users cannot both hold one address there: one contact, the other user's
    # events in the DLQ as owned_by_other; the primary's contact is never written for it.
    world = World()
    bystander, before = with_bystander(world)
    world.deliver(order)
    # owned_by_other is retried (it often resolves itself), then dead-lettered.
    assert set(world.dead) <= {"owned_by_other", "still retrying"}, ids(order)
    holders = [c for c in world.crm.contacts.values() if c["email"] == "dee@example.com"]
    assert len(holders) == 1, ids(order)
    [holder] = holders
    if holder["auth0_user_id"] == PRIMARY:
        assert (holder["name"], holder.get("phone")) == ("Dee", None), ids(order)
    else:
        assert (holder["name"], holder["phone"]) == ("Dee Google", "+15550505"), ids(order)
    assert world.crm.contacts[bystander] == before


# Blocked users (BLOCKED_POLICY) -------------------------------------------------------------

# `blocked` is a root attribute of the Auth0 user profile, true while the user is blocked
# (https://auth0.com/docs/manage-users/user-accounts/user-profiles/user-profile-structure).
BLOCKY = "auth0|66b0c1d2e3f4a5b6c7d8e9f0"


def block_history(unblock: str | None) -> list[dict[str, Any]]:
    events = [
        created(BLOCKY, at(0), email="bo@example.com", name="Bo"),
        updated(BLOCKY, at(1), email="bo@example.com", name="Bo", blocked=True),
        # An administrator edits the profile while the user is blocked.
        updated(BLOCKY, at(2), email="bo@example.com", name="Bo B", blocked=True),
    ]
    if unblock == "false":
        events.append(updated(BLOCKY, at(3), email="bo@example.com", name="Bo B", blocked=False))
    elif unblock == "removed":
        events.append(
            updated(BLOCKY, at(3), email="bo@example.com", name="Bo B", previous={"blocked": True})
        )
    return events


@pytest.mark.parametrize(
    ("unblock", "status"),
    [(None, "deactivated"), ("false", "active"), ("removed", "active")],
    ids=["blocked", "unblocked", "blocked-removed"],
)
def test_a_blocked_user_shows_deactivated_until_unblocked(unblock: str | None, status: str) -> None:
    for order in orders(block_history(unblock)):
        world = World()
        bystander, before = with_bystander(world)
        world.deliver(order)
        assert world.dead == [], ids(order)
        contact = world.only_contact(BLOCKY)
        assert (contact["email"], contact["name"], contact["status"]) == (
            "bo@example.com",
            "Bo B",
            status,
        ), ids(order)
        assert world.crm.contacts[bystander] == before


def test_blocking_can_be_ignored() -> None:
    for order in orders(block_history(None)):
        world = World(settings={"blocked_policy": "ignore"})
        world.deliver(order)
        contact = world.only_contact(BLOCKY)
        assert (contact["name"], contact["status"]) == ("Bo B", "active"), ids(order)


def test_a_blocked_user_deleted_then_back_starts_active() -> None:
    social = "google-oauth2|120033004400"
    history = [
        created(social, at(0), email="cy@example.com", name="Cy"),
        updated(social, at(1), email="cy@example.com", name="Cy", blocked=True),
        deleted(social, at(2)),
        created(social, at(3), email="cy@example.com", name="Cy Again"),
    ]
    for order in orders(history):
        world = World()
        world.deliver(order)
        assert world.dead == [], ids(order)
        contact = world.only_contact(social)
        assert (contact["name"], contact["status"]) == ("Cy Again", "active"), ids(order)


def test_a_blocked_user_taking_a_deactivated_contact_leaves_it_deactivated() -> None:
    history = [
        created(BLOCKY, at(0), email="bo@example.com", name="Bo"),
        updated(BLOCKY, at(1), email="bo@example.com", name="Bo", blocked=True),
    ]
    for order in orders(history):
        world = World()
        # A former customer's contact, deactivated by hand before Bo signed up.
        imported_bo = world.crm.add(
            email="bo@example.com", name="Bo (imported)", status="deactivated"
        )
        world.deliver(order)
        assert world.dead == [], ids(order)
        assert world.crm.contacts[imported_bo] == {
            "id": imported_bo, "status": "deactivated", "auth0_user_id": BLOCKY,
            "email": "bo@example.com", "name": "Bo",
            "source_updated_at": "2026-03-01T09:01:00.000000+00:00",
        }, ids(order)  # fmt: skip


# Case twins (docs/sync-rules.md, Creates) ---------------------------------------------------


def test_a_case_twin_is_refused_as_owned_by_other_and_never_written_on_the_other() -> None:
    ann, twin = "auth0|67c0d1e2f3a4b5c6d7e8f901", "google-oauth2|130044005500"
    history = [
        created(ann, at(0), email="Ann@example.com", name="Ann"),
        created(twin, at(1), email="ann@example.com", name="Ann Twin"),
        updated(twin, at(2), email="ann@example.com", name="Ann Twin 2"),
    ]
    for order in orders(history):
        world = World()  # refuses a taken address on POST, as the reference server does
        world.deliver(order)
        # Whoever reaches the address first holds it; the other is refused (owned_by_other,
        # retried then dead-lettered), and nothing of theirs lands on the holder's contact.
        assert set(world.dead) <= {"still retrying"}, ids(order)
        [holder] = world.crm.contacts.values()
        names = {ann: "Ann", twin: "Ann Twin 2"}
        assert holder["name"] == names[holder["auth0_user_id"]], ids(order)
