"""Writes to a stored contact that are never wrong: the rule, stated once.

Two things can make a write to a contact we wrote before wrong, and the core asks the CRM
about neither before each write (that would be a GET per change):
- **a write whose outcome is unknown** (the request left, the answer did not come: a
  timeout, a dropped connection) may still land later, after a newer write, and revert it;
- **the contact may have left the user**: a person gave it to someone else in the CRM.

So every write carries a precondition the destination enforces, where it has one:
- a **version** (`Guarded.versioned`): the generic contract's `If-Match` with the `ETag`
  our last write left (412 when the contact changed since), Salesforce's
  `If-Unmodified-Since` with the time of our last write's answer. A late attempt carries
  the version it was based on, which is old by the time it lands: refused. A person's
  edit or reassignment changes the version: our next write is refused, and only then is
  the contact read again (one GET). Still the user's: written again on its new version.
  Someone else's: the contact has left the user, nothing is written to it.
- an **owner key** (HubSpot): the write is addressed by the unique `auth0_user_id`, so it
  can only reach a contact that still carries the user (a contact given away answers 404).

What `update` answers None for (gone, or left the user) the core treats as "no contact":
the user finds or creates its own (`docs/sync-rules.md`, "Writes").

Where the destination has **no precondition** (HubSpot), a write or a create whose outcome
is unknown (a timeout after the request left, a 5xx; even when a retry then succeeded)
is recorded in the user's state as unconfirmed, and the user's next write waits
(`write_unconfirmed`, retried) until whatever was sent can no longer land or be missed:
`late_write_seconds` after it (how long the destination may still apply a request it
received), and, where the user's contact is found by a search that lags behind writes
(HubSpot without a unique `auth0_user_id`), `search_lag_seconds`. A destination with a
version (REST 1.2, Salesforce) needs no wait: a late attempt is refused there, and a
create is found at once (a query) or is idempotent (keys, upserts).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from auth0_sync.destinations import Contact, Crm, Guarded
from auth0_sync.errors import ContactChanged, TransientError
from auth0_sync.events import iso
from auth0_sync.names import SERVICE_NAME
from auth0_sync.ownership import owner_of

logger = Logger(service=SERVICE_NAME, child=True)

# A contact refused our write this many times in a row (each time read again): someone is
# editing it right now; the event is retried later (crm_412, transient).
MAX_REREADS = 3


class Writes:
    """Every write the core makes to an existing contact goes through `update`."""

    def __init__(self, crm: Crm) -> None:
        self.crm = crm
        self.guarded: Guarded | None = crm if isinstance(crm, Guarded) else None
        self._event = threading.local()  # one core serves several threads (the runner)

    def version(self, contact_id: str) -> str | None:
        """The version of the contact in the last answer about it (None: unknown)."""
        return self.guarded.version_seen(contact_id) if self.guarded is not None else None

    def update(
        self,
        contact_id: str,
        body: Mapping[str, Any],
        *,
        user_id: str,
        expected_owner: str | None,
        version: str | None,
    ) -> Contact | None:
        """Write `body` to the contact for `user_id`, only while it is the contact the core
        decided on: based on `version` (what our last write or read left; None: read it
        first), carrying `expected_owner` (or the user, or nobody yet). None when the
        contact is gone or has left the user: nothing was written to it."""
        guarded = self.guarded
        if guarded is None:
            return self.crm.update_contact(contact_id, body)
        allowed = {expected_owner, user_id}
        # Addressed by the owner key only when the contact is the user's already (a claim
        # or a transfer writes a contact that does not carry the user yet).
        owner = user_id if expected_owner == user_id else None
        if guarded.versioned and version is None and not self._still_ours(contact_id, allowed):
            return None
        if guarded.versioned and version is None:
            version = guarded.version_seen(contact_id)
        for _ in range(MAX_REREADS):
            try:
                answer = guarded.update_guarded(contact_id, body, owner=owner, version=version)
            except ContactChanged:
                if not self._still_ours(contact_id, allowed):
                    return None
                version = guarded.version_seen(contact_id)
                continue
            if answer is None:
                logger.info(
                    "contact not written: gone, or no longer carries the Auth0 user",
                    extra={"contact_id": contact_id, "user_id": user_id},
                )
            return answer
        raise ContactChanged(
            f"crm PATCH contact {contact_id}: it changed under {MAX_REREADS} writes in a row "
            "(someone is editing it); retried later"
        )

    # Writes whose outcome is unknown -------------------------------------------------------

    def begin(self) -> None:
        """Start of one event: writes of unknown outcome are counted from here."""
        self._event.unsure_before = self._unsure_count()

    def unconfirmed_since(self) -> str | None:
        """Now, if this event sent a write whose outcome is unknown to a destination where
        it could still land or be missed later (None: nothing to wait for)."""
        before = int(getattr(self._event, "unsure_before", 0))
        if self._unsure_count() <= before or not self.horizon():
            return None
        return iso(datetime.now(UTC))

    def horizon(self) -> float:
        """How long after a write of unknown outcome the user's next write waits."""
        lag = float(getattr(self.crm, "search_lag_seconds", 0.0) or 0.0)
        late = 0.0
        if self.guarded is None or not self.guarded.versioned:
            late = float(getattr(self.crm, "late_write_seconds", 0.0) or 0.0)
        return max(lag, late)

    def wait_for_unconfirmed(self, since: str | None) -> None:
        """`TransientError` (`write_unconfirmed`) while a write or create of unknown
        outcome `since` then may still land late, or be missing from the owner search."""
        horizon = self.horizon()
        if not since or not horizon:
            return
        age = (datetime.now(UTC) - datetime.fromisoformat(since)).total_seconds()
        if age < horizon:
            raise TransientError(
                f"a write of unknown outcome {age:.0f}s ago may still land (or not be found) "
                f"for up to {horizon:.0f}s: retried, so that nothing newer is written before",
                "write_unconfirmed",
            )

    def _unsure_count(self) -> int:
        counter = getattr(self.crm, "unsure_writes", None)
        return int(counter()) if callable(counter) else 0

    def _still_ours(self, contact_id: str, allowed: set[str | None]) -> bool:
        """Read the contact again: still there and carrying one of `allowed`?"""
        contact = self.crm.get_contact(contact_id)
        if contact is None:
            return False
        if owner_of(contact) not in allowed:
            logger.warning(
                "contact left the Auth0 user: it now carries another; not written",
                extra={"contact_id": contact_id, "owner": owner_of(contact)},
            )
            return False
        return True
