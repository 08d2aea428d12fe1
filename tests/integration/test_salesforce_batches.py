"""The Salesforce adapter's batch calls (`SalesforceBatches`) against the fake org's sObject
Collections of Contact (create, update, upsert on the external id), over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from auth0_sync.destinations import BatchWrite
from auth0_sync.destinations.batches import batches_of
from auth0_sync.destinations.salesforce import SalesforceCrm, client_credentials
from auth0_sync.destinations.salesforce_batch import SalesforceBatches
from auth0_sync.errors import ContactChanged, ContactExists, CrmRejected, EmailTaken
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce

pytestmark = pytest.mark.integration

SECRET = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})


@pytest.fixture
def org() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as fake:
        yield fake


def test_a_found_record_carries_the_version_its_query_read(org: FakeSalesforce) -> None:
    now = [1_767_225_600.0]
    org.clock = lambda: now[0]
    ada = org.seed(Email="ada@example.com", LastName="L")
    batch = batches(org)

    batch.find_batch("email", ["ada@example.com"])
    now[0] += 5
    org.edit(ada, FirstName="Changed by a person")  # seconds after the read

    version = batch.crm.version_seen(ada)
    assert version is not None
    with pytest.raises(ContactChanged):
        batch.crm.update_guarded(ada, {"given_name": "Ada"}, owner=None, version=version)


def batches(fake: FakeSalesforce) -> SalesforceBatches:
    crm = SalesforceCrm(fake.base_url, client_credentials(lambda: SECRET), backoff_base=0.01)
    found = batches_of(crm)
    assert isinstance(found, SalesforceBatches)
    return found


def new(n: int, **more: str) -> BatchWrite:
    fields = {
        "email": f"u{n}@example.com",
        "family_name": f"User{n}",
        "auth0_user_id": f"auth0|u{n}",
        "status": "active",
        **more,
    }
    return BatchWrite(fields, None, f"evt_{n}")


def collection_calls(fake: FakeSalesforce) -> dict[str, int]:
    return {k: v for k, v in fake.requests.items() if "composite" in k or "query" in k}


def test_creates_are_one_upsert_collection_and_a_resend_makes_nothing_twice(
    org: FakeSalesforce,
) -> None:
    batch = batches(org)

    first = batch.write_batch([new(n) for n in range(3)])
    again = batch.write_batch([new(n) for n in range(3)])

    assert collection_calls(org) == {"PATCH /composite/sobjects/Contact/{x}": 2}
    assert [r["id"] for r in again if isinstance(r, dict)] == [
        r["id"] for r in first if isinstance(r, dict)
    ]
    assert sorted(r["Auth0_User_Id__c"] for r in org.contacts()) == [
        "auth0|u0",
        "auth0|u1",
        "auth0|u2",
    ]


def test_each_record_ends_as_its_single_call_would_and_fails_alone(org: FakeSalesforce) -> None:
    taken = org.seed(Email="u1@example.com", LastName="Taken")
    other = org.seed(Email="other@example.com", LastName="Other")
    gone = org.seed(Email="gone@example.com", LastName="Gone")
    org.delete(gone)
    batch = batches(org)

    results = batch.write_batch(
        [
            new(0),
            new(1),  # the duplicate rule on Email
            new(2, status="frozen"),  # not in the restricted picklist
            BatchWrite({"given_name": "Ada"}, other),
            BatchWrite({"email": "u0@example.com"}, taken),
            BatchWrite({"given_name": "Nobody"}, gone),
            BatchWrite({"given_name": "Nobody"}, "not-an-id"),
        ]
    )

    assert isinstance(results[0], dict)
    assert isinstance(results[1], ContactExists)
    assert isinstance(results[2], CrmRejected)
    assert results[2].reason == "salesforce_invalid_or_null_for_restricted_picklist"
    assert isinstance(results[3], dict)
    assert isinstance(results[4], EmailTaken)
    assert results[5] is None
    assert results[6] is None
    assert sorted(str(r["Email"]) for r in org.contacts()) == [
        "other@example.com",
        "u0@example.com",
        "u1@example.com",
    ]
    assert collection_calls(org) == {
        "PATCH /composite/sobjects/Contact/{x}": 1,
        "PATCH /composite/sobjects": 1,
    }


def test_creates_without_an_owner_go_through_the_create_collection(org: FakeSalesforce) -> None:
    batch = batches(org)

    results = batch.write_batch(
        [BatchWrite({"email": "a@example.com"}), BatchWrite({"email": "b@"})]
    )

    assert isinstance(results[0], dict)
    assert isinstance(results[1], CrmRejected)
    assert results[1].reason == "salesforce_invalid_email_address"
    assert collection_calls(org) == {"POST /composite/sobjects": 1}
    [record] = org.contacts()
    assert record["LastName"] == "(unknown)"


def test_find_batch_is_one_query_per_100_values(org: FakeSalesforce) -> None:
    ada = org.seed(Email="ada@example.com", LastName="L", Auth0_User_Id__c="auth0|ada")
    batch = batches(org)

    by_email = batch.find_batch("email", ["ADA@example.com", "o'brien@example.com"])
    by_owner = batch.find_batch(
        "auth0_user_id", ["auth0|ada", *(f"auth0|x{n}" for n in range(150))]
    )

    assert {k: [c["id"] for c in v] for k, v in by_email.items()} == {
        "ADA@example.com": [ada],
        "o'brien@example.com": [],
    }
    assert [c["id"] for c in by_owner["auth0|ada"]] == [ada]
    assert by_owner["auth0|x7"] == []
    assert collection_calls(org) == {"GET /query": 3}


def test_a_lookup_on_the_indexed_fields_answers_what_a_scan_answers(org: FakeSalesforce) -> None:
    # The fake looks equalities on Email and the external id up by index (as Salesforce):
    # the same records, in the same order, whatever the case; anything else is scanned.
    ada = org.seed(Email="Ada@Example.com", LastName="L")
    bob = org.seed(Email="bob@example.com", LastName="L", Auth0_User_Id__c="auth0|Bob")
    carl = org.seed(Email="carl@example.com", LastName="M")
    nobody = org.seed(LastName="No email")
    crm = SalesforceCrm(org.base_url, client_credentials(lambda: SECRET))

    def ids(where: str) -> list[str]:
        query = {"q": f"SELECT Id FROM Contact WHERE {where}"}  # noqa: S608 (the fake, by hand)
        answer = crm._call("GET", "/services/data/v60.0/query", params=query).json()
        return [r["Id"] for r in answer["records"]]

    by_index = "Auth0_User_Id__c = 'auth0|bob' OR Email = 'x@y.z' OR Email = 'ADA@example.com'"
    assert ids(by_index) == [ada, bob]
    assert ids("Email = 'ada@example.com' AND LastName = 'M'") == []
    assert ids("Email = 'carl@example.com' OR LastName = 'L'") == [ada, bob, carl]
    everyone = "Email != 'ada@example.com' OR Email = 'ada@example.com'"
    assert ids(everyone) == [ada, bob, carl, nobody]

    org.edit(ada, Email="ada.new@example.com")  # the index still lists ada under the old one
    org.delete(carl)
    assert ids("Email = 'ada@example.com' OR Email = 'carl@example.com'") == []
    assert ids("Email = 'ADA.new@example.com'") == [ada]
    # The old email is free again: no duplicate rule on a new contact holding it.
    [made] = batches(org).write_batch([BatchWrite({"email": "ada@example.com"}, None, "k1")])
    assert isinstance(made, dict)


def test_more_than_200_go_in_collections_of_200(org: FakeSalesforce) -> None:
    batch = batches(org)

    results = batch.write_batch([new(n) for n in range(250)])

    assert all(isinstance(r, dict) for r in results)
    assert collection_calls(org) == {"PATCH /composite/sobjects/Contact/{x}": 2}
    assert len(org.contacts()) == 250


def test_the_fake_refuses_more_than_200_records(org: FakeSalesforce) -> None:
    crm = SalesforceCrm(org.base_url, client_credentials(lambda: SECRET))
    records = [{"attributes": {"type": "Contact"}, "LastName": "x"}] * 201
    with pytest.raises(CrmRejected, match="EXCEEDED_ID_LIMIT"):
        crm._call("POST", "/services/data/v60.0/composite/sobjects", json={"records": records})


def test_guarded_writes_go_25_to_a_composite_request_each_under_its_own_precondition(
    org: FakeSalesforce,
) -> None:
    now = [1_767_225_600.0]
    org.clock = lambda: now[0]
    ids = [org.seed(Email=f"u{n}@example.com", LastName="L") for n in range(27)]
    org.seed(Email="taken@example.com", LastName="T")
    batch = batches(org)
    batch.find_batch("email", [f"u{n}@example.com" for n in range(27)])
    read = {i: batch.crm.version_seen(i) for i in ids}
    now[0] += 5
    org.edit(ids[1], FirstName="Changed by a person")  # after our read: its write is refused
    org.delete(ids[2])
    used = org.api_used
    writes = [BatchWrite({"family_name": f"New{n}"}, i, version=read[i]) for n, i in enumerate(ids)]
    writes[3] = BatchWrite({"email": "taken@example.com"}, ids[3], version=read[ids[3]])

    results = batch.write_guarded_batch(writes)

    assert org.api_used - used == 2  # 27 writes: one Composite request of 25, one of 2
    assert org.requests["POST /composite"] == 2
    assert org.requests["PATCH /sobjects/Contact/{x}"] == 0  # no single call
    assert isinstance(results[1], ContactChanged)
    assert results[2] is None  # gone
    assert isinstance(results[3], EmailTaken)  # that record's failure only
    held = {r["Id"]: r for r in org.contacts()}
    assert held[ids[1]]["LastName"] == "L"  # the refused write changed nothing
    for n in (0, *range(4, 27)):
        assert results[n] == {"family_name": f"New{n}", "id": ids[n]}
        assert held[ids[n]]["LastName"] == f"New{n}"
