"""Writes to a stored contact that are never wrong, through HTTP against each destination's
server (`auth0_sync.writes`): a write the CRM applies late never reverts a newer one, and
a contact a person gave to another user is never written for its previous owner.

The expected contacts are written out by hand and read back in each server's own terms.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
import requests

from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.destinations.rest import RestCrmClient
from auth0_sync.destinations.salesforce import SalesforceCrm, client_credentials
from auth0_sync.errors import TransientError
from auth0_sync.events import parse_event
from auth0_sync.names import CrmType
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import SyncCore
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.fakes.hubspot import FakeHubSpot, hubspot_contact
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce
from tests.builders import at, created, updated
from tests.integration.test_destination_lifecycle import (  # noqa: F401 (fixtures)
    NOW,
    Destination,
    World,
    destination,
    hubspot_server,
    salesforce_server,
)

pytestmark = pytest.mark.integration

U, V = "auth0|u1", "auth0|v1"


class Recording(requests.Session):
    """A session that keeps every PATCH it sent (as a held attempt would be, byte for byte)."""

    def __init__(self) -> None:
        super().__init__()
        self.patches: list[requests.PreparedRequest] = []
        self.hooks["response"].append(self._keep)

    def _keep(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.request.method == "PATCH":
            self.patches.append(response.request.copy())


def test_a_patch_the_crm_applies_late_is_refused_and_the_newer_value_stays(crm: CrmServer) -> None:
    session = Recording()
    client = RestCrmClient(crm.base_url, lambda: crm.token, session=session)
    settings = Settings(crm_base_url=crm.base_url, crm_api_token="unused")
    core = SyncCore(settings, client, MemorySyncStateStore())
    for event in (
        created(U, at(1), email="u@example.com", name="Zero"),
        updated(U, at(2), email="u@example.com", name="One"),
    ):
        core.apply(parse_event(event, now=NOW), lease_seconds=30.0)
    held = session.patches[-1]  # "One", as it left: the CRM holds this attempt
    assert held.headers["If-Match"]
    core.apply(
        parse_event(updated(U, at(3), email="u@example.com", name="Two"), now=NOW),
        lease_seconds=30.0,
    )
    # The held attempt of "One" lands now: refused, nothing changes.
    late = requests.Session().send(held, timeout=5)
    assert late.status_code == 412
    (contact,) = crm.contacts()
    assert (contact["name"], contact["auth0_user_id"]) == ("Two", U)


def test_without_a_precondition_the_late_patch_would_revert(crm: CrmServer) -> None:
    """The fault the rule guards against, shown on the same server: the same late PATCH
    without `If-Match` silently reverts "Two" to "One"."""
    session = Recording()
    client = RestCrmClient(crm.base_url, lambda: crm.token, session=session)
    contact = client.create_contact({"email": "u@example.com", "name": "Zero"}, "evt-1")
    client.update_contact(contact["id"], {"name": "One"})
    held = session.patches[-1]
    client.update_contact(contact["id"], {"name": "Two"})
    assert requests.Session().send(held, timeout=5).status_code == 200
    assert crm.contacts()[0]["name"] == "One"


def test_salesforce_a_patch_applied_late_is_refused_by_if_unmodified_since(
    salesforce_server: FakeSalesforce,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sf = salesforce_server
    sf.reset()
    monkeypatch.setattr(sf, "clock", itertools.count(1_780_000_000).__next__)
    secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    session = Recording()
    client = SalesforceCrm(sf.base_url, client_credentials(lambda: secret), session=session)
    settings = Settings(crm_type=CrmType.SALESFORCE, crm_base_url=sf.base_url, crm_api_token="x")
    core = SyncCore(settings, client, MemorySyncStateStore())
    for event in (
        created(U, at(1), email="u@example.com", given_name="Zero"),
        updated(U, at(2), email="u@example.com", given_name="One"),
    ):
        core.apply(parse_event(event, now=NOW), lease_seconds=30.0)
    held = session.patches[-1]  # "One" by record id, as it left
    assert held.headers["If-Unmodified-Since"]
    core.apply(
        parse_event(updated(U, at(3), email="u@example.com", given_name="Two"), now=NOW),
        lease_seconds=30.0,
    )
    assert requests.Session().send(held, timeout=5).status_code == 412
    (record,) = sf.contacts()
    assert (record["FirstName"], record["Auth0_User_Id__c"]) == ("Two", U)


def test_a_change_costs_one_patch_and_no_read(crm: CrmServer) -> None:
    settings = Settings(crm_base_url=crm.base_url, crm_api_token="unused")
    client = RestCrmClient(crm.base_url, lambda: crm.token)
    core = SyncCore(settings, client, MemorySyncStateStore())
    core.apply(parse_event(created(U, at(1), email="u@example.com"), now=NOW), lease_seconds=30)
    before = client.calls_made()
    core.apply(
        parse_event(updated(U, at(2), email="u@example.com", name="One"), now=NOW),
        lease_seconds=30,
    )
    assert client.calls_made() - before == 1


def test_a_contact_given_to_another_user_is_left_alone_and_the_user_gets_its_own(
    destination: Destination,  # noqa: F811
    crm: CrmServer,
    hubspot_server: FakeHubSpot,  # noqa: F811
    salesforce_server: FakeSalesforce,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Salesforce's validator is a time to the second: its clock ticks a second a request
    # here, as if a person's edit came a little after our write.
    monkeypatch.setattr(salesforce_server, "clock", itertools.count(1_780_000_000).__next__)
    world = World(destination)
    world.deliver([created(U, at(1), email="u@example.com", given_name="Una")])
    given = world.state.get(U).contact_id  # type: ignore[union-attr]
    assert given is not None
    # A person assigns U's contact to V in the CRM (V's id and address).
    if destination.crm_type is CrmType.HUBSPOT:
        hubspot_server.edit(given, auth0_user_id=V, email="v@example.com", firstname="Vic")
    elif destination.crm_type is CrmType.SALESFORCE:
        salesforce_server.edit(given, Auth0_User_Id__c=V, Email="v@example.com", FirstName="Vic")
    else:
        crm.edit_contact(given, auth0_user_id=V, email="v@example.com", given_name="Vic")
    world.deliver([updated(U, at(2), email="u@example.com", given_name="Una B", phone_number="+3")])
    contacts = sorted(destination.contacts(), key=lambda c: str(c["auth0_user_id"]))
    assert contacts == [
        {"email": "u@example.com", "given_name": "Una B", "family_name": None, "phone": "+3",
         "auth0_user_id": U, "status": "active"},
        {"email": "v@example.com", "given_name": "Vic", "family_name": None, "phone": None,
         "auth0_user_id": V, "status": "active"},
    ]  # fmt: skip
    assert world.state.get(U).contact_id != given  # type: ignore[union-attr]
    assert world.dead == []


# HubSpot: a create whose answer was lost (issue 22.5) ---------------------------------------


@pytest.mark.parametrize("unique_owner", [True, False], ids=["unique-owner", "plain-owner"])
def test_hubspot_a_create_whose_answer_was_lost_is_found_not_made_twice(
    unique_owner: bool,
) -> None:
    """The create is applied but its answer lost; the search index lags 1 s behind; the
    user's next change (a new address) comes before the create's retry. It waits
    (`write_unconfirmed`) while the lost create may still land (0.3 s here), and, without a
    unique `auth0_user_id`, until the search can see the contact (1.2 s here); with one,
    the contact is read by it. Either way: one contact, the new address, no DLQ."""
    with FakeHubSpot(
        window_calls=100_000, search_lag_seconds=1.0, unique_owner=unique_owner
    ) as hubspot:
        client = HubSpotCrm(
            hubspot.base_url,
            lambda: hubspot.token,
            search_lag_seconds=1.2,
            late_write_seconds=0.3,
        )
        settings = Settings(
            crm_type=CrmType.HUBSPOT, crm_base_url=hubspot.base_url, crm_api_token="unused"
        )
        core = SyncCore(settings, client, MemorySyncStateStore())
        signup = created(U, at(1), email="u@example.com", given_name="Una")
        change = updated(U, at(2), email="u.new@example.com", given_name="Una")
        hubspot.drop_next_answer("POST", "/crm/v3/objects/contacts")
        started = time.monotonic()
        with pytest.raises(TransientError, match="crm_504"):
            core.apply(parse_event(signup, now=NOW), lease_seconds=30.0)
        reasons = []
        for _ in range(40):  # retried the way Lambda would, only faster
            try:
                core.apply(parse_event(change, now=NOW), lease_seconds=30.0)
                break
            except TransientError as exc:
                reasons.append(exc.reason)
                time.sleep(0.1)
        waited = time.monotonic() - started
        core.apply(parse_event(signup, now=NOW), lease_seconds=30.0)  # its retry: stale
        assert [hubspot_contact(r) for r in hubspot.contacts()] == [
            {"email": "u.new@example.com", "given_name": "Una", "family_name": None,
             "phone": None, "auth0_user_id": U, "status": "active"},
        ]  # fmt: skip
        assert set(reasons) == {"write_unconfirmed"}
        if unique_owner:
            assert waited < 1.0  # not until the search caught up: it was never asked
            assert hubspot.count("POST", "/crm/v3/objects/contacts/search") == 0


def test_hubspot_without_a_unique_owner_a_given_away_contact_is_read_before_a_write() -> None:
    """Where a person made `auth0_user_id` an ordinary property, a write cannot be addressed
    by it: the contact is read first (one GET), and one given to V is left alone."""
    with FakeHubSpot(window_calls=100_000, unique_owner=False) as hubspot:
        client = HubSpotCrm(hubspot.base_url, lambda: hubspot.token, search_per_second=100_000)
        settings = Settings(
            crm_type=CrmType.HUBSPOT, crm_base_url=hubspot.base_url, crm_api_token="unused"
        )
        state = MemorySyncStateStore()
        core = SyncCore(settings, client, state)
        signup = created(U, at(1), email="u@example.com", given_name="Una")
        core.apply(parse_event(signup, now=NOW), lease_seconds=30.0)
        given = state.get(U).contact_id  # type: ignore[union-attr]
        assert given is not None
        hubspot.edit(given, auth0_user_id=V, email="v@example.com", firstname="Vic")
        change = updated(U, at(2), email="u@example.com", given_name="Una B")
        core.apply(parse_event(change, now=NOW), lease_seconds=30.0)
        contacts = sorted(
            (hubspot_contact(r) for r in hubspot.contacts()), key=lambda c: str(c["email"])
        )
        assert contacts == [
            {"email": "u@example.com", "given_name": "Una B", "family_name": None,
             "phone": None, "auth0_user_id": U, "status": "active"},
            {"email": "v@example.com", "given_name": "Vic", "family_name": None,
             "phone": None, "auth0_user_id": V, "status": "active"},
        ]  # fmt: skip
        assert hubspot.count("PATCH", f"/crm/v3/objects/contacts/{given}") == 0
