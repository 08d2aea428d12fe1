"""`reconcile`'s comparison on plain values: what counts as drift, per the sync's rules."""

from __future__ import annotations

from typing import Any

import pytest

from auth0_sync.mapping import AbsentPolicy, digest
from auth0_sync.settings import Settings
from auth0_sync.state import SyncState
from auth0_sync_cli.reconcile import compare

pytestmark = pytest.mark.unit

USER = {
    "user_id": "auth0|1",
    "email": "a@example.com",
    "name": "Ada",
    "updated_at": "2026-02-10T08:00:00.000Z",
}
CONTACT = {
    "id": "c_1",
    "email": "a@example.com",
    "name": "Ada",
    "phone": "+1",  # Auth0 has no phone_number for this user
    "status": "active",
    "auth0_user_id": "auth0|1",
}


def settings(absent: AbsentPolicy = AbsentPolicy.KEEP) -> Settings:
    return Settings(crm_base_url="http://crm.invalid", crm_api_token="t", absent_fields=absent)


def kinds(drift: list[Any]) -> list[tuple[str, str | None]]:
    return [(d.kind, d.field) for d in drift]


def test_an_attribute_absent_from_the_export_is_kept_unless_absent_fields_clear() -> None:
    contacts = {"c_1": dict(CONTACT)}

    assert compare([USER], contacts, {}, settings()).drift == []
    cleared = compare([USER], contacts, {}, settings(AbsentPolicy.CLEAR))
    assert kinds(cleared.drift) == [("field_differs", "phone")]


def test_a_user_changed_after_the_export_is_not_compared_field_by_field() -> None:
    contacts = {"c_1": {**CONTACT, "name": "Ada Newer"}}
    newer = SyncState(
        "auth0|1",
        contact_id="c_1",
        last_change_time="2026-02-11T08:00:00.000000+00:00",
        written={"name": digest("Ada Newer")},
    )

    found = compare([USER], contacts, {"auth0|1": newer}, settings())

    assert found.drift == []
    assert found.newer_than_export == 1
    older = SyncState("auth0|1", contact_id="c_1", last_change_time="2026-02-01T08:00:00+00:00")
    assert kinds(compare([USER], contacts, {"auth0|1": older}, settings()).drift) == [
        ("field_differs", "name")
    ]


def test_a_contact_of_a_user_the_stream_brought_after_the_export_is_not_gone() -> None:
    later = {**CONTACT, "id": "c_2", "email": "b@example.com", "auth0_user_id": "auth0|2"}
    contacts = {"c_1": dict(CONTACT), "c_2": later}
    state = SyncState("auth0|2", contact_id="c_2", last_change_time="2026-02-12T00:00:00+00:00")

    assert compare([USER], contacts, {"auth0|2": state}, settings()).drift == []
    assert kinds(compare([USER], contacts, {}, settings()).drift) == [("user_gone", None)]


def test_two_live_users_whose_states_name_one_contact_claim_it_twice() -> None:
    contacts = {"c_1": dict(CONTACT)}
    states = {
        "auth0|1": SyncState("auth0|1", contact_id="c_1"),
        "auth0|9": SyncState("auth0|9", contact_id="c_1"),
    }

    found = compare([USER], contacts, states, settings())

    assert ("claimed_twice", None) in kinds(found.drift)
    twice = next(d for d in found.drift if d.kind == "claimed_twice")
    assert twice.user_id == "auth0|1, auth0|9"


def test_a_vendor_contact_without_a_status_is_active_and_unclaimed() -> None:
    # A HubSpot or Salesforce contact the sync never wrote has no auth0_status: the
    # adapters read it as None, which is nobody's deactivation.
    stranger: dict[str, Any] = {
        "id": "c_5",
        "email": "old@example.net",
        "status": None,
        "auth0_user_id": None,
    }
    contacts = {"c_1": dict(CONTACT), "c_5": stranger}

    assert kinds(compare([USER], contacts, {}, settings()).drift) == [("unclaimed", None)]
    deactivated = {**stranger, "status": "deactivated"}
    assert compare([USER], {"c_1": dict(CONTACT), "c_5": deactivated}, {}, settings()).drift == []


def test_users_the_rules_leave_without_a_contact_are_not_drift() -> None:
    sms = {"user_id": "sms|1", "phone_number": "+15550101", "updated_at": USER["updated_at"]}
    unverified = {**USER, "user_id": "auth0|2", "email": "A@example.com", "email_verified": False}
    nobody_holds = {**unverified, "user_id": "auth0|3", "email": "c@example.com"}
    contacts = {"c_1": dict(CONTACT)}

    found = compare([USER, sms, unverified, nobody_holds], contacts, {}, settings())

    # The unverified address nobody's contact holds would have been created: that one is.
    assert [(d.kind, d.user_id) for d in found.drift] == [("no_contact", "auth0|3")]


def test_a_blocked_users_contact_is_expected_deactivated() -> None:
    blocked = {**USER, "blocked": True}
    assert (
        compare([blocked], {"c_1": {**CONTACT, "status": "deactivated"}}, {}, settings()).drift
        == []
    )
    found = compare([blocked], {"c_1": dict(CONTACT)}, {}, settings())
    assert [(d.kind, d.field, d.auth0) for d in found.drift] == [
        ("field_differs", "status", "deactivated")
    ]
