"""The Salesforce adapter's Accounts and memberships against the fake org on loopback:
Accounts upserted on Auth0_Org_Id__c, memberships as AccountContactRelations with Roles
(Contacts to Multiple Accounts) or as the Contact's AccountId, and Salesforce's errors
mapped to ours at the boundary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from auth0_sync.destinations.salesforce import SalesforceCrm, client_credentials
from auth0_sync.destinations.salesforce_accounts import SalesforceAccounts
from auth0_sync.errors import CrmRejected, TransientError
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce
from tests.companies_contract import create_is_found_once

pytestmark = pytest.mark.integration


@pytest.fixture
def org() -> Iterator[FakeSalesforce]:
    with FakeSalesforce(multiple_accounts=True) as fake:
        yield fake


@pytest.fixture
def single_org() -> Iterator[FakeSalesforce]:
    with FakeSalesforce(multiple_accounts=False) as fake:
        yield fake


def adapter(fake: FakeSalesforce, *, multiple: bool, **kwargs: Any) -> SalesforceAccounts:
    text = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    credentials = client_credentials(lambda: text)
    crm = SalesforceCrm(fake.base_url, credentials, backoff_base=0.01, **kwargs)
    return SalesforceAccounts(crm, multiple_accounts=multiple)


def relations(fake: FakeSalesforce) -> dict[tuple[str, str], list[str]]:
    return {
        (r["AccountId"], r["ContactId"]): sorted(x for x in (r["Roles"] or "").split(";") if x)
        for r in fake.relations()
    }


def test_an_account_is_upserted_on_the_external_id_and_renamed(org: FakeSalesforce) -> None:
    api = adapter(org, multiple=True)
    made = create_is_found_once(api)  # the upsert finds the Account it made
    assert api.update_company(made["id"], {"display_name": None, "status": "deactivated"})
    assert org.accounts() == [
        {
            "Id": made["id"],
            "Auth0_Org_Id__c": "org_1",
            "Name": "acme",
            "Auth0_Display_Name__c": None,
            "Auth0_Status__c": "deactivated",
        }
    ]
    assert api.update_company("001fk9999999999AAA", {"name": "x"}) is None
    assert api.update_company("not an id", {"name": "x"}) is None


def test_memberships_are_relations_with_their_roles(org: FakeSalesforce) -> None:
    api = adapter(org, multiple=True)
    contact = org.seed(LastName="Lovelace", Email="ada@example.com")
    one = api.create_company({"auth0_org_id": "org_1", "name": "one"}, "k1")["id"]
    two = api.create_company({"auth0_org_id": "org_2", "name": "two"}, "k2")["id"]
    assert api.put_membership(one, contact, ["billing", "admin"])
    assert api.put_membership(two, contact, [])
    assert relations(org) == {(one, contact): ["admin", "billing"], (two, contact): []}
    (raw,) = [r for r in org.relations() if r["AccountId"] == one]
    assert raw["Roles"] == "admin;billing"  # a multi-select picklist's value
    assert api.put_membership(one, contact, ["viewer"])
    assert api.put_membership(one, contact, ["viewer"])  # unchanged: no write
    assert relations(org)[(one, contact)] == ["viewer"]
    assert org.requests["PATCH /sobjects/AccountContactRelation/" + raw["Id"]] == 1
    api.delete_membership(one, contact)
    api.delete_membership(one, contact)  # gone already: nothing to do
    assert relations(org) == {(two, contact): []}
    assert org.contacts()[0].get("AccountId") is None  # the contact's own Account untouched


def test_without_multiple_accounts_the_first_organization_is_the_contacts_account(
    single_org: FakeSalesforce,
) -> None:
    api = adapter(single_org, multiple=False)
    contact = single_org.seed(LastName="Lovelace", Email="ada@example.com")
    one = api.create_company({"auth0_org_id": "org_1", "name": "one"}, "k1")["id"]
    two = api.create_company({"auth0_org_id": "org_2", "name": "two"}, "k2")["id"]
    assert api.put_membership(one, contact, ["admin"])
    assert api.put_membership(two, contact, ["admin"])  # a second Account: not written
    assert single_org.contacts()[0]["AccountId"] == one
    api.delete_membership(two, contact)  # not its Account: unchanged
    assert single_org.contacts()[0]["AccountId"] == one
    api.delete_membership(one, contact)
    assert single_org.contacts()[0]["AccountId"] is None
    assert single_org.relations() == []


def test_a_missing_account_or_contact_is_false_not_an_error(org: FakeSalesforce) -> None:
    api = adapter(org, multiple=True)
    contact = org.seed(LastName="Lovelace")
    account = api.create_company({"auth0_org_id": "org_1", "name": "one"}, "k1")["id"]
    assert api.put_membership(account, "003fk9999999999AAA", ["admin"]) is False
    assert api.put_membership("001fk9999999999AAA", contact, ["admin"]) is False
    single = adapter(org, multiple=False)
    assert single.put_membership(account, "003fk9999999999AAA", []) is False
    assert single.put_membership("001fk9999999999AAA", contact, []) is False


def test_salesforce_errors_become_ours(org: FakeSalesforce) -> None:
    api = adapter(org, multiple=True, max_attempts=2)
    with pytest.raises(CrmRejected) as refused:
        api.create_company({"auth0_org_id": "org_1", "name": ""}, "k1")  # Name is required
    assert refused.value.reason == "salesforce_required_field_missing"
    org.set_outage(503)
    with pytest.raises(TransientError):
        api.find_companies("org_1")


def test_setup_checks_the_account_fields(org: FakeSalesforce) -> None:
    assert adapter(org, multiple=True).check_fields() == {
        "Account.Auth0_Org_Id__c": "exists",
        "Account.Auth0_Display_Name__c": "exists",
        "Account.Auth0_Status__c": "exists",
    }
