"""The reference CRM's companies and memberships (contract 1.2) over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auth0_sync_cli.crm_server import CrmServer
from tests.integration.crm_calls import call, create

pytestmark = pytest.mark.integration

ACME = {"auth0_org_id": "org_acme", "name": "acme-robotics", "display_name": "Acme Robotics"}


def company(crm: CrmServer, **fields: Any) -> dict[str, Any]:
    response = call(crm, "POST", "/companies", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def without_times(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("created_at", "updated_at")}


@pytest.fixture
def unique_org_crm() -> Iterator[CrmServer]:
    """A reference CRM enforcing the contract's optional unique `auth0_org_id`."""
    with CrmServer(unique_org_ids=True) as server:
        yield server


# --- /companies -----------------------------------------------------------------------------


def test_create_a_company_with_its_fields_and_an_active_status(crm: CrmServer) -> None:
    response = call(crm, "POST", "/companies", json=ACME)

    assert response.status_code == 201
    assert response.headers["Location"] == "/companies/co_1"
    body = response.json()
    assert without_times(body) == {
        "id": "co_1",
        "auth0_org_id": "org_acme",
        "name": "acme-robotics",
        "display_name": "Acme Robotics",
        "status": "active",
    }
    assert body["created_at"] == body["updated_at"]
    assert call(crm, "GET", "/companies/co_1").json() == body


def test_a_company_without_a_display_name_has_it_null_and_keeps_every_field(
    crm: CrmServer,
) -> None:
    made = company(
        crm,
        name="globex",
        status="deactivated",
        source_updated_at="2026-03-04T10:15:30.000Z",
    )

    assert without_times(made) == {
        "id": "co_1",
        "name": "globex",
        "display_name": None,
        "status": "deactivated",
        "source_updated_at": "2026-03-04T10:15:30.000Z",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"auth0_org_id": "org_1"}, "missing required field(s): ['name']"),
        ({"name": "acme", "industry": "robots"}, "unknown field(s): ['industry']"),
        ({"name": None}, "field 'name' must be a string, got null"),
        (
            {"name": "acme", "status": "gone"},
            "field 'status' must be one of ['active', 'deactivated'], got 'gone'",
        ),
        (
            {"name": "acme", "display_name": 3},
            "field 'display_name' must be a string or null, got integer",
        ),
        (
            {"name": "acme", "source_updated_at": "yesterday"},
            "field 'source_updated_at' must be an RFC 3339 date-time, got 'yesterday'",
        ),
        (["acme"], "body must be a JSON object, got array"),
    ],
)
def test_an_invalid_company_is_422_naming_the_problem(
    crm: CrmServer, body: object, message: str
) -> None:
    response = call(crm, "POST", "/companies", json=body)

    assert response.status_code == 422
    assert response.json() == {"error": "invalid", "message": message}
    assert crm.companies() == []


def test_a_repeated_idempotency_key_returns_the_first_company(crm: CrmServer) -> None:
    key = {"Idempotency-Key": "org-created-1"}
    first = call(crm, "POST", "/companies", json=ACME, headers=key)
    again = call(crm, "POST", "/companies", json={"name": "other"}, headers=key)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert crm.companies() == [first.json()]


def test_idempotency_keys_are_kept_per_collection(crm: CrmServer) -> None:
    key = {"Idempotency-Key": "same-key"}
    contact = call(crm, "POST", "/contacts", json={"email": "ada@example.com"}, headers=key)
    made = call(crm, "POST", "/companies", json=ACME, headers=key)
    contact_again = call(crm, "POST", "/contacts", json={"email": "ada@example.com"}, headers=key)

    assert (contact.status_code, made.status_code, contact_again.status_code) == (201, 201, 200)
    assert made.json()["id"] == "co_1"
    assert contact_again.json() == contact.json()


def test_without_unique_org_ids_the_server_keeps_what_it_is_sent(crm: CrmServer) -> None:
    first = company(crm, **ACME)
    second = call(crm, "POST", "/companies", json={**ACME, "name": "acme-2"})
    other = company(crm, name="globex", auth0_org_id="org_globex")
    moved = call(crm, "PATCH", f"/companies/{other['id']}", json={"auth0_org_id": "org_acme"})

    assert second.status_code == 201
    assert moved.status_code == 200
    found = call(crm, "GET", "/companies", params={"auth0_org_id": "org_acme"}).json()
    assert [c["id"] for c in found] == [first["id"], "co_2", "co_3"]


