"""The two-sided reconciliation against the reference CRM over HTTP: the CRM a perfect sync
would leave (written from the truth alone) is in step; each fault planted in it afterwards
is found, and named for what it is."""

from __future__ import annotations

from typing import Any

import pytest

from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.sample import ALL_CASES, SampleStream, generate
from auth0_sync_cli.truth import ACTIVE, DEACTIVATED, list_contacts, reconcile
from tests.cli_support import hand
from tests.ideal_crm import ideal_writes

pytestmark = pytest.mark.integration


def ideal_crm(crm: CrmServer, stream: SampleStream) -> dict[str, str]:
    """Seed the contacts from before and write what the truth asks for, over HTTP; the
    contact id of each user that has one."""
    stream.seed_preexisting(lambda fields: hand(crm, "POST", "/contacts", fields))
    changes, new = ideal_writes(stream.truth)
    for contact_id, fields in changes.items():
        hand(crm, "PATCH", f"/contacts/{contact_id}", fields)
    for fields in new:
        hand(crm, "POST", "/contacts", fields)
    return {c["auth0_user_id"]: c["id"] for c in crm.contacts() if c.get("auth0_user_id")}


def listed(crm: CrmServer) -> list[dict[str, Any]]:
    return list_contacts(crm.base_url, crm.token, page_size=7)  # several pages


def test_the_listing_reads_every_contact_once(crm: CrmServer) -> None:
    for n in range(23):
        crm.seed_contact(email=f"user{n}@example.com")

    contacts = listed(crm)

    assert sorted(c["id"] for c in contacts) == sorted(c["id"] for c in crm.contacts())
    assert len(contacts) == 23


def test_reconciliation_catches_a_wrong_field_a_stale_field_and_a_deleted_users_active_contact(
    crm: CrmServer,
) -> None:
    stream = generate(30, seed=5, cases=ALL_CASES)
    contact_of = ideal_crm(crm, stream)
    assert reconcile(stream.truth, listed(crm)) == []

    expected = stream.truth.users
    live = [u for u, e in expected.items() if e.status == ACTIVE and u in contact_of]
    renamed = next(
        u
        for u in live
        if any(
            c.shown.get("name") not in (None, expected[u].fields["name"])
            for c in stream.people[u].changes
        )
    )
    older_name = next(
        c.shown["name"]
        for c in stream.people[renamed].changes
        if c.shown.get("name") not in (None, expected[renamed].fields["name"])
    )
    other = next(u for u in live if u != renamed and expected[u].fields["phone"] is not None)
    deleted = next(
        u
        for u, e in expected.items()
        if e.status == DEACTIVATED and e.ending == "deleted" and u in contact_of
    )
    hand(crm, "PATCH", f"/contacts/{contact_of[renamed]}", {"name": older_name})
    hand(crm, "PATCH", f"/contacts/{contact_of[other]}", {"phone": "+15550000000"})
    hand(crm, "PATCH", f"/contacts/{contact_of[deleted]}", {"status": "active"})

    problems = reconcile(stream.truth, listed(crm))

    assert sorted((p.kind, p.subject) for p in problems) == sorted(
        [("stale_field", renamed), ("wrong_field", other), ("deleted_active", deleted)]
    )
    by_kind = {p.kind: str(p) for p in problems}
    assert f"name is {older_name!r}, an older value" in by_kind["stale_field"]
    assert "phone is '+15550000000'" in by_kind["wrong_field"]
    assert "is 'active', but the user is deleted" in by_kind["deleted_active"]


def test_reconciliation_catches_a_changed_contact_from_before_foreign_data_and_an_extra_field(
    crm: CrmServer,
) -> None:
    stream = generate(30, seed=5, cases=ALL_CASES)
    contact_of = ideal_crm(crm, stream)
    claimed = {e.preexisting for e in stream.truth.users.values() if e.preexisting is not None}
    bystander = next(
        item.contact_id for i, item in enumerate(stream.preexisting) if i not in claimed
    )
    live = [u for u, e in stream.truth.users.items() if e.status == ACTIVE and u in contact_of]
    first, second = live[:2]
    second_email = stream.truth.users[second].fields["email"]
    no_phone = next(u for u in live[2:] if stream.truth.users[u].fields.get("phone", "") is None)
    hand(crm, "PATCH", f"/contacts/{bystander}", {"name": "Touched"})
    hand(crm, "PATCH", f"/contacts/{contact_of[first]}", {"email": second_email})
    hand(crm, "PATCH", f"/contacts/{contact_of[no_phone]}", {"phone": "+15550000001"})

    problems = reconcile(stream.truth, listed(crm))

    assert sorted((p.kind, p.subject) for p in problems) == sorted(
        [("unowned_changed", bystander), ("foreign_data", first), ("extra_field", no_phone)]
    )
