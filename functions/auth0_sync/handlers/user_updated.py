"""Lambda handler for `user.updated` events (routed here by its own EventBridge rule)."""

from auth0_sync.lambda_app import make_handler
from auth0_sync.names import EventType

handler = make_handler(EventType.USER_UPDATED)