def test_find_by_auth0_org_id_is_exact(crm: CrmServer) -> None:
    acme = company(crm, **ACME)
    company(crm, name="globex", auth0_org_id="org_globex")

    def find(org_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = call(
            crm, "GET", "/companies", params={"auth0_org_id": org_id, "limit": "1", "after": "co_9"}
        ).json()
        return found

    assert find("org_acme") == [acme]
    assert find("ORG_ACME") == []


def test_with_unique_org_ids_a_taken_org_id_is_409_on_post_and_patch(
    unique_org_crm: CrmServer,
) -> None:
    crm = unique_org_crm
    company(crm, **ACME)
    globex = company(crm, name="globex", auth0_org_id="org_globex")

    posted = call(crm, "POST", "/companies", json={"name": "again", "auth0_org_id": "org_acme"})
    patched = call(
        crm, "PATCH", "/companies/co_2", json={"auth0_org_id": "org_acme", "name": "renamed"}
    )
    kept = call(crm, "PATCH", "/companies/co_2", json={"auth0_org_id": "org_globex"})

    message = "field 'auth0_org_id' is already used by another company: co_1"
    assert posted.status_code == patched.status_code == 409
    assert posted.json() == patched.json() == {"error": "conflict", "message": message}
    assert kept.status_code == 200
    assert crm.companies()[1] == globex  # the name too is kept
    assert len(crm.companies()) == 2


def test_the_listing_pages_through_every_company_in_id_string_order(crm: CrmServer) -> None:
    for n in range(1, 13):
        company(crm, name=f"company-{n}")

    first = call(crm, "GET", "/companies", params={"limit": "5"}).json()
    second = call(crm, "GET", "/companies", params={"limit": "5", "after": "co_2"}).json()
    end = call(crm, "GET", "/companies", params={"after": "co_9"}).json()
    refused = call(crm, "GET", "/companies", params={"limit": "501"})

    assert [c["id"] for c in first] == ["co_1", "co_10", "co_11", "co_12", "co_2"]
    assert [c["id"] for c in second] == ["co_3", "co_4", "co_5", "co_6", "co_7"]
    assert end == []
    assert refused.status_code == 400


def test_patch_changes_only_the_fields_present_and_an_unknown_company_is_404(
    crm: CrmServer,
) -> None:
    acme = company(crm, **ACME)

    renamed = call(crm, "PATCH", "/companies/co_1", json={"display_name": None})
    unknown = call(crm, "PATCH", "/companies/co_9", json={"colour": "red"})
    read_unknown = call(crm, "GET", "/companies/nope")
    invalid = call(crm, "PATCH", "/companies/co_1", json={"name": None})

    assert renamed.status_code == 200
    assert without_times(renamed.json()) == {**without_times(acme), "display_name": None}
    assert unknown.status_code == 404  # the id is checked before the body
    assert unknown.json() == {"error": "not_found", "message": "no company with id 'co_9'"}
    assert read_unknown.status_code == 404
    assert invalid.status_code == 422
    assert crm.companies() == [renamed.json()]


# --- memberships ----------------------------------------------------------------------------


def test_put_makes_a_member_with_its_roles_sorted_and_without_repeats(crm: CrmServer) -> None:
    company(crm, **ACME)
    create(crm, email="ada@example.com")

    response = call(
        crm,
        "PUT",
        "/companies/co_1/members/c_1",
        json={"roles": ["editor", "admin", "editor"], "source_updated_at": "2026-03-04T10:00:00Z"},
    )

    assert response.status_code == 201
    assert response.json() == {
        "contact_id": "c_1",
        "roles": ["admin", "editor"],
        "source_updated_at": "2026-03-04T10:00:00Z",
    }


def test_put_replaces_the_roles_and_the_same_body_again_changes_nothing(crm: CrmServer) -> None:
    company(crm, **ACME)
    create(crm, email="ada@example.com")
    call(crm, "PUT", "/companies/co_1/members/c_1", json={"roles": ["admin", "editor"]})

    replaced = call(crm, "PUT", "/companies/co_1/members/c_1", json={"roles": ["viewer"]})
    again = call(crm, "PUT", "/companies/co_1/members/c_1", json={"roles": ["viewer"]})
    emptied = call(crm, "PUT", "/companies/co_1/members/c_1", json={"roles": []})

    assert (replaced.status_code, again.status_code) == (200, 200)
    assert replaced.json() == again.json() == {"contact_id": "c_1", "roles": ["viewer"]}
    assert emptied.json() == {"contact_id": "c_1", "roles": []}  # a member without roles
    assert crm.memberships() == [{"company_id": "co_1", "contact_id": "c_1", "roles": []}]


def test_members_are_listed_by_contact_id_in_string_order(crm: CrmServer) -> None:
    company(crm, **ACME)
    company(crm, name="globex")
    for n in range(1, 11):
        create(crm, email=f"user{n}@example.com")
    for contact_id in ("c_2", "c_10", "c_1"):
        call(crm, "PUT", f"/companies/co_1/members/{contact_id}", json={"roles": ["member"]})
    call(crm, "PUT", "/companies/co_2/members/c_3", json={"roles": []})

    response = call(crm, "GET", "/companies/co_1/members")

    assert response.json() == [
        {"contact_id": "c_1", "roles": ["member"]},
        {"contact_id": "c_10", "roles": ["member"]},
        {"contact_id": "c_2", "roles": ["member"]},
    ]
    assert call(crm, "GET", "/companies/co_2/members").json() == [
        {"contact_id": "c_3", "roles": []}
    ]
    assert call(crm, "GET", "/companies/co_9/members").status_code == 404


def test_delete_ends_a_membership_and_is_204_whether_or_not_it_existed(crm: CrmServer) -> None:
    company(crm, **ACME)
    create(crm, email="ada@example.com")
    create(crm, email="grace@example.com")
    for contact_id in ("c_1", "c_2"):
        call(crm, "PUT", f"/companies/co_1/members/{contact_id}", json={"roles": ["member"]})

    deleted = call(crm, "DELETE", "/companies/co_1/members/c_1")
    again = call(crm, "DELETE", "/companies/co_1/members/c_1")
    never = call(crm, "DELETE", "/companies/co_1/members/c_99")
    no_company = call(crm, "DELETE", "/companies/co_9/members/c_2")

    assert [r.status_code for r in (deleted, again, never)] == [204, 204, 204]
    assert deleted.content == b""
    assert no_company.status_code == 404
    assert call(crm, "GET", "/companies/co_1/members").json() == [
        {"contact_id": "c_2", "roles": ["member"]}
    ]


MEMBER = "/companies/co_1/members/c_1"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/companies/co_9/members/c_1", {"roles": 3}, 404, "no company with id 'co_9'"),
        ("/companies/co_1/members/c_9", {"roles": 3}, 404, "no contact with id 'c_9'"),
        (MEMBER, {}, 422, "missing required field(s): ['roles']"),
        (MEMBER, {"roles": "admin"}, 422, "field 'roles' must be an array, got string"),
        (MEMBER, {"roles": ["admin", 1]}, 422, "every role must be a string, got integer"),
        (MEMBER, {"roles": [], "org": "x"}, 422, "unknown field(s): ['org']"),
        (
            MEMBER,
            {"roles": [], "source_updated_at": "now"},
            422,
            "field 'source_updated_at' must be an RFC 3339 date-time, got 'now'",
        ),
    ],
)
def test_a_put_outside_the_rules_is_refused_and_changes_nothing(
    crm: CrmServer, path: str, body: object, status: int, message: str
) -> None:
    company(crm, **ACME)
    create(crm, email="ada@example.com")

    response = call(crm, "PUT", path, json=body)

    assert response.status_code == status
    assert response.json() == {
        "error": "not_found" if status == 404 else "invalid",
        "message": message,
    }
    assert crm.memberships() == []


