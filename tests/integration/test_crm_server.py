"""The reference CRM server over real HTTP: the contract's rules, fault injection, admin, CLI."""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from auth0_sync.names import LOCAL_CRM_TOKEN, Env
from auth0_sync_cli import crm_server as server_module
from auth0_sync_cli.crm_fields import is_date_time
from auth0_sync_cli.crm_server import CrmServer, Faults
from auth0_sync_cli.crm_store import IDEMPOTENCY_WINDOW_SECONDS, ContactStore
from tests.integration.crm_calls import call, create

pytestmark = pytest.mark.integration

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing Authorization header; send 'Authorization: Bearer <token>'"),
        ({"Authorization": "Bearer nope"}, "wrong bearer token"),
        (
            {"Authorization": f"Basic {LOCAL_CRM_TOKEN}"},
            "Authorization header must be 'Bearer <token>'",
        ),
        ({"Authorization": "Bearer "}, "Authorization header must be 'Bearer <token>'"),
    ],
)
def test_request_without_the_right_bearer_token_is_401(
    crm: CrmServer, headers: dict[str, str], message: str
) -> None:
    response = requests.post(
        crm.base_url + "/contacts", json={"email": "ada@example.com"}, headers=headers, timeout=5
    )

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"error": "unauthorized", "message": message}
    assert crm.contacts() == []


def test_admin_endpoints_need_the_token_too(crm: CrmServer) -> None:
    response = requests.post(crm.base_url + "/_admin/reset", timeout=5)

    assert response.status_code == 401


def test_token_scheme_is_case_insensitive(crm: CrmServer) -> None:
    response = call(
        crm,
        "GET",
        "/contacts",
        params={"email": "x@example.com"},
        headers={"Authorization": f"bearer {crm.token}"},
    )

    assert response.status_code == 200
    assert response.json() == []


# --- GET /contacts ----------------------------------------------------------------------------


def test_listing_without_a_filter_pages_through_every_contact_in_id_string_order(
    crm: CrmServer,
) -> None:
    made = [create(crm, email=f"user{n}@example.com") for n in range(1, 13)]  # c_1 .. c_12
    by_id = {c["id"]: c for c in made}

    first = call(crm, "GET", "/contacts", params={"limit": "5"})
    second = call(crm, "GET", "/contacts", params={"limit": "5", "after": "c_2"})
    last = call(crm, "GET", "/contacts", params={"limit": "5", "after": "c_7"})
    end = call(crm, "GET", "/contacts", params={"after": "c_9"})

    assert first.status_code == 200
    # String order, as the contract says: "c_10" sorts before "c_2".
    assert [c["id"] for c in first.json()] == ["c_1", "c_10", "c_11", "c_12", "c_2"]
    assert first.json() == [by_id[c["id"]] for c in first.json()]
    assert [c["id"] for c in second.json()] == ["c_3", "c_4", "c_5", "c_6", "c_7"]
    assert [c["id"] for c in last.json()] == ["c_8", "c_9"]
    assert end.json() == []


def test_listing_returns_100_contacts_by_default_and_at_most_500(crm: CrmServer) -> None:
    for n in range(501):
        crm.store.seed({"email": f"user{n}@example.com"})
    ids = sorted(f"c_{n}" for n in range(1, 502))

    default = call(crm, "GET", "/contacts").json()
    widest = call(crm, "GET", "/contacts", params={"limit": "500"}).json()
    rest = call(crm, "GET", "/contacts", params={"limit": "500", "after": widest[-1]["id"]})

    assert [c["id"] for c in default] == ids[:100]
    assert [c["id"] for c in widest] == ids[:500]
    assert [c["id"] for c in rest.json()] == ids[500:]


def test_listing_includes_deactivated_and_unowned_contacts(crm: CrmServer) -> None:
    owned = create(crm, email="ada@example.com", auth0_user_id="auth0|1")
    legacy = crm.seed_contact(email="ADA@example.com", status="deactivated")

    assert call(crm, "GET", "/contacts").json() == [owned, legacy]


@pytest.mark.parametrize("limit", ["0", "501", "-1", "1.5", "ten", "", "\u0661"])
def test_listing_limit_outside_1_to_500_is_400(crm: CrmServer, limit: str) -> None:
    create(crm, email="ada@example.com")

    response = call(crm, "GET", "/contacts", params={"limit": limit})

    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_request",
        "message": f"query parameter 'limit' must be a whole number from 1 to 500, got {limit!r}",
    }


def test_a_lookup_answers_every_match_whatever_limit_and_after_say(crm: CrmServer) -> None:
    first = crm.seed_contact(email="dup@example.com", auth0_user_id="auth0|1")
    second = crm.seed_contact(email="DUP@example.com", auth0_user_id="auth0|1")

    by_email = {"email": "dup@example.com", "limit": "1", "after": "c_9"}
    by_user = {"auth0_user_id": "auth0|1", "limit": "1", "after": "c_1"}

    assert call(crm, "GET", "/contacts", params=by_email).json() == [first, second]
    assert call(crm, "GET", "/contacts", params=by_user).json() == [first, second]


def test_a_lookup_with_a_limit_outside_1_to_500_is_400_too(crm: CrmServer) -> None:
    response = call(crm, "GET", "/contacts", params={"email": "a@example.com", "limit": "0"})

    assert response.status_code == 400


def test_find_by_email_ignores_case(crm: CrmServer) -> None:
    ada = create(crm, email="Ada@Example.com", name="Ada")
    create(crm, email="grace@example.com")

    response = call(crm, "GET", "/contacts", params={"email": "ada@EXAMPLE.COM"})

    assert response.status_code == 200
    assert response.json() == [ada]


