"""What the sync may do to the CRM's contacts (`SYNC_MODE`), stated once.

- `upsert` (the default): a user without a contact gets one (on an update only when
  `MISSING_CONTACT_POLICY=create`); a user with one has it updated.
- `update_only`: the sync never creates a contact. A user it cannot find a contact for
  (hint, `auth0_user_id`, email: the usual correlation, also for a signup) is skipped as
  `contact_missing`; its later events look again, so a contact created in the CRM meanwhile
  is found and linked. `reconcile` does not count a user without a contact as drift, and
  `--fix` creates none.
- `create_only`: the sync never overwrites what a contact holds (for CRMs where sales edits
  win). A user without a contact gets one with every mapped field; on a contact that exists
  (the user's own, or one found and claimed), a write sets only the mapped fields the contact
  has no value for (None or ""): a field it holds a value for stays, whoever put it there.
  Before such a write the contact is read (one GET, only in this mode, only when the event
  changes something); when it holds a value for every field the event changes, the event
  is skipped as `held_by_crm`. The status (`active`/`deactivated`) and the sync's own
  fields (`auth0_user_id`, the change stamp) are not the contact's data but the
  lifecycle's: `BLOCKED_POLICY` and `DELETE_POLICY` still decide them. A fresh start is the
  rule of order, in every mode: a new life, or a contact taken over from a deleted user,
  starts clean, and a late delete clears what only the past life said. `reconcile` counts a
  field that differs as drift only when the contact holds no value for it.

The rules of order and ownership do not change with the mode: a skipped event still
advances the user's state like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auth0_sync.destinations import STATUS_FIELD
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


def spares_held_values(settings: Settings) -> bool:
    """Whether a write leaves the fields a contact already holds a value for."""
    return settings.sync_mode == SyncMode.CREATE_ONLY


def holds_a_value(value: Any) -> bool:
    return value is not None and value != ""


def writable(
    settings: Settings, changes: Mapping[str, Any], held: Mapping[str, Any]
) -> dict[str, Any]:
    """What a write may change on a contact holding `held`: in `create_only`, only the
    fields it has no value for (and the lifecycle's status); in the other modes, all."""
    if not spares_held_values(settings):
        return dict(changes)
    return {
        name: value
        for name, value in changes.items()
        if name == STATUS_FIELD or not holds_a_value(held.get(name))
    }


def is_drift(settings: Settings, field: str, held: Any) -> bool:
    """Whether a mapped field on which the contact differs from Auth0 is drift
    (`reconcile`): in `create_only` only while the contact holds no value for it."""
    return writable(settings, {field: None}, {field: held}) != {}