def test_deactivating_a_company_or_a_contact_leaves_its_memberships(crm: CrmServer) -> None:
    company(crm, **ACME)
    create(crm, email="ada@example.com")
    call(crm, "PUT", "/companies/co_1/members/c_1", json={"roles": ["admin"]})

    call(crm, "PATCH", "/companies/co_1", json={"status": "deactivated"})
    call(crm, "PATCH", "/contacts/c_1", json={"status": "deactivated"})

    assert call(crm, "GET", "/companies/co_1/members").json() == [
        {"contact_id": "c_1", "roles": ["admin"]}
    ]


# --- faults, admin, storage -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/companies", ACME),
        ("GET", "/companies", None),
        ("GET", "/companies/co_1", None),
        ("PATCH", "/companies/co_1", {"name": "x"}),
        ("GET", "/companies/co_1/members", None),
        ("PUT", "/companies/co_1/members/c_1", {"roles": ["x"]}),
        ("DELETE", "/companies/co_1/members/c_1", None),
    ],
)
def test_an_outage_answers_every_company_path_and_changes_nothing(
    crm: CrmServer, method: str, path: str, body: object
) -> None:
    company(crm, name="before")
    create(crm, email="ada@example.com")
    call(crm, "PUT", "/companies/co_1/members/c_1", json={"roles": ["kept"]})
    companies, memberships = crm.companies(), crm.memberships()
    crm.set_outage(503)

    response = call(crm, method, path, json=body)

    assert response.status_code == 503
    assert response.json()["error"] == "outage"
    assert (crm.companies(), crm.memberships()) == (companies, memberships)