def test_find_by_auth0_user_id(crm: CrmServer) -> None:
    create(crm, email="ada@example.com", auth0_user_id="auth0|1")
    grace = create(crm, email="grace@example.com", auth0_user_id="auth0|2")

    response = call(crm, "GET", "/contacts", params={"auth0_user_id": "auth0|2"})

    assert response.json() == [grace]


def test_find_with_both_parameters_needs_both_to_match(crm: CrmServer) -> None:
    ada = create(crm, email="ada@example.com", auth0_user_id="auth0|1")

    both = {"email": "ADA@example.com", "auth0_user_id": "auth0|1"}
    mismatch = {"email": "ada@example.com", "auth0_user_id": "auth0|2"}

    assert call(crm, "GET", "/contacts", params=both).json() == [ada]
    assert call(crm, "GET", "/contacts", params=mismatch).json() == []


def test_find_returns_every_legacy_duplicate_in_id_order(crm: CrmServer) -> None:
    first = crm.seed_contact(email="dup@example.com", name="First")
    second = crm.seed_contact(email="DUP@example.com", name="Second")

    response = call(crm, "GET", "/contacts", params={"email": "dup@example.com"})

    assert [c["id"] for c in response.json()] == [first["id"], second["id"]] == ["c_1", "c_2"]


# --- POST /contacts ---------------------------------------------------------------------------


def test_create_sets_id_status_and_timestamps(crm: CrmServer) -> None:
    response = call(crm, "POST", "/contacts", json={"email": "ada@example.com", "name": "Ada"})

    assert response.status_code == 201
    assert response.headers["Location"] == "/contacts/c_1"
    body = response.json()
    assert ISO_UTC.fullmatch(body["created_at"])
    assert body["updated_at"] == body["created_at"]
    assert body == {
        "id": "c_1",
        "email": "ada@example.com",
        "name": "Ada",
        "given_name": None,
        "family_name": None,
        "phone": None,
        "status": "active",
        "created_at": body["created_at"],
        "updated_at": body["created_at"],
    }
    assert call(crm, "GET", "/contacts/c_1").json() == body
    assert create(crm, email="grace@example.com")["id"] == "c_2"


def test_create_keeps_every_contract_field(crm: CrmServer) -> None:
    fields = {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "phone": "+44 20 7946 0000",
        "status": "deactivated",
        "auth0_user_id": "auth0|1",
        "source_updated_at": "2026-11-01T10:00:00.123+01:00",
    }

    contact = create(crm, **fields)

    assert {name: contact[name] for name in fields} == fields
    assert crm.contacts() == [contact]


def test_repeated_idempotency_key_returns_the_first_contact_and_creates_nothing(
    crm: CrmServer,
) -> None:
    key = {"Idempotency-Key": "event-1"}
    first = call(crm, "POST", "/contacts", json={"email": "ada@example.com"}, headers=key)

    again = call(crm, "POST", "/contacts", json={"email": "ada@example.com"}, headers=key)
    # The key wins over the body: a retry is answered with what the first request made.
    other_body = call(crm, "POST", "/contacts", json={"email": "x@example.com"}, headers=key)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert other_body.status_code == 200
    assert other_body.json()["id"] == first.json()["id"]
    assert crm.contacts() == [first.json()]


def test_idempotency_key_is_forgotten_after_24_hours(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = ContactStore(str(tmp_path / "crm.db"), clock=lambda: now[0])
    first, created = store.create({"email": "ada@example.com"}, idempotency_key="k")

    now[0] += IDEMPOTENCY_WINDOW_SECONDS - 1
    replay, replay_created = store.create({"email": "ada@example.com"}, idempotency_key="k")
    now[0] += 1
    store.reset()
    fresh, fresh_created = store.create({"email": "ada@example.com"}, idempotency_key="k")

    assert (created, replay_created, fresh_created) == (True, False, True)
    assert replay == first
    assert fresh.contact["id"] == "c_1"
    assert store.all() == [fresh.contact]


def test_duplicate_email_is_409_whatever_its_case(crm: CrmServer) -> None:
    ada = create(crm, email="ada@example.com")

    response = call(crm, "POST", "/contacts", json={"email": "ADA@Example.com"})

    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "message": "a contact with this email already exists: c_1",
    }
    assert crm.contacts() == [ada]


def test_new_idempotency_key_does_not_bypass_the_duplicate_check(crm: CrmServer) -> None:
    create(crm, email="ada@example.com")

    response = call(
        crm,
        "POST",
        "/contacts",
        json={"email": "ada@example.com"},
        headers={"Idempotency-Key": "k"},
    )

    assert response.status_code == 409


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"email": "a@example.com", "foo": 1}, "unknown field(s): ['foo']"),
        ({"email": "a@example.com", "zip": 1, "age": 2}, "unknown field(s): ['age', 'zip']"),
        ({"email": 5}, "field 'email' must be a string, got integer"),
        ({"email": None}, "field 'email' must be a string, got null"),
        (
            {"email": "a@example.com", "name": True},
            "field 'name' must be a string or null, got boolean",
        ),
        (
            {"email": "a@example.com", "auth0_user_id": None},
            "field 'auth0_user_id' must be a string, got null",
        ),
        (
            {"email": "a@example.com", "status": "gone"},
            "field 'status' must be one of ['active', 'deactivated'], got 'gone'",
        ),
        (
            {"email": "a@example.com", "source_updated_at": "2026-11-01 10:00"},
            "field 'source_updated_at' must be an RFC 3339 date-time, got '2026-11-01 10:00'",
        ),
        ({"name": "Ada"}, "missing required field(s): ['email']"),
        (
            {"phone": 1},
            "field 'phone' must be a string or null, got integer;"
            " missing required field(s): ['email']",
        ),
        (["a@example.com"], "body must be a JSON object, got array"),
    ],
)
def test_invalid_create_is_422_naming_the_problem(
    crm: CrmServer, body: object, message: str
) -> None:
    response = call(crm, "POST", "/contacts", json=body)

    assert response.status_code == 422
    assert response.json() == {"error": "invalid", "message": message}
    assert crm.contacts() == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "a JSON object body is required"),
        (
            b"{nope",
            "body is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
    ],
)
def test_create_without_a_json_body_is_422(crm: CrmServer, data: bytes, message: str) -> None:
    response = call(
        crm, "POST", "/contacts", data=data, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json() == {"error": "invalid", "message": message}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2026-11-01T10:00:00Z", True),
        ("2026-11-01t10:00:00.5z", True),
        ("2026-12-31T23:59:60-05:30", True),
        ("2026-11-01T10:00:00", False),  # no offset
        ("2026-02-30T10:00:00Z", False),
        ("2026-11-01T24:00:00Z", False),
        ("2026-11-01T10:00:00+24:00", False),
        ("2026-11-01", False),
    ],
)
def test_date_time_follows_rfc_3339(value: str, valid: bool) -> None:
    assert is_date_time(value) is valid


