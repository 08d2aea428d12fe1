"""A user's delete removes the user's memberships, in every arrival order, with duplicates.

Each history is a valid Auth0 timeline of two organizations and three users: users are
created, join and leave organizations, get and lose roles, are deleted (Auth0 ends a
deleted user's memberships with it) and come back (a social login re-creates the same user
id: a new life, with no membership). Auth0's own state is kept beside the timeline: it is
the truth the CRM must end equal to. The sync under test sees every event shuffled and
duplicated; the users' side is a small model of the user core's order rules (a contact
appears with the user's create, the tombstone's order key is the user's `life_start`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth0_sync.events import TYPE_RANK, iso
from auth0_sync.names import EventType, OrgEventType, SkipReason
from auth0_sync.org_events import OrgEvent
from auth0_sync.org_state import MemoryOrgStateStore
from auth0_sync.organizations import OrganizationSync, UserLink
from auth0_sync.state import order_key_text
from tests.fakes.memory_companies import MemoryCompanies

pytestmark = pytest.mark.unit

ORGS = ("org_A1b2C3d4E5f6G7h8", "org_Z9y8X7w6V5u4T3s2")
USERS = ("auth0|u1", "auth0|u2", "auth0|u3")
ROLES = {"rol_admin": "admin", "rol_billing": "billing"}
T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
LEASE = 30.0


@dataclass(frozen=True)
class UserEvent:
    event_id: str
    kind: EventType
    user_id: str
    key: str  # the user core's order key text: time, type rank, event id


def _time(n: int) -> datetime:
    return T0 + timedelta(seconds=n)


def _org_event(n: int, kind: OrgEventType, org: str, **fields: str | None) -> OrgEvent:
    return OrgEvent(
        event_id=f"evt_{n:04d}", event_type=kind, org_id=org, time=iso(_time(n)), **fields
    )


def _user_event(n: int, kind: EventType, user: str) -> UserEvent:
    event_id = f"evt_{n:04d}"
    return UserEvent(
        event_id, kind, user, order_key_text((iso(_time(n)), TYPE_RANK[kind], event_id))
    )


@dataclass
class Truth:
    alive: set[str] = field(default_factory=set)
    members: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (org, user)


@dataclass
class History:
    events: list[OrgEvent | UserEvent]
    truth: Truth


@st.composite
def histories(draw: st.DrawFn) -> History:
    truth = Truth()
    events: list[OrgEvent | UserEvent] = []
    for org in ORGS:
        events.append(_org_event(len(events), OrgEventType.ORG_CREATED, org, name=org[-4:]))
    for user in USERS:
        events.append(_user_event(len(events), EventType.USER_CREATED, user))
        truth.alive.add(user)
    for _ in range(draw(st.integers(1, 16))):
        n = len(events)
        user = draw(st.sampled_from(USERS))
        org = draw(st.sampled_from(ORGS))
        step = draw(st.sampled_from(["member", "role", "role", "user"]))
        roles = truth.members.get((org, user))
        if user not in truth.alive:  # only a new life brings a deleted user back
            truth.alive.add(user)
            events.append(_user_event(n, EventType.USER_CREATED, user))
        elif step == "user":  # Auth0 ends the user's memberships with the user
            truth.alive.discard(user)
            truth.members = {k: v for k, v in truth.members.items() if k[1] != user}
            events.append(_user_event(n, EventType.USER_DELETED, user))
        elif step == "member" or roles is None:
            if roles is None:
                truth.members[(org, user)] = set()
                events.append(_org_event(n, OrgEventType.MEMBER_ADDED, org, user_id=user))
            else:
                del truth.members[(org, user)]
                events.append(_org_event(n, OrgEventType.MEMBER_DELETED, org, user_id=user))
        else:
            role_id = draw(st.sampled_from(sorted(ROLES)))
            name = ROLES[role_id]
            kind = OrgEventType.ROLE_DELETED if name in roles else OrgEventType.ROLE_ASSIGNED
            (roles.discard if name in roles else roles.add)(name)
            events.append(_org_event(n, kind, org, user_id=user, role_id=role_id, role_name=name))
    return History(events, truth)


@dataclass
class UserRecord:
    key: str | None = None
    deleted: bool = False
    life_start: str | None = None


@dataclass
class World:
    """The organization sync beside a model of the user core's order rules."""

    crm: MemoryCompanies = field(default_factory=MemoryCompanies)
    state: MemoryOrgStateStore = field(default_factory=MemoryOrgStateStore)
    users: dict[str, UserRecord] = field(default_factory=dict)
    remove_on_user_delete: bool = True

    def __post_init__(self) -> None:
        self.sync = OrganizationSync(
            self.crm,
            self.state,
            self.user_of,
            "rest",
            remove_on_user_delete=self.remove_on_user_delete,
        )

    @staticmethod
    def contact(user: str) -> str:
        return f"c_{user.split('|')[1]}"

    def user_of(self, user: str) -> UserLink:
        record = self.users.get(user)
        if record is None:
            return UserLink()
        alive = record.key is not None and not record.deleted
        return UserLink(self.contact(user) if alive else None, record.life_start)

    def deliver_user(self, event: UserEvent) -> None:
        """What the service does with a user event: the core's rules, then the hook."""
        record = self.users.setdefault(event.user_id, UserRecord())
        if event.kind == EventType.USER_DELETED:
            if record.key is None or event.key > record.key:
                record.key, record.deleted = event.key, True
            if record.life_start is None or event.key > record.life_start:
                record.life_start = event.key  # a late delete ends the past life too
            self.sync.user_deleted(event.user_id, LEASE)
            return
        newer = record.key is None or event.key > record.key
        if newer and (record.life_start is None or event.key > record.life_start):
            record.key, record.deleted = event.key, False
            # The contact exists from the user's first create on (a delete deactivates
            # it: it stays, so a membership could still be written to it).
            self.crm.contacts.add(self.contact(event.user_id))
        self.sync.contact_ready(event.user_id, LEASE)


