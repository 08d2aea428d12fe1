"""The sync core's rules against an in-memory CRM that enforces unique emails.

Every lifecycle case runs in every arrival order (with a duplicate), retrying transient
failures the way Lambda would, and the end state is checked against values written out
here by hand: no test computes its expectation with the code under test.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from auth0_sync import sync_base
from auth0_sync.errors import EmailConflict, TransientError
from auth0_sync.events import parse_event
from auth0_sync.names import SkipReason
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore, SyncState
from auth0_sync.sync import Outcome, SyncCore
from tests import delivery
from tests.builders import at, created, deleted, identities, updated
from tests.fakes.memory_crm import MemoryCrm

pytestmark = pytest.mark.unit

NOW = at(60 * 24 * 30)


@dataclass
class World:
    """One CRM, one state store, one core; `deliver` retries like Lambda's async invoke."""

    unique_emails: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    crm: MemoryCrm = field(init=False)
    state: MemorySyncStateStore = field(default_factory=MemorySyncStateStore)
    dead: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.crm = MemoryCrm(unique_emails=self.unique_emails)
        config = Settings(crm_base_url="http://crm.invalid", crm_api_token="t", **self.settings)
        self.core = SyncCore(config, self.crm, self.state)

    def apply(self, raw: dict[str, Any]) -> Outcome:
        outcome = self.core.apply(parse_event(raw, now=NOW), lease_seconds=30.0)
        self.outcomes.append(outcome)
        return outcome

    def deliver(self, events: Iterable[dict[str, Any]], rounds: int = 4) -> None:
        left = delivery.deliver(self.apply, events, self.dead, rounds)
        self.dead.extend("still retrying" for _ in left)

    def active(self, user_id: str) -> list[dict[str, Any]]:
        return [c for c in self.crm.owned_by(user_id) if c["status"] == "active"]

    def only_contact(self, user_id: str) -> dict[str, Any]:
        contacts = self.crm.owned_by(user_id)
        assert len(contacts) == 1, contacts
        return contacts[0]