# --- GET / PATCH /contacts/{id} -------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PATCH"])
@pytest.mark.parametrize("contact_id", ["c_999", "nope"])
def test_unknown_contact_is_404(crm: CrmServer, method: str, contact_id: str) -> None:
    response = call(crm, method, f"/contacts/{contact_id}", json={"name": "x"})

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "message": f"no contact with id '{contact_id}'",
    }


def test_patch_changes_only_the_fields_present(crm: CrmServer) -> None:
    ada = create(crm, email="ada@example.com", name="Ada", phone="123", auth0_user_id="auth0|1")
    time.sleep(0.002)  # so updated_at visibly moves on

    response = call(crm, "PATCH", "/contacts/c_1", json={"phone": None, "status": "deactivated"})

    assert response.status_code == 200
    changed = response.json()
    assert changed == {
        **ada,
        "phone": None,
        "status": "deactivated",
        "updated_at": changed["updated_at"],
    }
    assert changed["updated_at"] > ada["updated_at"]
    assert call(crm, "GET", "/contacts/c_1").json() == changed


def test_patch_with_no_change_leaves_updated_at_alone(crm: CrmServer) -> None:
    ada = create(crm, email="ada@example.com", name="Ada")

    response = call(crm, "PATCH", "/contacts/c_1", json={"name": "Ada"})

    assert response.json() == ada


def test_without_unique_emails_a_patch_may_give_two_contacts_one_email(crm: CrmServer) -> None:
    ada = create(crm, email="ada@example.com")
    create(crm, email="grace@example.com")

    response = call(crm, "PATCH", "/contacts/c_2", json={"email": "ADA@example.com"})

    assert response.status_code == 200
    assert response.json()["email"] == "ADA@example.com"
    found = call(crm, "GET", "/contacts", params={"email": "ada@example.com"}).json()
    assert [c["id"] for c in found] == [ada["id"], "c_2"]


def test_with_unique_emails_a_patch_to_an_email_another_contact_holds_is_409(
    unique_crm: CrmServer,
) -> None:
    create(unique_crm, email="ada@example.com")
    grace = create(unique_crm, email="grace@example.com")

    response = call(
        unique_crm, "PATCH", "/contacts/c_2", json={"email": "ADA@example.com", "name": "G"}
    )

    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "message": "field 'email' is already used by another contact: c_1",
    }
    assert call(unique_crm, "GET", "/contacts/c_2").json() == grace  # the name too is kept


def test_with_unique_emails_a_post_with_a_taken_email_is_409(unique_crm: CrmServer) -> None:
    ada = create(unique_crm, email="ada@example.com")

    response = call(unique_crm, "POST", "/contacts", json={"email": "Ada@Example.com"})

    assert response.status_code == 409
    assert unique_crm.contacts() == [ada]


def test_with_unique_emails_an_email_freed_by_one_patch_can_be_taken_by_the_next(
    unique_crm: CrmServer,
) -> None:
    create(unique_crm, email="ada@example.com")
    create(unique_crm, email="grace@example.com")

    moved = call(unique_crm, "PATCH", "/contacts/c_1", json={"email": "ada@example.org"})
    taken = call(unique_crm, "PATCH", "/contacts/c_2", json={"email": "ada@example.com"})

    assert (moved.status_code, taken.status_code) == (200, 200)
    assert [c["email"] for c in unique_crm.contacts()] == ["ada@example.org", "ada@example.com"]


def test_with_unique_emails_a_legacy_duplicate_may_keep_its_own_email(
    unique_crm: CrmServer,
) -> None:
    unique_crm.seed_contact(email="dup@example.com", name="First")
    unique_crm.seed_contact(email="DUP@example.com", name="Second")

    # Keeping the email it has gives the contact nothing another one holds.
    response = call(
        unique_crm, "PATCH", "/contacts/c_2", json={"email": "dup@example.com", "name": "Two"}
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Two"


def test_cli_unique_emails_and_org_ids_flags_reach_the_server() -> None:
    proc = run_cli("--port", "0", "--unique-emails", "--unique-org-ids")
    try:
        assert proc.stdout is not None
        url = re.search(r"listening on (\S+)", proc.stdout.readline())
        assert url is not None
        headers = {"Authorization": f"Bearer {LOCAL_CRM_TOKEN}"}
        for email in ("ada@example.com", "grace@example.com"):
            requests.post(f"{url[1]}/contacts", json={"email": email}, headers=headers, timeout=5)
        response = requests.patch(
            f"{url[1]}/contacts/c_2", json={"email": "ada@example.com"}, headers=headers, timeout=5
        )
        acme = {"name": "acme", "auth0_org_id": "org_1"}
        companies = [
            requests.post(f"{url[1]}/companies", json=acme, headers=headers, timeout=5)
            for _ in range(2)
        ]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)

    assert response.status_code == 409
    assert [r.status_code for r in companies] == [201, 409]


