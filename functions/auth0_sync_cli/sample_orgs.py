"""Organizations for the sample stream: companies, members and roles with their truth.

`generate(..., organizations=N)` adds N Auth0 organizations over the stream's ordinary
users (one life, synced, never linked): each is created, renamed now and then, gains and
loses members, whose roles are assigned and removed; the last one is deleted at the end.
A member is only ever a user alive at that moment (Auth0 adds existing users only), and a
user's delete ends its memberships (Auth0 removes them with the user): the truth drops
them. A few memberships are delivered before their user's signup (the sync keeps them
pending). The events' shapes are Auth0's (node-auth0 `Management.
EventStreamCloudEventOrgCreatedObject`, `...OrgMemberAddedObject`,
`...OrgMemberRoleAssignedObject`), like tests/events/organization_*.json.

The truth (`SampleOrg`) is the generator's own model after the last step, never the sync's.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from auth0_sync.names import OrgEventType

ROLES = {"rol_admin01": "admin", "rol_billing1": "billing", "rol_viewer01": "viewer"}
# Of the memberships, how many are delivered before their user's signup (at most).
EARLY_MEMBERSHIPS = 3


@dataclass
class SampleOrg:
    """One organization as Auth0 has it at the end of the stream (the truth)."""

    org_id: str
    name: str
    display_name: str | None
    deleted: bool = False
    members: dict[str, set[str]] = field(default_factory=dict)  # user id -> role names

    def obj(self) -> dict[str, Any]:
        value: dict[str, Any] = {"id": self.org_id, "name": self.name, "metadata": {}}
        if self.display_name is not None:
            value["display_name"] = self.display_name
        return value


@dataclass(frozen=True)
class Lifetime:
    """An ordinary user's one life: from its signup to its delete (None: still alive)."""

    user_id: str
    signup_id: str
    start: datetime
    end: datetime | None

    def alive(self, at: datetime) -> bool:
        return self.start < at and (self.end is None or at < self.end)


@dataclass
class OrgPlan:
    """What `organizations` made: the events (time, event) and the truth per organization."""

    events: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    orgs: dict[str, SampleOrg] = field(default_factory=dict)
    early: list[tuple[str, str]] = field(default_factory=list)  # (membership, signup) ids
    counts: dict[str, int] = field(default_factory=dict)


def _member(org: SampleOrg, user_id: str, role_id: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {
        "organization": {"id": org.org_id, "name": org.name},
        "user": {"user_id": user_id},
    }
    if role_id is not None:
        value["role"] = {"id": role_id, "name": ROLES[role_id]}
    return value


def organizations(
    rng: random.Random,
    lives: list[Lifetime],
    count: int,
    start: datetime,
    end: datetime,
    make_event: Any,
    steps_per_org: int = 12,
) -> OrgPlan:
    """`make_event(type, obj, moment, event_id)`: the stream's own envelope."""
    plan = OrgPlan()
    if count <= 0 or not lives:
        return plan
    span = (end - start).total_seconds()

    def event_id() -> str:
        return "evt_" + "".join(rng.choices(string.ascii_letters + string.digits, k=22))

    def emit(event_type: OrgEventType, obj: dict[str, Any], at: datetime) -> str:
        kind, identifier = event_type.value, event_id()
        plan.events.append((at, make_event(kind, obj, at, identifier)))
        plan.counts[kind] = plan.counts.get(kind, 0) + 1
        return identifier

    for n in range(count):
        org_id = "org_" + "".join(rng.choices(string.ascii_letters + string.digits, k=16))
        org = SampleOrg(org_id, f"org-{n}", f"Organization {n}")
        plan.orgs[org_id] = org
        created = start + timedelta(seconds=rng.uniform(0, span / 10))
        emit(OrgEventType.ORG_CREATED, org.obj(), created)
        moments = sorted(
            created + timedelta(seconds=rng.uniform(1, (end - created).total_seconds() - 1))
            for _ in range(steps_per_org)
        )
        for at in moments:
            # A user's delete before `at` ended its membership (Auth0 removes it).
            for user_id in [u for u in org.members if not _life(lives, u).alive(at)]:
                del org.members[user_id]
            step = rng.choice(("member", "member", "leave", "role", "role", "rename"))
            alive = [life for life in lives if life.alive(at)]
            if step == "rename" or not alive:
                org.display_name = rng.choice([f"Organization {n} Ltd", None, f"Org {n}"])
                emit(OrgEventType.ORG_UPDATED, org.obj(), at)
                continue
            # A role change or a leave is of a current member (Auth0 has roles for members).
            pick = sorted(org.members) if step in ("role", "leave") and org.members else None
            life = _life(lives, rng.choice(pick)) if pick else rng.choice(alive)
            roles = org.members.get(life.user_id)
            if step in ("member", "leave") or roles is None:
                if roles is None:
                    org.members[life.user_id] = set()
                    added = emit(OrgEventType.MEMBER_ADDED, _member(org, life.user_id), at)
                    if len(plan.early) < EARLY_MEMBERSHIPS:
                        plan.early.append((added, life.signup_id))
                else:
                    del org.members[life.user_id]  # Auth0 ends its roles with it
                    emit(OrgEventType.MEMBER_DELETED, _member(org, life.user_id), at)
                continue
            role_id = rng.choice(sorted(ROLES))
            if ROLES[role_id] in roles:
                roles.discard(ROLES[role_id])
                emit(OrgEventType.ROLE_DELETED, _member(org, life.user_id, role_id), at)
            else:
                roles.add(ROLES[role_id])
                emit(OrgEventType.ROLE_ASSIGNED, _member(org, life.user_id, role_id), at)
    for org in plan.orgs.values():  # the deletes after the last step
        for user_id in [u for u in org.members if _life(lives, u).end is not None]:
            del org.members[user_id]
    doomed = plan.orgs[sorted(plan.orgs)[-1]]
    doomed.deleted = True
    emit(OrgEventType.ORG_DELETED, doomed.obj(), end + timedelta(seconds=1))
    return plan


def _life(lives: list[Lifetime], user_id: str) -> Lifetime:
    return next(life for life in lives if life.user_id == user_id)
