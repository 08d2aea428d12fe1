"""`reconcile`'s sources on disk, so the comparison's memory does not grow with the tenant.

The CRM listing and the sync states are streamed, a batch at a time, into a temporary
SQLite file (each record pickled, beside the columns the comparison joins on: a contact's
id, owner and email; a state's user id and contact); the export is then walked once, in its
own order, and each user looks up its state and contacts by index. Nothing is held whole in
Python: the batches, SQLite's bounded page cache and the drift found are all the memory
there is, so 100,000 users take the memory 10,000 do.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from auth0_sync.destinations import Contact
from auth0_sync.state import SyncState

BATCH = 500  # records drawn from a source before they are written to disk
OWNER, EMAIL = "auth0_user_id", "email"

_SCHEMA = (
    "CREATE TABLE contacts (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, owner TEXT, "
    "email TEXT, body BLOB NOT NULL)",
    "CREATE INDEX contacts_owner ON contacts (owner, seq)",
    "CREATE INDEX contacts_email ON contacts (email)",
    "CREATE TABLE states (user_id TEXT PRIMARY KEY, contact_id TEXT, live INTEGER NOT NULL, "
    "body BLOB NOT NULL) WITHOUT ROWID",
    "CREATE INDEX states_contact ON states (contact_id, user_id)",
    "CREATE TABLE exported (user_id TEXT PRIMARY KEY) WITHOUT ROWID",
)


def _batches(items: Iterable[Any]) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, BATCH)):
        yield batch


class Sources:
    """The CRM listing and the sync states in a temporary SQLite file (removed on close)."""

    def __init__(self, directory: str | None = None) -> None:
        handle, self.path = tempfile.mkstemp(
            prefix="auth0-sync-reconcile-", suffix=".sqlite", dir=directory
        )
        os.close(handle)
        self._db = sqlite3.connect(self.path)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE"):
            self._db.execute(f"PRAGMA {pragma}")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def __enter__(self) -> Sources:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()
        os.unlink(self.path)

    # Loading ----------------------------------------------------------------------------------

    def add_contacts(self, contacts: Iterable[tuple[str, Contact]]) -> None:
        """(contact id, contact) pairs in listing order; a repeated id keeps its first place
        and its last value (as a dict built from the listing would)."""
        for batch in _batches(contacts):
            rows = [
                (
                    contact_id,
                    str(contact[OWNER]) if contact.get(OWNER) else None,
                    str(contact.get(EMAIL) or "").lower() or None,
                    pickle.dumps(contact),
                )
                for contact_id, contact in batch
            ]
            with self._db:
                self._db.executemany(
                    "INSERT INTO contacts (id, owner, email, body) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, "
                    "email = excluded.email, body = excluded.body",
                    rows,
                )

    def add_states(self, states: Iterable[tuple[str, SyncState]]) -> None:
        """(user id, state) pairs; a repeated user id keeps its last state."""
        for batch in _batches(states):
            rows = [
                (
                    user_id,
                    state.contact_id or None,
                    int(state.deleted_at is None),
                    pickle.dumps(state),
                )
                for user_id, state in batch
            ]
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO states VALUES (?, ?, ?, ?)", rows)

    def add_exported(self, user_ids: Iterable[str]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO exported VALUES (?)", ((u,) for u in user_ids)
            )

    # Looking up -------------------------------------------------------------------------------

    def _one(self, query: str, *params: Any) -> Any:
        row = self._db.execute(query, params).fetchone()
        return None if row is None else row[0]

    def count_contacts(self) -> int:
        return int(self._one("SELECT count(*) FROM contacts"))

    def count_states(self) -> int:
        return int(self._one("SELECT count(*) FROM states"))

    def contact(self, contact_id: str) -> Contact | None:
        body = self._one("SELECT body FROM contacts WHERE id = ?", contact_id)
        return None if body is None else _contact(body)

    def first_owned(self, user_id: str) -> Contact | None:
        """The first contact in listing order that carries this Auth0 user id."""
        body = self._one("SELECT body FROM contacts WHERE owner = ? ORDER BY seq LIMIT 1", user_id)
        return None if body is None else _contact(body)

    def holds_email(self, email: str) -> bool:
        """Whether any contact holds this email (compared lower case)."""
        return bool(self._one("SELECT 1 FROM contacts WHERE email = ? LIMIT 1", email.lower()))

    def state(self, user_id: str) -> SyncState | None:
        body = self._one("SELECT body FROM states WHERE user_id = ?", user_id)
        return None if body is None else _state(body)

    def claimed(self, contact_id: str) -> bool:
        """Whether the state of a user not deleted names this contact."""
        found = self._one(
            "SELECT 1 FROM states WHERE contact_id = ? AND live = 1 LIMIT 1", contact_id
        )
        return bool(found)

    def was_exported(self, user_id: str) -> bool:
        return bool(self._one("SELECT 1 FROM exported WHERE user_id = ?", user_id))

    # Walking ----------------------------------------------------------------------------------

    def _groups(self, query: str) -> Iterator[tuple[str, list[str]]]:
        """(key, its values sorted) for each key with more than one value, keys sorted:
        `query` selects (key, value) ordered by key, then value."""
        key: str | None = None
        values: list[str] = []
        for found, value in self._db.execute(query):
            if found != key:
                if key is not None and len(values) > 1:
                    yield key, values
                key, values = found, []
            values.append(value)
        if key is not None and len(values) > 1:
            yield key, values

    def claimed_twice_by_states(self) -> Iterator[tuple[str, list[str]]]:
        """Each contact named by the states of more than one live user, and those users."""
        return self._groups(
            "SELECT contact_id, user_id FROM states WHERE live = 1 AND contact_id IS NOT NULL "
            "ORDER BY contact_id, user_id"
        )

    def claimed_twice_by_owner(self) -> Iterator[tuple[str, list[str]]]:
        """Each Auth0 user id more than one contact carries, and those contacts."""
        return self._groups(
            "SELECT owner, id FROM contacts WHERE owner IS NOT NULL ORDER BY owner, id"
        )

    def contacts(self) -> Iterator[tuple[str, Contact]]:
        """Every contact, in listing order."""
        for contact_id, body in self._db.execute("SELECT id, body FROM contacts ORDER BY seq"):
            yield contact_id, _contact(body)


def _contact(body: bytes) -> Contact:
    # Our own temporary file, written by this process from the sources it was given.
    contact: Contact = pickle.loads(body)  # noqa: S301
    return contact


def _state(body: bytes) -> SyncState:
    state: SyncState = pickle.loads(body)  # noqa: S301 (our own file, as above)
    return state
