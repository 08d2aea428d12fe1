"""The sync: one Auth0 user event -> the right change to one CRM contact.

It applies three rules, each stated once in its own module:
- order (`auth0_sync.ordering`): stale events, ties, past lives;
- ownership (`auth0_sync.ownership`): which contact an event may write, and claims;
- what a write contains (`auth0_sync.mapping`): only the mapped fields that differ from
  what was last written; a field the event shows removed is cleared.
Here they meet the lifecycle: signups, updates, late events, deletes, new lives, links.
This module keeps the frame (order, lease, commit) and sends each event to its part, one
module per lifecycle on a shared base (`auth0_sync.sync_base`): `auth0_sync.upsert`,
`auth0_sync.deletion`, `auth0_sync.lateness`.

Every change for one user runs under that user's lease in the state store, so decisions
see the latest state and never race; the CRM and the state store are adapters passed in.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from aws_lambda_powertools import Logger

from auth0_sync.deletion import Deletions, searched_note
from auth0_sync.errors import TransientError
from auth0_sync.events import TYPE_RANK, Auth0BusEvent, UserProfile, iso, looks_like_a_login
from auth0_sync.lateness import Lateness
from auth0_sync.mapping import digests, get_path
from auth0_sync.names import SERVICE_NAME, EventType, SkipReason
from auth0_sync.ordering import ordering_skip
from auth0_sync.outcome import Applied, Outcome, Status
from auth0_sync.state import Settled, StateStore, SyncState, Unchanged, order_key_text
from auth0_sync.sync_base import LEASE_WAIT_SECONDS, TRANSFER_LEASE_SECONDS, Decision, Written
from auth0_sync.upsert import Upserts

__all__ = [
    "LEASE_WAIT_SECONDS",
    "TRANSFER_LEASE_SECONDS",
    "Applied",
    "Decision",
    "Outcome",
    "StateStore",
    "Status",
    "SyncCore",
    "Written",
    "ordering_skip",
]

logger = Logger(service=SERVICE_NAME, child=True)


class SyncCore(Upserts, Deletions, Lateness):
    """Applies created/updated/deleted events to the CRM under the user's lease."""

    def apply(self, event: Auth0BusEvent, lease_seconds: float) -> Outcome:
        """Apply one validated event of a handled type; raises Transient/PermanentError.

        DynamoDB requests: a login that changes nothing, 1 (`_without_lease`); a duplicate
        or stale event, 1 (the state a failed write returns settles it); a change, 2 (take
        the lease only if the event is newer, commit), 3 when it looked like a login."""
        owner = f"{event.event_id}:{uuid.uuid4().hex[:8]}"
        if self._looks_like_noise(event):
            quick = self._without_lease(event)
            if quick is not None:
                return quick
            current = self._acquire(event.user_id, owner, lease_seconds)
        else:
            key = order_key_text(event.order_key)
            found = self._acquire(event.user_id, owner, lease_seconds, newer_than=key)
            if isinstance(found, Settled):
                settled = self._settle(event, found.state)
                if settled is not None:
                    return settled
                current = self._acquire(event.user_id, owner, lease_seconds)
            else:
                current = found
        self.writes.begin()
        try:
            decision = self._decide(event, current)
            since = self.writes.unconfirmed_since()
            if since is not None:  # a write of unknown outcome: the next one waits
                decision.state = replace(decision.state or current, unconfirmed=since)
            if decision.state is None:
                self.state.release(event.user_id, owner)
            else:
                self.state.commit(decision.state, owner)
        except TransientError:
            since = self.writes.unconfirmed_since()
            if since is None:
                self.state.release(event.user_id, owner)
                raise
            # Not advanced (the event is retried), but what was sent may still land.
            try:
                self.state.commit(replace(current, unconfirmed=since), owner)
            except BaseException:
                self.state.release(event.user_id, owner)
            raise
        except BaseException:
            # A failed decision or commit must not keep the lease: the retry needs it.
            self.state.release(event.user_id, owner)
            raise
        if decision.error is not None:
            raise decision.error
        return decision.outcome

    def _looks_like_noise(self, event: Auth0BusEvent) -> bool:
        """A `user.updated` that may change nothing (a login): worth trying without the
        lease. A signup, a delete or a visible edit takes the lease at once."""
        return event.event_type == EventType.USER_UPDATED and not self._visibly_changed(event)

    def _without_lease(self, event: Auth0BusEvent) -> Outcome | None:
        """Most events change nothing (logins, duplicates, late arrivals): settle them with one
        conditional write, or the state that write returns when it fails; None when the
        event needs the lease."""
        profile = event.user
        assert isinstance(profile, UserProfile)
        desired = self._desired(event)
        seen = Unchanged(
            key=order_key_text(event.order_key),
            change_time=iso(event.change_time),
            rank=TYPE_RANK[EventType(event.event_type)],
            event_id=event.event_id,
            digests=digests(desired),
            linked=profile.linked_user_ids,
        )
        current = self.state.record_unchanged(event.user_id, seen)
        if current is None:
            return self._outcome(event, "skipped", SkipReason.UNCHANGED)
        return self._settle(event, current)

    def _settle(self, event: Auth0BusEvent, current: SyncState) -> Outcome | None:
        """The skip the state alone decides (duplicate, deleted, stale with nothing left to
        say), as `_decide` would; None when the event needs the lease. What the state says
        only moves forward: a skip decided on it stays right, leased or not."""
        skip = ordering_skip(current, event)
        if skip is SkipReason.STALE:
            self._note_past_links(event, current)
        pending = current.deleted_at is not None and not current.delete_done
        if skip is SkipReason.DELETED and searched_note(current, event) in current.searched:
            pending = False  # looked up for this delete before, and revealed nothing
        if skip is SkipReason.DUPLICATE or (skip is SkipReason.DELETED and not pending):
            return self._outcome(event, "skipped", skip, current.contact_id)
        if skip is SkipReason.STALE and event.event_type != EventType.USER_DELETED:
            key = order_key_text(event.order_key)
            fresh = any(current.stated.get(name, "") < key for name in self._desired(event))
            if not fresh:
                return self._outcome(event, "skipped", skip, current.contact_id)
        return None

    def _visibly_changed(self, event: Auth0BusEvent) -> bool:
        """The event shows a change (`previous_object` differs in a mapped attribute, or the
        update is an edit, not a login): no use trying the quick path. A guess either way
        costs one request, never a wrong result: the lease path decides on the state."""
        previous = event.detail.data.previous_object
        now = event.detail.data.object
        if previous is None:
            return not looks_like_a_login(now)
        return any(
            get_path(previous, path) != get_path(now, path) for path in self.settings.field_mapping
        )

    def _decide(self, event: Auth0BusEvent, current: SyncState) -> Decision:
        skip = ordering_skip(current, event)
        is_delete = event.event_type == EventType.USER_DELETED
        pending = current.deleted_at is not None and not current.delete_done
        late = skip is SkipReason.STALE and bool(current.contact_id and current.written)
        revealing = skip is SkipReason.DELETED and not is_delete and pending
        if skip is None or revealing or late or (skip is SkipReason.STALE and is_delete):
            # A write of unknown outcome may still land: nothing newer is written before.
            self.writes.wait_for_unconfirmed(current.unconfirmed)
        if revealing:
            # The delete found no contact; this older event may say where it is.
            return self._reveal(event, current)
        if skip is SkipReason.STALE and is_delete:
            # A delete older than a re-signup already applied: it ends a past life only.
            return self._past_life(event, current)
        if late:
            # Older than the last change, but it may speak of fields no newer event did.
            return self._late(event, current)
        if skip is not None:
            return Decision(None, self._outcome(event, "skipped", skip, current.contact_id))
        if is_delete:
            return self._delete(event, current)
        return self._upsert(event, current)
