"""The Salesforce adapter against the fake org on loopback: OAuth, SOQL escaping, upsert by
external id, the LastName rule, error codes in reasons, API limits, session refresh."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from auth0_sync.destinations.salesforce import (
    LASTNAME_PLACEHOLDER,
    SalesforceCrm,
    client_credentials,
)
from auth0_sync.errors import (
    AmbiguousMatch,
    ContactExists,
    CredentialsRejected,
    CrmRejected,
    EmailTaken,
    TransientError,
)
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce
from tests.integration.helpers import ALICE

pytestmark = pytest.mark.integration


@pytest.fixture
def org() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as fake:
        yield fake


def client(fake: FakeSalesforce, secret: str | None = None, **kwargs: Any) -> SalesforceCrm:
    text = secret or json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    return SalesforceCrm(
        fake.base_url, client_credentials(lambda: text), backoff_base=0.01, **kwargs
    )


def test_a_created_contact_is_upserted_on_the_external_id(org: FakeSalesforce) -> None:
    created = client(org).create_contact(ALICE, idempotency_key="evt-1")
    [record] = org.contacts()
    assert record == {
        "Id": created["id"],
        "Email": "alice@example.com",
        "FirstName": "Alice",
        "LastName": "Liddell",
        "Phone": "+15550100",
        "Auth0_User_Id__c": "auth0|alice",
        "Auth0_Status__c": "active",
    }
    assert org.requests["PATCH /sobjects/Contact/{x}"] == 1


def test_a_repeated_create_updates_the_contact_it_made(org: FakeSalesforce) -> None:
    crm = client(org)
    first = crm.create_contact(ALICE, idempotency_key="evt-1")
    again = crm.create_contact({**ALICE, "given_name": "Al"}, idempotency_key="evt-1")
    assert again["id"] == first["id"]
    [record] = org.contacts()
    assert record["FirstName"] == "Al"


def test_no_family_name_writes_the_placeholder_and_reads_back_none(org: FakeSalesforce) -> None:
    crm = client(org)
    fields = {k: v for k, v in ALICE.items() if k != "family_name"}
    created = crm.create_contact(fields, idempotency_key="evt-1")
    assert org.contacts()[0]["LastName"] == LASTNAME_PLACEHOLDER
    found = crm.get_contact(created["id"])
    assert found is not None
    assert found["family_name"] is None
    crm.update_contact(created["id"], {"family_name": "Liddell"})
    crm.update_contact(created["id"], {"family_name": None})  # cleared in Auth0
    assert org.contacts()[0]["LastName"] == LASTNAME_PLACEHOLDER


def test_found_by_external_id_and_by_email_whatever_its_case(org: FakeSalesforce) -> None:
    crm = client(org)
    alice = crm.create_contact(ALICE, idempotency_key="evt-1")
    [by_owner] = crm.find_contacts(auth0_user_id="auth0|alice")
    [by_email] = crm.find_contacts(email="ALICE@example.COM")
    assert by_owner == by_email
    assert by_owner["id"] == alice["id"]
    assert by_owner["given_name"] == "Alice"
    assert crm.find_contacts(email="nobody@example.com") == []


@pytest.mark.parametrize(
    "email",
    [
        "o'brien@example.com",
        "x' OR Email != 'y@example.com",
        "back\\slash'@example.com",
        'quote"d@example.com',
    ],
)
def test_an_email_holding_quotes_neither_breaks_nor_widens_the_query(
    org: FakeSalesforce, email: str
) -> None:
    org.seed(LastName="Other", Email="other@example.com")
    org.seed(LastName="Obrien", Email=email)
    crm = client(org)
    found = crm.find_contacts(email=email)
    assert [c["email"] for c in found] == [email]
    assert crm.find_contacts(auth0_user_id=email) == []


def test_an_unescaped_quote_would_widen_the_query_in_the_fake(org: FakeSalesforce) -> None:
    # The fake parses SOQL for real: the test above fails if escaping is removed.
    from auth0_sync_cli.fakes.salesforce import parse_soql

    parsed = parse_soql("SELECT Id FROM Contact WHERE Email = 'x' OR Email != 'y'")
    assert len(parsed.groups) == 2


def test_an_email_that_exists_is_a_conflict_on_create_and_on_update(org: FakeSalesforce) -> None:
    crm = client(org)
    crm.create_contact(ALICE, idempotency_key="evt-1")
    with pytest.raises(ContactExists, match="DUPLICATES_DETECTED"):
        crm.create_contact({**ALICE, "email": "ALICE@example.com", "auth0_user_id": "b"}, "e2")
    bob = crm.create_contact({"email": "bob@example.com", "auth0_user_id": "auth0|bob"}, "e3")
    with pytest.raises(EmailTaken):
        crm.update_contact(bob["id"], {"email": "alice@example.com"})
    assert len(org.contacts()) == 2


def test_several_contacts_on_one_external_id_are_ambiguous() -> None:
    with FakeSalesforce(unique_external_id=False) as org:
        org.seed(LastName="A", Auth0_User_Id__c="auth0|twin")
        org.seed(LastName="B", Auth0_User_Id__c="auth0|twin")
        with pytest.raises(AmbiguousMatch):
            client(org).create_contact({**ALICE, "auth0_user_id": "auth0|twin"}, "evt-1")


def test_missing_deleted_and_malformed_ids_are_none(org: FakeSalesforce) -> None:
    crm = client(org)
    alice = crm.create_contact(ALICE, idempotency_key="evt-1")
    org.delete(alice["id"])
    assert crm.get_contact(alice["id"]) is None
    assert crm.update_contact(alice["id"], {"given_name": "x"}) is None
    assert crm.get_contact("003000000000000AAA") is None
    calls = sum(org.requests.values())
    assert crm.get_contact("../query") is None
    assert crm.update_contact("003fk/../x", {"given_name": "x"}) is None
    assert sum(org.requests.values()) == calls  # never sent


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"email": "not-an-email"}, "salesforce_invalid_email_address"),
        ({"given_name": "x" * 41}, "salesforce_string_too_long"),
        ({"status": "paused"}, "salesforce_invalid_or_null_for_restricted_picklist"),
    ],
)
def test_vendor_errors_are_permanent_with_the_code_in_the_reason(
    org: FakeSalesforce, fields: dict[str, Any], reason: str
) -> None:
    crm = client(org)
    alice = crm.create_contact(ALICE, idempotency_key="evt-1")
    with pytest.raises(CrmRejected) as info:
        crm.update_contact(alice["id"], fields)
    assert info.value.reason == reason
    assert "not-an-email" not in str(info.value)
    assert "paused" not in str(info.value)


def test_a_row_lock_is_retried_and_a_persistent_one_is_transient(org: FakeSalesforce) -> None:
    crm = client(org, max_attempts=3)
    alice = crm.create_contact(ALICE, idempotency_key="evt-1")
    org.fail_next("PATCH", "/sobjects/Contact/", 400, "UNABLE_TO_LOCK_ROW")
    assert crm.update_contact(alice["id"], {"given_name": "Al"}) is not None
    assert org.contacts()[0]["FirstName"] == "Al"
    for _ in range(3):
        org.fail_next("PATCH", "/sobjects/Contact/", 400, "UNABLE_TO_LOCK_ROW")
    with pytest.raises(TransientError) as info:
        crm.update_contact(alice["id"], {"given_name": "Bo"})
    assert info.value.reason == "salesforce_unable_to_lock_row"


def test_the_daily_limit_is_transient_with_its_code() -> None:
    with FakeSalesforce(daily_limit=2) as org:
        crm = client(org, reserve=0)
        crm.find_contacts(email="a@example.com")
        crm.find_contacts(email="b@example.com")
        with pytest.raises(TransientError) as info:
            crm.find_contacts(email="c@example.com")
    assert info.value.reason == "salesforce_request_limit_exceeded"
    assert "REQUEST_LIMIT_EXCEEDED" in info.value.message


def test_the_last_share_of_the_daily_calls_is_left_to_other_integrations() -> None:
    with FakeSalesforce(daily_limit=20) as org:
        org.api_used = 17  # other integrations used most of today's calls
        crm = client(org, reserve=0.1)
        crm.find_contacts(email="a@example.com")  # 18 of 20: the header says so
        with pytest.raises(TransientError) as info:
            crm.find_contacts(email="b@example.com")
        assert info.value.reason == "salesforce_request_limit_exceeded"
        assert crm.api_usage == (18, 20)
        assert org.api_used == 18  # the refused call was never sent


def test_a_refusal_to_spend_the_last_calls_is_checked_again_a_minute_later() -> None:
    # The allowance is a rolling 24 hours: calls free up, and a long-lived adapter (a warm
    # Lambda container) must find out, with one call, instead of refusing forever.
    now = [1000.0]
    with FakeSalesforce(daily_limit=20) as org:
        org.api_used = 17
        crm = client(org, reserve=0.1, clock=lambda: now[0])
        crm.find_contacts(email="a@example.com")  # 18 of 20
        now[0] += 59
        with pytest.raises(TransientError):
            crm.find_contacts(email="b@example.com")
        assert org.api_used == 18  # still refused without a call
        org.api_used = 4  # the calls of yesterday's same hour have left the window
        now[0] += 1
        assert crm.find_contacts(email="c@example.com") == []
        assert crm.api_usage == (5, 20)
        assert crm.find_contacts(email="d@example.com") == []  # and on it goes
        assert org.api_used == 6


def test_an_expired_session_is_refreshed_once(org: FakeSalesforce) -> None:
    crm = client(org)
    crm.find_contacts(email="a@example.com")
    crm.find_contacts(email="b@example.com")
    assert org.token_requests == 1  # cached
    org.expire_sessions()
    assert crm.find_contacts(email="c@example.com") == []
    assert org.token_requests == 2


def test_a_session_refused_twice_is_a_rejected_credential(org: FakeSalesforce) -> None:
    crm = client(org)
    crm.find_contacts(email="a@example.com")
    org.fail_next("GET", "/query", 401, "INVALID_SESSION_ID")
    org.fail_next("GET", "/query", 401, "INVALID_SESSION_ID")
    with pytest.raises(CredentialsRejected) as info:
        crm.find_contacts(email="b@example.com")
    assert info.value.reason == "crm_credentials_rejected"  # transient: the redrive retries
    assert org.token_requests == 2


def test_wrong_client_credentials_are_read_again_then_rejected_never_echoed(
    org: FakeSalesforce,
) -> None:
    secret = json.dumps({"client_id": CLIENT_ID, "client_secret": "s3cr3t-wrong"})
    with pytest.raises(CredentialsRejected) as info:
        client(org, secret=secret).find_contacts(email="a@example.com")
    assert info.value.reason == "crm_credentials_rejected"  # transient: the redrive retries
    assert org.token_requests == 2  # the second with the secret read again
    assert "s3cr3t-wrong" not in str(info.value)


def test_a_secret_of_the_wrong_shape_says_which_shape(org: FakeSalesforce) -> None:
    with pytest.raises(TransientError, match=r'\{"client_id": "\.\.\.", "client_secret"'):
        client(org, secret="just-a-token").find_contacts(email="a@example.com")


def test_a_contact_is_read_by_id_from_the_field_restricted_record(org: FakeSalesforce) -> None:
    """Salesforce answers `GET sobjects/Contact/{Id}?fields=...` with the requested fields
    only, no `Id` unless asked for ("Get Field Values from a Standard Object Record"): the
    adapter keeps the id it asked for."""
    record_id = org.seed(
        Email="alice@example.com",
        FirstName="Alice",
        LastName="Liddell",
        Auth0_User_Id__c="auth0|alice",
        Auth0_Status__c="active",
    )
    assert client(org).get_contact(record_id) == {
        "id": record_id,
        "email": "alice@example.com",
        "given_name": "Alice",
        "family_name": "Liddell",
        "phone": None,
        "auth0_user_id": "auth0|alice",
        "status": "active",
    }


def _session(org: FakeSalesforce) -> dict[str, str]:
    token = requests.post(
        f"{org.base_url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=5,
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_the_fake_answers_the_requested_fields_only_as_documented(org: FakeSalesforce) -> None:
    record_id = org.seed(Email="alice@example.com", LastName="Liddell")
    url = f"{org.base_url}/services/data/v60.0/sobjects/Contact/{record_id}"
    auth = _session(org)
    answer = requests.get(url, params={"fields": "Email,LastName"}, headers=auth, timeout=5)
    assert answer.status_code == 200
    assert {k: v for k, v in answer.json().items() if k != "attributes"} == {
        "Email": "alice@example.com",
        "LastName": "Liddell",
    }
    unknown = requests.get(url, params={"fields": "Email,Nope__c"}, headers=auth, timeout=5)
    assert unknown.status_code == 400
    assert unknown.json()[0]["errorCode"] == "INVALID_FIELD"


def test_error_bodies_have_salesforces_documented_shape(org: FakeSalesforce) -> None:
    """ "Status Codes and Error Responses": an array of `{message, errorCode}`, with the
    field(s) when the error is about a field; a 401 holds the message and errorCode only.
    The adapter reads both (the code in the reason, the fields in the message)."""
    record_id = org.seed(Email="alice@example.com", LastName="Liddell")
    url = f"{org.base_url}/services/data/v60.0/sobjects/Contact/{record_id}"
    expired = requests.patch(url, json={}, headers={"Authorization": "Bearer old"}, timeout=5)
    assert expired.status_code == 401
    assert expired.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    too_long = requests.patch(url, json={"FirstName": "x" * 41}, headers=_session(org), timeout=5)
    assert too_long.status_code == 400
    [error] = too_long.json()
    assert set(error) == {"message", "errorCode", "fields"}
    assert (error["errorCode"], error["fields"]) == ("STRING_TOO_LONG", ["FirstName"])
    with pytest.raises(CrmRejected) as info:
        client(org).update_contact(record_id, {"given_name": "x" * 41})
    assert info.value.reason == "salesforce_string_too_long"
    assert "(fields ['FirstName'])" in str(info.value)
