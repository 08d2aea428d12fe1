"""An in-memory CRM for unit tests of the sync core: the contract's rules, no HTTP.

It enforces what a strict server may (unique emails, case-insensitive, on POST and PATCH;
unknown fields rejected; `Idempotency-Key` replays; contract 1.2's conditional writes: a
version per contact, a write based on an old one refused with `ContactChanged`) and
records every call, so a test can assert what a write contained. `hold_next_write` and
`land_held` play a write whose first attempt the CRM holds and applies late. Integration
tests use the reference CRM over HTTP instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from auth0_sync.crm import Contact, RemainingMillis
from auth0_sync.destinations import SeenVersions
from auth0_sync.errors import ContactChanged, ContactExists, CrmRejected, EmailTaken

FIELDS = frozenset(
    {"email", "name", "given_name", "family_name", "phone", "status", "auth0_user_id",
     "source_updated_at"}
)  # fmt: skip


@dataclass
class Call:
    method: str
    contact_id: str | None
    body: dict[str, Any] | None = None
    version: str | None = None  # the precondition a write carried (If-Match)


@dataclass
class MemoryCrm:
    unique_emails: bool = True
    contacts: dict[str, Contact] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _keys: dict[str, str] = field(default_factory=dict)
    versioned: bool = True
    late_write_seconds: float = 0.0  # for a CRM without versions (HubSpot-like)
    unsure: int = 0  # writes whose first attempt timed out (held)
    held: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    _hold: bool = False
    _versions: dict[str, int] = field(default_factory=dict)
    _seen: SeenVersions = field(default_factory=SeenVersions)

    # Test set-up ------------------------------------------------------------------------

    def add(self, **fields: Any) -> str:
        """A contact that exists before the sync runs (no uniqueness check, no call)."""
        contact_id = f"c_{next(self._ids)}"
        self.contacts[contact_id] = {"id": contact_id, "status": "active", **fields}
        return contact_id

    def edit(self, contact_id: str, **fields: Any) -> None:
        """A person changes the contact in the CRM (a new version, no call counted)."""
        self.contacts[contact_id].update(fields)
        self._versions[contact_id] = self._versions.get(contact_id, 0) + 1

    def hold_next_write(self) -> None:
        """The next write's first attempt is held by the CRM (kept in `held`, not applied);
        the client's retry is applied as usual."""
        self._hold = True

    def land_held(self) -> bool:
        """The held attempts land now, each with the precondition it carried; whether any
        was applied."""
        applied = False
        for contact_id, fields, version in self.held:
            current = self.contacts.get(contact_id)
            if current is None or (version is not None and version != self._version(contact_id)):
                continue  # 412 (or 404): nothing changes
            current.update(fields)
            self._bump(contact_id)
            applied = True
        self.held.clear()
        return applied

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
        if contact is None:
            return None
        self._seen.note(contact_id, self._version(contact_id))
        return dict(contact)

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        self.calls.append(Call("POST", None, dict(fields)))
        self._check(fields)
        if idempotency_key in self._keys:
            replayed = self._keys[idempotency_key]
            self._seen.note(replayed, self._version(replayed))
            return dict(self.contacts[replayed])
        if self.unique_emails and self._holder(fields.get("email")) is not None:
            raise ContactExists("crm POST /contacts: HTTP 409: email taken")
        contact_id = f"c_{next(self._ids)}"
        self.contacts[contact_id] = {"id": contact_id, "status": "active", **fields}
        self._keys[idempotency_key] = contact_id
        self._bump(contact_id)
        return dict(self.contacts[contact_id])

    def update_contact(
        self, contact_id: str, fields: Mapping[str, Any], if_match: str | None = None
    ) -> Contact | None:
        if self._hold:
            self._hold = False
            self.unsure += 1
            self.held.append((contact_id, dict(fields), if_match))
        self.calls.append(Call("PATCH", contact_id, dict(fields), if_match))
        self._check(fields)
        contact = self.contacts.get(contact_id)
        if contact is None:
            return None
        holder = self._holder(fields.get("email"))
        if self.unique_emails and holder not in (None, contact_id):
            raise EmailTaken(f"crm PATCH /contacts/{contact_id}: HTTP 409: email taken")
        contact.update(fields)
        self._bump(contact_id)
        return dict(contact)

    # Conditional writes (contract 1.2: ETag / If-Match / 412) ---------------------------

    def unsure_writes(self) -> int:
        return self.unsure

    def version_seen(self, contact_id: str) -> str | None:
        return self._seen.get(contact_id)

    def update_guarded(
        self,
        contact_id: str,
        fields: Mapping[str, Any],
        *,
        owner: str | None,
        version: str | None,
    ) -> Contact | None:
        del owner  # a versioned destination: any change gives a new version
        known = contact_id in self.contacts
        if self.versioned and known and version not in (None, self._version(contact_id)):
            self.calls.append(Call("PATCH", contact_id, dict(fields), version))
            self._seen.note(contact_id, None)
            raise ContactChanged(f"crm PATCH /contacts/{contact_id}: HTTP 412")
        return self.update_contact(contact_id, fields, version if self.versioned else None)

    def _version(self, contact_id: str) -> str:
        return f'"v{self._versions.get(contact_id, 0)}"'

    def _bump(self, contact_id: str) -> None:
        self._versions[contact_id] = self._versions.get(contact_id, 0) + 1
        self._seen.note(contact_id, self._version(contact_id))

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