def _company(world: World, org: str) -> str:
    (company_id,) = (k for k, c in world.crm.companies.items() if c["auth0_org_id"] == org)
    return company_id


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), data=st.data())
def test_every_arrival_order_with_duplicates_ends_without_a_deleted_users_memberships(
    history: History, data: st.DataObject
) -> None:
    world = World()
    duplicates = data.draw(st.lists(st.sampled_from(history.events), max_size=8))
    order = data.draw(st.permutations([*history.events, *duplicates]))

    seen: set[str] = set()
    for item in order:
        before = world.crm.calls
        if isinstance(item, UserEvent):
            world.deliver_user(item)
        else:
            outcome = world.sync.apply(item, LEASE)
            assert outcome.status != "dead_lettered"
        if item.event_id in seen:
            assert world.crm.calls == before, "a duplicate costs no CRM call"
        seen.add(item.event_id)

    expected = {
        (_company(world, org), world.contact(user)): sorted(roles)
        for (org, user), roles in history.truth.members.items()
    }
    assert world.crm.members == expected
    # Nothing is left waiting for a deleted user: no index names an organization for it.
    for user in USERS:
        if user not in history.truth.alive:
            assert world.state.orgs_of(user) == set()


def _joined(world: World, user: str, orgs: tuple[str, ...] = ORGS) -> None:
    world.deliver_user(_user_event(1, EventType.USER_CREATED, user))
    for i, org in enumerate(orgs):
        world.sync.apply(_org_event(2 + i, OrgEventType.ORG_CREATED, org, name="acme"), LEASE)
        world.sync.apply(_org_event(4 + i, OrgEventType.MEMBER_ADDED, org, user_id=user), LEASE)


def test_a_users_delete_removes_its_memberships_in_every_organization() -> None:
    world = World()
    _joined(world, USERS[0])
    world.deliver_user(_user_event(2, EventType.USER_CREATED, USERS[1]))
    world.sync.apply(_org_event(6, OrgEventType.MEMBER_ADDED, ORGS[0], user_id=USERS[1]), LEASE)
    assert len(world.crm.members) == 3
    world.deliver_user(_user_event(9, EventType.USER_DELETED, USERS[0]))
    assert world.crm.members == {(_company(world, ORGS[0]), "c_u2"): []}
    assert world.state.orgs_of(USERS[0]) == set()
    calls = world.crm.calls
    world.deliver_user(_user_event(9, EventType.USER_DELETED, USERS[0]))  # a redelivery
    assert world.crm.calls == calls


