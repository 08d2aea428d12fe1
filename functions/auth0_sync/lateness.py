"""Events older than the last change: a late update's fields no newer event spoke of, a
late delete that ends a past life, and a link only a late event shows.
"""

from __future__ import annotations

from dataclasses import replace

from auth0_sync.destinations import (
    ACTIVE,
    STATUS_FIELD,
)
from auth0_sync.errors import (
    TransientError,
)
from auth0_sync.events import Auth0BusEvent, UserProfile
from auth0_sync.mapping import changed
from auth0_sync.names import SkipReason
from auth0_sync.outcome import Applied
from auth0_sync.state import SyncState, order_key_text
from auth0_sync.sync_base import CoreBase, Decision


class Lateness(CoreBase):
    """Late events: what they may still say, never undoing anything newer."""

    def _past_life(self, event: Auth0BusEvent, current: SyncState) -> Decision:
        """A late delete: what only the past life said about a field is cleared."""
        key = order_key_text(event.order_key)
        clears: dict[str, str | None] = {
            # A status is never cleared: a block only the past life showed ends with it.
            name: ACTIVE if name == STATUS_FIELD else None
            for name, said in current.stated.items()
            if said < key and name not in self.settings.required_crm_fields
        }
        state = replace(
            current, life_start=key, stated={**current.stated, **dict.fromkeys(clears, key)}
        )
        changes = changed(clears, current.written)
        if not changes or not current.contact_id:
            return Decision(state, self._outcome(event, "skipped", SkipReason.STALE))
        written = self._write(
            event,
            current.contact_id,
            changes,
            current.written,
            {},
            version=current.version,
            owner=event.user_id,
        )
        if written is None:
            raise TransientError(f"contact {current.contact_id} is gone from the CRM", "crm_404")
        state = replace(state, written=written.digests, version=written.version)
        return Decision(state, self._outcome(event, "applied", Applied.UPDATED, current.contact_id))

    def _late(self, event: Auth0BusEvent, current: SyncState) -> Decision:
        """A late event sets the fields whose last word is older than it (order unchanged)."""
        assert current.contact_id is not None
        key = order_key_text(event.order_key)
        fresh = {
            name: value
            for name, value in self._desired(event).items()
            if current.stated.get(name, "") < key
        }
        changes = changed(fresh, current.written)
        stated = {**current.stated, **dict.fromkeys(fresh, key)}
        if not changes:
            outcome = self._outcome(event, "skipped", SkipReason.STALE, current.contact_id)
            return Decision(replace(current, stated=stated) if fresh else None, outcome)
        written = self._update_own(event, current, changes, replace(current, stated=stated))
        if isinstance(written, Decision):
            return written
        if written is None:
            raise TransientError(f"contact {current.contact_id} is gone from the CRM", "crm_404")
        state = replace(current, stated=stated, written=written.digests, version=written.version)
        outcome = self._outcome(event, "applied", Applied.UPDATED, current.contact_id)
        return Decision(state, outcome, written.conflict)

    def _note_past_links(self, event: Auth0BusEvent, current: SyncState) -> None:
        """A late event of a primary may be the only one that showed a link (the unlink
        came first): the secondary is marked then, unless it already is. A read and a
        write, only for a late event listing a secondary the primary no longer lists."""
        profile = event.user
        if not isinstance(profile, UserProfile):
            return
        for secondary in sorted(set(profile.linked_user_ids) - set(current.linked)):
            known = self.state.get(secondary)
            if known is None or known.linked_to is None:
                key = order_key_text(event.order_key)
                self.state.mark_linked(secondary, profile.user_id, key)
