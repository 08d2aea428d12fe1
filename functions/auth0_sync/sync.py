"""The sync: one Auth0 user event -> the right change to one CRM contact.

It applies three rules, each stated once in its own module:
- order (`auth0_sync.ordering`): stale events, ties, past lives;
- ownership (`auth0_sync.ownership`): which contact an event may write, and claims;
- what a write contains (`auth0_sync.mapping`): only the mapped fields that differ from
  what was last written; a field the event shows removed is cleared.
Here they meet the lifecycle: signups, updates, late events, deletes, new lives, links.

Every change for one user runs under that user's lease in the state store, so decisions
see the latest state and never race; the CRM and the state store are adapters passed in.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, overload

from aws_lambda_powertools import Logger

from auth0_sync import modes
from auth0_sync.deactivation_window import DeactivationWindow, hold_unless_admitted
from auth0_sync.destinations import (
    ACTIVE,
    DEACTIVATED,
    EMAIL_FIELD,
    OWNER_FIELD,
    STAMP_FIELD,
    STATUS_FIELD,
    Archiving,
    Contact,
    Crm,
    Erasing,
)
from auth0_sync.errors import (
    ContactExists,
    CrmRejected,
    EmailConflict,
    EmailTaken,
    OwnedByOther,
    SyncError,
    TransientError,
)
from auth0_sync.events import TYPE_RANK, Auth0BusEvent, UserProfile, iso, looks_like_a_login
from auth0_sync.links import standalone_again, unlinked_since
from auth0_sync.mapping import AbsentPolicy, changed, desired_fields, digest, digests, get_path
from auth0_sync.names import FUNCTION_TIMEOUT_SECONDS, SERVICE_NAME, EventType, SkipReason
from auth0_sync.ordering import ordering_skip
from auth0_sync.outcome import Applied, Outcome, Status
from auth0_sync.ownership import (
    Correlation,
    Found,
    Ownership,
    idempotency_key,
    owner_of,
)
from auth0_sync.policies import blocked_status, email_is_unverified, waits_for_an_email
from auth0_sync.settings import DeletePolicy, Settings
from auth0_sync.state import Settled, StateStore, SyncState, Unchanged, order_key_text
from auth0_sync.writes import Writes

__all__ = ["Applied", "Outcome", "StateStore", "Status", "SyncCore", "ordering_skip"]

logger = Logger(service=SERVICE_NAME, child=True)

# Older events a pending delete looked up in vain, kept per user (see SyncState.searched).
MAX_SEARCHED = 32


def _searched(current: SyncState, event: Auth0BusEvent) -> str:
    """The note that `event` was looked up for the user's current tombstone (ids only)."""
    return f"{current.deleted_at}|{event.event_id}"


# How long an event waits for another invocation holding the same user's lease.
LEASE_WAIT_SECONDS = 2.0
# A contact changing hands is written under its previous owner's lease too; held no longer
# than one invocation can run, should this one die in between.
TRANSFER_LEASE_SECONDS = FUNCTION_TIMEOUT_SECONDS + 5.0


@dataclass(frozen=True)
class Written:
    """What a write left in the CRM (a digest per field), and an email it still owes;
    `version`: the contact's version after it (the precondition of the next write)."""

    digests: dict[str, str]
    conflict: EmailConflict | None = None
    version: str | None = None


@dataclass
class Decision:
    state: SyncState | None  # None: nothing to record (the lease is just released)
    outcome: Outcome
    error: SyncError | None = None  # raised after the state is committed


