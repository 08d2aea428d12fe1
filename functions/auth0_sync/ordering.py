"""The order of one user's changes, stated once.

Changes are ordered by change time, then by type at a tie (a delete over an update over a
create), then by event id (`Auth0BusEvent.order_key`); the user's last delete starts a new
life, and anything not newer than it belongs to a past life.
"""

from __future__ import annotations

from auth0_sync.events import Auth0BusEvent
from auth0_sync.names import SkipReason
from auth0_sync.state import SyncState, order_key_text


def ordering_skip(state: SyncState, event: Auth0BusEvent) -> SkipReason | None:
    """Whether the event is already covered by what was applied (None: go ahead)."""
    if state.last_event_id == event.event_id:
        return SkipReason.DUPLICATE
    if state.life_start and order_key_text(event.order_key) <= state.life_start:
        # Not newer than the user's last delete (a delete wins a tie): a past life.
        return SkipReason.DELETED
    last = state.order_key
    if last is not None and event.order_key < last:
        return SkipReason.STALE
    return None
