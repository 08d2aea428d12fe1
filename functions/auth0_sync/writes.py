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

A **create whose answer was lost** may have made the contact. Where the destination finds
a user's contact by a search that lags behind writes (HubSpot without a unique
`auth0_user_id`), the user's state records the create as unconfirmed, and the user's
next event waits (`create_unconfirmed`, retried) until that search can see it, instead of
creating a second contact. Elsewhere the owner lookup is immediate (a read by a unique
property, a query), or the create is idempotent (contract keys, Salesforce's upsert).
"""

from __future__ import annotations

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
# A create that failed with one of these was not applied (refused before, or never sent).
NOT_APPLIED = frozenset({"crm_429", "crm_circuit_open", "crm_token_unavailable"})


class Writes:
    """Every write the core makes to an existing contact goes through `update`."""

    def __init__(self, crm: Crm) -> None:
        self.crm = crm
        self.guarded: Guarded | None = crm if isinstance(crm, Guarded) else None

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

    # Creates whose answer was lost --------------------------------------------------------

    @staticmethod
    def create_unconfirmed(exc: TransientError) -> str | None:
        """When a create failed so that it may have been applied: the time, to record in
        the user's state (None: it was certainly not applied)."""
        return None if exc.reason in NOT_APPLIED else iso(datetime.now(UTC))

    def wait_for_unconfirmed(self, since: str | None) -> None:
        """`TransientError` (`create_unconfirmed`) while a create whose answer was lost
        `since` then may still be missing from the destination's owner search."""
        lag = float(getattr(self.crm, "search_lag_seconds", 0.0) or 0.0)
        if not since or not lag:
            return
        age = (datetime.now(UTC) - datetime.fromisoformat(since)).total_seconds()
        if age < lag:
            raise TransientError(
                f"a create whose answer was lost {age:.0f}s ago may not be searchable yet "
                f"(the CRM's search lags up to {lag:.0f}s): retried, so that it is found "
                "rather than made twice",
                "create_unconfirmed",
            )

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
