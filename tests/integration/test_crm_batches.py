"""The reference CRM's batch endpoints (contract 1.2) over real HTTP: `POST /contacts/batch`
and `POST /contacts/batch/find`."""

from __future__ import annotations

from typing import Any

import pytest

from auth0_sync_cli.crm_server import CrmServer
from tests.integration.crm_calls import call, create

pytestmark = pytest.mark.integration


def batch(crm: CrmServer, *operations: object) -> list[dict[str, Any]]:
    """The results of one batch, which must answer 200."""
    response = call(crm, "POST", "/contacts/batch", json={"operations": list(operations)})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def without_times(contact: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in contact.items() if k not in ("created_at", "updated_at")}


# --- POST /contacts/batch -------------------------------------------------------------------


def test_a_batch_answers_one_result_per_operation_in_order_and_a_failure_stops_nothing(
    crm: CrmServer,
) -> None:
    create(crm, email="taken@example.com")  # c_1

    results = batch(
        crm,
        {"op": "create", "fields": {"email": "ada@example.com", "name": "Ada"}},
        {"op": "update", "id": "c_9", "fields": {"name": "Nobody"}},
        {"op": "create", "fields": {"email": "TAKEN@example.com"}},
        {"op": "update", "id": "c_1", "fields": {"colour": "red"}},
        {"op": "update", "id": "c_1", "fields": {"name": "Taken"}},
        {"op": "create", "fields": {"email": "grace@example.com"}},
    )

    assert [r["status"] for r in results] == [201, 404, 409, 422, 200, 201]
    assert without_times(results[0]["contact"]) == {
        "id": "c_2",
        "email": "ada@example.com",
        "name": "Ada",
        "given_name": None,
        "family_name": None,
        "phone": None,
        "status": "active",
    }
    assert results[1] == {
        "status": 404,
        "error": {"error": "not_found", "message": "no contact with id 'c_9'"},
    }
    assert results[2] == {
        "status": 409,
        "error": {"error": "conflict", "message": "a contact with this email already exists: c_1"},
    }
    assert results[3] == {
        "status": 422,
        "error": {"error": "invalid", "message": "unknown field(s): ['colour']"},
    }
    assert results[4]["contact"]["name"] == "Taken"
    assert results[5]["contact"]["id"] == "c_3"
    assert [(c["id"], c["email"], c["name"]) for c in crm.contacts()] == [
        ("c_1", "taken@example.com", "Taken"),
        ("c_2", "ada@example.com", "Ada"),
        ("c_3", "grace@example.com", None),
    ]


def test_each_operation_sees_the_effect_of_those_before_it(unique_crm: CrmServer) -> None:
    results = batch(
        unique_crm,
        {"op": "create", "fields": {"email": "ada@example.com"}},
        {"op": "update", "id": "c_1", "fields": {"email": "ada@example.org"}},
        {"op": "create", "fields": {"email": "ada@example.com"}},  # freed by the update
        {"op": "create", "fields": {"email": "ADA@example.org"}},  # taken by the update
    )

    assert [r["status"] for r in results] == [201, 200, 201, 409]
    assert [c["email"] for c in unique_crm.contacts()] == ["ada@example.org", "ada@example.com"]