def test_patch_may_change_the_case_of_its_own_email(crm: CrmServer) -> None:
    create(crm, email="ada@example.com")

    response = call(crm, "PATCH", "/contacts/c_1", json={"email": "Ada@Example.com"})

    assert response.status_code == 200
    assert response.json()["email"] == "Ada@Example.com"
    found = call(crm, "GET", "/contacts", params={"email": "ada@example.com"}).json()
    assert [c["id"] for c in found] == ["c_1"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"nickname": "x"}, "unknown field(s): ['nickname']"),
        ({"email": None}, "field 'email' must be a string, got null"),
        ({"status": None}, "field 'status' must be a string, got null"),
        ({"given_name": 3}, "field 'given_name' must be a string or null, got integer"),
        ("name", "body must be a JSON object, got string"),
    ],
)
def test_invalid_patch_is_422_and_changes_nothing(
    crm: CrmServer, body: object, message: str
) -> None:
    ada = create(crm, email="ada@example.com", name="Ada")

    response = call(crm, "PATCH", "/contacts/c_1", json=body)

    assert response.status_code == 422
    assert response.json() == {"error": "invalid", "message": message}
    assert crm.contacts() == [ada]


def test_unsupported_method_is_405_with_allow(crm: CrmServer) -> None:
    create(crm, email="ada@example.com")

    response = call(crm, "DELETE", "/contacts/c_1")

    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PATCH"}
    assert response.json()["error"] == "method_not_allowed"


# --- conditional writes: ETag and If-Match (contract 1.2) -----------------------------------

STRONG_ETAG = re.compile(r'"[^"\s,]+"')


def test_every_answer_carrying_one_contact_has_a_strong_etag(crm: CrmServer) -> None:
    key = {"Idempotency-Key": "k1"}
    created = call(crm, "POST", "/contacts", json={"email": "ada@example.com"}, headers=key)
    replayed = call(crm, "POST", "/contacts", json={"email": "ada@example.com"}, headers=key)
    read = call(crm, "GET", "/contacts/c_1")
    patched = call(crm, "PATCH", "/contacts/c_1", json={"name": "Ada"})
    read_again = call(crm, "GET", "/contacts/c_1")

    assert [r.status_code for r in (created, replayed, read, patched)] == [201, 200, 200, 200]
    assert STRONG_ETAG.fullmatch(created.headers["ETag"])  # quoted, not W/"..."
    # The same contact unchanged: the same ETag; changed: another one, which GET then shows.
    assert replayed.headers["ETag"] == read.headers["ETag"] == created.headers["ETag"]
    assert STRONG_ETAG.fullmatch(patched.headers["ETag"])
    assert patched.headers["ETag"] != created.headers["ETag"]
    assert read_again.headers["ETag"] == patched.headers["ETag"]


def test_a_patch_with_a_stale_if_match_is_412_with_the_current_etag_and_changes_nothing(
    crm: CrmServer,
) -> None:
    first = call(crm, "POST", "/contacts", json={"email": "ada@example.com", "name": "Zero"})
    stale = first.headers["ETag"]
    one = call(crm, "PATCH", "/contacts/c_1", json={"name": "One"})
    two = call(crm, "PATCH", "/contacts/c_1", json={"name": "Two"})

    late = call(crm, "PATCH", "/contacts/c_1", json={"name": "One"}, headers={"If-Match": stale})

    assert (one.status_code, two.status_code) == (200, 200)
    assert late.status_code == 412
    assert late.headers["ETag"] == two.headers["ETag"]
    assert late.json() == {
        "error": "precondition_failed",
        "message": "contact 'c_1' changed since the version in If-Match; nothing was written "
        "(read it again, then decide)",
    }
    assert crm.contacts() == [two.json()]
    assert crm.contacts()[0]["name"] == "Two"


def test_a_patch_with_the_current_etag_applies_and_answers_the_next_one(crm: CrmServer) -> None:
    first = call(crm, "POST", "/contacts", json={"email": "ada@example.com", "name": "Zero"})

    applied = call(
        crm,
        "PATCH",
        "/contacts/c_1",
        json={"name": "One"},
        headers={"If-Match": first.headers["ETag"]},
    )
    chained = call(
        crm,
        "PATCH",
        "/contacts/c_1",
        json={"name": "Two"},
        headers={"If-Match": applied.headers["ETag"]},
    )

    assert applied.status_code == 200
    assert applied.json()["name"] == "One"
    assert chained.status_code == 200
    assert [c["name"] for c in crm.contacts()] == ["Two"]


def test_the_etag_changes_with_every_change_even_back_to_an_earlier_state(crm: CrmServer) -> None:
    tags = [call(crm, "POST", "/contacts", json={"email": "ada@example.com", "name": "A"})]
    for name in ("B", "A", "B"):
        tags.append(call(crm, "PATCH", "/contacts/c_1", json={"name": name}))
    unchanged = call(crm, "PATCH", "/contacts/c_1", json={"name": "B"})

    etags = [r.headers["ETag"] for r in tags]
    assert len(set(etags)) == 4  # A, B, A again, B again: four versions
    assert unchanged.headers["ETag"] == etags[-1]  # a PATCH that changes nothing keeps it
    # The first "A" is not the second "A": a write made against it is refused.
    stale = call(crm, "PATCH", "/contacts/c_1", json={"name": "C"}, headers={"If-Match": etags[0]})
    assert stale.status_code == 412


