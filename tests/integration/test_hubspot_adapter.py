"""The HubSpot adapter against the fake HubSpot on loopback: translation, correlation,
uniqueness, error mapping, rate limits, custom properties."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.errors import (
    ContactExists,
    CredentialsRejected,
    CrmRejected,
    EmailTaken,
    TransientError,
)
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from tests.integration.helpers import ALICE

pytestmark = pytest.mark.integration


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake


def client(fake: FakeHubSpot, **kwargs: Any) -> HubSpotCrm:
    token = kwargs.pop("token", fake.token)
    return HubSpotCrm(fake.base_url, lambda: token, backoff_base=0.01, **kwargs)


def test_a_created_contact_carries_vendor_properties_and_reads_back_generic(
    hubspot: FakeHubSpot,
) -> None:
    created = client(hubspot).create_contact(ALICE, idempotency_key="evt-1")
    [record] = hubspot.contacts()
    assert record["properties"]["email"] == "alice@example.com"
    assert record["properties"]["firstname"] == "Alice"
    assert record["properties"]["lastname"] == "Liddell"
    assert record["properties"]["phone"] == "+15550100"
    assert record["properties"]["auth0_user_id"] == "auth0|alice"
    assert record["properties"]["auth0_status"] == "active"
    assert created == {
        "id": record["id"],
        **{k: v for k, v in ALICE.items() if k != "source_updated_at"},
    }


def test_found_by_owner_with_a_read_and_by_email_whatever_its_case(hubspot: FakeHubSpot) -> None:
    crm = client(hubspot)
    first = crm.create_contact(ALICE, idempotency_key="evt-1")
    crm.create_contact({**ALICE, "email": "bob@example.com", "auth0_user_id": "auth0|bob"}, "e2")
    assert [c["id"] for c in crm.find_contacts(auth0_user_id="auth0|alice")] == [first["id"]]
    assert [c["id"] for c in crm.find_contacts(email="ALICE@Example.com")] == [first["id"]]
    assert crm.find_contacts(email="nobody@example.com") == []
    assert crm.find_contacts(auth0_user_id="auth0|nobody") == []
    # auth0_user_id has unique values: read by idProperty (no search index to lag behind).
    assert hubspot.count("POST", "/crm/v3/objects/contacts/search") == 0
    by_owner = [p for m, p, _ in hubspot.requests if m == "GET" and p.endswith(("alice", "nobody"))]
    assert by_owner == [
        "/crm/v3/objects/contacts/auth0|alice",
        "/crm/v3/objects/contacts/auth0|nobody",
    ]


def test_found_by_owner_with_a_search_where_the_property_is_not_unique() -> None:
    with FakeHubSpot(unique_owner=False) as hubspot:
        crm = client(hubspot)
        first = crm.create_contact(ALICE, idempotency_key="evt-1")
        assert [c["id"] for c in crm.find_contacts(auth0_user_id="auth0|alice")] == [first["id"]]
        assert crm.find_contacts(auth0_user_id="auth0|nobody") == []
        assert hubspot.count("POST", "/crm/v3/objects/contacts/search") == 2


def test_an_email_that_exists_is_a_conflict_on_create_and_on_update(hubspot: FakeHubSpot) -> None:
    crm = client(hubspot)
    crm.create_contact(ALICE, idempotency_key="evt-1")
    with pytest.raises(ContactExists, match="HTTP 409 CONFLICT: Contact already exists"):
        crm.create_contact({**ALICE, "email": "Alice@example.com", "auth0_user_id": "x"}, "e2")
    bob = crm.create_contact({"email": "bob@example.com"}, idempotency_key="evt-3")
    with pytest.raises(EmailTaken):
        crm.update_contact(bob["id"], {"email": "alice@example.com"})
    assert len(hubspot.contacts()) == 2


def test_update_writes_only_what_it_is_given_and_none_clears(hubspot: FakeHubSpot) -> None:
    crm = client(hubspot)
    alice = crm.create_contact(ALICE, idempotency_key="evt-1")
    updated = crm.update_contact(alice["id"], {"given_name": None, "status": "deactivated"})
    assert updated is not None
    assert updated["given_name"] is None
    assert updated["status"] == "deactivated"
    [record] = hubspot.contacts()
    assert record["properties"]["firstname"] == ""
    assert record["properties"]["lastname"] == "Liddell"


def test_missing_and_archived_contacts_are_none(hubspot: FakeHubSpot) -> None:
    crm = client(hubspot)
    assert crm.get_contact("424242") is None
    assert crm.update_contact("424242", {"given_name": "x"}) is None
    alice = crm.create_contact(ALICE, idempotency_key="evt-1")
    assert crm.archive_contact(alice["id"])
    assert crm.get_contact(alice["id"]) is None
    assert crm.find_contacts(auth0_user_id="auth0|alice") == []


def test_a_hint_that_climbs_out_of_its_segment_stays_one_id(hubspot: FakeHubSpot) -> None:
    crm = client(hubspot)
    crm.create_contact(ALICE, idempotency_key="evt-1")
    assert crm.get_contact("../search") is None
    assert crm.update_contact("1001/../1001", {"given_name": "x"}) is None
    assert hubspot.contacts()[0]["properties"]["firstname"] == "Alice"


def test_validation_errors_are_permanent_with_the_category_in_the_reason() -> None:
    with FakeHubSpot(custom_properties=False) as bare, pytest.raises(CrmRejected) as info:
        client(bare).create_contact(ALICE, idempotency_key="evt-1")
    assert info.value.reason == "hubspot_validation_error"
    assert "PROPERTY_DOESNT_EXIST" in info.value.message
    assert "alice@example.com" not in str(info.value)


# The fields HubSpot's "API error responses" page and its SDKs' `Error` type name.
DOCUMENTED_ERROR_FIELDS = {
    "status",
    "message",
    "errors",
    "category",
    "subCategory",
    "correlationId",
    "context",
    "links",
}
# ... and the 429 answer's own two (HubSpot's "API usage guidelines and limits").
RATE_LIMIT_FIELDS = {"errorType", "policyName"}


def test_error_bodies_have_hubspots_documented_shape() -> None:
    """Each error the fake answers is HubSpot's documented body: status "error", a
    message, a category, a UUID correlationId, `errors` entries with a message."""
    with FakeHubSpot(window_calls=2) as fake:
        url = f"{fake.base_url}/crm/v3/objects/contacts"
        auth = {"Authorization": f"Bearer {fake.token}"}
        answers = [
            requests.get(url, headers={"Authorization": "Bearer pat-wrong"}, timeout=5),
            requests.post(url, json={"properties": {"nope": "x"}}, headers=auth, timeout=5),
            requests.get(
                f"{fake.base_url}/crm/v3/properties/contacts/nope", headers=auth, timeout=5
            ),
            requests.get(url, headers=auth, timeout=5),  # the window holds 2 calls: 429
        ]
    assert [a.status_code for a in answers] == [401, 400, 404, 429]
    for answer in answers:
        body = answer.json()
        assert set(body) <= DOCUMENTED_ERROR_FIELDS | RATE_LIMIT_FIELDS, body
        assert body["status"] == "error"
        assert body["message"]
        assert body["category"]
        assert uuid.UUID(body["correlationId"])
        assert all(entry["message"] for entry in body.get("errors", []))
    [detail] = answers[1].json()["errors"]
    assert detail["code"] == "PROPERTY_DOESNT_EXIST"
    assert detail["context"] == {"propertyName": ["nope"]}


def test_a_wrong_token_is_read_again_then_rejected(hubspot: FakeHubSpot) -> None:
    # 401 INVALID_AUTHENTICATION: the token is read again (past the secret's cache) once.
    with pytest.raises(CredentialsRejected) as info:
        client(hubspot, token="pat-wrong").find_contacts(email="a@example.com")
    assert info.value.reason == "crm_credentials_rejected"  # transient: the redrive retries
    assert hubspot.count("GET", "/crm/v3/objects/contacts/") == 2  # a read by email, twice
    assert "pat-wrong" not in str(info.value)


def test_a_5xx_is_retried_then_raised_as_transient(hubspot: FakeHubSpot) -> None:
    crm = client(hubspot, max_attempts=3)
    hubspot.fail_next("PATCH", "/crm/v3/objects/contacts/", 502)
    alice = crm.create_contact(ALICE, idempotency_key="evt-1")
    assert crm.update_contact(alice["id"], {"given_name": "Al"}) is not None
    for _ in range(3):
        hubspot.fail_next("GET", "/crm/v3/objects/contacts/", 503)
    with pytest.raises(TransientError) as info:
        crm.get_contact(alice["id"])
    assert info.value.reason == "crm_503"
    assert "after 3 attempt(s)" in info.value.message


def test_a_create_is_sent_once_when_the_answer_is_lost(hubspot: FakeHubSpot) -> None:
    # HubSpot has no idempotency key: a POST is not repeated by the transport.
    hubspot.fail_next("POST", "/crm/v3/objects/contacts", 503)
    with pytest.raises(TransientError):
        client(hubspot).create_contact(ALICE, idempotency_key="evt-1")
    assert hubspot.count("POST", "/crm/v3/objects/contacts") == 1


def test_keeps_under_the_rolling_window_the_headers_announce() -> None:
    # The adapter starts with HubSpot's default (100 per 10 s); the first answer's
    # X-HubSpot-RateLimit-* headers say 3 per second.
    with FakeHubSpot(window_calls=3, window_ms=1000) as small:
        crm = client(small)
        for n in range(8):
            crm.create_contact({"email": f"u{n}@example.com"}, idempotency_key=f"e{n}")
        assert len(small.contacts()) == 8
        assert small.throttled["TEN_SECONDLY_ROLLING"] == 0
        assert crm.window.max_calls == 3
        assert crm.window.window == 1.0


def test_keeps_under_the_search_limit() -> None:
    with FakeHubSpot(search_per_second=2, unique_owner=False) as fake:
        crm = client(fake, search_per_second=2)
        for n in range(6):
            assert crm.find_contacts(auth0_user_id=f"auth0|{n}") == []
        assert fake.throttled["SECONDLY"] == 0


def test_honours_429s_it_could_not_foresee() -> None:
    # Another process shares the account: this one believes it has 50 searches a second.
    with FakeHubSpot(search_per_second=2, unique_owner=False) as fake:
        crm = client(fake, search_per_second=50)
        for n in range(6):
            assert crm.find_contacts(auth0_user_id=f"auth0|{n}") == []
        assert fake.throttled["SECONDLY"] > 0
        assert crm.retries == fake.throttled["SECONDLY"]


def test_custom_properties_are_created_once() -> None:
    with FakeHubSpot(custom_properties=False) as bare:
        crm = client(bare)
        assert crm.ensure_properties() == {"auth0_user_id": "created", "auth0_status": "created"}
        assert crm.ensure_properties() == {"auth0_user_id": "exists", "auth0_status": "exists"}
        assert bare.count("POST", "/crm/v3/properties/contacts") == 2
        assert bare.properties["auth0_status"]["type"] == "enumeration"
        crm.create_contact(ALICE, idempotency_key="evt-1")  # now accepted
        assert len(bare.contacts()) == 1
