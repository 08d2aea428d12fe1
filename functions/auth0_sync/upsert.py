"""user.created / user.updated: the contact a user's event writes, found, taken or created.

Correlation and claims follow the ownership rule (`auth0_sync.ownership`); whether an event
may create follows the mode (`auth0_sync.modes`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from auth0_sync import modes
from auth0_sync.destinations import (
    ACTIVE,
    EMAIL_FIELD,
    OWNER_FIELD,
    STATUS_FIELD,
)
from auth0_sync.errors import (
    ContactExists,
    CrmRejected,
    OwnedByOther,
    TransientError,
)
from auth0_sync.events import Auth0BusEvent, UserProfile
from auth0_sync.links import standalone_again, unlinked_since
from auth0_sync.mapping import changed, digests
from auth0_sync.names import EventType, SkipReason
from auth0_sync.outcome import Applied
from auth0_sync.ownership import (
    Found,
    idempotency_key,
    owner_of,
)
from auth0_sync.policies import email_is_unverified, waits_for_an_email
from auth0_sync.state import SyncState, order_key_text
from auth0_sync.sync_base import TRANSFER_LEASE_SECONDS, CoreBase, Decision, Written


class Upserts(CoreBase):
    """Signups and updates: update the user's contact, take one found, or create one."""

    def _upsert(self, event: Auth0BusEvent, current: SyncState) -> Decision:
        profile = event.user
        assert isinstance(profile, UserProfile)
        linked = self._note_links(profile, current, order_key_text(event.order_key))
        new_life = current.deleted_at is not None
        # A new life starts clean: what the past life left on the contact is not kept.
        desired = self._desired(event, fresh_start=new_life)
        key = order_key_text(event.order_key)
        stated = {} if new_life else dict(current.stated)
        stated.update(dict.fromkeys(desired, key))
        seen = replace(
            self._advanced(current, event),
            deleted_at=None,
            delete_done=None,
            linked=linked,
            stated=stated,
        )
        base = current
        if current.contact_id and current.written and not new_life:
            changes = changed(desired, current.written)
            if not changes:
                # Login noise: the mapped values are what we last wrote; zero CRM calls.
                outcome = self._outcome(event, "skipped", SkipReason.UNCHANGED, current.contact_id)
                return Decision(seen, outcome)
            written = self._update_own(event, current, changes, seen)
            if isinstance(written, Decision):
                return written
            if written is not None:
                applied = Applied.UPDATED
                return self._done(seen, current, event, current.contact_id, written, applied)
            # Deleted in the CRM, or given to someone else there: find (or create) its own.
            base = replace(current, contact_id=None)
            seen = replace(seen, contact_id=None, written={}, version=None)
        # A signup we have never seen cannot carry its id on a contact unless we wrote it (and
        # then the state knows): it creates at once, and the CRM's uniqueness check on the
        # email (409) finds an existing contact atomically. Only a hint is looked at first.
        signup = event.event_type == EventType.USER_CREATED and not base.contact_id and not new_life
        signup = signup and modes.signup_creates_at_once(self.settings)
        email = desired.get(EMAIL_FIELD) or profile.email
        if waits_for_an_email(email, bool(base.contact_id), self.settings.no_email_policy):
            # No address to create a contact with, and nothing a person could fix: no CRM
            # call, no dead letter, nothing recorded; the first event with an email creates.
            return Decision(None, self._outcome(event, "skipped", SkipReason.NO_EMAIL))
        linked = self._linked(profile, base)
        # An unverified address never finds a contact that is not already the user's.
        lookup = None if self._refuses_email_claims(event) else email
        try:
            found = self.correlation.find(event, base, linked, lookup, hint_only=signup)
            if found is not None:
                return self._take(event, current, seen, found, desired, new_life)
            if not modes.may_create(self.settings, event.event_type):
                outcome = self._outcome(event, "skipped", SkipReason.CONTACT_MISSING)
                return Decision(replace(seen, contact_id=None, written={}), outcome)
            return self._create(event, current, seen, profile, desired, new_life)
        except OwnedByOther as exc:
            if exc.owner is not None and self._parted(event, current, linked, exc.owner):
                # Unlinked: the contact the primary took at the link stays the primary's;
                # this user (either side) gets its own (a 409 on a unique-email CRM stays
                # `owned_by_other`: two live users with one address wait for a person).
                return self._create(event, current, seen, profile, desired, new_life)
            if exc.owner is None or exc.owner != current.linked_to:
                raise
            # A secondary account's event (older than the link) reaching the contact its
            # primary took: the primary's profile is the truth there now.
            outcome = self._outcome(event, "skipped", SkipReason.ACCOUNT_LINKED)
            return Decision(replace(seen, contact_id=None, written={}), outcome)

    def _take(
        self,
        event: Auth0BusEvent,
        current: SyncState,
        seen: SyncState,
        found: Found,
        desired: Mapping[str, str | None],
        new_life: bool,
    ) -> Decision:
        """Write to a contact found in the CRM: claim it if needed, then only what differs."""
        previous_owner = owner_of(found.contact)
        if previous_owner in (None, event.user_id):
            return self._take_now(event, current, seen, found, desired, new_life)
        # The contact changes hands (a linked secondary's, a deleted user's). The previous
        # owner's events must not write it meanwhile: a secondary's delete deactivating it
        # after it became the primary's, or a late update putting the secondary's values on
        # it. So it changes hands under that user's lease as well; the contact is read
        # again (what their last event left on it), and their mapping to it is dropped, so
        # no later event of theirs writes it through the state.
        holder = f"{event.event_id}:transfer:{uuid.uuid4().hex[:8]}"
        theirs = self._acquire(previous_owner, holder, TRANSFER_LEASE_SECONDS)
        try:
            contact = self.crm.get_contact(found.id)
            if contact is None:
                gone = f"contact {found.id} vanished while it changed hands"
                raise TransientError(gone, "crm_404")
            profile = event.user
            assert isinstance(profile, UserProfile)
            if theirs.linked_to == event.user_id and unlinked_since(theirs):
                raise OwnedByOther(
                    f"contact {found.id} belongs to Auth0 user {previous_owner}, unlinked from "
                    f"Auth0 user {event.user_id} since the link",
                    previous_owner,
                )
            if not self.ownership.may_take(contact, event.user_id, self._linked(profile, current)):
                raise OwnedByOther(
                    f"contact {found.id} changed hands to Auth0 user {owner_of(contact)} "
                    f"while Auth0 user {event.user_id} was taking it",
                    owner_of(contact),
                )
            decision = self._take_now(
                event, current, seen, Found(contact, found.how), desired, new_life
            )
            if theirs.contact_id == found.id:
                self.state.commit(
                    replace(theirs, contact_id=None, matched_by=None, written={}), holder
                )
            else:
                self.state.release(previous_owner, holder)
        except BaseException:
            self.state.release(previous_owner, holder)
            raise
        return decision

    def _take_now(
        self,
        event: Auth0BusEvent,
        current: SyncState,
        seen: SyncState,
        found: Found,
        desired: Mapping[str, str | None],
        new_life: bool,
    ) -> Decision:
        profile = event.user
        assert isinstance(profile, UserProfile)
        self.ownership.claim(found, event.user_id)
        contact = found.contact
        previous_owner = owner_of(contact)
        fresh = new_life  # a new life starts clean, in every SYNC_MODE (the rule of order)
        if previous_owner not in (None, event.user_id) and previous_owner not in self._linked(
            profile, current
        ):
            # Taken over from a deleted user: none of that person's values stay on it.
            desired = self._desired(event, fresh_start=True)
            fresh = True
        baseline = digests({name: contact.get(name) for name in desired})
        extra: dict[str, Any] = {}
        if owner_of(contact) != event.user_id:
            extra[OWNER_FIELD] = event.user_id
        if STATUS_FIELD not in desired and contact.get(STATUS_FIELD) != ACTIVE:
            extra[STATUS_FIELD] = ACTIVE
        differs = changed(desired, baseline)
        # SYNC_MODE=create_only: what the contact holds stays (not a past life's values).
        changes = differs if fresh else modes.writable(self.settings, differs, contact)
        seen = replace(seen, matched_by=found.how)
        if not changes and not extra:
            # Already what Auth0 says (a state rebuilt from the CRM), or what the contact
            # holds stays (create_only): nothing to write.
            reason = SkipReason.HELD_BY_CRM if differs else SkipReason.UNCHANGED
            state = replace(
                seen,
                contact_id=found.id,
                written=baseline,
                version=self.writes.version(found.id),
                unconfirmed=None,
            )
            return Decision(state, self._outcome(event, "skipped", reason, found.id))
        written = self._write(
            event,
            found.id,
            changes,
            baseline,
            extra,
            version=self.writes.version(found.id),
            owner=previous_owner,
        )
        if written is None:
            raise TransientError(f"contact {found.id} vanished while it was written", "crm_404")
        if new_life and found.how == "state":
            applied = Applied.REACTIVATED
        elif found.how in ("state", "auth0_user_id") and not extra.get(OWNER_FIELD):
            applied = Applied.UPDATED
        else:
            applied = Applied.LINKED
        return self._done(seen, current, event, found.id, written, applied)

    def _create(
        self,
        event: Auth0BusEvent,
        current: SyncState,
        seen: SyncState,
        profile: UserProfile,
        desired: Mapping[str, str | None],
        new_life: bool,
    ) -> Decision:
        # Create first and let the CRM's own uniqueness check (409 on a known email) find an
        # existing contact: atomic, where "look up, then create" races with other writers.
        body = {STATUS_FIELD: ACTIVE}  # unless the user is blocked (then desired says so)
        body.update({name: value for name, value in desired.items() if value is not None})
        body.update({OWNER_FIELD: event.user_id, **self._stamp(event)})
        try:
            created = self.crm.create_contact(body, idempotency_key=idempotency_key(event))
        except ContactExists as exc:
            if self._refuses_email_claims(event):
                return self._unverified(event, current, seen, desired, new_life)
            email = desired.get(EMAIL_FIELD) or profile.email
            found = self.correlation.by_email(event.user_id, email, self._linked(profile, current))
            if found is None:
                raise CrmRejected(409, f"{exc.message}; but no contact has that email") from exc
            return self._take(event, current, seen, found, desired, new_life)
        if owner_of(created) not in (None, event.user_id):
            # The CRM answered with a contact it made for someone else (a key it had seen):
            # the ownership rule decides, as for any contact found there; never ours blindly.
            found = Found(created, "idempotency_key")
            return self._take(event, current, seen, found, desired, new_life)
        seen = replace(seen, matched_by="created")
        version = self.writes.version(str(created["id"]))
        return self._done(
            seen,
            current,
            event,
            str(created["id"]),
            Written(digests(desired), version=version),
            Applied.CREATED,
        )

    def _unverified(
        self,
        event: Auth0BusEvent,
        current: SyncState,
        seen: SyncState,
        desired: Mapping[str, str | None],
        new_life: bool,
    ) -> Decision:
        """An unverified email the CRM already holds (unique emails): the contact holding it
        is not claimed for this user. Its own, made by a create whose answer was lost, is
        still found by its id; otherwise the user waits, counted as `email_unverified`,
        until an event shows the address verified (or another user's changes free it)."""
        own = self.correlation.one(
            self.crm.find_contacts(auth0_user_id=event.user_id), f"carry {event.user_id}"
        )
        if own is not None:
            return self._take(event, current, seen, Found(own, "auth0_user_id"), desired, new_life)
        return Decision(None, self._outcome(event, "skipped", SkipReason.EMAIL_UNVERIFIED))

    def _refuses_email_claims(self, event: Auth0BusEvent) -> bool:
        """Auth0's guidance: match accounts by email only when the address is verified."""
        unverified = email_is_unverified(event.detail.data.object)
        return unverified and not self.settings.claim_unverified_email

    def _note_links(self, profile: UserProfile, current: SyncState, key: str) -> list[str]:
        """Mark newly linked secondary accounts (and when), so their delete is known as a
        link and their events after an unlink as their own."""
        linked = profile.linked_user_ids
        for secondary in sorted(set(linked) - set(current.linked)):
            self.state.mark_linked(secondary, profile.user_id, key)
        return linked

    def _parted(
        self, event: Auth0BusEvent, current: SyncState, linked: list[str], owner: str
    ) -> bool:
        """The contact is held by the other side of a link that has since been undone: this
        user is a secondary unlinked again, or the primary meeting a secondary unlinked."""
        if owner == current.linked_to:
            return standalone_again(current, order_key_text(event.order_key))
        return owner in linked