@pytest.mark.parametrize("how", ["edit_contact", "admin endpoint"])
def test_an_edit_by_a_person_in_the_crm_changes_the_etag_and_fails_a_write_made_before(
    crm: CrmServer, how: str
) -> None:
    created = call(crm, "POST", "/contacts", json={"email": "ada@example.com", "name": "Ada"})
    before = created.headers["ETag"]

    if how == "edit_contact":
        crm.edit_contact("c_1", name="Ada (edited by hand)")
    else:
        edited = call(crm, "PATCH", "/_admin/contacts/c_1", json={"name": "Ada (edited by hand)"})
        assert edited.status_code == 200
        assert edited.headers["ETag"] == crm.etag("c_1")
    late = call(crm, "PATCH", "/contacts/c_1", json={"name": "Ada"}, headers={"If-Match": before})

    assert crm.etag("c_1") != before
    assert late.status_code == 412
    assert late.headers["ETag"] == crm.etag("c_1")
    assert [c["name"] for c in crm.contacts()] == ["Ada (edited by hand)"]


def test_admin_edit_of_an_unknown_contact_is_404_and_of_a_bad_field_422(crm: CrmServer) -> None:
    create(crm, email="ada@example.com")

    assert call(crm, "PATCH", "/_admin/contacts/c_9", json={"name": "x"}).status_code == 404
    bad = call(crm, "PATCH", "/_admin/contacts/c_1", json={"colour": "red"})
    assert bad.status_code == 422
    assert bad.json() == {"error": "invalid", "message": "unknown field(s): ['colour']"}


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ("*", 200),
        (None, 200),
        ('"nope", {current}', 200),  # a list passes when one tag matches
        ("W/{current}", 412),  # a weak tag never matches strongly (RFC 9110 8.8.3.2)
        ('"nope"', 412),
        ("{bare}", 412),  # an entity-tag is quoted: the bare value is another tag
    ],
)
def test_if_match_follows_rfc_9110(crm: CrmServer, if_match: str | None, status: int) -> None:
    current = call(crm, "POST", "/contacts", json={"email": "ada@example.com"}).headers["ETag"]
    headers = (
        {}
        if if_match is None
        else {"If-Match": if_match.format(current=current, bare=current.strip('"'))}
    )

    response = call(crm, "PATCH", "/contacts/c_1", json={"name": "New"}, headers=headers)

    assert response.status_code == status
    assert crm.contacts()[0].get("name") == ("New" if status == 200 else None)


def test_a_stale_precondition_is_412_before_the_body_is_judged_and_404_before_both(
    crm: CrmServer,
) -> None:
    create(crm, email="ada@example.com")
    stale = {"If-Match": '"gone"'}

    invalid_body = call(crm, "PATCH", "/contacts/c_1", json={"colour": "red"}, headers=stale)
    unknown = call(crm, "PATCH", "/contacts/c_9", json={"name": "x"}, headers=stale)

    assert invalid_body.status_code == 412  # RFC 9110 13.2.1: preconditions before content
    assert unknown.status_code == 404


def test_with_unique_emails_a_fresh_if_match_still_gets_409_for_a_taken_email(
    unique_crm: CrmServer,
) -> None:
    create(unique_crm, email="ada@example.com")
    grace = call(unique_crm, "POST", "/contacts", json={"email": "grace@example.com"})

    response = call(
        unique_crm,
        "PATCH",
        "/contacts/c_2",
        json={"email": "ada@example.com"},
        headers={"If-Match": grace.headers["ETag"]},
    )

    assert response.status_code == 409
    assert unique_crm.etag("c_2") == grace.headers["ETag"]


def test_etags_survive_a_restart_and_a_database_from_before_etags_gets_them(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "crm.db")
    with CrmServer(db_path=db) as first:
        tag = call(first, "POST", "/contacts", json={"email": "ada@example.com"}).headers["ETag"]
    with CrmServer(db_path=db) as second:
        assert call(second, "GET", "/contacts/c_1").headers["ETag"] == tag
    with sqlite3.connect(db) as old:  # what a file written before 1.2 holds
        old.execute("ALTER TABLE contacts DROP COLUMN revision")
    with CrmServer(db_path=db) as third:
        migrated = call(third, "GET", "/contacts/c_1")
        patched = call(
            third, "PATCH", "/contacts/c_1", json={"name": "Ada"},
            headers={"If-Match": migrated.headers["ETag"]},
        )  # fmt: skip

    assert migrated.json()["email"] == "ada@example.com"
    assert STRONG_ETAG.fullmatch(migrated.headers["ETag"])
    assert patched.status_code == 200


# --- fault injection ------------------------------------------------------------------------


def test_outage_toggled_at_run_time(crm: CrmServer) -> None:
    crm.set_outage(503)
    during = [
        call(crm, "POST", "/contacts", json={"email": "ada@example.com"}),
        call(crm, "GET", "/contacts", params={"email": "ada@example.com"}),
        call(crm, "PATCH", "/contacts/c_1", json={"name": "x"}),
    ]
    contacts_during = crm.contacts()
    crm.set_outage(None)
    after = call(crm, "POST", "/contacts", json={"email": "ada@example.com"})

    assert [r.status_code for r in during] == [503, 503, 503]
    assert during[0].json() == {"error": "outage", "message": "the CRM is in a simulated outage"}
    assert contacts_during == []
    assert after.status_code == 201


def test_outage_with_429_carries_retry_after(crm: CrmServer) -> None:
    crm.set_outage(429)

    response = call(crm, "GET", "/contacts/c_1")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"


