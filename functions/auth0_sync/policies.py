"""Lifecycle policies: what the sync does with users the plain rules do not cover.

Each is a small decision on the event alone, stated once here; `SyncCore` asks at the
one place where it applies, under the same rules of order and ownership as every event.

- A user without an email (passwordless SMS, a username-only database connection):
  `NO_EMAIL_POLICY=skip` (default) counts the event as `no_email` and asks the CRM nothing;
  the user is created by the first event that carries an email. `create` is for a
  destination that accepts contacts without one.
- A blocked user (`blocked: true`): `BLOCKED_POLICY=deactivate` (default) shows it in the
  CRM as `status: deactivated` (the contract's statuses are `active` and `deactivated`),
  and the unblock (`blocked: false`, or `blocked` gone since `previous_object`) makes it
  `active` again; `ignore` leaves the status alone.
- An unverified email (`email_verified: false`) never finds a contact that is not the
  user's own (`CLAIM_UNVERIFIED_EMAIL=false`, default): Auth0's own guidance is to match
  accounts by email only when the address is verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class NoEmailPolicy(StrEnum):
    SKIP = "skip"
    CREATE = "create"


class BlockedPolicy(StrEnum):
    DEACTIVATE = "deactivate"
    IGNORE = "ignore"


def blocked_status(
    profile: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    policy: BlockedPolicy,
    *,
    active: str,
    deactivated: str,
) -> str | None:
    """The status a blocked or unblocked user's contact should show; None when the event
    says nothing of `blocked` (the status is left as it is)."""
    if policy == BlockedPolicy.IGNORE:
        return None
    if "blocked" in profile:
        return deactivated if profile["blocked"] is True else active
    if previous is not None and previous.get("blocked") is True:
        return active  # `blocked` gone since the previous profile: unblocked
    return None


def waits_for_an_email(email: Any, has_contact: bool, policy: NoEmailPolicy) -> bool:
    """Whether an event of a user with no contact yet is skipped as `no_email`: it has no
    email to create one with. A user who has a contact keeps it (the email is never
    cleared), whatever it says about the email."""
    return policy == NoEmailPolicy.SKIP and not has_contact and not email


def email_is_unverified(profile: Mapping[str, Any]) -> bool:
    """Auth0 says the address is not verified (`email_verified: false`). A profile without
    the flag says nothing (Auth0 does not always send the whole profile): not refused."""
    return profile.get("email_verified") is False
