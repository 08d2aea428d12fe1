"""Who owns a contact, and which contact an event is about: the ownership rule, stated once.

A contact is written for Auth0 user U only if it carries U's `auth0_user_id`, or carries
none and U claims it (a compare-and-set claim in the state store, so two users reaching one
contact at once cannot both take it). A contact may also change hands when its owner is
known to be deleted (a re-signup) or is a secondary account linked into U. A hint that
points at someone else's contact is never followed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from auth0_sync.destinations import OWNER_FIELD, Contact, Crm
from auth0_sync.errors import AmbiguousMatch, OwnedByOther, TransientError
from auth0_sync.events import Auth0BusEvent
from auth0_sync.mapping import get_path
from auth0_sync.names import SERVICE_NAME
from auth0_sync.state import StateStore, SyncState

logger = Logger(service=SERVICE_NAME, child=True)


def owner_of(contact: Contact) -> str | None:
    """The Auth0 user a contact belongs to (None: nobody's yet)."""
    owner = contact.get(OWNER_FIELD)
    return str(owner) if owner else None


def idempotency_key(event: Auth0BusEvent) -> str:
    """The `Idempotency-Key` of the event's create, scoped to its user: the same event
    retried for the same user repeats its create, and nothing else does (a replayed or
    hand-made file may give two users one event id; Auth0 never does). Hashed, so the
    header holds only [0-9a-f] whatever the ids hold."""
    return hashlib.sha256(f"{event.user_id}\n{event.event_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Found:
    contact: Contact
    how: str  # state | app_metadata | auth0_user_id | email | linked | idempotency_key

    @property
    def id(self) -> str:
        return str(self.contact["id"])


class Ownership:
    """Who may write a contact: the ownership rule, in one place."""

    def __init__(self, state: StateStore) -> None:
        self._state = state

    def may_take(self, contact: Contact, user_id: str, linked: list[str]) -> bool:
        """Whether `user_id` may write this contact (claiming it if it is not theirs yet)."""
        owner = owner_of(contact)
        if owner is None or owner == user_id or owner in linked:
            return True
        # A contact whose owner is known to be deleted, or was linked into this user.
        previous = self._state.get(owner)
        return previous is not None and (
            previous.deleted_at is not None or previous.linked_to == user_id
        )

    def claim(self, found: Found, user_id: str) -> None:
        """Make the claim atomic: one user wins a contact two users reach at once."""
        owner = owner_of(found.contact)
        if owner == user_id:
            return
        if not self._state.claim_contact(found.id, user_id, owner):
            raise TransientError(
                f"contact {found.id} is being claimed by another Auth0 user", "claim_conflict"
            )


class Correlation:
    """Finds the contact an event may write, asking the CRM as little as it can."""

    def __init__(self, crm: Crm, ownership: Ownership, contact_id_path: str) -> None:
        self.crm = crm
        self.ownership = ownership
        self.contact_id_path = contact_id_path

    def find(
        self,
        event: Auth0BusEvent,
        current: SyncState,
        linked: list[str],
        email: Any,
        *,
        hint_only: bool = False,
    ) -> Found | None:
        """The contact this user may write: stored mapping, hint, auth0_user_id, email,
        then the contacts of linked secondary accounts."""
        user_id = event.user_id
        for contact_id, how in self.known_ids(current, event):
            contact = self.crm.get_contact(contact_id)
            if contact is None:
                continue
            if self.ownership.may_take(contact, user_id, linked):
                return Found(contact, how)
            logger.warning(
                "contact hint ignored: the contact belongs to another Auth0 user",
                extra={"event_id": event.event_id, "user_id": user_id, "contact_id": contact_id},
            )
        if hint_only:
            return None
        mine = self.one(self.crm.find_contacts(auth0_user_id=user_id), f"carry {user_id}")
        if mine is not None:
            return Found(mine, "auth0_user_id")
        found = self.by_email(user_id, email, linked)
        if found is not None:
            return found
        for secondary in linked:
            theirs = self.one(self.crm.find_contacts(auth0_user_id=secondary), f"carry {secondary}")
            if theirs is not None:
                return Found(theirs, "linked")
        return None

    def find_own(self, event: Auth0BusEvent, current: SyncState) -> Found | None:
        """The contact a delete applies to: one that carries this user, or nobody yet."""
        user_id = event.user_id
        for contact_id, how in self.known_ids(current, event):
            contact = self.crm.get_contact(contact_id)
            if contact is not None and owner_of(contact) in (None, user_id):
                return Found(contact, how)
        mine = self.one(self.crm.find_contacts(auth0_user_id=user_id), f"carry {user_id}")
        if mine is not None:
            return Found(mine, "auth0_user_id")
        email = event.detail.data.object.get("email")
        if isinstance(email, str) and email:
            match = self.one(self.crm.find_contacts(email=email), "share the deleted email")
            if match is not None and owner_of(match) in (None, user_id):
                return Found(match, "email")
        return None

    def known_ids(self, current: SyncState, event: Auth0BusEvent) -> list[tuple[str, str]]:
        """Contact ids known without a lookup: the stored mapping, then the hint."""
        ids: list[tuple[str, str]] = []
        if current.contact_id:
            ids.append((current.contact_id, "state"))
        hint = get_path(event.detail.data.object, self.contact_id_path)
        usable = isinstance(hint, str | int) and not isinstance(hint, bool) and str(hint)
        if usable and str(hint) != current.contact_id:
            ids.append((str(hint), "app_metadata"))
        return ids

    def by_email(self, user_id: str, email: Any, linked: list[str]) -> Found | None:
        if not isinstance(email, str) or not email:
            return None
        match = self.one(self.crm.find_contacts(email=email), f"share the email of {user_id}")
        if match is None:
            return None
        if not self.ownership.may_take(match, user_id, linked):
            # Same email, another live Auth0 identity (e.g. unlinked social and database
            # accounts): never written for this user.
            raise OwnedByOther(
                f"contact {match['id']} has the email of Auth0 user {user_id} but belongs to "
                f"Auth0 user {owner_of(match)}; link the accounts in Auth0, or free the contact",
                owner_of(match),
            )
        return Found(match, "email")

    @staticmethod
    def one(matches: list[Contact], what: str) -> Contact | None:
        if len(matches) > 1:
            ids = [c["id"] for c in matches]
            raise AmbiguousMatch(f"{len(matches)} CRM contacts {what}: {ids}")
        return matches[0] if matches else None