def test_outage_status_must_be_an_error_status(crm: CrmServer) -> None:
    with pytest.raises(ValueError, match=r"outage status must be an HTTP error status 400\.\.599"):
        crm.set_outage(200)


def test_over_the_rate_limit_is_429_with_retry_after(
    clocked_crm: tuple[CrmServer, list[float]],
) -> None:
    crm, _ = clocked_crm
    crm.set_rate_limit(3)

    statuses = [call(crm, "GET", "/contacts", params={"email": "a@b.c"}) for _ in range(3)]
    limited = call(crm, "POST", "/contacts", json={"email": "ada@example.com"})

    assert [r.status_code for r in statuses] == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {
        "error": "rate_limited",
        "message": "over 3 requests per second; retry later",
    }
    assert crm.contacts() == []


def test_rate_limit_window_resets(clocked_crm: tuple[CrmServer, list[float]]) -> None:
    crm, now = clocked_crm
    crm.set_rate_limit(1)
    first = call(crm, "GET", "/contacts/c_1")
    limited = call(crm, "GET", "/contacts/c_1")

    now[0] += int(limited.headers["Retry-After"])
    later = call(crm, "GET", "/contacts/c_1")

    assert (first.status_code, limited.status_code, later.status_code) == (404, 429, 404)


def test_rate_limit_windows_with_a_fake_clock() -> None:
    now = [100.25]
    faults = Faults(rate_limit=2, clock=lambda: now[0])
    slow = Faults(rate_limit=0.25, clock=lambda: now[0])

    in_window = [faults.decide() for _ in range(3)]
    now[0] = 101.0
    next_window = faults.decide()
    slow_first, slow_second = slow.decide(), slow.decide()

    assert in_window[:2] == [None, None]
    assert in_window[2] is not None
    assert in_window[2].status_code == 429
    assert in_window[2].headers["Retry-After"] == "1"
    assert next_window is None
    # 0.25 rps: one request per 4-second window [100, 104); at 101 that is 3 s away.
    assert slow_first is None
    assert slow_second is not None
    assert slow_second.headers["Retry-After"] == "3"


def test_failure_rate_follows_the_seeded_rng() -> None:
    rate, seed, count = 0.3, 7, 40
    rng = random.Random(seed)
    expected = [503 if rng.random() < rate else 404 for _ in range(count)]

    with CrmServer(failure_rate=rate, seed=seed) as crm:
        statuses = [call(crm, "GET", "/contacts/c_1").status_code for _ in range(count)]

    assert statuses == expected
    assert 0 < statuses.count(503) < count


def test_injected_failure_changes_nothing(crm: CrmServer) -> None:
    crm.set_failure_rate(1.0)

    response = call(crm, "POST", "/contacts", json={"email": "ada@example.com"})

    assert response.status_code == 503
    assert response.json() == {
        "error": "unavailable",
        "message": "simulated failure (failure rate); retry later",
    }
    assert crm.contacts() == []


def test_latency_delays_each_contract_request(crm: CrmServer) -> None:
    crm.set_latency(150)

    started = time.monotonic()
    response = call(crm, "GET", "/contacts/c_1")
    elapsed = time.monotonic() - started

    assert response.status_code == 404
    assert elapsed >= 0.15


# --- stats and admin endpoints ----------------------------------------------------------------


def test_stats_count_contract_requests_by_method_and_status(crm: CrmServer) -> None:
    create(crm, email="ada@example.com")
    call(crm, "GET", "/contacts/c_1")
    call(crm, "GET", "/contacts/c_9")
    call(crm, "PATCH", "/contacts/c_1", json={"name": "Ada"})
    requests.get(crm.base_url + "/contacts/c_1", timeout=5)  # no token: 401, still counted
    call(crm, "GET", "/_admin/contacts")  # admin calls are not counted

    response = call(crm, "GET", "/_admin/stats")

    expected = {
        "total": 5,
        "by_method": {"GET": 3, "POST": 1, "PATCH": 1},
        "by_status": {"200": 2, "201": 1, "401": 1, "404": 1},
    }
    assert response.json() == expected
    assert crm.stats() == expected


def test_stats_reset(crm: CrmServer) -> None:
    create(crm, email="ada@example.com")

    response = call(crm, "POST", "/_admin/stats/reset")

    zero = {"total": 0, "by_method": {"GET": 0, "POST": 0, "PATCH": 0}, "by_status": {}}
    assert response.json() == zero
    assert crm.stats() == zero
    assert len(crm.contacts()) == 1


def test_admin_outage_endpoint(crm: CrmServer) -> None:
    on = call(crm, "POST", "/_admin/outage", json={"enabled": True, "status": 502})
    during = call(crm, "GET", "/contacts/c_1")
    call(crm, "POST", "/_admin/outage", json={"enabled": True})
    default_status = call(crm, "GET", "/contacts/c_1")
    off = call(crm, "POST", "/_admin/outage", json={"enabled": False})
    after = call(crm, "GET", "/contacts/c_1")

    assert on.status_code == 200
    assert on.json()["outage"] == 502
    assert (during.status_code, default_status.status_code) == (502, 503)
    assert off.json()["outage"] is None
    assert after.status_code == 404


def test_admin_rate_limit_endpoint(clocked_crm: tuple[CrmServer, list[float]]) -> None:
    crm, _ = clocked_crm
    set_limit = call(crm, "POST", "/_admin/rate-limit", json={"rps": 1})
    statuses = [call(crm, "GET", "/contacts/c_1").status_code for _ in range(2)]
    call(crm, "POST", "/_admin/rate-limit", json={"rps": None})
    unlimited = [call(crm, "GET", "/contacts/c_1").status_code for _ in range(3)]

    assert set_limit.json()["rate_limit"] == 1
    assert statuses == [404, 429]
    assert unlimited == [404, 404, 404]


