"""`replay --dry-run` plans through the configured destination's adapter: it reads the
vendor, writes nothing, and shows the request the vendor would get (not the sync's generic
fields): HubSpot's `{"properties": ...}` on /crm/v3/objects/contacts
(https://developers.hubspot.com/docs/api/crm/contacts), Salesforce's upsert of a Contact
record on its external id (PATCH /services/data/vXX.X/sobjects/Contact/Auth0_User_Id__c/ID,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_upsert.htm)."""

from __future__ import annotations

import json

import pytest

from auth0_sync.names import CrmType
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce
from auth0_sync_cli.replay.planning import PlannedCall, Planner
from tests.builders import at, created

pytestmark = pytest.mark.integration


def test_a_dry_run_against_hubspot_reads_hubspot_and_writes_nothing() -> None:
    with FakeHubSpot() as fake:
        taken = fake.seed(email="taken@example.com", firstname="Old")
        settings = Settings(crm_type=CrmType.HUBSPOT, crm_base_url=fake.base_url,
                            crm_api_token=fake.token)  # fmt: skip
        planner = Planner(settings, state=MemorySyncStateStore(), timeout=5.0)

        _, new = planner.plan(created("auth0|n1", at(0), email="new@example.com"))
        _, link = planner.plan(created("auth0|n2", at(0), email="taken@example.com"))

        assert new == [
            PlannedCall(
                "POST",
                "/crm/v3/objects/contacts",
                {
                    "properties": {
                        "email": "new@example.com",
                        "auth0_user_id": "auth0|n1",
                        "auth0_status": "active",
                    }
                },
            ).render()
        ]
        assert link == [
            PlannedCall(
                "PATCH",
                f"/crm/v3/objects/contacts/{taken}",
                {"properties": {"auth0_user_id": "auth0|n2", "auth0_status": "active"}},
            ).render()
        ]
        # Reads only went out, and only they are counted as CRM calls.
        assert planner.crm.calls_made() == len(fake.requests)
        assert fake.count("POST", "/crm/v3/objects/contacts") == 0
        assert fake.count("PATCH", "/crm/v3/objects/contacts/") == 0
        assert len(fake.contacts()) == 1


def test_a_dry_run_against_salesforce_shows_the_upsert_it_would_send() -> None:
    with FakeSalesforce() as org:
        secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        settings = Settings(crm_type=CrmType.SALESFORCE, crm_base_url=org.base_url,
                            crm_api_token=secret)  # fmt: skip
        planner = Planner(settings, state=MemorySyncStateStore(), timeout=5.0)

        _, new = planner.plan(created("auth0|s1", at(0), email="new@example.com"))

        [call] = new
        method, path, body = call.split(" ", 2)
        assert (method, path) == (
            "PATCH",
            "/services/data/v60.0/sobjects/Contact/Auth0_User_Id__c/auth0%7Cs1",  # URL-encoded
        )
        assert json.loads(body)["Email"] == "new@example.com"
        assert json.loads(body)["Auth0_Status__c"] == "active"
        assert org.records == {}  # nothing written
