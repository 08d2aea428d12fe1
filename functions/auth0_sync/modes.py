"""What the sync may do to the CRM's contacts (`SYNC_MODE`), stated once.

- `upsert` (the default): a user without a contact gets one (on an update only when
  `MISSING_CONTACT_POLICY=create`); a user with one has it updated.
- `update_only`: the sync never creates a contact. A user it cannot find a contact for
  (hint, `auth0_user_id`, email: the usual correlation, also for a signup) is skipped as
  `contact_missing`; its later events look again, so a contact created in the CRM meanwhile
  is found and linked. `reconcile` does not count a user without a contact as drift, and
  `--fix` creates none.

The rules of order and ownership do not change with the mode: a skipped event still
advances the user's state like any other.
"""

from __future__ import annotations

from auth0_sync.names import EventType
from auth0_sync.settings import MissingContactPolicy, Settings, SyncMode


def may_create(settings: Settings, event_type: str) -> bool:
    """Whether an event of this type that finds no contact creates one."""
    if settings.sync_mode == SyncMode.UPDATE_ONLY:
        return False
    return not (
        event_type == EventType.USER_UPDATED
        and settings.missing_contact_policy == MissingContactPolicy.SKIP
    )


def signup_creates_at_once(settings: Settings) -> bool:
    """A signup creates without looking (the CRM's 409 on the email finds a contact
    atomically); when it may not create, it looks first, like any other event."""
    return settings.sync_mode != SyncMode.UPDATE_ONLY


def contact_expected(settings: Settings) -> bool:
    """Whether a user without a contact is drift (`reconcile`)."""
    return settings.sync_mode != SyncMode.UPDATE_ONLY
