"""The organization rules in every arrival order, with duplicates, against an in-memory CRM.

Each history is a valid Auth0 timeline of one organization (its create, renames, members
added and removed, roles assigned and removed, maybe its delete), generated step by step
with Auth0's own state beside it: that state is the truth the CRM must end equal to. The
sync under test sees the events shuffled and duplicated, and the users' contacts appear at
random points of the delivery (a membership may arrive before its contact, or before its
organization's company).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth0_sync.events import iso
from auth0_sync.names import OrgEventType, SkipReason
from auth0_sync.org_events import OrgEvent
from auth0_sync.org_state import MemoryOrgStateStore
from auth0_sync.organizations import OrganizationSync, UserLink
from tests.fakes.memory_companies import MemoryCompanies

pytestmark = pytest.mark.unit

ORG = "org_W8cRZbK2fN7pQ4tx"
USERS = ("auth0|u1", "auth0|u2", "auth0|u3")
ROLES = {"rol_admin": "admin", "rol_billing": "billing"}
T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
LEASE = 30.0


@dataclass
class Truth:
    """Auth0's organization as the timeline leaves it."""

    name: str = "acme"
    display_name: str | None = "Acme"
    deleted: bool = False
    members: dict[str, set[str]] = field(default_factory=dict)  # user -> role names


@dataclass
class History:
    events: list[OrgEvent]
    truth: Truth


def _event(n: int, kind: OrgEventType, **fields: str | None) -> OrgEvent:
    return OrgEvent(
        event_id=f"evt_{n:04d}",
        event_type=kind,
        org_id=ORG,
        time=iso(T0 + timedelta(seconds=n)),
        **fields,
    )


@st.composite
def histories(draw: st.DrawFn) -> History:
    truth = Truth()
    events = [_event(0, OrgEventType.ORG_CREATED, name=truth.name, display_name="Acme")]
    for n in range(1, draw(st.integers(1, 14)) + 1):
        user = draw(st.sampled_from(USERS))
        roles = truth.members.get(user)
        step = draw(st.sampled_from(["rename", "member", "role", "role"]))
        if step == "rename":
            display = draw(st.sampled_from(["Acme", "Acme GmbH", None]))
            truth.display_name = display
            events.append(_event(n, OrgEventType.ORG_UPDATED, name="acme", display_name=display))
        elif step == "member" or roles is None:
            if roles is None:
                truth.members[user] = set()
                events.append(_event(n, OrgEventType.MEMBER_ADDED, user_id=user))
            else:  # Auth0 ends the member's roles with the membership
                del truth.members[user]
                events.append(_event(n, OrgEventType.MEMBER_DELETED, user_id=user))
        else:
            role_id = draw(st.sampled_from(sorted(ROLES)))
            name = ROLES[role_id]
            kind = OrgEventType.ROLE_DELETED if name in roles else OrgEventType.ROLE_ASSIGNED
            (roles.discard if name in roles else roles.add)(name)
            events.append(_event(n, kind, user_id=user, role_id=role_id, role_name=name))
    if draw(st.booleans()) and draw(st.booleans()):
        truth.deleted = True
        events.append(_event(len(events), OrgEventType.ORG_DELETED, name="acme"))
    return History(events, truth)


@dataclass
class World:
    crm: MemoryCompanies = field(default_factory=MemoryCompanies)
    contacts: dict[str, str] = field(default_factory=dict)  # user -> contact (user state)
    state: MemoryOrgStateStore = field(default_factory=MemoryOrgStateStore)

    def __post_init__(self) -> None:
        self.sync = OrganizationSync(self.crm, self.state, self.user_of, "rest")

    def user_of(self, user: str) -> UserLink:
        return UserLink(self.contacts.get(user))

    def contact_appears(self, user: str) -> None:
        contact = f"c_{user.split('|')[1]}"
        self.crm.contacts.add(contact)
        self.contacts[user] = contact
        self.sync.contact_ready(user, LEASE)


