"""The REST adapter's companies and memberships (contract 1.2) against the reference CRM:
what it sends, and its errors mapped as the contacts' are."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auth0_sync.destinations.rest import RestCrmClient
from auth0_sync.destinations.rest_companies import RestCompanies
from auth0_sync.errors import CrmRejected, TransientError
from auth0_sync_cli.crm_server import CrmServer

pytestmark = pytest.mark.integration


def companies(crm: CrmServer, **kwargs: float) -> tuple[RestCompanies, RestCrmClient]:
    client = RestCrmClient(crm.base_url, lambda: crm.token, backoff_base=0.01, **kwargs)  # type: ignore[arg-type]
    return RestCompanies(client), client


@pytest.fixture
def unique_org_crm() -> Iterator[CrmServer]:
    with CrmServer(unique_org_ids=True) as server:
        yield server


def test_create_find_rename_and_memberships_with_roles(crm: CrmServer) -> None:
    api, client = companies(crm)
    contact = crm.seed_contact(email="ada@example.com", auth0_user_id="auth0|ada")
    made = api.create_company(
        {"auth0_org_id": "org_1", "name": "acme", "status": "active"}, "key-org_1"
    )
    again = api.create_company({"auth0_org_id": "org_1", "name": "acme"}, "key-org_1")
    assert again["id"] == made["id"]  # the idempotency key answers with the first company
    assert [c["id"] for c in api.find_companies("org_1")] == [made["id"]]
    assert api.update_company(made["id"], {"display_name": "Acme"}) is not None
    assert api.put_membership(made["id"], contact["id"], ["billing", "admin"])
    ((membership),) = crm.memberships()
    assert (membership["company_id"], membership["contact_id"]) == (made["id"], contact["id"])
    assert sorted(membership["roles"]) == ["admin", "billing"]
    api.delete_membership(made["id"], contact["id"])
    assert crm.memberships() == []
    (company,) = crm.companies()
    assert (company["name"], company["display_name"]) == ("acme", "Acme")
    assert client.calls_made() == 6  # 2 creates, find, rename, put, delete


def test_missing_company_or_contact_is_not_an_error(crm: CrmServer) -> None:
    api, _ = companies(crm)
    made = api.create_company({"auth0_org_id": "org_1", "name": "acme"}, "k1")
    assert api.put_membership(made["id"], "no-such-contact", []) is False
    assert api.update_company("no-such-company", {"name": "x"}) is None
    api.delete_membership("no-such-company", "c1")  # nothing to remove


def test_outage_is_transient_after_the_retries(crm: CrmServer) -> None:
    api, client = companies(crm, max_attempts=2)
    crm.set_outage(503)
    with pytest.raises(TransientError, match=r"crm GET /companies: HTTP 503"):
        api.find_companies("org_1")
    assert client.calls_made() == 2


def test_a_rejected_body_is_permanent(crm: CrmServer) -> None:
    api, _ = companies(crm)
    with pytest.raises(CrmRejected, match="422"):
        api.create_company({"auth0_org_id": "org_1"}, "k-no-name")  # the contract needs a name


def test_a_taken_org_id_on_create_finds_the_company_made_meanwhile(
    unique_org_crm: CrmServer,
) -> None:
    api, _ = companies(unique_org_crm)
    first = unique_org_crm.seed_company(auth0_org_id="org_1", name="acme", status="active")
    made = api.create_company({"auth0_org_id": "org_1", "name": "acme"}, "another-key")
    assert made["id"] == str(first["id"])