class SyncCore:
    """Applies created/updated/deleted events to the CRM under the user's lease."""

    def __init__(
        self,
        settings: Settings,
        crm: Crm,
        state: StateStore,
        window: DeactivationWindow | None = None,
    ) -> None:
        self.settings = settings
        self.crm = crm
        self.state = state
        self.window = window  # the live path's deactivation brake (None: not braked here)
        self.ownership = Ownership(state)
        self.correlation = Correlation(crm, self.ownership, settings.contact_id_path)
        self.writes = Writes(crm)

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
        if skip is SkipReason.DELETED and _searched(current, event) in current.searched:
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

    @overload
    def _acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState: ...
    @overload
    def _acquire(
        self, user_id: str, owner: str, lease_seconds: float, newer_than: str
    ) -> SyncState | Settled: ...
    def _acquire(
        self, user_id: str, owner: str, lease_seconds: float, newer_than: str | None = None
    ) -> SyncState | Settled:
        """The user's state under our lease; with `newer_than` (the event's order key), only
        if the event is newer than the last one applied, else `Settled` (no lease)."""
        # Events for one user often come in bursts (a signup and its first login): wait a
        # moment for the other invocation rather than spend one of Lambda's retries.
        give_up = time.monotonic() + min(LEASE_WAIT_SECONDS, lease_seconds / 4)
        while True:
            try:
                if newer_than is None:
                    return self.state.acquire(user_id, owner, lease_seconds)
                return self.state.acquire_if_newer(user_id, owner, lease_seconds, newer_than)
            except TransientError as exc:
                if exc.reason != "lease_held" or time.monotonic() >= give_up:
                    raise
                time.sleep(random.uniform(0.02, 0.08))

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

    # user.created / user.updated -------------------------------------------------------

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
            written = self._write(
                event,
                current.contact_id,
                changes,
                current.written,
                {},
                version=current.version,
                owner=event.user_id,
            )
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
        state = replace(current, stated=stated, written=written.digests, version=written.version)
        outcome = self._outcome(event, "applied", Applied.UPDATED, current.contact_id)
        return Decision(state, outcome, written.conflict)

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
        if previous_owner not in (None, event.user_id) and previous_owner not in self._linked(
            profile, current
        ):
            # Taken over from a deleted user: none of that person's values stay on it.
            desired = self._desired(event, fresh_start=True)
        baseline = digests({name: contact.get(name) for name in desired})
        extra: dict[str, Any] = {}
        if owner_of(contact) != event.user_id:
            extra[OWNER_FIELD] = event.user_id
        if STATUS_FIELD not in desired and contact.get(STATUS_FIELD) != ACTIVE:
            extra[STATUS_FIELD] = ACTIVE
        changes = changed(desired, baseline)
        seen = replace(seen, matched_by=found.how)
        if not changes and not extra:
            # Already what Auth0 says (a state rebuilt from the CRM): nothing to write.
            state = replace(
                seen,
                contact_id=found.id,
                written=baseline,
                version=self.writes.version(found.id),
                unconfirmed=None,
            )
            return Decision(state, self._outcome(event, "skipped", SkipReason.UNCHANGED, found.id))
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

    def _write(
        self,
        event: Auth0BusEvent,
        contact_id: str,
        changes: Mapping[str, Any],
        written: Mapping[str, str],
        extra: Mapping[str, Any],
        *,
        version: str | None,
        owner: str | None,
    ) -> Written | None:
        """PATCH what changed; the new per-field digests, or None if the contact is gone or
        has left the user (`auth0_sync.writes`: based on `version`, while it carries
        `owner`, the event's user, or nobody when it was found unowned).

        An email the CRM refuses (another contact holds it) must not hold the other fields
        hostage: they are written with a placeholder address, which also lets the old one go
        (in an email swap the other user wants it), and `EmailConflict` follows the commit.
        """
        body = {**changes, **extra, **self._stamp(event)}

        def send(fields: Mapping[str, Any], based_on: str | None) -> Contact | None:
            return self.writes.update(
                contact_id, fields, user_id=event.user_id, expected_owner=owner, version=based_on
            )

        try:
            result = send(body, version)
        except EmailTaken as exc:
            placeholder = f"pending-{uuid.uuid4().hex[:16]}@email-conflict.invalid"
            rest = {name: value for name, value in changes.items() if name != EMAIL_FIELD}
            # Refused, nothing changed: the version the write was based on still holds.
            based_on = self.writes.version(contact_id) or version
            if send({**body, EMAIL_FIELD: placeholder}, based_on) is None:
                return None
            conflict = EmailConflict(
                f"{exc.message}: contact {contact_id} got every other field; its email "
                "follows when the contact holding it lets it go"
            )
            after = self.writes.version(contact_id)
            rest_digests = {**written, **digests(rest), EMAIL_FIELD: digest(placeholder)}
            return Written(rest_digests, conflict, after)
        if result is None:
            return None
        return Written({**written, **digests(changes)}, version=self.writes.version(contact_id))

    def _done(
        self,
        seen: SyncState,
        current: SyncState,
        event: Auth0BusEvent,
        contact_id: str,
        written: Written,
        applied: Applied,
    ) -> Decision:
        state = replace(
            seen,
            contact_id=contact_id,
            written=written.digests,
            version=written.version,
            unconfirmed=None,
        )
        error = written.conflict
        if error is not None:
            # Not advanced: the retry of this event writes the email that is still owed.
            state = replace(
                state,
                last_change_time=current.last_change_time,
                last_rank=current.last_rank,
                last_event_id=current.last_event_id,
            )
        return Decision(state, self._outcome(event, "applied", applied, contact_id), error)

    # user.deleted -------------------------------------------------------------------------

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
        if _searched(current, event) in current.searched:
            return Decision(None, skipped)
        found = self.correlation.find_own(event, current)
        if found is None:
            searched = [*current.searched, _searched(current, event)][-MAX_SEARCHED:]
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

    # Correlation ----------------------------------------------------------------------------

    # Helpers ----------------------------------------------------------------------------------

    def _desired(self, event: Auth0BusEvent, fresh_start: bool = False) -> dict[str, str | None]:
        """The mapped fields this event speaks about; with `fresh_start`, every one of them
        (an attribute it lacks is cleared: nothing of a past life or past owner is kept)."""
        data = event.detail.data
        fields = desired_fields(
            data.object,
            data.previous_object,
            self.settings.field_mapping,
            absent=AbsentPolicy.CLEAR if fresh_start else self.settings.absent_fields,
            required=self.settings.required_crm_fields,
        )
        # A blocked user's status, ordered per field like any other (`auth0_sync.policies`).
        status = blocked_status(
            data.object,
            data.previous_object,
            self.settings.blocked_policy,
            active=ACTIVE,
            deactivated=DEACTIVATED,
        )
        if status is not None:
            fields[STATUS_FIELD] = status
        return fields

    def _note_links(self, profile: UserProfile, current: SyncState, key: str) -> list[str]:
        """Mark newly linked secondary accounts (and when), so their delete is known as a
        link and their events after an unlink as their own."""
        linked = profile.linked_user_ids
        for secondary in sorted(set(linked) - set(current.linked)):
            self.state.mark_linked(secondary, profile.user_id, key)
        return linked

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

    def _parted(
        self, event: Auth0BusEvent, current: SyncState, linked: list[str], owner: str
    ) -> bool:
        """The contact is held by the other side of a link that has since been undone: this
        user is a secondary unlinked again, or the primary meeting a secondary unlinked."""
        if owner == current.linked_to:
            return standalone_again(current, order_key_text(event.order_key))
        return owner in linked

    @staticmethod
    def _linked(profile: UserProfile, current: SyncState) -> list[str]:
        return sorted(set(profile.linked_user_ids) | set(current.linked))

    @staticmethod
    def _advanced(current: SyncState, event: Auth0BusEvent) -> SyncState:
        return replace(
            current,
            last_change_time=iso(event.change_time),
            last_rank=TYPE_RANK[EventType(event.event_type)],
            last_event_id=event.event_id,
        )

    @staticmethod
    def _stamp(event: Auth0BusEvent) -> dict[str, str]:
        return {STAMP_FIELD: iso(event.change_time)}

    @staticmethod
    def _outcome(
        event: Auth0BusEvent, status: Status, reason: str, contact_id: str | None = None
    ) -> Outcome:
        return Outcome(
            status=status,
            reason=str(reason),
            event_id=event.event_id,
            event_type=event.event_type,
            user_id=event.user_id,
            contact_id=contact_id,
        )
