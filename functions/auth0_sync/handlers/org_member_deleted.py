"""Lambda handler for `organization.member.deleted` events (its own EventBridge rule)."""

from auth0_sync.lambda_app import make_handler
from auth0_sync.names import OrgEventType

handler = make_handler(OrgEventType.MEMBER_DELETED)