def test_admin_failure_rate_endpoint(crm: CrmServer) -> None:
    call(crm, "POST", "/_admin/failure-rate", json={"rate": 1})
    failing = call(crm, "GET", "/contacts/c_1")
    call(crm, "POST", "/_admin/failure-rate", json={"rate": 0})
    healthy = call(crm, "GET", "/contacts/c_1")

    assert (failing.status_code, healthy.status_code) == (503, 404)


def test_admin_latency_and_faults_endpoints(crm: CrmServer) -> None:
    call(crm, "POST", "/_admin/latency", json={"ms": 20})

    response = call(crm, "GET", "/_admin/faults")

    assert response.json() == {
        "latency_ms": 20.0,
        "rate_limit": None,
        "failure_rate": 0.0,
        "outage": None,
        "batch_cut": None,
    }


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/_admin/outage", {"status": 503}, "field 'enabled' must be true or false, got None"),
        (
            "/_admin/outage",
            {"enabled": True, "status": 200},
            "outage status must be an HTTP error status 400..599, got 200",
        ),
        (
            "/_admin/outage",
            {"enabled": True, "status": "503"},
            "field 'status' must be an integer, got '503'",
        ),
        ("/_admin/rate-limit", {}, "missing field 'rps'"),
        (
            "/_admin/rate-limit",
            {"rps": 0},
            "rate limit must be > 0 requests per second or None, got 0.0",
        ),
        ("/_admin/rate-limit", {"rps": "fast"}, "field 'rps' must be a number or null, got 'fast'"),
        ("/_admin/failure-rate", {"rate": 1.5}, "failure rate must be between 0 and 1, got 1.5"),
        ("/_admin/failure-rate", {"rate": None}, "field 'rate' must be a number, got None"),
        ("/_admin/latency", {"ms": -1}, "latency_ms must be >= 0, got -1.0"),
        ("/_admin/latency", [1], "body must be a JSON object"),
        ("/_admin/batch-cut", {}, "missing field 'after'"),
        (
            "/_admin/batch-cut",
            {"after": -1},
            "batch cut must be a whole number >= 0 or None, got -1",
        ),
        (
            "/_admin/batch-cut",
            {"after": 1.5},
            "batch cut must be a whole number >= 0 or None, got 1.5",
        ),
    ],
)
def test_admin_rejects_bad_settings_with_422(
    crm: CrmServer, path: str, body: object, message: str
) -> None:
    response = call(crm, "POST", path, json=body)

    assert response.status_code == 422
    assert response.json() == {"error": "invalid", "message": message}
    assert call(crm, "GET", "/contacts/c_1").status_code == 404  # no fault switched on


def test_admin_contacts_lists_every_contact(crm: CrmServer) -> None:
    ada = create(crm, email="ada@example.com")
    dup = crm.seed_contact(email="ADA@example.com", status="deactivated")

    response = call(crm, "GET", "/_admin/contacts")

    assert response.json() == [ada, dup] == crm.contacts()
    assert dup["status"] == "deactivated"


def test_admin_reset_wipes_contacts_keys_and_stats(crm: CrmServer) -> None:
    key = {"Idempotency-Key": "k"}
    call(crm, "POST", "/contacts", json={"email": "ada@example.com"}, headers=key)
    create(crm, email="grace@example.com")

    reset = call(crm, "POST", "/_admin/reset")
    stats_after_reset = crm.stats()
    again = call(crm, "POST", "/contacts", json={"email": "ada@example.com"}, headers=key)

    assert reset.status_code == 200
    assert stats_after_reset["total"] == 0
    assert again.status_code == 201
    assert again.json()["id"] == "c_1"
    assert crm.contacts() == [again.json()]


def test_seed_contact_validates_its_fields(crm: CrmServer) -> None:
    with pytest.raises(ValueError, match=r"unknown field\(s\): \['colour'\]"):
        crm.seed_contact(email="ada@example.com", colour="red")


# --- server lifecycle, storage, concurrency -------------------------------------------------