def test_company_requests_count_against_the_rate_limit_with_contact_requests(
    clocked_crm: tuple[CrmServer, list[float]],
) -> None:
    crm, _ = clocked_crm
    crm.set_rate_limit(2)

    made = call(crm, "POST", "/companies", json=ACME)
    contact = call(crm, "POST", "/contacts", json={"email": "ada@example.com"})
    limited = call(crm, "PUT", "/companies/co_1/members/c_1", json={"roles": []})

    assert (made.status_code, contact.status_code, limited.status_code) == (201, 201, 429)
    assert limited.headers["Retry-After"] == "1"
    assert crm.memberships() == []
    assert crm.stats()["by_method"] == {"GET": 0, "POST": 2, "PATCH": 0, "PUT": 1}


def test_admin_lists_companies_and_memberships_and_reset_wipes_them(crm: CrmServer) -> None:
    key = {"Idempotency-Key": "k"}
    acme = call(crm, "POST", "/companies", json=ACME, headers=key).json()
    create(crm, email="ada@example.com")
    call(crm, "PUT", "/companies/co_1/members/c_1", json={"roles": ["admin"]})

    listed = call(crm, "GET", "/_admin/companies").json()
    memberships = call(crm, "GET", "/_admin/memberships").json()
    reset = call(crm, "POST", "/_admin/reset")
    again = call(crm, "POST", "/companies", json={"name": "new"}, headers=key)

    assert listed == [acme]
    assert memberships == [{"company_id": "co_1", "contact_id": "c_1", "roles": ["admin"]}]
    assert reset.json() == {"contacts": 0, "companies": 0, "memberships": 0}
    assert again.status_code == 201  # the key was forgotten too
    assert again.json()["id"] == "co_1"
    assert crm.memberships() == []


def test_seeded_companies_and_memberships_skip_the_rules_like_an_edit_by_hand(
    unique_org_crm: CrmServer,
) -> None:
    crm = unique_org_crm
    first = crm.seed_company(name="acme", auth0_org_id="org_1")
    second = crm.seed_company(name="acme (copy)", auth0_org_id="org_1")
    ada = crm.seed_contact(email="ada@example.com")
    crm.seed_membership(second["id"], ada["id"], ["b", "a"])

    assert [c["id"] for c in (first, second)] == ["co_1", "co_2"]
    assert crm.memberships() == [{"company_id": "co_2", "contact_id": "c_1", "roles": ["a", "b"]}]
    assert crm.stats()["total"] == 0
    with pytest.raises(ValueError, match=r"missing required field\(s\): \['name'\]"):
        crm.seed_company(auth0_org_id="org_2")


def test_companies_and_memberships_persist_in_a_db_file(tmp_path: Path) -> None:
    db = str(tmp_path / "crm.db")
    with CrmServer(db_path=db) as first:
        acme = company(first, **ACME)
        create(first, email="ada@example.com")
        call(first, "PUT", "/companies/co_1/members/c_1", json={"roles": ["admin"]})

    with CrmServer(db_path=db) as second:
        assert call(second, "GET", "/companies/co_1").json() == acme
        assert second.memberships() == [
            {"company_id": "co_1", "contact_id": "c_1", "roles": ["admin"]}
        ]
        assert company(second, name="globex")["id"] == "co_2"
