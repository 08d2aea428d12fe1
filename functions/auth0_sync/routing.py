"""The one definition of routing: event type -> handler and EventBridge rule pattern.

The CDK stack builds its rules and functions from `ROUTES`, the local runner dispatches
with `route_for`, and the tests check both against it, so the three cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auth0_sync.names import LEGACY_TYPE_PREFIX, PARTNER_SOURCE_PREFIX, EventType, OrgEventType


@dataclass(frozen=True)
class Route:
    event_type: EventType | OrgEventType
    # Dotted module path (inside the code asset) and the function name Lambda calls.
    module: str
    construct_id: str

    @property
    def handler(self) -> str:
        """The Lambda handler string, e.g. `auth0_sync.handlers.user_created.handler`."""
        return f"{self.module}.handler"

    @property
    def handler_file(self) -> str:
        """Path of the handler module relative to the asset root."""
        return self.module.replace(".", "/") + ".py"

    def event_pattern(self) -> dict[str, Any]:
        """Match `detail.type` (both spellings) from an Auth0 partner source."""
        return {
            "source": [{"prefix": PARTNER_SOURCE_PREFIX}],
            "detail": {"type": [str(self.event_type), LEGACY_TYPE_PREFIX + self.event_type]},
        }


USER_ROUTES: tuple[Route, ...] = (
    Route(EventType.USER_CREATED, "auth0_sync.handlers.user_created", "UserCreated"),
    Route(EventType.USER_UPDATED, "auth0_sync.handlers.user_updated", "UserUpdated"),
    Route(EventType.USER_DELETED, "auth0_sync.handlers.user_deleted", "UserDeleted"),
)
# Organizations (issue 24): one handler module per type, as for users; the CDK context key
# `organizations` (names.CONTEXT_ORGANIZATIONS) leaves them out of the stack.
ORG_ROUTES: tuple[Route, ...] = (
    Route(OrgEventType.ORG_CREATED, "auth0_sync.handlers.org_created", "OrgCreated"),
    Route(OrgEventType.ORG_UPDATED, "auth0_sync.handlers.org_updated", "OrgUpdated"),
    Route(OrgEventType.ORG_DELETED, "auth0_sync.handlers.org_deleted", "OrgDeleted"),
    Route(OrgEventType.MEMBER_ADDED, "auth0_sync.handlers.org_member_added", "OrgMemberAdded"),
    Route(
        OrgEventType.MEMBER_DELETED, "auth0_sync.handlers.org_member_deleted", "OrgMemberDeleted"
    ),
    Route(
        OrgEventType.ROLE_ASSIGNED,
        "auth0_sync.handlers.org_member_role_assigned",
        "OrgMemberRoleAssigned",
    ),
    Route(
        OrgEventType.ROLE_DELETED,
        "auth0_sync.handlers.org_member_role_deleted",
        "OrgMemberRoleDeleted",
    ),
)
ROUTES: tuple[Route, ...] = USER_ROUTES + ORG_ROUTES

_BY_TYPE = {route.event_type.value: route for route in ROUTES}


def route_for(event_type: str) -> Route | None:
    """The route for a normalised event type, or None for a type we ignore (and count)."""
    return _BY_TYPE.get(event_type)
