"""The sample generator's organizations: a valid Auth0 history, with what the demo needs,
and a truth that the history's events lead to (replayed here, in time order, by a model
independent of the generator's)."""

from __future__ import annotations

from datetime import datetime

import pytest

from auth0_sync_cli.sample import SampleStream, generate
from auth0_sync_cli.truth import CREATED, DELETED

pytestmark = pytest.mark.unit

ORG_PREFIX = "organization."


@pytest.fixture(scope="module")
def stream() -> SampleStream:
    return generate(60, seed=11, organizations=4)


def _when(event: dict[str, object]) -> datetime:
    detail = event["detail"]
    assert isinstance(detail, dict)
    return datetime.fromisoformat(str(detail["time"]).replace("Z", "+00:00"))


def _org_events(stream: SampleStream) -> list[dict[str, object]]:
    unique = {
        e["detail"]["id"]: e for e in stream.events if e["detail"]["type"].startswith(ORG_PREFIX)
    }
    return sorted(unique.values(), key=_when)


def test_a_member_is_always_a_user_alive_at_that_moment(stream: SampleStream) -> None:
    for event in _org_events(stream):
        obj = event["detail"]["data"]["object"]  # type: ignore[index]
        if "user" not in obj:
            continue
        person = stream.people[obj["user"]["user_id"]]
        signup = min(c.at for c in person.changes if c.kind == CREATED)
        deletes = [c.at for c in person.changes if c.kind == DELETED]
        assert signup < _when(event)
        assert all(_when(event) < gone for gone in deletes)


def test_the_stream_has_renames_role_changes_a_deleted_organization_and_early_members(
    stream: SampleStream,
) -> None:
    kinds = {e["detail"]["type"] for e in _org_events(stream)}  # type: ignore[index]
    assert {
        "organization.created",
        "organization.updated",
        "organization.deleted",
        "organization.member.added",
        "organization.member.deleted",
        "organization.member.role.assigned",
        "organization.member.role.deleted",
    } <= kinds
    assert [o.deleted for o in stream.organizations.values()].count(True) == 1
    # Some memberships arrive before their user's signup.
    first: dict[str, int] = {}
    for n, event in enumerate(stream.events):
        first.setdefault(event["detail"]["id"], n)
    signup_at = {
        c.event_id: first[c.event_id]
        for p in stream.people.values()
        for c in p.changes
        if c.kind == CREATED and c.event_id in first
    }
    early = 0
    for event in stream.events:
        if event["detail"]["type"] != "organization.member.added":
            continue
        person = stream.people[event["detail"]["data"]["object"]["user"]["user_id"]]
        signup = next(c.event_id for c in person.changes if c.kind == CREATED)
        early += first[event["detail"]["id"]] < signup_at[signup]
    assert early >= 1
    assert stream.counts["memberships_before_their_user"] >= 1


def test_the_truth_is_where_the_events_lead(stream: SampleStream) -> None:
    names: dict[str, tuple[str, str | None]] = {}
    members: dict[str, dict[str, set[str]]] = {}
    deleted: set[str] = set()
    for event in _org_events(stream):
        kind = event["detail"]["type"]  # type: ignore[index]
        obj = event["detail"]["data"]["object"]  # type: ignore[index]
        if kind in ("organization.created", "organization.updated"):
            names[obj["id"]] = (obj["name"], obj.get("display_name"))
            members.setdefault(obj["id"], {})
        elif kind == "organization.deleted":
            deleted.add(obj["id"])
        else:
            org, user = obj["organization"]["id"], obj["user"]["user_id"]
            if kind == "organization.member.added":
                members[org][user] = set()
            elif kind == "organization.member.deleted":
                del members[org][user]
            elif kind == "organization.member.role.assigned":
                members[org][user].add(obj["role"]["name"])
            else:
                members[org][user].discard(obj["role"]["name"])
    gone = {p.user_id for p in stream.people.values() if not p.alive}
    assert {o: (t.name, t.display_name) for o, t in stream.organizations.items()} == names
    assert {o for o, t in stream.organizations.items() if t.deleted} == deleted
    assert {o: t.members for o, t in stream.organizations.items()} == {
        org: {u: r for u, r in m.items() if u not in gone} for org, m in members.items()
    }
    assert any(t.members and any(t.members.values()) for t in stream.organizations.values())


def test_without_organizations_the_stream_has_none() -> None:
    plain = generate(30, seed=11)
    assert plain.organizations == {}
    assert not any(e["detail"]["type"].startswith(ORG_PREFIX) for e in plain.events)