@pytest.mark.parametrize(
    ("operation", "single", "status", "message"),
    [
        (
            {"op": "create", "fields": {"name": "No email"}},
            ("POST", "/contacts", {"name": "No email"}),
            422,
            "missing required field(s): ['email']",
        ),
        (
            {"op": "create", "fields": {"email": "ada@example.com", "status": "gone"}},
            ("POST", "/contacts", {"email": "ada@example.com", "status": "gone"}),
            422,
            "field 'status' must be one of ['active', 'deactivated'], got 'gone'",
        ),
        (
            {"op": "update", "id": "c_1", "fields": {"email": "grace@example.com"}},
            ("PATCH", "/contacts/c_1", {"email": "grace@example.com"}),
            409,
            "field 'email' is already used by another contact: c_2",
        ),
        (
            {"op": "update", "id": "c_1", "fields": {"email": None}},
            ("PATCH", "/contacts/c_1", {"email": None}),
            422,
            "field 'email' must be a string, got null",
        ),
        (
            {"op": "update", "id": "nope", "fields": {"email": 3}},
            ("PATCH", "/contacts/nope", {"email": 3}),
            404,  # the id is judged before the fields, as for the single call
            "no contact with id 'nope'",
        ),
    ],
)
def test_a_failed_operation_answers_what_its_single_call_answers(
    unique_crm: CrmServer,
    operation: dict[str, Any],
    single: tuple[str, str, dict[str, Any]],
    status: int,
    message: str,
) -> None:
    create(unique_crm, email="ada@example.com")
    create(unique_crm, email="grace@example.com")
    before = unique_crm.contacts()

    [result] = batch(unique_crm, operation)
    method, path, body = single
    alone = call(unique_crm, method, path, json=body)

    assert result["status"] == alone.status_code == status
    assert (
        result["error"] == alone.json() == {"error": result["error"]["error"], "message": message}
    )
    assert unique_crm.contacts() == before


def test_a_create_key_shares_the_key_space_of_the_idempotency_key_header(crm: CrmServer) -> None:
    alone = call(
        crm,
        "POST",
        "/contacts",
        json={"email": "ada@example.com"},
        headers={"Idempotency-Key": "k1"},
    )
    in_batch = batch(
        crm,
        {"op": "create", "idempotency_key": "k1", "fields": {"email": "ada@example.com"}},
        {"op": "create", "idempotency_key": "k2", "fields": {"email": "grace@example.com"}},
    )
    retried_alone = call(
        crm,
        "POST",
        "/contacts",
        json={"email": "grace@example.com"},
        headers={"Idempotency-Key": "k2"},
    )
    resent = batch(
        crm,
        {"op": "create", "idempotency_key": "k2", "fields": {"email": "grace@example.com"}},
        {"op": "create", "idempotency_key": "k1", "fields": {"email": "ada@example.com"}},
    )

    assert alone.status_code == 201
    assert [r["status"] for r in in_batch] == [200, 201]
    assert in_batch[0]["contact"] == alone.json()
    assert retried_alone.status_code == 200
    assert retried_alone.json() == in_batch[1]["contact"]
    assert [(r["status"], r["contact"]["id"]) for r in resent] == [(200, "c_2"), (200, "c_1")]
    assert [c["email"] for c in crm.contacts()] == ["ada@example.com", "grace@example.com"]


