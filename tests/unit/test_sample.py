"""The sample stream's truth and `reconcile`, which the demo and the e2e tests trust."""

from __future__ import annotations

import pytest

from auth0_sync_cli.sample import Expected, generate, reconcile

pytestmark = pytest.mark.unit

ADA = "auth0|ada"
FIELDS = {"email": "ada@example.com", "name": "Ada Lovelace"}


def contact(user_id: str = ADA, status: str = "active", **fields: str) -> dict[str, str]:
    return {"id": "c_1", "auth0_user_id": user_id, "status": status, **FIELDS, **fields}


def test_in_step_has_no_mismatch() -> None:
    assert reconcile({ADA: Expected(ADA, FIELDS, "active")}, [contact()]) == []


def test_a_changed_field_a_missing_and_an_extra_contact_are_each_reported() -> None:
    truth = {ADA: Expected(ADA, FIELDS, "active"), "auth0|bob": Expected("auth0|bob", {}, "active")}
    problems = reconcile(truth, [contact(name="Ada King"), contact("auth0|eve")])
    assert problems == [
        "auth0|ada: name is 'Ada King', expected 'Ada Lovelace'",
        "auth0|bob: expected one contact, found 0",
        "auth0|eve: contact for a user Auth0 does not have",
    ]


def test_a_deleted_user_may_have_no_contact_at_all() -> None:
    # The delete was applied before any create: deletion is final, nothing was created.
    assert reconcile({ADA: Expected(ADA, FIELDS, "deactivated")}, []) == []


def test_a_deleted_user_may_have_one_deactivated_contact_whatever_its_fields() -> None:
    deactivated = contact(status="deactivated", name="Older name")
    assert reconcile({ADA: Expected(ADA, FIELDS, "deactivated")}, [deactivated]) == []


def test_a_deleted_user_with_an_active_or_a_second_contact_is_a_mismatch() -> None:
    truth = {ADA: Expected(ADA, FIELDS, "deactivated")}
    assert reconcile(truth, [contact()]) == [
        "auth0|ada: deleted in Auth0, but the CRM has ['active']"
    ]
    two = [contact(status="deactivated"), contact(status="deactivated")]
    assert reconcile(truth, two) == [
        "auth0|ada: deleted in Auth0, but the CRM has ['deactivated', 'deactivated']"
    ]


def test_generate_is_seeded_and_carries_the_odd_events() -> None:
    first, again = generate(20, seed=3), generate(20, seed=3)
    assert [e["detail"]["id"] for e in first.events] == [e["detail"]["id"] for e in again.events]
    types = {e["detail"]["type"] for e in first.events}
    assert {"user.created", "user.updated", "organization.created"} <= types
    assert any(e["detail"].get("a0purpose") == "test" for e in first.events)
    assert len(first.poison_ids) == 1
    assert len(first.truth) == 20
