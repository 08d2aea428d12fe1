"""Auth0 organization events (`organization.*`): their `data.object`, typed and checked.

The shapes follow Auth0's Events Catalog (https://auth0.com/docs/events/organization/...)
and its generated SDK types (node-auth0 `Management.EventStreamCloudEventOrgCreatedObject`,
`...OrgDeletedObject`, `...OrgMemberAddedObject`, `...OrgMemberRoleAssignedObject`):

- `organization.created|updated|deleted`: the organization itself, `id` required, `name`,
  `display_name`, `metadata` (and `branding` on created/updated) optional;
- `organization.member.added|deleted`: `{organization: {id, name?}, user: {user_id}}`;
- `organization.member.role.assigned|deleted`: the same plus `role: {id, name}`.

None of them carries an `updated_at`: the order of one organization's (or one
membership's) changes is the CloudEvent `time` ("when the event physically occurred"),
then the type at a tie, then the event id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auth0_sync.errors import InvalidEvent
from auth0_sync.events import MAX_USER_ID_LENGTH, Auth0BusEvent, iso
from auth0_sync.names import OrgEventType

# Organization ids are `org_` + 16 characters; anything in a DynamoDB key stays far shorter.
OrgId = Annotated[str, Field(min_length=1, max_length=MAX_USER_ID_LENGTH)]
UserId = Annotated[str, Field(min_length=1, max_length=MAX_USER_ID_LENGTH)]

ORG_TYPES = frozenset(str(t) for t in OrgEventType)
MEMBER_TYPES = frozenset({OrgEventType.MEMBER_ADDED, OrgEventType.MEMBER_DELETED})
ROLE_TYPES = frozenset({OrgEventType.ROLE_ASSIGNED, OrgEventType.ROLE_DELETED})
# At equal times: a removal wins over an addition (as a delete over an update for users).
ORG_TYPE_RANK = {
    OrgEventType.ORG_CREATED: 0,
    OrgEventType.ORG_UPDATED: 1,
    OrgEventType.ORG_DELETED: 2,
    OrgEventType.MEMBER_ADDED: 0,
    OrgEventType.MEMBER_DELETED: 1,
    OrgEventType.ROLE_ASSIGNED: 0,
    OrgEventType.ROLE_DELETED: 1,
}


class _Organization(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: OrgId
    name: str | None = None
    display_name: str | None = None


class _User(BaseModel):
    model_config = ConfigDict(extra="allow")

    user_id: UserId


class _Role(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)


class _Member(BaseModel):
    model_config = ConfigDict(extra="allow")

    organization: _Organization
    user: _User


class _MemberRole(_Member):
    role: _Role


@dataclass(frozen=True)
class OrgEvent:
    """One organization event, reduced to what the sync uses."""

    event_id: str
    event_type: OrgEventType
    org_id: str
    time: str  # fixed-width ISO-8601 UTC (`iso`)
    name: str | None = None
    display_name: str | None = None
    user_id: str | None = None  # member and role events
    role_id: str | None = None  # role events
    role_name: str | None = None

    @property
    def order_key(self) -> str:
        """One sortable string: time, type rank at a tie, then the event id."""
        return f"{self.time}|{ORG_TYPE_RANK[self.event_type]}|{self.event_id}"


def is_org_event(event_type: str) -> bool:
    return event_type in ORG_TYPES


def parse_org_event(event: Auth0BusEvent) -> OrgEvent:
    """The typed organization event; `InvalidEvent` naming the field when malformed."""
    kind = OrgEventType(event.event_type)
    obj = event.detail.data.object
    base: dict[str, Any] = {
        "event_id": event.event_id,
        "event_type": kind,
        "time": iso(event.detail.time),
    }
    try:
        if kind in ROLE_TYPES:
            role = _MemberRole.model_validate(obj)
            return OrgEvent(
                **base,
                org_id=role.organization.id,
                user_id=role.user.user_id,
                role_id=role.role.id,
                role_name=role.role.name,
            )
        if kind in MEMBER_TYPES:
            member = _Member.model_validate(obj)
            return OrgEvent(**base, org_id=member.organization.id, user_id=member.user.user_id)
        org = _Organization.model_validate(obj)
    except ValidationError as exc:
        where = "; ".join(
            f"detail.data.object.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors()
        )
        raise InvalidEvent(where) from exc
    return OrgEvent(**base, org_id=org.id, name=org.name, display_name=org.display_name)
