"""The HubSpot adapter's companies and contact-company associations against the fake
HubSpot on loopback: what it sends, what the account ends with, and HubSpot's errors
mapped to ours at the boundary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.destinations.hubspot_companies import HubSpotCompanies
from auth0_sync.errors import CrmRejected, TransientError
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from tests.companies_contract import create_is_found_once

pytestmark = pytest.mark.integration


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake


def adapter(fake: FakeHubSpot, *, archive: bool = False, **kwargs: float) -> HubSpotCompanies:
    crm = HubSpotCrm(fake.base_url, lambda: fake.token, backoff_base=0.01, **kwargs)  # type: ignore[arg-type]
    return HubSpotCompanies(crm, archive=archive)


def test_a_company_is_created_found_by_its_unique_org_id_and_renamed(
    hubspot: FakeHubSpot,
) -> None:
    api = adapter(hubspot)
    # A repeated create (its first answer lost) meets the unique property: the same company.
    made = create_is_found_once(api)
    assert api.update_company(made["id"], {"display_name": None}) is not None
    (company,) = hubspot.companies()
    assert company["properties"]["auth0_display_name"] == ""  # cleared
    assert company["properties"]["name"] == "acme"
    assert api.update_company("999999", {"name": "x"}) is None


def test_a_deleted_organization_is_deactivated_or_archived_per_the_delete_policy(
    hubspot: FakeHubSpot,
) -> None:
    kept, archived = adapter(hubspot), adapter(hubspot, archive=True)
    one = kept.create_company({"auth0_org_id": "org_1", "name": "one"}, "k1")
    two = archived.create_company({"auth0_org_id": "org_2", "name": "two"}, "k2")
    kept.update_company(one["id"], {"status": "deactivated"})
    archived.update_company(two["id"], {"status": "deactivated"})
    (live,) = hubspot.companies()
    assert (live["id"], live["properties"]["auth0_status"]) == (one["id"], "deactivated")
    assert [c["id"] for c in hubspot.companies(archived=True)] == [two["id"]]
    assert archived.find_companies("org_2") == []


def test_roles_are_association_labels_exactly_as_given(hubspot: FakeHubSpot) -> None:
    api = adapter(hubspot)
    contact = hubspot.seed(email="ada@example.com")
    company = api.create_company({"auth0_org_id": "org_1", "name": "acme"}, "k1")["id"]
    assert api.put_membership(company, contact, ["admin", "billing"])
    assert hubspot.associations() == {
        (contact, company): ["Auth0 role: admin", "Auth0 role: billing"]
    }
    assert api.put_membership(company, contact, ["billing", "viewer"])
    assert hubspot.associations() == {
        (contact, company): ["Auth0 role: billing", "Auth0 role: viewer"]
    }
    assert api.put_membership(company, contact, [])
    assert hubspot.associations() == {(contact, company): []}  # unlabeled: still a member
    api.delete_membership(company, contact)
    assert hubspot.associations() == {}
    api.delete_membership(company, contact)  # nothing left to remove: no error
    # The labels were made once each and read once by this adapter.
    assert hubspot.count("POST", "/crm/v4/associations/contacts/companies/labels") == 3
    assert hubspot.count("GET", "/crm/v4/associations/contacts/companies/labels") == 1


def test_labels_made_by_another_function_are_reused(hubspot: FakeHubSpot) -> None:
    contact = hubspot.seed(email="ada@example.com")
    first, second = adapter(hubspot), adapter(hubspot)
    company = first.create_company({"auth0_org_id": "org_1", "name": "acme"}, "k1")["id"]
    second._known_labels()  # read before the label exists
    first.put_membership(company, contact, ["admin"])
    assert second.put_membership(company, contact, ["admin"])  # 409 on create: read again
    assert hubspot.associations() == {(contact, company): ["Auth0 role: admin"]}


def test_a_label_a_person_set_is_not_the_syncs_and_stays(hubspot: FakeHubSpot) -> None:
    api = adapter(hubspot)
    contact = hubspot.seed(email="ada@example.com")
    company = api.create_company({"auth0_org_id": "org_1", "name": "acme"}, "k1")["id"]
    store = hubspot.companies_store
    store.labels[900] = {"category": "USER_DEFINED", "typeId": 900, "label": "Decision maker"}
    store.pairs[(contact, company)] = {279, 900}  # set by a person in HubSpot
    assert api.put_membership(company, contact, ["admin"])
    assert api.put_membership(company, contact, [])
    assert hubspot.associations() == {(contact, company): ["Decision maker"]}


def test_a_missing_contact_or_company_is_false_not_an_error(hubspot: FakeHubSpot) -> None:
    api = adapter(hubspot)
    contact = hubspot.seed(email="ada@example.com")
    company = api.create_company({"auth0_org_id": "org_1", "name": "acme"}, "k1")["id"]
    assert api.put_membership(company, "424242", ["admin"]) is False
    assert api.put_membership("424242", contact, []) is False


def test_vendor_errors_become_ours(hubspot: FakeHubSpot) -> None:
    api = adapter(hubspot, max_attempts=2)
    hubspot.fail_next("PATCH", "/crm/v3/objects/companies", 400)
    made = api.create_company({"auth0_org_id": "org_1", "name": "acme"}, "k1")
    with pytest.raises(CrmRejected):
        api.update_company(made["id"], {"name": "x"})
    hubspot.set_outage(503)
    with pytest.raises(TransientError):
        api.find_companies("org_1")


def test_setup_creates_the_company_properties_once() -> None:
    with FakeHubSpot(custom_properties=False) as fake:
        api = adapter(fake)
        assert api.ensure_properties() == {
            "companies.auth0_org_id": "created",
            "companies.auth0_display_name": "created",
            "companies.auth0_status": "created",
        }
        assert set(api.ensure_properties().values()) == {"exists"}
        assert fake.companies_store.properties["auth0_org_id"]["hasUniqueValue"] is True