def test_a_late_member_added_after_the_users_delete_never_recreates_the_membership() -> None:
    world = World()
    _joined(world, USERS[0], ORGS[:1])
    world.deliver_user(_user_event(9, EventType.USER_DELETED, USERS[0]))
    # Older than the delete, arriving after it: in the organization it left...
    again = world.sync.apply(
        _org_event(5, OrgEventType.MEMBER_ADDED, ORGS[0], user_id=USERS[0]), LEASE
    )
    role = world.sync.apply(
        _org_event(
            6, OrgEventType.ROLE_ASSIGNED, ORGS[0], user_id=USERS[0], role_id="rol_a", role_name="a"
        ),
        LEASE,
    )
    # ...and in one the sync had never seen it in.
    world.sync.apply(_org_event(3, OrgEventType.ORG_CREATED, ORGS[1], name="other"), LEASE)
    other = world.sync.apply(
        _org_event(7, OrgEventType.MEMBER_ADDED, ORGS[1], user_id=USERS[0]), LEASE
    )
    assert (again.reason, role.reason) == (SkipReason.STALE, SkipReason.STALE)
    assert other.reason == SkipReason.DELETED
    assert world.crm.members == {}
    assert world.state.orgs_of(USERS[0]) == set()
    # The user comes back (a new life): what was added before the delete stays gone.
    world.deliver_user(_user_event(12, EventType.USER_CREATED, USERS[0]))
    assert world.crm.members == {}
    joined = world.sync.apply(
        _org_event(13, OrgEventType.MEMBER_ADDED, ORGS[1], user_id=USERS[0]), LEASE
    )
    assert joined.reason == "membership_set"
    assert world.crm.members == {(_company(world, ORGS[1]), "c_u1"): []}


def test_a_membership_waiting_for_a_deleted_users_contact_stops_waiting() -> None:
    world = World()
    world.sync.apply(_org_event(0, OrgEventType.ORG_CREATED, ORGS[0], name="acme"), LEASE)
    world.sync.apply(_org_event(1, OrgEventType.MEMBER_ADDED, ORGS[0], user_id=USERS[2]), LEASE)
    assert world.state.pending(USERS[2]) == {ORGS[0]}
    world.deliver_user(_user_event(5, EventType.USER_DELETED, USERS[2]))
    world.deliver_user(_user_event(2, EventType.USER_CREATED, USERS[2]))  # late: a past life
    assert world.state.orgs_of(USERS[2]) == set()
    assert world.crm.members == {}


def test_a_late_delete_ends_only_the_memberships_of_the_past_life() -> None:
    world = World()
    _joined(world, USERS[0])  # created at 1, members from 4 and 5
    world.deliver_user(_user_event(8, EventType.USER_CREATED, USERS[0]))  # the new life
    world.sync.apply(_org_event(9, OrgEventType.MEMBER_DELETED, ORGS[1], user_id=USERS[0]), LEASE)
    world.sync.apply(_org_event(10, OrgEventType.MEMBER_ADDED, ORGS[1], user_id=USERS[0]), LEASE)
    world.deliver_user(_user_event(7, EventType.USER_DELETED, USERS[0]))  # arrives last
    assert world.crm.members == {(_company(world, ORGS[1]), "c_u1"): []}


def test_with_delete_policy_none_a_users_delete_leaves_its_memberships() -> None:
    world = World(remove_on_user_delete=False)
    _joined(world, USERS[0], ORGS[:1])
    calls = world.crm.calls
    world.deliver_user(_user_event(9, EventType.USER_DELETED, USERS[0]))
    assert world.crm.calls == calls
    assert world.crm.members == {(_company(world, ORGS[0]), "c_u1"): []}
