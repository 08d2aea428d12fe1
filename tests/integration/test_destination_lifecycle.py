"""The core's lifecycle cases through HTTP against each destination's server: the generic
REST reference CRM, the fake HubSpot and the fake Salesforce org. The core is the same; only
the adapter differs, so the end states must be the same.

Each case runs in several arrival orders (with a duplicate), retrying transient failures
the way Lambda would; the expected contacts are written out here by hand, and each vendor
record is read in its own vocabulary (no adapter code reads the results back).
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from auth0_sync.destinations import Crm
from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.destinations.salesforce import SalesforceCrm, client_credentials
from auth0_sync.events import parse_event
from auth0_sync.names import CrmType
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import SyncCore
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.fakes.hubspot import FakeHubSpot, hubspot_contact
from auth0_sync_cli.fakes.salesforce import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeSalesforce,
    salesforce_contact,
)
from tests import delivery
from tests.builders import at, created, deleted, updated

pytestmark = pytest.mark.integration

NOW = at(60 * 24 * 30)
X, Y, U = "auth0|x1", "auth0|y1", "auth0|u1"
SOCIAL = "google-oauth2|1043"


@dataclass
class Destination:
    """One running destination: how to build its adapter, seed it and read it back."""

    crm_type: CrmType
    base_url: str
    client: Callable[[], Crm]
    reset: Callable[[], None]
    # Every contact as {email, given_name, family_name, phone, auth0_user_id, status}.
    contacts: Callable[[], list[dict[str, Any]]]
    seed: Callable[..., Any]


def _rest_view(contact: dict[str, Any]) -> dict[str, Any]:
    return {
        "email": contact.get("email"),
        "given_name": contact.get("given_name"),
        "family_name": contact.get("family_name"),
        "phone": contact.get("phone"),
        "auth0_user_id": contact.get("auth0_user_id") or None,
        "status": contact.get("status"),
    }


@pytest.fixture(scope="module")
def hubspot_server() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(window_calls=100_000, search_per_second=100_000) as fake:
        yield fake


@pytest.fixture(scope="module")
def salesforce_server() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as fake:
        yield fake


@pytest.fixture(params=[CrmType.REST, CrmType.HUBSPOT, CrmType.SALESFORCE])
def destination(
    request: pytest.FixtureRequest,
    crm: CrmServer,
    hubspot_server: FakeHubSpot,
    salesforce_server: FakeSalesforce,
) -> Destination:
    kind = CrmType(request.param)
    if kind is CrmType.HUBSPOT:
        hs = hubspot_server
        hs.reset()
        return Destination(
            kind,
            hs.base_url,
            lambda: HubSpotCrm(hs.base_url, lambda: hs.token, search_per_second=100_000),
            hs.reset,
            lambda: [hubspot_contact(r) for r in hs.contacts()],
            lambda **f: hs.seed(
                email=f.get("email"), firstname=f.get("given_name"), auth0_status=f.get("status")
            ),
        )
    if kind is CrmType.SALESFORCE:
        sf = salesforce_server
        sf.reset()
        secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        return Destination(
            kind,
            sf.base_url,
            lambda: SalesforceCrm(sf.base_url, client_credentials(lambda: secret)),
            sf.reset,
            lambda: [salesforce_contact(r) for r in sf.contacts()],
            lambda **f: sf.seed(
                Email=f.get("email"),
                FirstName=f.get("given_name"),
                LastName="Old CRM",
                Auth0_Status__c=f.get("status"),
            ),
        )
    from auth0_sync.destinations.rest import RestCrmClient

    return Destination(
        kind,
        crm.base_url,
        lambda: RestCrmClient(crm.base_url, lambda: crm.token),
        crm.reset,
        lambda: [_rest_view(c) for c in crm.contacts()],
        lambda **f: crm.seed_contact(**{k: v for k, v in f.items() if v is not None}),
    )


@dataclass
class World:
    """One destination, one in-memory state store, one core; retries like Lambda."""

    dest: Destination
    state: MemorySyncStateStore = field(default_factory=MemorySyncStateStore)
    dead: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dest.reset()
        settings = Settings(
            crm_type=self.dest.crm_type, crm_base_url=self.dest.base_url, crm_api_token="unused"
        )
        self.core = SyncCore(settings, self.dest.client(), self.state)

    def deliver(self, events: Iterable[dict[str, Any]], rounds: int = 4) -> None:
        def apply(raw: dict[str, Any]) -> None:
            self.core.apply(parse_event(raw, now=NOW), lease_seconds=30.0)

        left = delivery.deliver(apply, events, self.dead, rounds)
        self.dead.extend("still retrying" for _ in left)

    def owned_by(self, user_id: str) -> list[dict[str, Any]]:
        return [c for c in self.dest.contacts() if c["auth0_user_id"] == user_id]

    def only_contact(self, user_id: str) -> dict[str, Any]:
        contacts = self.owned_by(user_id)
        assert len(contacts) == 1, contacts
        return contacts[0]


def orders(events: list[dict[str, Any]], sample: int = 5) -> Iterator[list[dict[str, Any]]]:
    """The order they happened, the reverse, and a few seeded shuffles; each with the first
    event delivered twice."""
    every = list(itertools.permutations(events))
    picked = [
        every[0],
        every[-1],
        *random.Random(len(events)).sample(every, min(sample, len(every))),
    ]
    seen: set[tuple[str, ...]] = set()
    for order in picked:
        key = tuple(e["detail"]["id"] for e in order)
        if key not in seen:
            seen.add(key)
            yield [*order, order[0]]


def test_a_social_user_deleted_then_signed_up_again_is_synced_again(
    destination: Destination,
) -> None:
    history = [
        created(SOCIAL, at(0), email="ada@example.com", given_name="Ada"),
        updated(SOCIAL, at(1), email="ada@example.com", given_name="Ada L"),
        deleted(SOCIAL, at(2)),
        created(SOCIAL, at(30), email="ada@example.com", given_name="Ada Again"),
        updated(
            SOCIAL, at(31), email="ada@example.com", given_name="Ada Again", phone_number="+4477"
        ),
    ]
    for order in orders(history):
        world = World(destination)
        world.deliver(order)
        contact = world.only_contact(SOCIAL)
        assert (contact["status"], contact["given_name"], contact["phone"]) == (
            "active", "Ada Again", "+4477",
        )  # fmt: skip
        assert world.dead == []


def test_a_resignup_with_a_new_id_claims_the_deleted_users_contact(
    destination: Destination,
) -> None:
    old, new = "auth0|old", "auth0|new"
    history = [
        created(old, at(0), email="bob@example.com", given_name="Bob", phone_number="+1555"),
        deleted(old, at(1)),
        created(new, at(2), email="bob@example.com", given_name="Robert"),
    ]
    for order in orders(history):
        world = World(destination)
        world.deliver(order)
        contact = world.only_contact(new)
        # Nothing of the deleted user stays: the phone only Bob gave is cleared.
        assert (contact["status"], contact["email"], contact["given_name"], contact["phone"]) == (
            "active", "bob@example.com", "Robert", None,
        )  # fmt: skip
        assert world.owned_by(old) == []
        assert len(destination.contacts()) == 1
        assert world.dead == []


def test_an_event_older_than_the_delete_does_not_resurrect(destination: Destination) -> None:
    world = World(destination)
    world.deliver([created(SOCIAL, at(0), email="a@example.com"), deleted(SOCIAL, at(2))])
    world.deliver([updated(SOCIAL, at(1), email="a@example.com", given_name="Late")])
    contact = world.only_contact(SOCIAL)
    assert contact["status"] == "deactivated"
    assert contact["given_name"] is None


def test_a_signup_links_the_contact_that_already_holds_its_email(
    destination: Destination,
) -> None:
    world = World(destination)
    destination.seed(email="cara@example.com", given_name="Cara", status="deactivated")
    world.deliver([created(U, at(0), email="Cara@Example.com", given_name="Cara N")])
    [contact] = destination.contacts()
    assert (contact["auth0_user_id"], contact["status"], contact["given_name"]) == (
        U,
        "active",
        "Cara N",
    )
    assert world.dead == []


def test_linking_into_a_primary_leaves_one_active_contact(destination: Destination) -> None:
    primary, secondary = "auth0|p1", SOCIAL
    identities = [
        {"provider": "auth0", "user_id": "p1"},
        {"provider": "google-oauth2", "user_id": "1043"},
    ]
    history = [
        created(secondary, at(0), email="dee@example.com", given_name="Dee G"),
        created(primary, at(1), email="dee@example.com", given_name="Dee"),
        updated(primary, at(2), email="dee@example.com", given_name="Dee", identities=identities),
        deleted(secondary, at(2)),
    ]
    for order in orders(history):
        world = World(destination)
        world.deliver(order)
        assert world.dead == []
        active = [c for c in destination.contacts() if c["status"] == "active"]
        assert [(c["auth0_user_id"], c["given_name"]) for c in active] == [(primary, "Dee")]


def test_an_email_swap_converges_with_unique_emails(destination: Destination) -> None:
    a, b = "auth0|swap-a", "auth0|swap-b"
    signups = [created(a, at(0), email="a@example.com"), created(b, at(0), email="b@example.com")]
    swap = [
        updated(a, at(5), email="b@example.com", given_name="A"),
        updated(b, at(6), email="a@example.com", given_name="B"),
    ]
    for order in orders(swap):
        world = World(destination)
        world.deliver(signups)
        world.deliver(order)
        assert world.dead == []
        assert (world.only_contact(a)["email"], world.only_contact(a)["given_name"]) == (
            "b@example.com", "A",
        )  # fmt: skip
        assert (world.only_contact(b)["email"], world.only_contact(b)["given_name"]) == (
            "a@example.com", "B",
        )  # fmt: skip


def test_another_live_users_contact_is_never_written(destination: Destination) -> None:
    world = World(destination)
    world.deliver([created(X, at(0), email="shared@example.com", given_name="X")])
    world.deliver([updated(Y, at(1), email="shared@example.com", given_name="Y")])
    assert world.dead == ["still retrying"]  # owned_by_other: transient, then a person
    [contact] = destination.contacts()
    assert (contact["auth0_user_id"], contact["given_name"]) == (X, "X")
