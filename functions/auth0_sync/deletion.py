"""user.deleted: the tombstone, and what the delete does to the contact (`DELETE_POLICY`).

A pending tombstone (no contact found yet) is settled by an older event that reveals the
contact; every deactivation asks the live path's brake first (`auth0_sync.deactivation_window`).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from auth0_sync.deactivation_window import hold_unless_admitted
from auth0_sync.destinations import (
    DEACTIVATED,
    EMAIL_FIELD,
    OWNER_FIELD,
    STAMP_FIELD,
    STATUS_FIELD,
    Archiving,
    Erasing,
)
from auth0_sync.errors import (
    TransientError,
)
from auth0_sync.events import Auth0BusEvent, iso
from auth0_sync.names import SkipReason
from auth0_sync.outcome import Applied
from auth0_sync.ownership import (
    Found,
    owner_of,
)
from auth0_sync.settings import DeletePolicy
from auth0_sync.state import SyncState, order_key_text
from auth0_sync.sync_base import CoreBase, Decision

# Older events a pending delete looked up in vain, kept per user (see SyncState.searched).
MAX_SEARCHED = 32


def searched_note(current: SyncState, event: Auth0BusEvent) -> str:
    """The note that `event` was looked up for the user's current tombstone (ids only)."""
    return f"{current.deleted_at}|{event.event_id}"


class Deletions(CoreBase):
    """Deletes: record the tombstone, then deactivate, anonymize, archive or erase."""

    def _delete(self, event: Auth0BusEvent, current: SyncState) -> Decision:
        tombstone = replace(
            self._advanced(current, event),
            deleted_at=iso(event.change_time),
            life_start=order_key_text(event.order_key),
            written={},
            stated={},
            linked=[],
        )
        if self.settings.delete_policy == DeletePolicy.NONE:
            # Only the order is kept (a late event must not resurrect the user); no CRM call.
            state = replace(tombstone, delete_done=True)
            outcome = self._outcome(event, "skipped", SkipReason.DELETE_POLICY_NONE)
            return Decision(state, outcome)
        found = self.correlation.find_own(event, current)
        if found is None:
            reason = SkipReason.ACCOUNT_LINKED if current.linked_to else SkipReason.CONTACT_MISSING
            # Without a contact the tombstone stays pending: a later-arriving older event
            # that reveals the contact deactivates it then (not for a linked secondary).
            state = replace(
                tombstone, contact_id=None, matched_by=None, delete_done=bool(current.linked_to)
            )
            return Decision(state, self._outcome(event, "skipped", reason, current.contact_id))
        return self._deactivate(event, tombstone, found)

    def _reveal(self, event: Auth0BusEvent, current: SyncState) -> Decision:
        """A pending tombstone meets an older event: deactivate the contact it points to.
        One that revealed nothing is noted, so its duplicates cost no CRM call."""
        skipped = self._outcome(event, "skipped", SkipReason.DELETED)
        if searched_note(current, event) in current.searched:
            return Decision(None, skipped)
        found = self.correlation.find_own(event, current)
        if found is None:
            searched = [*current.searched, searched_note(current, event)][-MAX_SEARCHED:]
            return Decision(replace(current, searched=searched), skipped)
        return self._deactivate(event, current, found)

    def _deactivate(self, event: Auth0BusEvent, tombstone: SyncState, found: Found) -> Decision:
        hold_unless_admitted(self.window)  # past the window's limit: to the DLQ, for a person
        body: dict[str, Any] = {STATUS_FIELD: DEACTIVATED, STAMP_FIELD: tombstone.deleted_at}
        if self.settings.delete_policy == DeletePolicy.ARCHIVE:
            assert isinstance(self.crm, Archiving)  # Settings allows archive for HubSpot only
            if not self.crm.archive_contact(found.id):
                raise TransientError(f"contact {found.id} vanished while archived", "crm_404")
            # The contact is gone from the CRM's lists; a re-signup gets a new one.
            state = replace(tombstone, contact_id=None, matched_by=None, delete_done=True)
            return Decision(state, self._outcome(event, "applied", Applied.ARCHIVED, found.id))
        if self.settings.delete_policy == DeletePolicy.ERASE:
            assert isinstance(self.crm, Erasing)  # Settings allows erase for HubSpot only
            if not self.crm.erase_contact(found.id):
                raise TransientError(f"contact {found.id} vanished while erased", "crm_404")
            # Gone for good; the state keeps only the order (and no contact id).
            state = replace(tombstone, contact_id=None, matched_by=None, delete_done=True)
            return Decision(state, self._outcome(event, "applied", Applied.ERASED, found.id))
        if self.settings.delete_policy == DeletePolicy.ANONYMIZE:
            body.update(self._erasure())
            applied = Applied.ANONYMIZED
        else:
            if owner_of(found.contact) is None:
                body[OWNER_FIELD] = event.user_id  # as if the older events had come first
            applied = Applied.DEACTIVATED
        answer = self.writes.update(
            found.id,
            body,
            user_id=event.user_id,
            expected_owner=owner_of(found.contact),
            version=self.writes.version(found.id),
        )
        if answer is None:
            raise TransientError(f"contact {found.id} vanished while it was deleted", "crm_404")
        if applied is Applied.ANONYMIZED:
            # Nothing on the contact links it to the person any more; keep only the order.
            state = replace(tombstone, contact_id=None, matched_by=None, delete_done=True)
        else:
            version = self.writes.version(found.id)
            state = replace(
                tombstone,
                contact_id=found.id,
                matched_by=found.how,
                delete_done=True,
                version=version,
            )
        return Decision(state, self._outcome(event, "applied", applied, found.id))

    def _erasure(self) -> dict[str, Any]:
        """Every field we map cleared, a random address, and no link to the Auth0 user."""
        body: dict[str, Any] = {
            target: None
            for target in self.settings.field_mapping.values()
            if target not in self.settings.required_crm_fields
        }
        body[EMAIL_FIELD] = f"deleted-{uuid.uuid4().hex}@anonymized.invalid"
        body[OWNER_FIELD] = ""
        return body
