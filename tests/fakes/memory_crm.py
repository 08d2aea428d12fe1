"""An in-memory CRM for unit tests of the sync core: the contract's rules, no HTTP.

It enforces what a strict server may (unique emails, case-insensitive, on POST and PATCH;
unknown fields rejected; `Idempotency-Key` replays) and records every call, so a test can
assert what a write contained. Integration tests use the reference CRM over HTTP instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from auth0_sync.crm import Contact, RemainingMillis
from auth0_sync.errors import ContactExists, CrmRejected, EmailTaken

FIELDS = frozenset(
    {"email", "name", "given_name", "family_name", "phone", "status", "auth0_user_id",
     "source_updated_at"}
)  # fmt: skip


@dataclass
class Call:
    method: str
    contact_id: str | None
    body: dict[str, Any] | None = None


@dataclass
class MemoryCrm:
    unique_emails: bool = True
    contacts: dict[str, Contact] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _keys: dict[str, str] = field(default_factory=dict)

    # Test set-up ------------------------------------------------------------------------

    def add(self, **fields: Any) -> str:
        """A contact that exists before the sync runs (no uniqueness check, no call)."""
        contact_id = f"c_{next(self._ids)}"
        self.contacts[contact_id] = {"id": contact_id, "status": "active", **fields}
        return contact_id

    def owned_by(self, user_id: str) -> list[Contact]:
        return [c for c in self.contacts.values() if c.get("auth0_user_id") == user_id]

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("POST", "PATCH")]

    # The Crm protocol -------------------------------------------------------------------

    def calls_made(self) -> int:
        return len(self.calls)

    def set_deadline(self, remaining_ms: RemainingMillis | None) -> None:
        del remaining_ms

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]:
        self.calls.append(Call("GET", None, {"email": email, "auth0_user_id": auth0_user_id}))
        if email:
            return [dict(c) for c in self.contacts.values() if _same(c.get("email"), email)]
        return [dict(c) for c in self.contacts.values() if c.get("auth0_user_id") == auth0_user_id]

    def get_contact(self, contact_id: str) -> Contact | None:
        self.calls.append(Call("GET", contact_id))
        contact = self.contacts.get(contact_id)
        return dict(contact) if contact else None

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        self.calls.append(Call("POST", None, dict(fields)))
        self._check(fields)
        if idempotency_key in self._keys:
            return dict(self.contacts[self._keys[idempotency_key]])
        if self.unique_emails and self._holder(fields.get("email")) is not None:
            raise ContactExists("crm POST /contacts: HTTP 409: email taken")
        contact_id = f"c_{next(self._ids)}"
        self.contacts[contact_id] = {"id": contact_id, "status": "active", **fields}
        self._keys[idempotency_key] = contact_id
        return dict(self.contacts[contact_id])

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        self.calls.append(Call("PATCH", contact_id, dict(fields)))
        self._check(fields)
        contact = self.contacts.get(contact_id)
        if contact is None:
            return None
        holder = self._holder(fields.get("email"))
        if self.unique_emails and holder not in (None, contact_id):
            raise EmailTaken(f"crm PATCH /contacts/{contact_id}: HTTP 409: email taken")
        contact.update(fields)
        return dict(contact)

    def _check(self, fields: Mapping[str, Any]) -> None:
        unknown = set(fields) - FIELDS
        if unknown:
            raise CrmRejected(422, f"unknown fields {sorted(unknown)}")
        if "email" in fields and not isinstance(fields["email"], str):
            raise CrmRejected(422, "email must be a string")

    def _holder(self, email: Any) -> str | None:
        if not isinstance(email, str):
            return None
        for contact_id, contact in self.contacts.items():
            if _same(contact.get("email"), email):
                return contact_id
        return None


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()
