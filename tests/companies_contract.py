"""What every destination's companies (`auth0_sync.destinations.companies`) must do alike,
asserted once for each adapter's tests; expected values by hand."""

from __future__ import annotations

from auth0_sync.destinations.companies import Companies, Company

ACME = {"auth0_org_id": "org_1", "name": "acme", "display_name": "Acme", "status": "active"}


def create_is_found_once(api: Companies) -> Company:
    """A company created for an organization is found by its org id, in the generic
    fields; a repeated create (its first answer lost: the same key) is the same company;
    another org id finds none. Returns the company made."""
    made = api.create_company(ACME, "k1")
    again = api.create_company({"auth0_org_id": "org_1", "name": "acme"}, "k1")
    assert again["id"] == made["id"]
    assert api.find_companies("org_1") == [
        {
            "id": made["id"],
            "auth0_org_id": "org_1",
            "name": "acme",
            "display_name": "Acme",
            "status": "active",
        }
    ]
    assert api.find_companies("org_2") == []
    return made
