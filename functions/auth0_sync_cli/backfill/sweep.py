"""After a whole export: contacts of users that Auth0 no longer has.

An active contact that carries an Auth0 user id the export does not list belongs to a user
deleted before the stream existed; it gets the `user.deleted` that was never sent (dated
at the newest time the export shows, so any later event of that user wins over it), and
the core deactivates it by its own rules. The exported ids are kept in a SQLite file, not
in memory, so a million users cost the same memory as a thousand.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Any

from auth0_sync.destinations import Contact, Listing

PAGE_SIZE = 500


class SeenUsers:
    """The user ids of an export, on disk (a temporary SQLite file removed on close)."""

    def __init__(self) -> None:
        handle, self.path = tempfile.mkstemp(prefix="auth0-sync-users-", suffix=".sqlite")
        os.close(handle)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("CREATE TABLE users (id TEXT PRIMARY KEY) WITHOUT ROWID")
        self._pending: list[tuple[str]] = []
        self.newest = ""  # the newest updated_at/created_at in the export

    def add(self, user: dict[str, Any]) -> None:
        self._pending.append((str(user.get("user_id")),))
        for name in ("updated_at", "created_at"):
            value = user.get(name)
            if isinstance(value, str) and value > self.newest:
                self.newest = value
        if len(self._pending) >= 1000:
            self.flush()

    def flush(self) -> None:
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO users VALUES (?)", self._pending)
        self._pending = []

    def __contains__(self, user_id: object) -> bool:
        self.flush()
        found = self._db.execute("SELECT 1 FROM users WHERE id = ?", (str(user_id),))
        return found.fetchone() is not None

    def close(self) -> None:
        self._db.close()
        os.unlink(self.path)


def every_contact(crm: Listing, page_size: int = PAGE_SIZE) -> Iterator[Contact]:
    """The CRM's whole listing, a page at a time, following each page's cursor (contract
    1.1's last id, HubSpot's `paging.next.after`, Salesforce's last record id)."""
    after: str | None = None
    while True:
        page = crm.list_contacts(limit=page_size, after=after)
        yield from page
        if not page or page.next_after is None:
            return
        after = page.next_after


def orphans(crm: Listing, seen: SeenUsers) -> Iterator[Contact]:
    """Active contacts carrying an Auth0 user id the export does not hold."""
    for contact in every_contact(crm):
        if orphaned(contact, seen):
            yield contact


def orphaned(contact: Contact, seen: SeenUsers) -> bool:
    """An active contact carrying an Auth0 user id the export does not hold."""
    owner = contact.get("auth0_user_id")
    return bool(owner) and contact.get("status", "active") == "active" and owner not in seen
