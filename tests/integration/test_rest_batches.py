"""The generic REST adapter's batch calls (`RestBatches`) against the reference CRM's
contract 1.2 batch endpoints, over real HTTP."""

from __future__ import annotations

import pytest

from auth0_sync.destinations import Batching, BatchWrite
from auth0_sync.destinations.batches import batches_of
from auth0_sync.destinations.rest import RestCrmClient
from auth0_sync.errors import ContactExists, CrmRejected, EmailTaken, TransientError
from auth0_sync_cli.crm_server import CrmServer
from tests.integration.crm_calls import create

pytestmark = pytest.mark.integration


def batches(crm: CrmServer, **kwargs: float) -> tuple[RestCrmClient, Batching]:
    client = RestCrmClient(crm.base_url, lambda: crm.token, backoff_base=0.01, **kwargs)  # type: ignore[arg-type]
    found = batches_of(client)
    assert found is not None
    return client, found


def test_a_batch_write_maps_each_record_to_its_single_calls_outcome(unique_crm: CrmServer) -> None:
    ada = create(unique_crm, email="ada@example.com")  # c_1
    create(unique_crm, email="grace@example.com")  # c_2
    client, crm = batches(unique_crm)

    results = crm.write_batch(
        [
            BatchWrite({"email": "alan@example.com", "auth0_user_id": "auth0|alan"}, None, "k1"),
            BatchWrite({"email": "ADA@example.com"}, None, "k2"),
            BatchWrite({"name": "Ada L."}, ada["id"]),
            BatchWrite({"email": "grace@example.com"}, ada["id"]),
            BatchWrite({"name": "Nobody"}, "c_99"),
            BatchWrite({"colour": "red"}, ada["id"]),
        ]
    )

    assert client.calls_made() == 1
    created = results[0]
    assert isinstance(created, dict)
    assert (created["id"], created["email"], created["auth0_user_id"]) == (
        "c_3",
        "alan@example.com",
        "auth0|alan",
    )
    assert isinstance(results[1], ContactExists)
    assert isinstance(results[2], dict)
    assert results[2]["name"] == "Ada L."
    assert isinstance(results[3], EmailTaken)
    assert results[4] is None
    assert isinstance(results[5], CrmRejected)
    assert results[5].status == 422
    assert [(c["id"], c["email"], c["name"]) for c in unique_crm.contacts()] == [
        ("c_1", "ada@example.com", "Ada L."),
        ("c_2", "grace@example.com", None),
        ("c_3", "alan@example.com", None),
    ]


def test_a_batch_create_shares_the_idempotency_key_of_the_single_create(crm: CrmServer) -> None:
    client, batch = batches(crm)
    first = client.create_contact({"email": "ada@example.com"}, idempotency_key="evt_1")

    again = batch.write_batch([BatchWrite({"email": "ada@example.com"}, None, "evt_1")])

    assert again == [first] or (isinstance(again[0], dict) and again[0]["id"] == first["id"])
    assert len(crm.contacts()) == 1


def test_a_batch_cut_by_a_5xx_is_resent_and_creates_nothing_twice(crm: CrmServer) -> None:
    crm.set_batch_cut(2)  # batches of more than 2 apply their first 2, then answer 503
    _, batch = batches(crm, max_attempts=2)
    writes = [BatchWrite({"email": f"u{n}@example.com"}, None, f"evt_{n}") for n in range(5)]
    with pytest.raises(TransientError, match="503"):
        batch.write_batch(writes)
    assert len(crm.contacts()) == 2
    crm.set_batch_cut(None)

    results = batch.write_batch(writes)

    assert [r["email"] for r in results if isinstance(r, dict)] == [
        f"u{n}@example.com" for n in range(5)
    ]
    assert sorted(c["email"] for c in crm.contacts()) == [f"u{n}@example.com" for n in range(5)]


def test_a_batch_of_more_than_the_limit_goes_in_requests_of_100(crm: CrmServer) -> None:
    client, batch = batches(crm)
    writes = [BatchWrite({"email": f"u{n}@example.com"}, None, f"e{n}") for n in range(150)]

    results = batch.write_batch(writes)

    assert len(results) == 150
    assert all(isinstance(r, dict) for r in results)
    assert client.calls_made() == 2
    assert crm.stats()["total"] == 2


def test_find_batch_answers_every_value_as_the_single_find_would(crm: CrmServer) -> None:
    create(crm, email="ada@example.com", auth0_user_id="auth0|ada")
    create(crm, email="grace@example.com")
    client, batch = batches(crm)

    by_email = batch.find_batch("email", ["ADA@example.com", "nobody@example.com"])
    by_owner = batch.find_batch("auth0_user_id", ["auth0|ada", "auth0|none"])

    assert {k: [c["id"] for c in v] for k, v in by_email.items()} == {
        "ADA@example.com": ["c_1"],
        "nobody@example.com": [],
    }
    assert {k: [c["id"] for c in v] for k, v in by_owner.items()} == {
        "auth0|ada": ["c_1"],
        "auth0|none": [],
    }
    assert client.calls_made() == 2


def test_a_rate_limited_batch_is_retried_as_one_request_then_raised(crm: CrmServer) -> None:
    crm.set_outage(429)
    _, batch = batches(crm, max_attempts=2)

    with pytest.raises(TransientError, match="HTTP 429"):
        batch.write_batch([BatchWrite({"email": "a@example.com"}, None, "k")])
    assert crm.stats()["total"] == 2  # resent: its creates carry their keys
    assert crm.contacts() == []