def test_a_batch_of_100_operations_is_served_and_of_101_is_413_and_does_nothing(
    crm: CrmServer,
) -> None:
    def creates(n: int) -> list[dict[str, Any]]:
        return [{"op": "create", "fields": {"email": f"u{i}@example.com"}} for i in range(n)]

    too_many = call(crm, "POST", "/contacts/batch", json={"operations": creates(101)})
    assert too_many.status_code == 413
    assert too_many.json() == {
        "error": "too_large",
        "message": "101 operations in one request; at most 100 are allowed",
    }
    assert crm.contacts() == []

    full = call(crm, "POST", "/contacts/batch", json={"operations": creates(100)})
    assert full.status_code == 200
    assert [r["status"] for r in full.json()["results"]] == [201] * 100
    assert len(crm.contacts()) == 100


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"operations": []}, "field 'operations' must hold at least one of the operations"),
        ({}, "missing required field(s): ['operations']"),
        ({"operations": {"op": "create"}}, "field 'operations' must be an array, got object"),
        (
            {"operations": [{"op": "create", "fields": {"email": "a@example.com"}}], "dry": True},
            "unknown field(s): ['dry']",
        ),
        (
            [{"op": "create", "fields": {"email": "a@example.com"}}],
            "body must be a JSON object, got array",
        ),
    ],
)
def test_a_batch_that_is_not_a_non_empty_operations_list_is_422_and_does_nothing(
    crm: CrmServer, body: object, message: str
) -> None:
    response = call(crm, "POST", "/contacts/batch", json=body)

    assert response.status_code == 422
    assert response.json() == {"error": "invalid", "message": message}
    assert crm.contacts() == []


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ({"op": "delete", "id": "c_1"}, "field 'op' must be 'create' or 'update', got 'delete'"),
        (
            {"fields": {"email": "a@example.com"}},
            "field 'op' must be 'create' or 'update', got None",
        ),
        ("create", "an operation must be a JSON object, got string"),
        (
            {"op": "update", "fields": {"name": "x"}},
            "missing key(s) in an update operation: ['id']",
        ),
        ({"op": "create"}, "missing key(s) in a create operation: ['fields']"),
        (
            {"op": "create", "id": "c_1", "fields": {"email": "a@example.com"}},
            "unknown key(s) in a create operation: ['id']",
        ),
        ({"op": "update", "id": 1, "fields": {}}, "key 'id' must be a string, got integer"),
        (
            {"op": "create", "idempotency_key": 7, "fields": {"email": "a@example.com"}},
            "key 'idempotency_key' must be a string, got integer",
        ),
    ],
)
def test_a_malformed_operation_is_that_operations_422_only(
    crm: CrmServer, operation: object, message: str
) -> None:
    results = batch(crm, operation, {"op": "create", "fields": {"email": "ok@example.com"}})

    assert results[0] == {"status": 422, "error": {"error": "invalid", "message": message}}
    assert results[1]["status"] == 201
    assert [c["email"] for c in crm.contacts()] == ["ok@example.com"]


def test_a_batch_counts_as_one_request_for_the_rate_limit(
    clocked_crm: tuple[CrmServer, list[float]],
) -> None:
    crm, _ = clocked_crm
    crm.set_rate_limit(2)
    ops = [{"op": "create", "fields": {"email": f"u{i}@example.com"}} for i in range(50)]

    first = call(crm, "POST", "/contacts/batch", json={"operations": ops[:25]})
    second = call(crm, "POST", "/contacts/batch", json={"operations": ops[25:]})
    third = call(crm, "POST", "/contacts/batch", json={"operations": ops[:1]})
    found = call(crm, "POST", "/contacts/batch/find", json={"emails": ["u0@example.com"]})

    assert (first.status_code, second.status_code) == (200, 200)
    assert (third.status_code, found.status_code) == (429, 429)
    assert third.headers["Retry-After"] == "1"
    assert len(crm.contacts()) == 50
    assert crm.stats()["by_status"] == {"200": 2, "429": 2}


@pytest.mark.parametrize("path", ["/contacts/batch", "/contacts/batch/find"])
def test_an_outage_answers_a_batch_as_a_whole_and_nothing_is_applied(
    crm: CrmServer, path: str
) -> None:
    body = (
        {"operations": [{"op": "create", "fields": {"email": "a@example.com"}}]}
        if path == "/contacts/batch"
        else {"emails": ["a@example.com"]}
    )
    crm.set_outage(503)

    response = call(crm, "POST", path, json=body)

    assert response.status_code == 503
    assert response.json()["error"] == "outage"
    assert crm.contacts() == []


