"""What `auth0-sync demo --crm hubspot|salesforce` drives on the vendor fakes: an outage
in the vendor's own error shape, HubSpot's rolling limit lowered, Salesforce's refusal of
a per-second limit it does not have, request counts, seeding from generic fields and the
read-back in generic names (the truth's side of the reconciliation)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.destinations.salesforce import SalesforceCrm, client_credentials
from auth0_sync.errors import TransientError
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce

pytestmark = pytest.mark.integration

SEED = {"email": "OLD.CUSTOMER@EXAMPLE.COM", "name": "From the old CRM", "phone": "+15550199"}


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake


@pytest.fixture
def org() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as fake:
        yield fake


def salesforce_client(fake: FakeSalesforce) -> SalesforceCrm:
    text = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    return SalesforceCrm(
        fake.base_url, client_credentials(lambda: text), backoff_base=0.01, max_attempts=2
    )


def test_hubspot_outage_answers_every_request_in_hubspots_error_shape(
    hubspot: FakeHubSpot,
) -> None:
    hubspot.set_outage(503)
    answer = requests.get(f"{hubspot.base_url}/crm/v3/objects/contacts", timeout=5)
    assert answer.status_code == 503
    body = answer.json()
    assert (body["status"], body["category"]) == ("error", "INTERNAL_ERROR")
    assert body["correlationId"]
    crm = HubSpotCrm(hubspot.base_url, lambda: hubspot.token, backoff_base=0.01, max_attempts=2)
    with pytest.raises(TransientError):
        crm.find_contacts(email="a@example.com")

    hubspot.set_outage(None)
    assert crm.find_contacts(email="a@example.com") == []
    stats = hubspot.stats()
    assert stats["by_status"] == {"404": 1, "503": 3}
    assert stats["by_method"]["GET"] == 4
    assert stats["total"] == 4


def test_hubspot_rate_limit_lowers_the_rolling_window_with_its_429_and_headers(
    hubspot: FakeHubSpot,
) -> None:
    hubspot.set_rate_limit(0.3)  # three calls per 10-second window
    url = f"{hubspot.base_url}/crm/v3/objects/contacts"
    auth = {"Authorization": f"Bearer {hubspot.token}"}
    answers = [requests.get(url, headers=auth, timeout=5) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert answers[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert answers[3].json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert answers[3].json()["errorType"] == "RATE_LIMIT"
    hubspot.set_rate_limit(None)
    assert requests.get(url, headers=auth, timeout=5).headers["X-HubSpot-RateLimit-Max"] == "100"


def test_hubspot_seeds_from_generic_fields_and_reads_back_generic(hubspot: FakeHubSpot) -> None:
    seeded = hubspot.seed_contact(**SEED)

    [record] = hubspot.contacts()
    assert seeded["id"] == record["id"]
    # HubSpot has no `name` property in the mapping, and stores emails in lower case.
    assert {k: v for k, v in record["properties"].items() if not k.endswith("date")} == {
        "hs_object_id": record["id"],
        "email": "old.customer@example.com",
        "phone": "+15550199",
    }
    assert hubspot.generic_contacts() == [
        {
            "id": record["id"],
            "email": "old.customer@example.com",
            "given_name": None,
            "family_name": None,
            "phone": "+15550199",
            "auth0_user_id": None,
            "status": "active",  # no auth0_status: nobody deactivated it
        }
    ]


def test_salesforce_outage_answers_server_unavailable_and_the_adapter_says_so(
    org: FakeSalesforce,
) -> None:
    crm = salesforce_client(org)
    assert crm.find_contacts(email="a@example.com") == []  # a session first
    org.set_outage(503)
    with pytest.raises(TransientError) as raised:
        crm.find_contacts(email="a@example.com")
    assert raised.value.reason == "salesforce_server_unavailable"

    org.set_outage(None)
    assert crm.find_contacts(email="a@example.com") == []
    stats = org.stats()
    assert stats["by_status"] == {"200": 3, "503": 2}  # token, query, 2 x 503, query
    assert (stats["by_method"]["POST"], stats["by_method"]["GET"]) == (1, 4)


def test_salesforce_has_no_per_second_limit_to_turn_on(org: FakeSalesforce) -> None:
    with pytest.raises(ValueError, match=r"no per-second request limit.*REQUEST_LIMIT_EXCEEDED"):
        org.set_rate_limit(5.0)
    org.set_rate_limit(None)  # nothing to turn off either


def test_salesforce_seeds_with_the_lastname_placeholder_and_reads_back_generic(
    org: FakeSalesforce,
) -> None:
    seeded = org.seed_contact(**SEED)

    [record] = org.contacts()
    assert record == {
        "Id": seeded["id"],
        "Email": "OLD.CUSTOMER@EXAMPLE.COM",
        "Phone": "+15550199",
        "LastName": "(unknown)",
    }
    assert org.generic_contacts() == [
        {
            "id": seeded["id"],
            "email": "OLD.CUSTOMER@EXAMPLE.COM",
            "given_name": None,
            "family_name": None,
            "phone": "+15550199",
            "auth0_user_id": None,
            "status": "active",
        }
    ]
