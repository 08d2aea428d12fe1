"""The sample generator: seeded, carrying every lifecycle it promises, its model true to the
events it emits, and a truth that a perfect CRM meets. Events are read here with this
test's own code, not with the generator's or the sync's."""

from __future__ import annotations

import argparse
import ast
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from auth0_sync_cli import sample, truth
from auth0_sync_cli.demo import case_list
from auth0_sync_cli.sample import ALL_CASES, SampleStream, generate
from auth0_sync_cli.truth import ACTIVE, reconcile
from tests.ideal_crm import ideal_contacts

pytestmark = pytest.mark.unit

MAPPED = {
    "email": "email",
    "name": "name",
    "given_name": "given_name",
    "family_name": "family_name",
    "phone_number": "phone",
}
NAIVE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def when(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def obj(event: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = event["detail"]["data"]["object"]
    return found


def change_time(event: dict[str, Any]) -> str:
    o = obj(event)
    return str(o["deleted_at"] if kind(event) == "user.deleted" else o["updated_at"])


def seeded(stream: SampleStream) -> SampleStream:
    stream.seed_preexisting(lambda fields: {"id": f"c_{fields['email']}"})
    return stream


@pytest.fixture(scope="module")
def full() -> SampleStream:
    return seeded(generate(40, seed=3, cases=ALL_CASES))


def kind(event: dict[str, Any]) -> str:
    """The event type, a legacy `com.auth0.` name read as the current one."""
    return str(event["detail"]["type"]).removeprefix("com.auth0.")


def first_of(stream: SampleStream) -> dict[str, dict[str, Any]]:
    events: dict[str, dict[str, Any]] = {}
    for event in stream.events:
        events.setdefault(event["detail"]["id"], event)
    return events


def position(stream: SampleStream, event_id: str) -> int:
    return next(i for i, e in enumerate(stream.events) if e["detail"]["id"] == event_id)


def test_generate_is_seeded_and_carries_the_odd_events() -> None:
    first, again = generate(20, seed=3), generate(20, seed=3)
    assert [e["detail"]["id"] for e in first.events] == [e["detail"]["id"] for e in again.events]
    types = {e["detail"]["type"] for e in first.events}
    assert {"user.created", "user.updated", "group.created"} <= types
    assert any(e["detail"].get("a0purpose") == "test" for e in first.events)
    assert any(e["detail"]["type"].startswith("com.auth0.user.") for e in first.events)
    assert len(first.poison_ids) == 1
    assert len(first.truth.users) == 20


def test_an_unknown_case_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown case\(s\) \['nope'\]; choose from"):
        generate(5, cases=["nope"])


def test_the_simple_stream_has_none_of_the_lifecycles() -> None:
    stream = generate(40, seed=3)

    assert all(p.life == 1 for p in stream.people.values())
    assert not any(p.linked_into or p.reclaims for p in stream.people.values())
    assert not any("previous_object" in e["detail"]["data"] for e in stream.events)
    assert not any(
        NAIVE.fullmatch(change_time(e))
        for e in stream.events
        if e["detail"]["type"].startswith("user.") and "user_id" in obj(e)
    )


def late_arrivals(stream: SampleStream) -> int:
    """Events delivered after a newer event of the same user."""
    newest: dict[str, datetime] = {}
    late = 0
    for event in stream.events:
        user_id = obj(event).get("user_id")
        if not event["detail"]["type"].startswith("user.") or user_id is None:
            continue
        moment = when(change_time(event))
        late += user_id in newest and moment < newest[user_id]
        newest[user_id] = max(moment, newest.get(user_id, moment))
    return late


def test_duplicates_and_reordering_are_in_both_mixes(full: SampleStream) -> None:
    for stream in (generate(40, seed=3), full):
        copies = Counter(e["detail"]["id"] for e in stream.events)
        assert sum(n - 1 for n in copies.values()) >= 10
        assert late_arrivals(stream) >= 5


def test_a_social_id_comes_back_after_its_delete_and_an_old_event_after_that(
    full: SampleStream,
) -> None:
    [again] = [
        p
        for p in full.people.values()
        if p.life == 2 and p.user_id.startswith("google") and p.unlinked_from is None
    ]
    signups = [
        e
        for e in full.events
        if e["detail"]["type"] == "user.created" and obj(e).get("user_id") == again.user_id
    ]
    deletes = [
        e
        for e in full.events
        if e["detail"]["type"] == "user.deleted" and obj(e).get("user_id") == again.user_id
    ]
    assert len({e["detail"]["id"] for e in signups}) == 2
    [gone] = {change_time(e) for e in deletes}
    second = max(signups, key=lambda e: when(change_time(e)))
    assert when(change_time(second)) > when(gone)
    # Some event of the first life is delivered after the second life's signup.
    after = full.events[position(full, second["detail"]["id"]) + 1 :]
    assert any(
        obj(e).get("user_id") == again.user_id and when(change_time(e)) < when(gone) for e in after
    )


def test_a_database_user_comes_back_under_a_new_id_with_its_email(full: SampleStream) -> None:
    [again] = [p for p in full.people.values() if p.reclaims]
    events = first_of(full)
    former = full.people[again.reclaims or ""]
    [delete] = [events[c.event_id] for c in former.changes if c.kind == "user.deleted"]
    signup = events[again.changes[0].event_id]

    assert set(obj(delete)) == {"user_id", "deleted_at"}  # a minimal delete
    assert (
        obj(signup)["email"]
        == events[former.changes[-2].event_id]["detail"]["data"]["object"]["email"]
    )
    assert again.user_id != former.user_id


def test_account_linking_in_both_arrival_orders_with_and_without_a_shared_email(
    full: SampleStream,
) -> None:
    events = first_of(full)
    orders, shared = set(), set()
    for secondary in (p for p in full.people.values() if p.linked_into):
        primary = full.people[secondary.linked_into or ""]
        linking = next(
            events[c.event_id]
            for c in primary.changes
            if any(
                f"{i['provider']}|{i['user_id']}" == secondary.user_id
                for i in obj(events[c.event_id])["identities"]
            )
        )
        [gone] = [c for c in secondary.changes if c.kind == "user.deleted"]
        orders.add(position(full, gone.event_id) < position(full, linking["detail"]["id"]))
        first = obj(events[secondary.changes[0].event_id])
        shared.add(first["email"] == obj(linking)["email"])
        assert {"provider", "user_id", "connection"} <= set(obj(linking)["identities"][-1])
    assert orders == {True, False}
    assert shared == {True, False}


def test_minimal_and_full_deletes(full: SampleStream) -> None:
    deletes = [obj(e) for e in full.events if e["detail"]["type"] == "user.deleted"]

    assert any(set(o) == {"user_id", "deleted_at"} for o in deletes)
    assert any("email" in o for o in deletes)


def test_hints_point_at_another_users_contact_from_before(full: SampleStream) -> None:
    owners = {
        item.contact_id: user_id
        for user_id, p in full.people.items()
        if p.claims is not None
        for item in [full.preexisting[p.claims]]
    }
    hinted = {
        (o["user_id"], o["app_metadata"]["crm_contact_id"])
        for e in full.events
        if isinstance((o := obj(e)).get("app_metadata"), dict)
        and "crm_contact_id" in o["app_metadata"]
    }

    assert len(hinted) >= 2
    for user_id, contact_id in hinted:
        assert contact_id in owners
        assert owners[contact_id] != user_id


def test_an_email_swap(full: SampleStream) -> None:
    events = first_of(full)
    first_email = {
        user_id: obj(events[p.changes[0].event_id]).get("email")
        for user_id, p in full.people.items()
    }
    last_email = {
        user_id: obj(events[max(p.changes, key=lambda c: c.key).event_id]).get("email")
        for user_id, p in full.people.items()
    }
    swapped = [
        (a, b)
        for a in full.people
        for b in full.people
        if a < b
        and first_email[a] is not None  # users without an email swap nothing
        and first_email[a] != first_email[b]
        and last_email[a] == first_email[b]
        and last_email[b] == first_email[a]
    ]
    assert len(swapped) == 1


def test_fields_removed_by_null_by_empty_string_and_since_previous_object(
    full: SampleStream,
) -> None:
    updates = [e for e in full.events if e["detail"]["type"] == "user.updated"]

    assert any("phone_number" in obj(e) and obj(e)["phone_number"] is None for e in updates)
    assert any(obj(e).get("family_name") == "" for e in updates)
    assert any(
        "phone_number" in e["detail"]["data"].get("previous_object", {})
        and "phone_number" not in obj(e)
        for e in updates
    )


def test_change_times_without_an_offset(full: SampleStream) -> None:
    naive = [e for e in full.events if "user_id" in obj(e) and NAIVE.fullmatch(change_time(e))]

    assert len(naive) >= 3
    assert {"user.created", "user.updated"} <= {e["detail"]["type"] for e in naive}


def test_equal_change_times_with_the_later_kind_delivered_first(full: SampleStream) -> None:
    events = first_of(full)
    kinds_first = set()
    for p in full.people.values():
        for a in p.changes:
            for b in p.changes:
                ea, eb = events[a.event_id], events[b.event_id]
                if (
                    a is not b
                    and change_time(ea) == change_time(eb)
                    and position(full, a.event_id) < position(full, b.event_id)
                ):
                    kinds_first.add((kind(ea), kind(eb)))
    assert ("user.updated", "user.created") in kinds_first
    assert ("user.deleted", "user.updated") in kinds_first


def test_contacts_from_before_that_nobody_claims(full: SampleStream) -> None:
    claimed = {p.claims for p in full.people.values() if p.claims is not None}
    unclaimed = [item for i, item in enumerate(full.preexisting) if i not in claimed]
    emails = {obj(e).get("email") for e in full.events}

    assert len(unclaimed) >= 1
    assert all(item.fields["email"] not in emails for item in unclaimed)


@pytest.mark.parametrize("cases", [(), ALL_CASES], ids=["simple", "full"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_model_matches_the_events_it_emitted(cases: tuple[str, ...], seed: int) -> None:
    stream = generate(30, seed=seed, cases=cases)
    events = first_of(stream)
    for person in stream.people.values():
        for change in person.changes:
            event = events[change.event_id]
            o = obj(event)
            assert kind(event) == change.kind
            assert o["user_id"] == person.user_id
            assert when(change_time(event)) == change.at
            shown: dict[str, Any] = {}
            if change.kind != "user.deleted":
                previous = event["detail"]["data"].get("previous_object") or {}
                for attribute in MAPPED:
                    if attribute in o:
                        shown[attribute] = o[attribute] or None
                    elif attribute in previous:
                        shown[attribute] = None
            assert shown == change.shown, change.event_id


@pytest.mark.parametrize("cases", [(), ALL_CASES], ids=["simple", "full"])
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_perfect_crm_meets_the_truth_of_every_generated_stream(
    cases: tuple[str, ...], seed: int
) -> None:
    stream = seeded(generate(60, seed=seed, cases=cases))

    assert reconcile(stream.truth, ideal_contacts(stream.truth)) == []


def test_each_live_user_must_hold_what_its_latest_event_shows(full: SampleStream) -> None:
    events = first_of(full)
    rank = {"user.created": 0, "user.updated": 1, "user.deleted": 2}
    for user_id, expected in full.truth.users.items():
        mine = [
            e
            for e in events.values()
            if obj(e).get("user_id") == user_id and e["detail"].get("a0purpose") != "test"
        ]
        latest = max(mine, key=lambda e: (when(change_time(e)), rank[kind(e)]))
        if kind(latest) == "user.deleted":
            assert expected.status != ACTIVE, user_id
            continue
        if not expected.synced:  # no email, or an unverified one its owner's contact holds
            assert "email" not in obj(latest) or obj(latest)["email_verified"] is False
            continue
        assert expected.status == ACTIVE, user_id
        assert expected.blocked == (obj(latest).get("blocked") is True), user_id
        for attribute, crm_field in MAPPED.items():
            if attribute in obj(latest):
                assert expected.fields[crm_field] == (obj(latest)[attribute] or None), user_id


def test_the_truth_is_not_computed_with_the_sync_code() -> None:
    for module in (sample, truth):
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert not {m for m in imported if m and m.startswith("auth0_sync.")} - {
            "auth0_sync.names"
        }, module.__name__


def test_the_odd_events_are_judged_by_their_own_reasons(full: SampleStream) -> None:
    test_event = next(e for e in full.events if e["detail"].get("a0purpose") == "test")
    unknown = next(e for e in full.events if e["detail"]["type"] == "group.created")

    assert full.truth.justified[test_event["detail"]["id"]] == {"test_event"}
    assert full.truth.justified[unknown["detail"]["id"]] == {"unknown_type"}
    assert full.truth.justified[full.poison_ids[0]] == set()


def test_the_demo_takes_all_none_or_named_cases() -> None:
    assert case_list("all") == ALL_CASES
    assert case_list("none") == ()
    assert case_list("ties, hints") == ("ties", "hints")
    with pytest.raises(argparse.ArgumentTypeError, match=r"unknown case\(s\) \['tie'\]"):
        case_list("tie,hints")


def test_users_from_before_the_stream_are_an_export_not_signups() -> None:
    stream = generate(100, seed=3, existing_share=0.2)
    before = {str(user["user_id"]): user for user in stream.existing}
    assert 5 < len(before) < 40
    created = {
        e["detail"]["data"]["object"].get("user_id")
        for e in stream.events
        if e["detail"]["type"] == "user.created"
    }
    later = {e["detail"]["data"]["object"].get("user_id") for e in stream.events}
    assert not created & set(before)  # no signup event for them
    assert set(before) & later  # some change again during the stream
    assert set(before) - later  # and some never do
    for user in before.values():
        assert datetime.fromisoformat(user["updated_at"].replace("Z", "+00:00")) < sample.EPOCH
        assert {"email", "created_at", "identities"} <= set(user)
    # The export taken after the stream lists exactly the users Auth0 still has.
    deleted = {
        e["detail"]["data"]["object"]["user_id"]
        for e in stream.events
        if e["detail"]["type"] == "user.deleted"
    }
    after = {str(user["user_id"]) for user in stream.export_now()}
    assert after == set(stream.people) - deleted
    # The same seed without users from before gives the stream it always gave.
    assert generate(100, seed=3).existing == []
