"""The truth model on small hand-written histories, each with the CRM state written by hand.

These pin down what "correct" means for the demo, the e2e tests and the benchmarks, without
the sync's code: a history is a list of changes (what each Auth0 event shows), and the
expected state below is what the product's rules ask for, worked out by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auth0_sync_cli.truth import (
    ACTIVE,
    CREATED,
    DEACTIVATED,
    DELETED,
    UPDATED,
    Expected,
    Person,
    Preexisting,
    Truth,
    expected_state,
    justified_skips,
    lost_events,
    reconcile,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
ADA, BOB = "auth0|ada", "auth0|bob"
GOOGLE_ADA = "google-oauth2|1087"
NO_FIELDS = {"email": None, "name": None, "given_name": None, "family_name": None, "phone": None}


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def person(user_id: str, *changes: tuple[str, float, dict[str, Any]], **model: Any) -> Person:
    """A model identity with its changes, event ids `<user_id>#<n>`."""
    who = Person(user_id, **model)
    for n, (kind, minute, shown) in enumerate(changes):
        who.record(kind, f"{user_id}#{n}", at(minute), shown)
    return who


def people(*persons: Person) -> dict[str, Person]:
    return {p.user_id: p for p in persons}


ADA_SIGNUP = {"email": "ada@example.com", "name": "Ada Lovelace", "phone_number": "+4477001"}


# --- expected state ---------------------------------------------------------------------------


def test_the_latest_event_decides_every_field_it_shows() -> None:
    ada = person(
        ADA,
        (CREATED, 0, ADA_SIGNUP),
        (UPDATED, 1, {**ADA_SIGNUP, "name": "Ada King", "given_name": "Ada"}),
        (UPDATED, 2, {**ADA_SIGNUP, "name": "Ada King", "given_name": "Ada"}),  # a login
    )

    [expected] = expected_state(people(ada)).values()

    assert expected == Expected(
        ADA,
        ACTIVE,
        fields={
            "email": "ada@example.com",
            "name": "Ada King",
            "given_name": "Ada",
            "family_name": None,  # never set: the contact was made by the sync
            "phone": "+4477001",
        },
        story="alive",
    )


def test_a_field_the_latest_event_shows_removed_is_cleared() -> None:
    ada = person(
        ADA,
        (CREATED, 0, ADA_SIGNUP),
        (UPDATED, 1, {"email": "ada@example.com", "name": "Ada Lovelace", "phone_number": None}),
    )

    assert expected_state(people(ada))[ADA].fields["phone"] is None


def test_a_field_absent_from_the_latest_event_is_left_to_the_delivery_order() -> None:
    # The update omits the phone: kept if the signup came first, never set if it came last
    # (then it is stale). Either is right; nothing else is.
    ada = person(
        ADA,
        (CREATED, 0, ADA_SIGNUP),
        (UPDATED, 1, {"email": "ada@example.com", "name": "Ada King"}),
    )

    expected = expected_state(people(ada))[ADA]

    assert expected.allowed == {"phone": frozenset({None, "+4477001"})}
    assert expected.fields["name"] == "Ada King"
    assert "phone" not in expected.fields


def test_at_an_equal_time_the_update_wins_over_the_signup() -> None:
    ada = person(
        ADA,
        (CREATED, 0, {"email": "ada@example.com", "name": "Ada"}),
        (UPDATED, 0, {"email": "ada@example.com", "name": "Ada Lovelace"}),
    )

    assert expected_state(people(ada))[ADA].fields["name"] == "Ada Lovelace"


def test_at_an_equal_time_the_delete_wins_over_the_update() -> None:
    ada = person(
        ADA,
        (CREATED, 0, {"email": "ada@example.com", "name": "Ada"}),
        (UPDATED, 1, {"email": "ada@example.com", "name": "Ada L"}),
        (DELETED, 1, {}),
    )

    expected = expected_state(people(ada))[ADA]

    assert (expected.status, expected.required, expected.ending) == (DEACTIVATED, False, "deleted")
    # Its contact, if it got one, holds its own data from any point of its life.
    assert expected.allowed["name"] == {None, "Ada", "Ada L"}
    assert expected.allowed["email"] == {None, "ada@example.com"}


def test_a_social_re_signup_under_the_same_id_is_active_with_its_new_data() -> None:
    ada = person(
        GOOGLE_ADA,
        (CREATED, 0, ADA_SIGNUP),
        (DELETED, 5, {}),
        (CREATED, 60, {"email": "ada@example.com", "name": "Ada King"}),
    )

    expected = expected_state(people(ada))[GOOGLE_ADA]

    assert ada.life == 2
    assert expected.status == ACTIVE
    assert expected.fields == {
        "email": "ada@example.com",
        "name": "Ada King",
        "given_name": None,
        "family_name": None,
    }
    # The old life's contact is reactivated (phone kept) unless that life left none.
    assert expected.allowed == {"phone": frozenset({None, "+4477001"})}


def test_a_re_signup_under_a_new_id_takes_the_deleted_users_contact_over() -> None:
    former = person(ADA, (CREATED, 0, ADA_SIGNUP), (DELETED, 5, {}))
    again = person(
        BOB,
        (CREATED, 60, {"email": "ada@example.com", "name": "Ada King", "phone_number": "+4477002"}),
        reclaims=ADA,
    )

    state = expected_state(people(former, again))

    assert state[ADA].taken_over == BOB
    assert state[ADA].status == DEACTIVATED
    assert state[BOB].status == ACTIVE
    assert state[BOB].fields == {
        "email": "ada@example.com",
        "name": "Ada King",
        "given_name": None,
        "family_name": None,
        "phone": "+4477002",
    }


def test_a_contact_from_before_keeps_what_the_user_never_shows() -> None:
    seeds = [Preexisting({"email": "ADA@EXAMPLE.COM", "name": "From the old CRM", "phone": "+1"})]
    ada = person(ADA, (CREATED, 0, {"email": "ada@example.com", "name": "Ada"}), claims=0)

    expected = expected_state(people(ada), seeds)[ADA]

    assert expected.preexisting == 0
    assert expected.fields == {
        "email": "ada@example.com",
        "name": "Ada",
        "given_name": None,
        "family_name": None,
        "phone": "+1",
    }


def test_a_deleted_user_must_leave_its_contact_from_before_deactivated() -> None:
    seeds = [Preexisting({"email": "ADA@EXAMPLE.COM"})]
    ada = person(ADA, (CREATED, 0, {"email": "ada@example.com"}), (DELETED, 1, {}), claims=0)

    expected = expected_state(people(ada), seeds)[ADA]

    assert (expected.status, expected.required, expected.preexisting) == (DEACTIVATED, True, 0)


def test_a_linked_secondary_may_keep_no_contact_and_its_primary_keeps_one() -> None:
    primary = person(
        ADA,
        (CREATED, 0, {"email": "ada@example.com", "name": "Ada"}),
        (UPDATED, 10, {"email": "ada@example.com", "name": "Ada"}),  # identities[] + the secondary
    )
    secondary = person(
        GOOGLE_ADA,
        (CREATED, 5, {"email": "ada@gmail.example", "name": "Ada G", "phone_number": "+4477003"}),
        (DELETED, 10, {}),
        linked_into=ADA,
    )

    state = expected_state(people(primary, secondary))

    assert (state[GOOGLE_ADA].status, state[GOOGLE_ADA].required) == (DEACTIVATED, False)
    assert state[GOOGLE_ADA].ending == "linked"
    assert state[ADA].status == ACTIVE
    assert state[ADA].fields["email"] == "ada@example.com"
    # The primary never showed a phone: a secondary's contact handed over may bring its own.
    assert state[ADA].allowed == {"phone": frozenset({None, "+4477003"})}


def test_changes_out_of_time_order_are_a_bug_of_the_history() -> None:
    ada = person(ADA, (CREATED, 5, ADA_SIGNUP))
    with pytest.raises(ValueError, match="is not after its last change"):
        ada.record(UPDATED, "late", at(1), {})
    with pytest.raises(ValueError, match="signed up while alive"):
        ada.record(CREATED, "again", at(9), {})


# --- justified skips ------------------------------------------------------------------------


def test_which_skips_each_event_of_a_history_justifies() -> None:
    ada = person(
        ADA,
        (CREATED, 0, {"email": "ada@example.com", "name": "Ada"}),
        (UPDATED, 1, {"email": "ada@example.com", "name": "Ada"}),  # a login
        (UPDATED, 2, {"email": "ada@example.com", "name": "Ada King"}),
        (DELETED, 3, {}),
        (CREATED, 60, {"email": "ada@example.com", "name": "Ada Byron"}),  # a re-signup
    )

    justified = justified_skips(people(ada), copies={f"{ADA}#1": 2})

    assert justified == {
        # The login shows the signup's values: whichever comes second finds them there.
        f"{ADA}#0": {"stale", "deleted", "unchanged"},
        f"{ADA}#1": {"stale", "deleted", "duplicate", "unchanged"},
        f"{ADA}#2": {"stale", "deleted"},
        f"{ADA}#3": {"stale", "contact_missing"},  # older than the re-signup
        f"{ADA}#4": set(),  # the new life: neither deleted, nor stale, nor unchanged
    }


def test_every_event_of_a_linked_secondary_may_be_skipped_as_account_linked() -> None:
    secondary = person(
        GOOGLE_ADA, (CREATED, 0, {"email": "a@example.com"}), (DELETED, 1, {}), linked_into=ADA
    )

    justified = justified_skips(people(secondary))

    assert justified[f"{GOOGLE_ADA}#0"] == {"stale", "deleted", "account_linked"}
    assert justified[f"{GOOGLE_ADA}#1"] == {"contact_missing", "account_linked"}


def test_a_lost_event_is_a_skip_the_truth_does_not_justify_or_a_letter_gone_missing() -> None:
    ada = person(
        ADA,
        (CREATED, 0, {"email": "ada@example.com"}),
        (UPDATED, 1, {"email": "ada@example.org"}),
        (UPDATED, 2, {"email": "ada@example.net"}),
        (UPDATED, 3, {"email": "ada@example.com"}),
    )
    truth = Truth.of(people(ada), special={"evt_test": frozenset({"test_event"})})
    outcomes = [
        (f"{ADA}#0", "applied", "created"),
        (f"{ADA}#1", "skipped", "deleted"),  # lost: Ada was never deleted
        (f"{ADA}#2", "dead_lettered", "crm_503"),  # lost: not replayed, not in the DLQ
        (f"{ADA}#3", "dead_lettered", "crm_503"),
        ("evt_test", "skipped", "test_event"),
    ]

    lost = lost_events(truth, outcomes, left_in_dlq=[f"{ADA}#3"])

    assert lost == {
        f"{ADA}#1": "skipped as deleted, which the truth does not justify",
        f"{ADA}#2": "dead_lettered (crm_503), and not in the DLQ",
    }
    assert lost_events(truth, outcomes[:1]) == {
        f"{ADA}#1": "never handled",
        f"{ADA}#2": "never handled",
        f"{ADA}#3": "never handled",
        "evt_test": "never handled",
    }


# --- reconcile on hand-written contacts -----------------------------------------------------


def contact(
    contact_id: str, user_id: str | None, status: str = ACTIVE, **fields: Any
) -> dict[str, Any]:
    base: dict[str, Any] = {"id": contact_id, "status": status, **NO_FIELDS, **fields}
    if user_id is not None:
        base["auth0_user_id"] = user_id
    return base


def ada_and_bob() -> Truth:
    ada = person(
        ADA,
        (CREATED, 0, ADA_SIGNUP),
        (UPDATED, 1, {**ADA_SIGNUP, "name": "Ada King"}),
    )
    bob = person(BOB, (CREATED, 0, {"email": "bob@example.com", "name": "Bob"}), (DELETED, 2, {}))
    return Truth.of(people(ada, bob))


ADA_NOW = {"email": "ada@example.com", "name": "Ada King", "phone": "+4477001"}


def test_a_crm_in_step_has_no_mismatch() -> None:
    contacts = [
        contact("c_1", ADA, **ADA_NOW),
        contact("c_2", BOB, DEACTIVATED, email="bob@example.com", name="Bob"),
    ]

    assert reconcile(ada_and_bob(), contacts) == []
    # A deleted user whose delete came first may have no contact at all.
    assert reconcile(ada_and_bob(), contacts[:1]) == []


@pytest.mark.parametrize(
    ("ada", "kind", "message"),
    [
        (
            {**ADA_NOW, "name": "Ada Byron"},
            "wrong_field",
            "auth0|ada: c_1 name is 'Ada Byron', expected 'Ada King'",
        ),
        (
            {**ADA_NOW, "name": "Ada Lovelace"},
            "stale_field",
            "auth0|ada: c_1 name is 'Ada Lovelace', an older value; expected 'Ada King'",
        ),
        (
            {**ADA_NOW, "family_name": "Lovelace"},
            "extra_field",
            "auth0|ada: c_1 family_name is 'Lovelace', expected none (removed or never set)",
        ),
        (
            {**ADA_NOW, "email": "bob@example.com"},
            "foreign_data",
            "auth0|ada: c_1 email is 'bob@example.com', a value of auth0|bob; "
            "expected 'ada@example.com'",
        ),
        (
            {**ADA_NOW, "status": DEACTIVATED},
            "wrong_status",
            "auth0|ada: c_1 is 'deactivated', expected 'active' (alive)",
        ),
    ],
)
def test_each_wrong_field_of_an_active_contact_is_named(
    ada: dict[str, Any], kind: str, message: str
) -> None:
    status = ada.pop("status", ACTIVE)

    [problem] = reconcile(ada_and_bob(), [contact("c_1", ADA, status, **ada)])

    assert (problem.kind, str(problem)) == (kind, message)


def test_missing_duplicate_and_an_active_contact_of_a_deleted_user_are_named() -> None:
    contacts = [
        contact("c_1", ADA, **ADA_NOW),
        contact("c_2", ADA, **ADA_NOW),
        contact("c_3", BOB, email="bob@example.com", name="Bob"),
    ]

    problems = reconcile(ada_and_bob(), contacts)

    assert [(p.kind, str(p)) for p in problems] == [
        ("duplicate", "auth0|ada: 2 contacts carry this id: ['c_1', 'c_2']"),
        ("deleted_active", "auth0|bob: c_3 is 'active', but the user is deleted in Auth0"),
    ]
    assert [str(p) for p in reconcile(ada_and_bob(), [])] == ["auth0|ada: no contact (alive)"]


def test_a_deleted_users_contact_may_hold_only_its_own_data() -> None:
    contacts = [
        contact("c_1", ADA, **ADA_NOW),
        contact("c_2", BOB, DEACTIVATED, email="bob@example.com", name="Ada King"),
    ]

    [problem] = reconcile(ada_and_bob(), contacts)

    assert problem.kind == "foreign_data"
    assert str(problem) == (
        "auth0|bob: c_2 name is 'Ada King', a value of auth0|ada; expected one of [None, 'Bob']"
    )


def test_contacts_nobody_in_auth0_owns_are_checked_against_what_they_were() -> None:
    seeds = [
        Preexisting({"email": "old@example.net", "name": "Old"}, contact_id="c_7"),
        Preexisting({"email": "ADA@EXAMPLE.COM"}, contact_id="c_8"),
    ]
    ada = person(ADA, (CREATED, 0, {"email": "ada@example.com"}), claims=1)
    truth = Truth.of(people(ada), seeds)
    untouched = contact("c_7", None, email="old@example.net", name="Old")

    assert reconcile(truth, [untouched, contact("c_8", ADA, email="ada@example.com")]) == []
    problems = reconcile(
        truth,
        [
            {**untouched, "name": "Ada"},
            contact("c_8", None, email="ADA@EXAMPLE.COM"),
            contact("c_9", ADA, email="ada@example.com"),
            contact("c_10", None, email="new@example.com"),
            contact("c_11", "auth0|nobody", email="x@example.com"),
        ],
    )

    assert [(p.kind, str(p)) for p in problems] == [
        ("unowned_changed", "c_7: no Auth0 user claims it, yet name is 'Ada' (was 'Old')"),
        ("unowned_new", "c_10: no auth0_user_id, and it was not in the CRM before the stream"),
        ("unknown_owner", "c_11: carries auth0|nobody, a user the stream never had"),
        (
            "not_linked",
            "auth0|ada: the contact from before with its email (c_8) is not its contact (alive)",
        ),
    ]


def test_a_contact_left_with_a_user_whose_re_signup_should_have_taken_it_over() -> None:
    former = person(ADA, (CREATED, 0, ADA_SIGNUP), (DELETED, 5, {}))
    again = person(BOB, (CREATED, 60, {"email": "ada@example.com"}), reclaims=ADA)
    truth = Truth.of(people(former, again))

    problems = reconcile(
        truth,
        [
            contact("c_1", ADA, DEACTIVATED, email="ada@example.com"),
            contact("c_2", BOB, email="ada@example.com", phone="+4477001"),
        ],
    )

    assert [str(p) for p in problems] == [
        "auth0|ada: c_1 still carries this deleted user's id: its re-signup auth0|bob (same "
        "email) should have taken it over",
    ]


def test_a_vendor_is_held_to_its_fields_and_to_the_values_it_stores() -> None:
    # A HubSpot-like destination: no `name` field, and emails kept in lower case.
    seeds = [Preexisting({"email": "OLD@EXAMPLE.NET", "name": "Old"}, contact_id="c_7")]
    truth = Truth.of(people(person(ADA, (CREATED, 0, ADA_SIGNUP))), seeds)
    contacts = [
        contact("c_1", ADA, email="ada@example.com", phone="+4477001"),
        contact("c_7", None, email="old@example.net"),
    ]

    def lower_email(name: str, value: str | None) -> str | None:
        return value.lower() if name == "email" and value else value

    vendor = ("email", "given_name", "family_name", "phone")
    assert reconcile(truth, contacts, fields=vendor, stored=lower_email) == []
    # Held to every field and to the value as given, the same contacts differ.
    assert [str(p) for p in reconcile(truth, contacts, fields=vendor)] == [
        "c_7: no Auth0 user claims it, yet email is 'old@example.net' (was 'OLD@EXAMPLE.NET')"
    ]
    assert {p.kind for p in reconcile(truth, contacts, stored=lower_email)} == {
        "wrong_field",
        "unowned_changed",
    }


def test_reconcile_needs_the_seeded_ids_of_the_contacts_from_before() -> None:
    truth = Truth.of({}, [Preexisting({"email": "old@example.net"})])

    with pytest.raises(ValueError, match="seed the pre-existing contacts first"):
        reconcile(truth, [])