def test_concurrent_creates_get_unique_ids_and_one_winner_per_email(crm: CrmServer) -> None:
    def post(email: str) -> int:
        return call(crm, "POST", "/contacts", json={"email": email}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        distinct = list(pool.map(post, [f"user{i}@example.com" for i in range(24)]))
        same = list(pool.map(post, ["same@example.com"] * 16))

    assert distinct == [201] * 24
    assert sorted(same) == [201] + [409] * 15
    ids = [c["id"] for c in crm.contacts()]
    assert ids == [f"c_{n}" for n in range(1, 26)]


def test_contacts_persist_in_a_db_file(tmp_path: Path) -> None:
    db = str(tmp_path / "crm.db")
    with CrmServer(db_path=db) as first:
        ada = create(first, email="ada@example.com")

    with CrmServer(db_path=db) as second:
        assert call(second, "GET", "/contacts/c_1").json() == ada
        assert create(second, email="grace@example.com")["id"] == "c_2"


def test_stop_closes_the_port(crm_server: CrmServer) -> None:
    server = CrmServer(token="other").start()
    url = server.base_url
    assert call(server, "GET", "/contacts/c_1").status_code == 404

    server.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/contacts/c_1", timeout=2)
    server.stop()  # a second stop is harmless


# --- CLI ------------------------------------------------------------------------------------


def run_cli(*args: str, token: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != Env.CRM_API_TOKEN}
    if token:
        env[Env.CRM_API_TOKEN] = token
    env["PYTHONPATH"] = os.pathsep.join([str(FUNCTIONS_DIR), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, "-m", "auth0_sync_cli.main", "crm-server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def started_cli(*args: str, token: str | None = None) -> tuple[subprocess.Popen[str], str, str]:
    """`crm-server --port 0 ARGS`: the process, its banner and its base URL, read from the
    banner (the OS picks the port, so no other process can take it between test and server)."""
    proc = run_cli("--port", "0", *args, token=token)
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    found = re.search(r"listening on (http://127\.0\.0\.1:\d+) ", banner)
    if found is None:
        proc.kill()
        _, stderr = proc.communicate(timeout=10)
        raise AssertionError(f"no banner: {banner!r} {stderr}")
    return proc, banner, found.group(1)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_until_signalled_and_exits_0(stop_signal: signal.Signals) -> None:
    proc, banner, url = started_cli("--latency-ms", "1")
    try:
        response = requests.post(
            f"{url}/contacts",
            json={"email": "ada@example.com"},
            headers={"Authorization": f"Bearer {LOCAL_CRM_TOKEN}"},
            timeout=5,
        )
        proc.send_signal(stop_signal)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()

    assert f"export CRM_BASE_URL={url} CRM_API_TOKEN={LOCAL_CRM_TOKEN}" in banner
    assert response.status_code == 201
    assert proc.returncode == 0, stderr
    assert stdout == "crm-server stopped\n"


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_signalled_the_moment_it_says_listening_stops_cleanly(
    stop_signal: signal.Signals,
) -> None:
    # The race of issue 18: a Ctrl-C right after the banner used to hit the server before
    # its wait began and end it with 130 and no clean-up.
    proc, _, _ = started_cli()
    try:
        proc.send_signal(stop_signal)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()

    assert (proc.returncode, stdout, stderr) == (0, "crm-server stopped\n", "")


def test_cli_fault_flags_reach_the_server() -> None:
    proc, _, url = started_cli("--failure-rate", "1", "--seed", "3")
    try:
        response = requests.get(
            f"{url}/contacts/c_1",
            headers={"Authorization": f"Bearer {LOCAL_CRM_TOKEN}"},
            timeout=5,
        )
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()

    assert response.status_code == 503
    assert proc.returncode == 0, stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--failure-rate", "2"], "argument --failure-rate: must be between 0 and 1, got 2"),
        (["--rate-limit", "0"], "argument --rate-limit: must be > 0"),
        (["--port", "http"], "argument --port: not a port number: 'http'"),
        (["--latency-ms", "-5"], "argument --latency-ms: must be >= 0, got -5"),
    ],
)
def test_cli_bad_flag_exits_2_with_a_message(args: list[str], message: str) -> None:
    proc = run_cli(*args)
    _, stderr = proc.communicate(timeout=20)

    assert proc.returncode == 2
    assert message in stderr


def test_cli_port_in_use_exits_2_at_once_naming_the_port_flag(crm: CrmServer) -> None:
    proc = run_cli("--port", str(crm.port))
    _, stderr = proc.communicate(timeout=20)

    assert proc.returncode == 2
    assert stderr == (
        f"auth0-sync crm-server: error: port {crm.port} on 127.0.0.1 is already in use "
        "(another server, or one still running): stop it, or pass another --port "
        "(--port 0 picks a free one)\n"
    )


def test_cli_bad_db_path_exits_2(tmp_path: Path) -> None:
    db = str(tmp_path / "missing" / "crm.db")
    proc = run_cli("--port", "0", "--db", db)
    _, stderr = proc.communicate(timeout=20)

    assert proc.returncode == 2
    assert stderr == (
        f"auth0-sync crm-server: error: --db {db}: cannot open the database: "
        "unable to open database file\n"
    )


def test_server_bound_by_host_name() -> None:
    with CrmServer(host="localhost") as crm:
        response = call(crm, "GET", "/contacts/c_1")

    assert crm.base_url.startswith("http://localhost:")
    assert response.status_code == 404


SECRET = "s3cr3t-crm-token-4f7a"


@pytest.mark.parametrize("source", ["file", "environment"])
def test_the_crm_token_is_never_on_the_command_line_nor_printed(
    source: str, tmp_path: Path
) -> None:
    # Issue 17: a secret given as a flag's value is in `ps` for every user of the machine.
    token_file = tmp_path / "crm-token.txt"
    token_file.write_text(SECRET + "\n")
    token_file.chmod(0o600)
    args = ("--crm-token-file", str(token_file)) if source == "file" else ()
    proc, banner, url = started_cli(*args, token=SECRET if source == "environment" else None)
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        accepted = requests.get(
            f"{url}/contacts", headers={"Authorization": f"Bearer {SECRET}"}, timeout=5
        )
        refused = requests.get(
            f"{url}/contacts",
            headers={"Authorization": f"Bearer {LOCAL_CRM_TOKEN}"},
            timeout=5,
        )
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()

    assert "crm-server" in cmdline
    assert SECRET not in cmdline
    assert (accepted.status_code, refused.status_code) == (200, 401)
    assert SECRET not in banner + stdout + stderr
    shown = f'"$(cat {token_file})"' if source == "file" else '"$CRM_API_TOKEN"'
    assert f"CRM_API_TOKEN={shown}" in banner


def test_every_admin_endpoint_is_documented_in_the_docstring_and_the_help(
    crm_server: CrmServer,
) -> None:
    served = {
        re.sub(r"<[^>]+>", "{id}", rule.rule)
        for rule in crm_server.app.url_map.iter_rules()
        if rule.rule.startswith("/_admin/")
    }

    assert len(served) == 13
    assert server_module.__doc__ is not None
    for path in sorted(served):
        assert path in server_module.__doc__, path
        assert path in server_module.ADMIN_HELP, path