def test_a_batch_cut_applies_the_first_operations_then_answers_503_and_a_resend_is_safe(
    crm: CrmServer,
) -> None:
    ops = [
        {"op": "create", "idempotency_key": f"evt-{n}", "fields": {"email": f"u{n}@example.com"}}
        for n in range(3)
    ]
    switched = call(crm, "POST", "/_admin/batch-cut", json={"after": 2})

    two = [{"op": "create", "fields": {"email": f"s{n}@example.com"}} for n in range(2)]
    short = call(crm, "POST", "/contacts/batch", json={"operations": two})
    cut = call(crm, "POST", "/contacts/batch", json={"operations": ops})
    applied_by_the_cut = [c["email"] for c in crm.contacts()]
    call(crm, "POST", "/_admin/batch-cut", json={"after": None})
    resent = batch(crm, *ops)

    assert switched.json()["batch_cut"] == 2
    assert short.status_code == 200  # not past the cut: served whole
    assert cut.status_code == 503
    assert cut.json() == {
        "error": "unavailable",
        "message": "simulated failure in the middle of a batch: its first 2 of 3 operations "
        "were applied; resend it",
    }
    assert applied_by_the_cut == [
        "s0@example.com",
        "s1@example.com",
        "u0@example.com",
        "u1@example.com",
    ]
    # The creates carry idempotency keys: the resend returns the two and makes the third.
    assert [(r["status"], r["contact"]["id"]) for r in resent] == [
        (200, "c_3"),
        (200, "c_4"),
        (201, "c_5"),
    ]


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_the_batch_path_allows_post_only(crm: CrmServer, method: str) -> None:
    response = call(crm, method, "/contacts/batch", json={})

    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


# --- POST /contacts/batch/find --------------------------------------------------------------


def test_find_by_emails_answers_every_value_as_sent_with_its_matches(crm: CrmServer) -> None:
    ada = crm.seed_contact(email="ada@example.com")
    ada_dup = crm.seed_contact(email="ADA@example.com")
    grace = crm.seed_contact(email="grace@example.com")

    response = call(
        crm,
        "POST",
        "/contacts/batch/find",
        json={"emails": ["Ada@Example.com", "grace@example.com", "nobody@example.com"]},
    )

    assert response.status_code == 200
    assert response.json() == {
        "results": {
            "Ada@Example.com": [ada, ada_dup],
            "grace@example.com": [grace],
            "nobody@example.com": [],
        }
    }


def test_find_by_auth0_user_ids(crm: CrmServer) -> None:
    ada = crm.seed_contact(email="ada@example.com", auth0_user_id="auth0|1")
    crm.seed_contact(email="grace@example.com", auth0_user_id="auth0|2")

    response = call(
        crm, "POST", "/contacts/batch/find", json={"auth0_user_ids": ["auth0|1", "AUTH0|1"]}
    )

    # A user id is matched exactly: only emails ignore case.
    assert response.json() == {"results": {"auth0|1": [ada], "AUTH0|1": []}}
    assert crm.stats()["by_method"]["POST"] == 1  # and nothing was written
    assert len(crm.contacts()) == 2


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"emails": [f"u{i}@example.com" for i in range(101)]},
            413,
            "101 values in one request; at most 100 are allowed",
        ),
        ({"emails": []}, 422, "field 'emails' must hold at least one of the values"),
        ({}, 422, "send exactly one of 'emails' and 'auth0_user_ids'"),
        (
            {"emails": ["a@example.com"], "auth0_user_ids": ["auth0|1"]},
            422,
            "send exactly one of 'emails' and 'auth0_user_ids'",
        ),
        (
            {"emails": ["a@example.com", 3]},
            422,
            "every value of 'emails' must be a string, got integer",
        ),
        ({"emails": "a@example.com"}, 422, "field 'emails' must be an array, got string"),
        ({"email": ["a@example.com"]}, 422, "unknown field(s): ['email']"),
        (["a@example.com"], 422, "body must be a JSON object, got array"),
    ],
)
def test_a_find_outside_the_rules_is_refused(
    crm: CrmServer, body: object, status: int, message: str
) -> None:
    response = call(crm, "POST", "/contacts/batch/find", json=body)

    assert response.status_code == status
    assert response.json() == {
        "error": "too_large" if status == 413 else "invalid",
        "message": message,
    }


def test_a_find_of_100_values_is_served(crm: CrmServer) -> None:
    crm.seed_contact(email="u7@example.com")
    emails = [f"u{i}@example.com" for i in range(100)]

    response = call(crm, "POST", "/contacts/batch/find", json={"emails": emails})

    results = response.json()["results"]
    assert list(results) == emails
    assert [email for email, found in results.items() if found] == ["u7@example.com"]