def orders(events: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Every arrival order, each with the first event delivered twice."""
    for order in itertools.permutations(events):
        yield [*order, order[0]]


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail"]["id"] for e in events]


X, Y, U = "auth0|x1", "auth0|y1", "auth0|u1"
SOCIAL = "google-oauth2|1043"


# 1. A hint never writes someone else's contact ---------------------------------------------


def test_a_hint_to_another_users_contact_is_never_followed() -> None:
    for order in orders(
        [
            created(
                Y, at(1), email="y@example.com", name="Yan", app_metadata={"crm_contact_id": ""}
            ),
            updated(Y, at(2), email="y@example.com", name="Yan", phone_number="+15550001"),
        ]
    ):
        world = World()
        x_contact = world.crm.add(auth0_user_id=X, email="x@example.com", name="Xia", phone="+1")
        for event in order:
            event["detail"]["data"]["object"]["app_metadata"] = {"crm_contact_id": x_contact}
        world.deliver(order)
        # X's contact is exactly as it was; Y got a contact of its own.
        assert world.crm.contacts[x_contact] == {
            "id": x_contact, "status": "active", "auth0_user_id": X, "email": "x@example.com",
            "name": "Xia", "phone": "+1",
        }  # fmt: skip
        mine = world.only_contact(Y)
        assert (mine["email"], mine["name"], mine["phone"]) == ("y@example.com", "Yan", "+15550001")
        assert world.dead == []


def test_a_delete_never_deactivates_a_contact_its_hint_or_email_points_at() -> None:
    world = World()
    x_contact = world.crm.add(auth0_user_id=X, email="x@example.com")
    world.deliver(
        [deleted(Y, at(5), email="x@example.com", app_metadata={"crm_contact_id": x_contact})]
    )
    assert world.crm.contacts[x_contact]["status"] == "active"
    assert world.outcomes[0].reason == SkipReason.CONTACT_MISSING


# 2. A returning social user starts a new life ---------------------------------------------


def test_a_social_user_deleted_then_signed_up_again_is_synced_again() -> None:
    history = [
        created(SOCIAL, at(0), email="ada@example.com", name="Ada"),
        updated(SOCIAL, at(1), email="ada@example.com", name="Ada L"),
        deleted(SOCIAL, at(2)),
        created(SOCIAL, at(30), email="ada@example.com", name="Ada Again"),
        updated(SOCIAL, at(31), email="ada@example.com", name="Ada Again", phone_number="+4477"),
    ]
    for order in orders(history):
        world = World()
        world.deliver(order)
        contact = world.only_contact(SOCIAL)
        assert (contact["status"], contact["name"], contact.get("phone")) == (
            "active", "Ada Again", "+4477",
        ), ids(order)  # fmt: skip
        assert world.dead == []


def test_an_event_older_than_the_delete_does_not_resurrect() -> None:
    world = World()
    world.deliver([created(SOCIAL, at(0), email="a@example.com"), deleted(SOCIAL, at(2))])
    world.deliver([updated(SOCIAL, at(1), email="a@example.com", name="Late")])
    contact = world.only_contact(SOCIAL)
    assert contact["status"] == "deactivated"
    assert "name" not in contact
    assert world.outcomes[-1].reason == SkipReason.DELETED


# 3. A database re-signup (new id, same email) claims the deleted user's contact ------------


def test_a_resignup_with_a_new_id_claims_the_deleted_users_contact() -> None:
    old, new = "auth0|old", "auth0|new"
    history = [
        created(old, at(0), email="bob@example.com", name="Bob", phone_number="+1555"),
        deleted(old, at(1)),
        created(new, at(2), email="bob@example.com", name="Robert"),
    ]
    for order in orders(history):
        world = World()
        world.deliver(order)
        contact = world.only_contact(new)
        # Nothing of the deleted user stays: the phone only Bob gave is cleared.
        assert (contact["status"], contact["email"], contact["name"], contact.get("phone")) == (
            "active", "bob@example.com", "Robert", None,
        ), ids(order)  # fmt: skip
        assert world.crm.owned_by(old) == []
        assert len(world.crm.contacts) == 1
        assert world.dead == []


# 4. Links and re-signups write status active ---------------------------------------------


def test_a_signup_linked_to_a_deactivated_contact_reactivates_it() -> None:
    world = World()
    former = world.crm.add(email="cara@example.com", name="Cara", status="deactivated")
    world.deliver([created(U, at(0), email="cara@example.com", name="Cara N")])
    assert world.crm.contacts[former]["status"] == "active"
    assert world.crm.contacts[former]["auth0_user_id"] == U
    assert world.crm.contacts[former]["name"] == "Cara N"


# 5. Account linking ------------------------------------------------------------------------


def test_linking_into_a_primary_leaves_one_active_contact_and_no_dead_letter() -> None:
    primary, secondary = "auth0|p1", SOCIAL
    history = [
        created(secondary, at(0), email="dee@example.com", name="Dee G"),
        created(primary, at(1), email="dee@example.com", name="Dee"),
        updated(
            primary, at(2), email="dee@example.com", name="Dee",
            identities=identities(primary, secondary),
        ),
        deleted(secondary, at(2)),
    ]  # fmt: skip
    for order in orders(history):
        world = World()
        world.deliver(order)
        assert world.dead == [], ids(order)
        assert [c["name"] for c in world.active(primary)] == ["Dee"], ids(order)
        assert [c for c in world.crm.contacts.values() if c["status"] == "active"] == world.active(
            primary
        )


def test_linking_when_both_accounts_had_contacts_deactivates_the_secondarys() -> None:
    primary, secondary = "auth0|p2", "github|77"
    history = [
        created(secondary, at(0), email="gh@example.com", name="Octo"),
        created(primary, at(1), email="eve@example.com", name="Eve"),
        updated(
            primary, at(2), email="eve@example.com", name="Eve",
            identities=identities(primary, secondary),
        ),
        deleted(secondary, at(2)),
    ]  # fmt: skip
    for order in orders(history):
        world = World()
        world.deliver(order)
        assert world.dead == [], ids(order)
        assert [c["email"] for c in world.active(primary)] == ["eve@example.com"]
        assert [c["status"] for c in world.crm.owned_by(secondary)] in (["deactivated"], [])


def test_the_secondarys_delete_is_counted_as_a_link() -> None:
    primary, secondary = "auth0|p3", "github|78"
    world = World()
    world.deliver(
        [
            created(secondary, at(0), email="sam@example.com"),
            updated(
                primary, at(1), email="sam@example.com",
                identities=identities(primary, secondary),
            ),
            deleted(secondary, at(1)),
        ]
    )  # fmt: skip
    assert world.outcomes[-1].reason == SkipReason.ACCOUNT_LINKED
    assert [c["email"] for c in world.active(primary)] == ["sam@example.com"]


def test_a_late_update_of_the_secondary_never_writes_the_contact_its_primary_took() -> None:
    primary, secondary = "auth0|p4", "google-oauth2|4404"
    history = [
        created(secondary, at(0), email="ivy@example.com", name="Ivy G"),
        # Sent before the link, delivered after it (or in any other order).
        updated(secondary, at(1), email="ivy@example.com", name="Ivy Google"),
        updated(
            primary, at(2), email="ivy@example.com", name="Ivy",
            identities=identities(primary, secondary),
        ),
        deleted(secondary, at(2)),
    ]  # fmt: skip
    for order in orders(history):
        world = World()
        world.deliver(order)
        assert world.dead == [], ids(order)
        assert [c["name"] for c in world.active(primary)] == ["Ivy"], ids(order)
        assert [c for c in world.crm.contacts.values() if c["status"] == "active"] == world.active(
            primary
        ), ids(order)


def test_a_secondarys_late_event_is_counted_as_a_link_at_once_not_retried() -> None:
    primary, secondary = "auth0|p7", "google-oauth2|7707"
    world = World()
    world.deliver(
        [
            created(secondary, at(0), email="lou@example.com", name="Lou G"),
            updated(
                primary, at(2), email="lou@example.com", name="Lou",
                identities=identities(primary, secondary),
            ),
        ]
    )  # fmt: skip
    writes = len(world.crm.writes())
    # The secondary's delete has not come yet; an update it sent before the link arrives.
    out = world.apply(updated(secondary, at(1), email="lou@example.com", name="Lou Google"))
    assert (out.status, out.reason) == ("skipped", SkipReason.ACCOUNT_LINKED)
    assert len(world.crm.writes()) == writes
    assert [c["name"] for c in world.active(primary)] == ["Lou"]


def test_a_contact_changes_hands_only_while_its_previous_owner_is_not_being_synced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sync_base, "LEASE_WAIT_SECONDS", 0.05)
    primary, secondary = "auth0|p5", "github|505"
    world = World()
    world.deliver([created(secondary, at(0), email="jo@example.com", name="Jo")])
    [contact] = world.crm.owned_by(secondary)
    link = updated(
        primary, at(2), email="jo@example.com", name="Jo P",
        identities=identities(primary, secondary),
    )  # fmt: skip
    # The secondary's delete is being applied: it holds the secondary's lease and is about
    # to deactivate the contact it read.
    world.state.acquire(secondary, "the secondary's delete", 30.0)
    with pytest.raises(TransientError) as failure:
        world.apply(link)
    assert failure.value.reason == "lease_held"
    assert world.crm.contacts[contact["id"]]["auth0_user_id"] == secondary
    assert world.crm.contacts[contact["id"]]["name"] == "Jo"
    world.crm.update_contact(contact["id"], {"status": "deactivated"})  # the delete lands
    world.state.release(secondary, "the secondary's delete")
    world.apply(link)  # Lambda's retry
    assert world.crm.contacts[contact["id"]] == {
        "id": contact["id"], "status": "active", "email": "jo@example.com", "name": "Jo P",
        "auth0_user_id": primary, "source_updated_at": "2026-03-01T09:02:00.000000+00:00",
    }  # fmt: skip


class DeleteLandsAfterTheLookup(MemoryCrm):
    """The secondary's delete deactivates its contact just after the primary's lookup has
    read it (still active)."""

    secondary = ""

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[dict[str, Any]]:
        found = super().find_contacts(email=email, auth0_user_id=auth0_user_id)
        if self.secondary and auth0_user_id == self.secondary:
            for contact in self.owned_by(self.secondary):
                contact["status"] = "deactivated"
            self.secondary = ""
        return found


def test_a_contact_changing_hands_is_read_again_under_the_previous_owners_lease() -> None:
    primary, secondary = "auth0|p6", "github|606"
    world = World()
    world.crm = DeleteLandsAfterTheLookup()
    world.core = SyncCore(world.core.settings, world.crm, world.state)
    world.deliver([created(secondary, at(0), email="kit@example.com", name="Kit")])
    world.crm.secondary = secondary
    world.deliver(
        [
            updated(
                primary, at(2), email="kit+p@example.com", name="Kit P",
                identities=identities(primary, secondary),
            )
        ]
    )  # fmt: skip
    [contact] = world.crm.owned_by(primary)
    assert (contact["status"], contact["name"]) == ("active", "Kit P")


# 6. A delete that arrives before the contact is known ---------------------------------------


@pytest.mark.parametrize("how", ["hint", "email"])
def test_a_minimal_delete_first_deactivates_the_contact_a_later_older_event_reveals(
    how: str,
) -> None:
    for first_delete in (True, False):
        world = World()
        known = world.crm.add(email="fay@example.com", name="Fay")
        profile: dict[str, Any] = {"email": "fay@example.com", "name": "Fay"}
        if how == "hint":
            profile = {"email": "fay.new@example.com", "app_metadata": {"crm_contact_id": known}}
        signup = created(U, at(0), **profile)
        gone = deleted(U, at(5))  # only user_id and deleted_at
        world.deliver([gone, signup] if first_delete else [signup, gone])
        assert world.crm.contacts[known]["status"] == "deactivated", (how, first_delete)
        assert len(world.crm.contacts) == 1


# 7. Two identities cannot both claim one contact ------------------------------------------


def test_the_second_identity_reaching_a_claimed_contact_does_not_write_it() -> None:
    world = World()
    shared = world.crm.add(email="gil@example.com", name="Gil")
    world.deliver([created(X, at(0), email="gil@example.com", name="Gil X")])
    world.deliver([created(Y, at(1), email="gil@example.com", name="Gil Y")])
    assert world.crm.contacts[shared]["auth0_user_id"] == X
    assert world.crm.contacts[shared]["name"] == "Gil X"
    assert world.dead == ["still retrying"]  # owned_by_other, retried, then left for a person


def test_a_claim_taken_concurrently_by_another_identity_is_not_overwritten() -> None:
    world = World()
    shared = world.crm.add(email="hal@example.com", name="Hal")
    # Y has claimed the contact and its PATCH is still on its way.
    assert world.state.claim_contact(shared, Y, None)
    with pytest.raises(TransientError) as failure:
        world.apply(created(X, at(0), email="hal@example.com", name="Hal X"))
    assert failure.value.reason == "claim_conflict"
    assert world.crm.contacts[shared] == {
        "id": shared, "status": "active", "email": "hal@example.com", "name": "Hal",
    }  # fmt: skip


def test_two_users_events_with_one_event_id_each_end_with_their_own_contact() -> None:
    # Auth0 never reuses an id across users; a replayed or hand-made file can.
    world = World()
    x_signup = created(X, at(0), email="xena@example.com", name="Xena", event_id="evt_same")
    y_signup = created(Y, at(1), email="yuri@example.com", name="Yuri", event_id="evt_same")
    world.deliver([x_signup, y_signup, y_signup, x_signup])
    assert world.dead == []
    assert len(world.crm.contacts) == 2
    assert {k: world.only_contact(X)[k] for k in ("email", "name")} == {
        "email": "xena@example.com", "name": "Xena",
    }  # fmt: skip
    assert {k: world.only_contact(Y)[k] for k in ("email", "name")} == {
        "email": "yuri@example.com", "name": "Yuri",
    }  # fmt: skip


class OneKeyCrm(MemoryCrm):
    """A CRM that answers every create with the contact of the first one (as one that keys
    creates on something other than what it is sent would)."""

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        del idempotency_key
        return super().create_contact(fields, "the one key")


def test_a_contact_a_create_answers_for_someone_else_is_never_written() -> None:
    world = World()
    world.crm = OneKeyCrm(unique_emails=True)
    config = Settings(crm_base_url="http://crm.invalid", crm_api_token="t")
    world.core = SyncCore(config, world.crm, world.state)
    world.deliver([created(X, at(0), email="xena@example.com", name="Xena")])
    (xs,) = world.crm.contacts
    world.deliver(
        [
            created(Y, at(1), email="yuri@example.com", name="Yuri"),
            updated(Y, at(2), email="yuri@example.com", name="Yuri 2"),
        ]
    )
    kept = {k: world.crm.contacts[xs][k] for k in ("email", "name", "auth0_user_id", "status")}
    assert kept == {
        "email": "xena@example.com", "name": "Xena", "auth0_user_id": X, "status": "active",
    }  # fmt: skip
    assert not [c for c in world.crm.calls if c.method == "PATCH"]
    assert world.dead == ["still retrying", "still retrying"]  # owned_by_other: a person's


def test_a_rerun_costs_no_crm_call_for_a_user_whose_delete_found_no_contact() -> None:
    # The README: "duplicates cost no CRM call". The delete comes first and finds nothing;
    # the older events are looked up once each (one of them might reveal the contact).
    world = World()
    stream = [
        deleted(U, at(5)),
        created(U, at(0), email="una@example.com", name="Una"),
        updated(U, at(1), email="una.b@example.com", name="Una B"),
    ]
    world.deliver(stream)
    looked_up = len(world.crm.calls)
    assert looked_up > 0
    world.deliver(stream)  # the same file again
    assert len(world.crm.calls) == looked_up
    assert world.crm.contacts == {}
    assert world.dead == []
    assert [o.reason for o in world.outcomes[3:]] == ["duplicate", "deleted", "deleted"]


# 8. Ties -----------------------------------------------------------------------------------


def test_at_an_equal_time_a_create_never_overwrites_an_update() -> None:
    for order in orders(
        [
            created(U, at(3), email="ivy@example.com", name="Ivy"),
            updated(U, at(3), email="ivy@example.com", name="Ivy Updated"),
        ]
    ):
        world = World()
        world.deliver(order)
        assert world.only_contact(U)["name"] == "Ivy Updated"


def test_at_an_equal_time_a_delete_wins() -> None:
    for order in orders(
        [created(U, at(0), email="jo@example.com"), updated(U, at(3), email="jo@example.com"),
         deleted(U, at(3))]
    ):  # fmt: skip
        world = World()
        world.deliver(order)
        # Deactivated, or never created when the delete came first: never active.
        assert [c["status"] for c in world.crm.owned_by(U)] in (["deactivated"], [])
        assert world.crm.contacts == {} or len(world.crm.contacts) == 1


# Issue 11: what a write contains --------------------------------------------------------


def test_a_field_set_to_null_or_empty_is_cleared_and_the_repeat_costs_nothing() -> None:
    world = World()
    world.deliver([created(U, at(0), email="kim@example.com", name="Kim", phone_number="+1")])
    world.deliver([updated(U, at(1), email="kim@example.com", name="", phone_number=None)])
    contact = world.only_contact(U)
    assert (contact["name"], contact["phone"]) == (None, None)
    calls = world.crm.calls_made()
    world.deliver([updated(U, at(2), email="kim@example.com", name=None, phone_number="")])
    assert world.crm.calls_made() == calls
    assert world.outcomes[-1].reason == SkipReason.UNCHANGED


def test_a_field_gone_since_previous_object_is_cleared() -> None:
    world = World()
    world.deliver([created(U, at(0), email="lee@example.com", phone_number="+1")])
    world.deliver([updated(U, at(1), email="lee@example.com", previous={"phone_number": "+1"})])
    assert world.only_contact(U)["phone"] is None


def test_a_field_merely_absent_is_kept_by_default_and_cleared_when_configured() -> None:
    keep, clear = World(), World(settings={"absent_fields": "clear"})
    for world in (keep, clear):
        world.deliver([created(U, at(0), email="max@example.com", phone_number="+1")])
        world.deliver([updated(U, at(1), email="max@example.com")])
    assert keep.only_contact(U)["phone"] == "+1"
    assert clear.only_contact(U)["phone"] is None


def test_a_write_contains_only_the_fields_that_changed() -> None:
    world = World()
    world.deliver([created(U, at(0), email="ned@example.com", name="Ned", phone_number="+1")])
    world.deliver([updated(U, at(1), email="ned@example.com", name="Ned", phone_number="+2")])
    last = world.crm.writes()[-1]
    assert last.method == "PATCH"
    assert set(last.body or {}) == {"phone", "source_updated_at"}


def test_an_email_swap_converges_on_a_crm_with_unique_emails() -> None:
    a, b = "auth0|swap-a", "auth0|swap-b"
    signups = [created(a, at(0), email="a@example.com"), created(b, at(0), email="b@example.com")]
    swap = [
        updated(a, at(5), email="b@example.com", name="A"),
        updated(b, at(6), email="a@example.com", name="B"),
    ]
    for order in orders(swap):
        world = World()
        world.deliver(signups)
        world.deliver(order)
        assert world.dead == [], ids(order)
        assert (world.only_contact(a)["email"], world.only_contact(a)["name"]) == (
            "b@example.com",
            "A",
        )
        assert (world.only_contact(b)["email"], world.only_contact(b)["name"]) == (
            "a@example.com",
            "B",
        )
        # Afterwards a phone-only change of either goes through.
        world.deliver([updated(a, at(7), email="b@example.com", name="A", phone_number="+9")])
        assert world.only_contact(a)["phone"] == "+9"


def test_a_refused_email_does_not_hold_the_other_fields_hostage() -> None:
    world = World()
    world.crm.add(email="taken@example.com")  # nobody's contact, and it keeps the address
    world.deliver([created(U, at(0), email="old@example.com", name="Old")])
    with pytest.raises(EmailConflict):
        world.apply(updated(U, at(1), email="taken@example.com", name="New"))
    contact = world.only_contact(U)
    assert contact["name"] == "New"
    # The old address is no longer this person's: it is let go, not kept.
    assert contact["email"].endswith("@email-conflict.invalid")


def test_a_failed_commit_releases_the_lease() -> None:
    class FailingCommit(MemorySyncStateStore):
        def commit(self, state: SyncState, owner: str) -> None:
            raise TransientError("state table: throttled", "state_unavailable")

    world = World(state=FailingCommit())
    with pytest.raises(TransientError):
        world.apply(created(U, at(0), email="ola@example.com"))
    # The next attempt takes the lease at once instead of failing with lease_held.
    assert world.state.acquire(U, "next", 30.0).user_id == U