def expected_memberships(world: World, truth: Truth) -> dict[tuple[str, str], list[str]]:
    (company_id,) = world.crm.companies
    return {(company_id, world.contacts[u]): sorted(r) for u, r in truth.members.items()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), data=st.data())
def test_every_arrival_order_with_duplicates_ends_at_the_truth(
    history: History, data: st.DataObject
) -> None:
    world = World()
    duplicates = data.draw(st.lists(st.sampled_from(history.events), max_size=6))
    deliveries: list[OrgEvent | str] = [*history.events, *duplicates]
    # Some users' contacts exist from the start, the others appear mid-stream.
    late = data.draw(st.lists(st.sampled_from(USERS), unique=True))
    for user in USERS:
        if user not in late:
            world.contact_appears(user)
    deliveries += late
    order = data.draw(st.permutations(deliveries))

    seen: set[str] = set()
    for item in order:
        if isinstance(item, str):
            world.contact_appears(item)
            continue
        before = world.crm.calls
        outcome = world.sync.apply(item, LEASE)
        assert outcome.status != "dead_lettered"
        if item.event_id in seen:  # a duplicate costs no CRM call (stale once passed)
            assert outcome.reason in {SkipReason.DUPLICATE, SkipReason.STALE, SkipReason.DELETED}
            assert world.crm.calls == before
        seen.add(item.event_id)

    if history.truth.deleted:  # deleted before it was ever seen: no company at all
        assert all(c["status"] == "deactivated" for c in world.crm.companies.values())
        assert world.crm.members == {}
        return
    (company,) = world.crm.companies.values()
    assert company["auth0_org_id"] == ORG
    assert company["status"] == "active"
    assert company["name"] == history.truth.name
    assert company.get("display_name") == history.truth.display_name
    assert world.crm.members == expected_memberships(world, history.truth)


def test_a_late_member_added_never_undoes_a_newer_member_deleted() -> None:
    world = World()
    world.contact_appears(USERS[0])
    world.sync.apply(_event(0, OrgEventType.ORG_CREATED, name="acme"), LEASE)
    removed = world.sync.apply(_event(5, OrgEventType.MEMBER_DELETED, user_id=USERS[0]), LEASE)
    late = world.sync.apply(_event(3, OrgEventType.MEMBER_ADDED, user_id=USERS[0]), LEASE)
    assert (removed.reason, late.reason) == ("unchanged", SkipReason.STALE)
    assert world.crm.members == {}


def test_a_late_role_event_never_undoes_a_newer_one() -> None:
    world = World()
    world.contact_appears(USERS[0])
    world.sync.apply(_event(0, OrgEventType.ORG_CREATED, name="acme"), LEASE)
    world.sync.apply(_event(1, OrgEventType.MEMBER_ADDED, user_id=USERS[0]), LEASE)
    role = {"user_id": USERS[0], "role_id": "rol_admin", "role_name": "admin"}
    world.sync.apply(_event(4, OrgEventType.ROLE_DELETED, **role), LEASE)
    late = world.sync.apply(_event(2, OrgEventType.ROLE_ASSIGNED, **role), LEASE)
    assert late.reason == SkipReason.STALE
    assert list(world.crm.members.values()) == [[]]


def test_a_membership_before_its_contact_waits_and_is_applied_when_the_contact_appears() -> None:
    world = World()
    world.sync.apply(_event(0, OrgEventType.ORG_CREATED, name="acme"), LEASE)
    pending = world.sync.apply(_event(1, OrgEventType.MEMBER_ADDED, user_id=USERS[1]), LEASE)
    assert pending.reason == SkipReason.MEMBERSHIP_PENDING
    assert world.state.pending(USERS[1]) == {ORG}
    world.contact_appears(USERS[1])
    assert world.crm.members == {("co_1", "c_u2"): []}
    assert world.state.pending(USERS[1]) == set()


