"""What every part of the sync core shares: the adapters, the user's lease, a write to a
contact and what it leaves in the state, the fields an event speaks about.

`SyncCore` (`auth0_sync.sync`) keeps the frame (order, lease, commit) and decides which
part an event goes to; each lifecycle is its own part, built on this base under the same
rules of order and ownership: `auth0_sync.upsert` (create, update, take a contact),
`auth0_sync.deletion` (delete, deactivate, erase), `auth0_sync.lateness` (late events
and past lives).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, overload

from auth0_sync import modes
from auth0_sync.deactivation_window import DeactivationWindow
from auth0_sync.destinations import (
    ACTIVE,
    DEACTIVATED,
    EMAIL_FIELD,
    STAMP_FIELD,
    STATUS_FIELD,
    Contact,
    Crm,
)
from auth0_sync.errors import (
    EmailConflict,
    EmailTaken,
    SyncError,
    TransientError,
)
from auth0_sync.events import TYPE_RANK, Auth0BusEvent, UserProfile, iso
from auth0_sync.mapping import AbsentPolicy, desired_fields, digest, digests
from auth0_sync.names import FUNCTION_TIMEOUT_SECONDS, EventType, SkipReason
from auth0_sync.outcome import Applied, Outcome, Status
from auth0_sync.ownership import Correlation, Ownership, owner_of
from auth0_sync.policies import blocked_status
from auth0_sync.settings import Settings
from auth0_sync.state import Settled, StateStore, SyncState
from auth0_sync.writes import Writes

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


class CoreBase:
    """The adapters and the helpers every part of the core uses."""

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

    def _spared(
        self,
        event: Auth0BusEvent,
        contact_id: str,
        changes: Mapping[str, Any],
        written: Mapping[str, str],
        version: str | None,
    ) -> tuple[dict[str, Any], dict[str, str], str | None]:
        """The changes a write to the user's contact may send under `SYNC_MODE`, what the
        state then remembers as written, and the version to write on. In `create_only`,
        the contact is read (one GET): a field it holds a value for stays, and the state
        remembers the event's value for it as said, so the next events with the same value
        (logins) cost no CRM call; a new value reads the contact again. A contact gone or
        taken is left to the write to find."""
        if not modes.spares_held_values(self.settings):
            return dict(changes), dict(written), version
        held = self.crm.get_contact(contact_id)
        if held is None or owner_of(held) != event.user_id:
            return dict(changes), dict(written), version
        kept = modes.writable(self.settings, changes, held)
        spared = digests({name: value for name, value in changes.items() if name not in kept})
        return kept, {**written, **spared}, self.writes.version(contact_id) or version

    def _update_own(
        self, event: Auth0BusEvent, current: SyncState, changes: Mapping[str, Any], kept: SyncState
    ) -> Decision | Written | None:
        """Write what changed to the user's own contact, as `SYNC_MODE` spares it: when it
        spares every field, the skip (`held_by_crm`) that leaves `kept` with the spared
        values remembered; else `_write`'s answer."""
        assert current.contact_id is not None
        changes, before, version = self._spared(
            event, current.contact_id, changes, current.written, current.version
        )
        if not changes:
            # SYNC_MODE=create_only: the contact holds a value for each field it would set.
            outcome = self._outcome(event, "skipped", SkipReason.HELD_BY_CRM, current.contact_id)
            return Decision(replace(kept, written=before, version=version), outcome)
        return self._write(
            event,
            current.contact_id,
            changes,
            before,
            {},
            version=version,
            owner=event.user_id,
        )

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
