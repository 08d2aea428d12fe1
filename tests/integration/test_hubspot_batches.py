"""The HubSpot adapter's batch calls (`HubSpotBatches`) against the fake HubSpot's CRM v3
batch endpoints (read, create, update, upsert), over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auth0_sync.destinations import BatchWrite
from auth0_sync.destinations.batches import batches_of
from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.destinations.hubspot_batch import HubSpotBatches
from auth0_sync.errors import ContactExists, CrmRejected, EmailTaken
from auth0_sync_cli.fakes.hubspot import FakeHubSpot

pytestmark = pytest.mark.integration


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake


def batches(fake: FakeHubSpot) -> tuple[HubSpotCrm, HubSpotBatches]:
    crm = HubSpotCrm(fake.base_url, lambda: fake.token, backoff_base=0.01)
    found = batches_of(crm)
    assert isinstance(found, HubSpotBatches)
    return crm, found


def new(n: int) -> BatchWrite:
    fields = {"email": f"u{n}@example.com", "auth0_user_id": f"auth0|u{n}", "status": "active"}
    return BatchWrite(fields, None, f"evt_{n}")


def batch_requests(fake: FakeHubSpot) -> list[str]:
    return [p for m, p, _ in fake.requests if m == "POST" and "/batch/" in p]


def test_creates_go_as_one_upsert_by_owner_and_a_resend_makes_nothing_twice(
    hubspot: FakeHubSpot,
) -> None:
    crm, batch = batches(hubspot)
    crm.owner_unique  # noqa: B018 (read once, before counting)
    hubspot.requests.clear()

    first = batch.write_batch([new(n) for n in range(3)])
    again = batch.write_batch([new(n) for n in range(3)])

    assert batch_requests(hubspot) == ["/crm/v3/objects/contacts/batch/upsert"] * 2
    assert [c["email"] for c in first if isinstance(c, dict)] == [
        "u0@example.com",
        "u1@example.com",
        "u2@example.com",
    ]
    assert again == first
    records = hubspot.contacts()
    assert sorted(r["properties"]["auth0_user_id"] for r in records) == [
        "auth0|u0",
        "auth0|u1",
        "auth0|u2",
    ]


def test_a_taken_email_fails_its_record_only_though_hubspot_refuses_the_whole_batch(
    hubspot: FakeHubSpot,
) -> None:
    taken = hubspot.seed(email="u2@example.com")
    other = hubspot.seed(email="other@example.com")
    _, batch = batches(hubspot)

    results = batch.write_batch(
        [
            *(new(n) for n in range(4)),
            BatchWrite({"given_name": "Ada"}, other),
            BatchWrite({"email": "u0@example.com"}, taken),
            BatchWrite({"given_name": "Nobody"}, "999999"),
            BatchWrite({"phone": "+1"}, other),
        ]
    )

    assert [type(r).__name__ for r in results] == [
        "dict",
        "dict",
        "ContactExists",
        "dict",
        "dict",
        "EmailTaken",
        "NoneType",
        "dict",
    ]
    assert isinstance(results[2], ContactExists)
    assert isinstance(results[5], EmailTaken)
    emails = sorted(r["properties"]["email"] for r in hubspot.contacts())
    assert emails == [
        "other@example.com",
        "u0@example.com",
        "u1@example.com",
        "u2@example.com",
        "u3@example.com",
    ]
    [edited] = [r for r in hubspot.contacts() if r["id"] == other]
    assert (edited["properties"]["firstname"], edited["properties"]["phone"]) == ("Ada", "+1")


def test_an_invalid_property_is_that_records_rejection(hubspot: FakeHubSpot) -> None:
    _, batch = batches(hubspot)
    bad = BatchWrite({"email": "bad@example.com", "status": "frozen", "auth0_user_id": "a|b"})

    results = batch.write_batch([new(0), bad, new(1)])

    assert isinstance(results[1], CrmRejected)
    assert results[1].status == 400
    assert isinstance(results[0], dict)
    assert isinstance(results[2], dict)


def test_a_write_addressed_by_owner_misses_a_contact_given_to_someone_else(
    hubspot: FakeHubSpot,
) -> None:
    mine = hubspot.seed(email="ada@example.com", auth0_user_id="auth0|ada")
    given = hubspot.seed(email="bob@example.com", auth0_user_id="auth0|someone-else")
    _, batch = batches(hubspot)

    results = batch.write_batch(
        [
            BatchWrite({"given_name": "Ada"}, mine, owner="auth0|ada"),
            BatchWrite({"given_name": "Bob"}, given, owner="auth0|bob"),
        ]
    )

    assert isinstance(results[0], dict)
    assert results[0]["given_name"] == "Ada"
    assert results[1] is None
    names = {r["id"]: r["properties"].get("firstname") for r in hubspot.contacts()}
    assert names == {mine: "Ada", given: None}


def test_creates_without_a_unique_owner_go_through_batch_create() -> None:
    with FakeHubSpot(unique_owner=False) as hubspot:
        _, batch = batches(hubspot)
        hubspot.seed(email="u1@example.com")

        results = batch.write_batch([new(0), new(1), new(2)])

        assert [type(r).__name__ for r in results] == ["dict", "ContactExists", "dict"]
        assert "/crm/v3/objects/contacts/batch/create" in batch_requests(hubspot)
        assert len(hubspot.contacts()) == 3


def test_find_batch_reads_by_email_and_by_owner_in_one_request_each(hubspot: FakeHubSpot) -> None:
    ada = hubspot.seed(email="ada@example.com", auth0_user_id="auth0|ada")
    crm, batch = batches(hubspot)
    crm.owner_unique  # noqa: B018
    hubspot.requests.clear()

    by_email = batch.find_batch("email", ["ADA@example.com", "nobody@example.com"])
    by_owner = batch.find_batch("auth0_user_id", ["auth0|ada", "auth0|none"])

    assert {k: [c["id"] for c in v] for k, v in by_email.items()} == {
        "ADA@example.com": [ada],
        "nobody@example.com": [],
    }
    assert {k: [c["auth0_user_id"] for c in v] for k, v in by_owner.items()} == {
        "auth0|ada": ["auth0|ada"],
        "auth0|none": [],
    }
    assert batch_requests(hubspot) == ["/crm/v3/objects/contacts/batch/read"] * 2


def test_more_than_100_go_in_requests_of_100(hubspot: FakeHubSpot) -> None:
    crm, batch = batches(hubspot)
    crm.owner_unique  # noqa: B018
    hubspot.requests.clear()

    results = batch.write_batch([new(n) for n in range(150)])

    assert all(isinstance(r, dict) for r in results)
    assert len(batch_requests(hubspot)) == 2
    assert len(hubspot.contacts()) == 150


def test_the_fake_refuses_more_than_100_inputs(hubspot: FakeHubSpot) -> None:
    crm = HubSpotCrm(hubspot.base_url, lambda: hubspot.token)
    with pytest.raises(CrmRejected, match="400"):
        crm._send(
            "POST", "/crm/v3/objects/contacts/batch/read", json={"inputs": [{"id": "1"}] * 101}
        )


def test_the_fakes_lookups_follow_a_changed_email_and_owner(hubspot: FakeHubSpot) -> None:
    """The fake finds contacts by email and unique property through an index: a value
    changed since is found under its new value only, and the old one is free again."""
    crm, batch = batches(hubspot)
    (made,) = batch.write_batch([new(1)])
    assert isinstance(made, dict)
    crm.update_contact(made["id"], {"email": "renamed@example.com", "auth0_user_id": "auth0|x"})

    assert batch.find_batch("email", ["u1@example.com", "RENAMED@example.com"]) == {
        "u1@example.com": [],
        "RENAMED@example.com": [crm.get_contact(made["id"])],
    }
    assert crm.find_contacts(auth0_user_id="auth0|u1") == []
    assert [c["id"] for c in crm.find_contacts(auth0_user_id="auth0|x")] == [made["id"]]
    (again,) = batch.write_batch([new(1)])  # the old email and owner are taken by no one
    assert isinstance(again, dict)
    assert again["id"] != made["id"]