def test_renaming_writes_only_what_changed() -> None:
    world = World()
    world.sync.apply(_event(0, OrgEventType.ORG_CREATED, name="acme", display_name="Acme"), LEASE)
    world.sync.apply(
        _event(1, OrgEventType.ORG_UPDATED, name="acme", display_name="Acme GmbH"), LEASE
    )
    same = world.sync.apply(
        _event(2, OrgEventType.ORG_UPDATED, name="acme", display_name="Acme GmbH"), LEASE
    )
    assert [
        {k: v for k, v in p.items() if k != "source_updated_at"} for p in world.crm.patches
    ] == [{"display_name": "Acme GmbH"}]
    assert same.reason == SkipReason.UNCHANGED


def test_deleting_the_organization_deactivates_the_company_and_removes_memberships() -> None:
    world = World()
    world.contact_appears(USERS[0])
    world.sync.apply(_event(0, OrgEventType.ORG_CREATED, name="acme"), LEASE)
    world.sync.apply(_event(1, OrgEventType.MEMBER_ADDED, user_id=USERS[0]), LEASE)
    assert world.crm.members
    world.sync.apply(_event(9, OrgEventType.ORG_DELETED, name="acme"), LEASE)
    late = world.sync.apply(_event(2, OrgEventType.MEMBER_ADDED, user_id=USERS[1]), LEASE)
    assert world.crm.companies["co_1"]["status"] == "deactivated"
    assert world.crm.members == {}
    assert late.reason == SkipReason.DELETED


def test_a_destination_without_companies_skips_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    no_contacts: dict[str, str] = {}
    sync = OrganizationSync(
        None, MemoryOrgStateStore(), lambda u: UserLink(no_contacts.get(u)), "hubspot"
    )
    outcome = sync.apply(_event(0, OrgEventType.ORG_CREATED, name="acme"), LEASE)
    again = sync.apply(_event(1, OrgEventType.ORG_UPDATED, name="acme"), LEASE)
    assert (outcome.status, outcome.reason) == ("skipped", "organizations_unsupported")
    assert (again.status, again.reason) == ("skipped", "organizations_unsupported")
    # One line per cold start (the function's log), naming the destination.
    warnings = [r.getMessage() for r in caplog.records if "companies support" in r.getMessage()]
    assert warnings == [
        "organization events are skipped: the hubspot destination's adapter has no companies "
        "support (README, Organizations)"
    ]


def test_without_organizations_a_user_event_reads_no_pending_item() -> None:
    from auth0_sync.names import Env
    from auth0_sync.runtime import build_service
    from auth0_sync.settings import Settings
    from auth0_sync.state import MemorySyncStateStore

    base: dict[str, str] = {Env.CRM_BASE_URL: "https://crm.example.com", Env.CRM_API_TOKEN: "t"}
    off = build_service(
        Settings.from_env({**base, Env.ORGANIZATIONS: "false"}), state=MemorySyncStateStore()
    )
    on = build_service(Settings.from_env(base), state=MemorySyncStateStore())
    assert off.organizations is None
    assert on.organizations is not None
    assert on.organizations.companies is not None  # the REST destination has companies


def test_a_refused_pending_membership_never_fails_the_users_event() -> None:
    from auth0_sync.errors import CrmRejected

    world = World()
    world.sync.apply(_event(0, OrgEventType.ORG_CREATED, name="acme"), LEASE)
    world.sync.apply(_event(1, OrgEventType.MEMBER_ADDED, user_id=USERS[0]), LEASE)

    def refuse(company_id: str, contact_id: str, roles: object) -> bool:
        raise CrmRejected(422, "crm PUT membership: HTTP 422")

    world.crm.put_membership = refuse  # type: ignore[method-assign]
    world.contact_appears(USERS[0])  # no exception: the membership stays pending
    assert world.state.pending(USERS[0]) == {ORG}
