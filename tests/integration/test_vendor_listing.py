"""The vendor adapters' listing (backfill's sweep and `reconcile` read it) against their
fakes on loopback: every contact once across pages, in generic names, and what the vendor
leaves out of a listing (HubSpot's archived contacts, Salesforce's deleted records)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.destinations.salesforce import SalesforceCrm, client_credentials
from auth0_sync_cli.backfill.sweep import every_contact
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce

pytestmark = pytest.mark.integration


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake


@pytest.fixture
def org() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as fake:
        yield fake


def hubspot_client(fake: FakeHubSpot) -> HubSpotCrm:
    return HubSpotCrm(fake.base_url, lambda: fake.token, backoff_base=0.01)


def salesforce_client(fake: FakeSalesforce) -> SalesforceCrm:
    text = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    return SalesforceCrm(fake.base_url, client_credentials(lambda: text), backoff_base=0.01)


# HubSpot ------------------------------------------------------------------------------------


def test_hubspot_listing_reads_properties_back_in_generic_names(hubspot: FakeHubSpot) -> None:
    first = hubspot.seed(
        email="ada@example.com",
        firstname="Ada",
        lastname="Lovelace",
        phone="+15550101",
        auth0_user_id="auth0|ada",
        auth0_status="deactivated",
    )
    second = hubspot.seed(email="bo@example.com")

    page = hubspot_client(hubspot).list_contacts(limit=10)

    assert list(page) == [
        {
            "id": first,
            "email": "ada@example.com",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "phone": "+15550101",
            "auth0_user_id": "auth0|ada",
            "status": "deactivated",
        },
        {
            "id": second,
            "email": "bo@example.com",
            "given_name": None,
            "family_name": None,
            "phone": None,
            "auth0_user_id": None,
            "status": None,
        },
    ]
    assert page.next_after is None  # one page holds them all


def test_hubspot_listing_pages_through_every_contact_with_the_cursor_and_skips_archived(
    hubspot: FakeHubSpot,
) -> None:
    ids = [hubspot.seed(email=f"user{n}@example.com") for n in range(7)]
    archived = ids[3]
    hubspot.records[archived]["archived"] = True  # as DELETE /crm/v3/objects/contacts/{id}
    crm = hubspot_client(hubspot)

    first = crm.list_contacts(limit=3)
    assert [c["id"] for c in first] == ids[:3]
    assert first.next_after is not None
    assert first.next_after != ids[2]
    second = crm.list_contacts(limit=3, after=first.next_after)
    assert [c["id"] for c in second] == [ids[4], ids[5], ids[6]]
    assert second.next_after is None
    # The sweep follows the cursor (its 500 is more than HubSpot's 100 a page).
    assert [c["email"] for c in every_contact(crm)] == [
        f"user{n}@example.com" for n in (0, 1, 2, 4, 5, 6)
    ]


def test_hubspot_listing_asks_at_most_the_documented_100_a_page(hubspot: FakeHubSpot) -> None:
    ids = [hubspot.seed(email=f"user{n}@example.com") for n in range(105)]
    crm = hubspot_client(hubspot)

    page = crm.list_contacts(limit=500)  # the fake answers 400 above 100

    assert [c["id"] for c in page] == ids[:100]
    assert [c["id"] for c in every_contact(crm)] == ids
    assert hubspot.count("GET", "/crm/v3/objects/contacts") == 3  # one page + the sweep's two


# Salesforce ---------------------------------------------------------------------------------


def test_salesforce_listing_reads_fields_back_in_generic_names(org: FakeSalesforce) -> None:
    named = org.seed(
        Email="ada@example.com",
        FirstName="Ada",
        LastName="Lovelace",
        Phone="+15550101",
        Auth0_User_Id__c="auth0|ada",
        Auth0_Status__c="active",
    )
    # The adapter's placeholder for "Auth0 has no family name" reads back as none.
    unnamed = org.seed(Email="bo@example.com", LastName="(unknown)")

    page = salesforce_client(org).list_contacts(limit=10)

    assert list(page) == [
        {
            "id": named,
            "email": "ada@example.com",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "phone": "+15550101",
            "auth0_user_id": "auth0|ada",
            "status": "active",
        },
        {
            "id": unnamed,
            "email": "bo@example.com",
            "given_name": None,
            "family_name": None,
            "phone": None,
            "auth0_user_id": None,
            "status": None,
        },
    ]
    assert page.next_after is None


def test_salesforce_listing_pages_by_id_and_leaves_deleted_records_out(
    org: FakeSalesforce,
) -> None:
    ids = [org.seed(Email=f"user{n}@example.com", LastName=f"L{n}") for n in range(7)]
    org.delete(ids[1])
    crm = salesforce_client(org)

    first = crm.list_contacts(limit=3)
    assert [c["id"] for c in first] == [ids[0], ids[2], ids[3]]
    assert first.next_after == ids[3]
    second = crm.list_contacts(limit=3, after=first.next_after)
    assert [c["id"] for c in second] == ids[4:7]
    third = crm.list_contacts(limit=3, after=second.next_after)
    assert list(third) == []
    assert third.next_after is None
    assert [c["family_name"] for c in every_contact(crm)] == [f"L{n}" for n in (0, 2, 3, 4, 5, 6)]
    # Keyset paging, as the queries show: no OFFSET, no server-side cursor.
    assert org.queries[1].endswith(f"WHERE Id > '{ids[3]}' ORDER BY Id LIMIT 3")


def test_salesforce_listing_refuses_a_cursor_that_is_not_a_record_id(org: FakeSalesforce) -> None:
    with pytest.raises(ValueError, match="record id"):
        salesforce_client(org).list_contacts(after="x' OR Email != '")
    assert org.queries == []
