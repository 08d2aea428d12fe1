"""Organization events: the fixtures parse to what the sync uses; malformed ones name the field.

The fixtures (`tests/events/organization_*.json`) follow Auth0's Events Catalog pages
(https://auth0.com/docs/events/organization/organization.member.added and its siblings) and
the generated SDK types of node-auth0 (`Management.EventStreamCloudEventOrgCreatedObject`:
`id`, `name?`, `display_name?`, `metadata?`, `branding?`; `...OrgDeletedObject`: the same
without branding; `...OrgMemberAddedObject`: `organization {id, name?}`, `user {user_id}`;
`...OrgMemberRoleAssignedObject`: the same plus `role {id, name}`), inside the EventBridge
envelope as for the user events.
"""

from __future__ import annotations

import pytest

from auth0_sync.errors import InvalidEvent
from auth0_sync.events import parse_event
from auth0_sync.names import OrgEventType
from auth0_sync.org_events import parse_org_event
from tests.conftest import load_event

pytestmark = pytest.mark.unit


def org(name: str):  # type: ignore[no-untyped-def]
    return parse_org_event(parse_event(load_event(name)))


def test_organization_created_carries_the_names() -> None:
    event = org("organization_created")
    assert event.event_type is OrgEventType.ORG_CREATED
    assert (event.org_id, event.name, event.display_name) == (
        "org_W8cRZbK2fN7pQ4tx",
        "acme-robotics",
        "Acme Robotics",
    )
    assert event.user_id is None


def test_member_and_role_events_name_the_user_and_the_role() -> None:
    added = org("organization_member_added")
    assert (added.org_id, added.user_id) == (
        "org_W8cRZbK2fN7pQ4tx",
        "auth0|65e5a1f0c2b7d94e1a3f0c11",
    )
    role = org("organization_member_role_assigned")
    assert (role.role_id, role.role_name) == ("rol_Xb3kP9sQ2vN8mT4c", "billing-admin")
    assert org("organization_member_role_deleted").event_type is OrgEventType.ROLE_DELETED
    assert org("organization_member_deleted").event_type is OrgEventType.MEMBER_DELETED
    assert org("organization_deleted").event_type is OrgEventType.ORG_DELETED


def test_order_key_is_event_time_then_removal_after_addition() -> None:
    added = org("organization_member_added")
    assert added.order_key == "2026-01-10T09:05:00.000000+00:00|0|evt_Mem1aB2cD3eF4gH5iJ6kL"
    # Same time, a removal ranks after an addition.
    assert added.order_key.replace("|0|", "|1|") > added.order_key


def test_member_event_without_user_names_the_field() -> None:
    with pytest.raises(InvalidEvent, match=r"detail\.data\.object\.user: Field required"):
        org("malformed_member_without_user")


def test_role_event_without_role_name_names_the_field() -> None:
    raw = load_event("organization_member_role_assigned")
    del raw["detail"]["data"]["object"]["role"]["name"]
    with pytest.raises(InvalidEvent, match=r"detail\.data\.object\.role\.name: Field required"):
        parse_org_event(parse_event(raw))


def test_organization_event_without_id_names_the_field() -> None:
    raw = load_event("organization_updated")
    del raw["detail"]["data"]["object"]["id"]
    with pytest.raises(InvalidEvent, match=r"detail\.data\.object\.id: Field required"):
        parse_org_event(parse_event(raw))


def test_dlq_listings_name_the_member_of_a_member_event() -> None:
    from auth0_sync.events import identity_of

    assert identity_of(load_event("organization_member_added")) == {
        "event_id": "evt_Mem1aB2cD3eF4gH5iJ6kL",
        "event_type": "organization.member.added",
        "user_id": "auth0|65e5a1f0c2b7d94e1a3f0c11",
    }
    assert identity_of(load_event("organization_created"))["user_id"] is None
