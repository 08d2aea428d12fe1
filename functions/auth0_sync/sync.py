"""The rules of the sync: one Auth0 user event -> the right change to one CRM contact.

Decisions (ordering, change detection, correlation order, policies) live here; the CRM and
the state store are adapters passed in. Every change for one user runs under that user's
lease in the state store, so decisions see the latest state and never race.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, Literal, Protocol

from aws_lambda_powertools import Logger

from auth0_sync.crm import Contact, Crm
from auth0_sync.errors import AmbiguousMatch, ContactExists, CrmRejected, TransientError
from auth0_sync.events import Auth0BusEvent, DeletedUser
from auth0_sync.mapping import anonymous_email, fingerprint, get_path, map_fields
from auth0_sync.names import SERVICE_NAME, EventType, SkipReason
from auth0_sync.settings import DeletePolicy, MissingContactPolicy, Settings
from auth0_sync.state import SyncState, iso

logger = Logger(service=SERVICE_NAME, child=True)

Status = Literal["applied", "skipped", "dead_lettered"]

# How long an event waits for another invocation holding the same user's lease.
LEASE_WAIT_SECONDS = 2.0


class Applied(StrEnum):
    """What an applied event did to the CRM."""

    CREATED = "created"
    LINKED = "linked"
    UPDATED = "updated"
    DEACTIVATED = "deactivated"
    ANONYMIZED = "anonymized"


@dataclass(frozen=True)
class Outcome:
    """How one event ended: applied, skipped for a counted reason, or dead-lettered."""

    status: Status
    reason: str
    event_id: str | None = None
    event_type: str | None = None
    user_id: str | None = None
    contact_id: str | None = None
    crm_calls: int = 0
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class StateStore(Protocol):
    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState: ...
    def commit(self, state: SyncState, owner: str) -> None: ...
    def release(self, user_id: str, owner: str) -> None: ...
    def get(self, user_id: str) -> SyncState | None: ...


def ordering_skip(state: SyncState, event: Auth0BusEvent) -> SkipReason | None:
    """Whether the event is already covered by what was applied (None: go ahead)."""
    if state.last_event_id == event.event_id:
        return SkipReason.DUPLICATE
    if state.deleted_at:
        # Deletion is final: nothing arriving later, however it is dated, resurrects.
        return SkipReason.DELETED
    if event.event_type == EventType.USER_DELETED:
        return None  # a delete applies even if an update carries a later clock
    last = state.last_change
    if last is not None and event.change_time < last:
        return SkipReason.STALE
    return None


class SyncCore:
    """Applies created/updated/deleted events to the CRM under the user's lease."""

    def __init__(self, settings: Settings, crm: Crm, state: StateStore) -> None:
        self.settings = settings
        self.crm = crm
        self.state = state

    def apply(self, event: Auth0BusEvent, lease_seconds: float) -> Outcome:
        """Apply one validated event of a handled type; raises Transient/PermanentError."""
        owner = f"{event.event_id}:{uuid.uuid4().hex[:8]}"
        current = self._acquire(event.user_id, owner, lease_seconds)
        try:
            new_state, outcome = self._decide(event, current)
        except BaseException:
            self.state.release(event.user_id, owner)
            raise
        if new_state is None:
            self.state.release(event.user_id, owner)
        else:
            self.state.commit(new_state, owner)
        return outcome

    def _acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState:
        # Events for one user often come in bursts (a signup and its first login): wait a
        # moment for the other invocation rather than spend one of Lambda's retries.
        give_up = time.monotonic() + min(LEASE_WAIT_SECONDS, lease_seconds / 4)
        while True:
            try:
                return self.state.acquire(user_id, owner, lease_seconds)
            except TransientError as exc:
                if exc.reason != "lease_held" or time.monotonic() >= give_up:
                    raise
                time.sleep(random.uniform(0.02, 0.08))

    def _decide(self, event: Auth0BusEvent, current: SyncState) -> tuple[SyncState | None, Outcome]:
        skip = ordering_skip(current, event)
        if skip is not None:
            return None, self._outcome(event, "skipped", skip, current.contact_id)
        if event.event_type == EventType.USER_DELETED:
            return self._delete(event, current)
        return self._upsert(event, current)

    # user.created / user.updated -------------------------------------------------------

    def _upsert(self, event: Auth0BusEvent, current: SyncState) -> tuple[SyncState, Outcome]:
        profile = event.detail.data.object
        fields = map_fields(profile, self.settings.field_mapping)
        digest = fingerprint(fields)
        seen = replace(
            current, last_change_time=iso(event.change_time), last_event_id=event.event_id
        )
        if current.contact_id and current.fingerprint == digest:
            # Login noise: the mapped values are what we last wrote; zero CRM calls.
            return seen, self._outcome(event, "skipped", SkipReason.UNCHANGED, current.contact_id)

        body = {**fields, "auth0_user_id": event.user_id, **self._stamp(event)}
        is_update = event.event_type == EventType.USER_UPDATED
        applied = Applied.UPDATED if is_update else Applied.LINKED
        for contact_id, how in self._known_ids(current, profile):
            if self.crm.update_contact(contact_id, body) is not None:
                return self._done(seen, event, contact_id, how, digest, applied)
        # A new user's id cannot be in the CRM unless we wrote it, and then the state knows
        # it: only updates of users we have not seen look the contact up.
        if is_update:
            found = self._lookup(event.user_id, fields.get("email"))
            if found is not None:
                contact_id, how = found
                if self.crm.update_contact(contact_id, body) is not None:
                    return self._done(seen, event, contact_id, how, digest, applied)
            if self.settings.missing_contact_policy == MissingContactPolicy.SKIP:
                outcome = self._outcome(event, "skipped", SkipReason.CONTACT_MISSING)
                return replace(seen, contact_id=None), outcome
        return self._create(seen, event, body, digest)

    def _create(
        self, seen: SyncState, event: Auth0BusEvent, body: dict[str, Any], digest: str
    ) -> tuple[SyncState, Outcome]:
        # Create first and let the CRM's own uniqueness check (409 on a known email) find an
        # existing contact: atomic, where "look up, then create" races with other writers.
        try:
            created = self.crm.create_contact(body, idempotency_key=event.event_id)
        except ContactExists as exc:
            found = self._by_email(event.user_id, body.get("email"))
            if found is None:
                raise CrmRejected(409, f"{exc.message}; but no contact has that email") from exc
            contact_id = found["id"]
            if self.crm.update_contact(contact_id, body) is None:
                raise CrmRejected(
                    404, f"crm PATCH /contacts/{contact_id}: gone while linking"
                ) from exc
            return self._done(seen, event, contact_id, "email", digest, Applied.LINKED)
        return self._done(seen, event, created["id"], "created", digest, Applied.CREATED)

    def _done(
        self,
        seen: SyncState,
        event: Auth0BusEvent,
        contact_id: str,
        how: str,
        digest: str,
        applied: Applied,
    ) -> tuple[SyncState, Outcome]:
        state = replace(seen, contact_id=contact_id, matched_by=how, fingerprint=digest)
        return state, self._outcome(event, "applied", applied, contact_id)

    # user.deleted -------------------------------------------------------------------------

    def _delete(self, event: Auth0BusEvent, current: SyncState) -> tuple[SyncState, Outcome]:
        user = event.user
        assert isinstance(user, DeletedUser)
        tombstone = replace(
            current,
            deleted_at=iso(event.change_time),
            last_change_time=iso(max(event.change_time, current.last_change or event.change_time)),
            last_event_id=event.event_id,
        )
        if self.settings.delete_policy == DeletePolicy.ANONYMIZE:
            body: dict[str, Any] = {
                "status": "deactivated",
                "email": anonymous_email(event.user_id),
                "name": None,
                "given_name": None,
                "family_name": None,
                "phone": None,
            }
            applied = Applied.ANONYMIZED
        else:
            body, applied = {"status": "deactivated"}, Applied.DEACTIVATED
        body.update(self._stamp(event))
        profile = event.detail.data.object
        candidates = list(self._known_ids(current, profile))
        for contact_id, how in candidates:
            if self.crm.update_contact(contact_id, body) is not None:
                done = replace(tombstone, contact_id=contact_id, matched_by=how)
                return done, self._outcome(event, "applied", applied, contact_id)
        found = self._lookup(event.user_id, user.email)
        if found is not None and self.crm.update_contact(found[0], body) is not None:
            done = replace(tombstone, contact_id=found[0], matched_by=found[1])
            return done, self._outcome(event, "applied", applied, found[0])
        # Nothing to deactivate; the tombstone still stops late updates from creating one.
        return replace(tombstone, contact_id=None), self._outcome(
            event, "skipped", SkipReason.CONTACT_MISSING
        )

    # Correlation ----------------------------------------------------------------------------

    def _known_ids(self, current: SyncState, profile: dict[str, Any]) -> Iterator[tuple[str, str]]:
        """Contact ids known without a lookup: the stored mapping, then app_metadata."""
        seen: set[str] = set()
        if current.contact_id:
            seen.add(current.contact_id)
            yield current.contact_id, "state"
        from_metadata = get_path(profile, self.settings.contact_id_path)
        if isinstance(from_metadata, str | int) and str(from_metadata) not in seen:
            yield str(from_metadata), "app_metadata"

    def _lookup(self, user_id: str, email: Any) -> tuple[str, str] | None:
        """The CRM's auth0_user_id lookup, then email; several matches is ambiguous."""
        by_id = self.crm.find_contacts(auth0_user_id=user_id)
        if len(by_id) > 1:
            ids = [c["id"] for c in by_id]
            raise AmbiguousMatch(f"{len(by_id)} CRM contacts carry auth0_user_id {user_id}: {ids}")
        if by_id:
            return by_id[0]["id"], "auth0_user_id"
        found = self._by_email(user_id, email)
        return (found["id"], "email") if found is not None else None

    def _by_email(self, user_id: str, email: Any) -> Contact | None:
        if not isinstance(email, str) or not email:
            return None
        matches = self.crm.find_contacts(email=email)
        if len(matches) > 1:
            ids = [c["id"] for c in matches]
            raise AmbiguousMatch(
                f"{len(matches)} CRM contacts share the email of Auth0 user {user_id}: {ids}"
            )
        if not matches:
            return None
        owner = matches[0].get("auth0_user_id")
        if owner and owner != user_id:
            # Same email, another Auth0 identity (e.g. unlinked social + database accounts).
            raise AmbiguousMatch(
                f"contact {matches[0]['id']} has the email of Auth0 user {user_id} "
                f"but belongs to Auth0 user {owner}"
            )
        return matches[0]

    # Helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _stamp(event: Auth0BusEvent) -> dict[str, str]:
        return {"source_updated_at": iso(event.change_time)}

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
