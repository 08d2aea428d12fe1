"""Storage and field rules of the reference CRM server: contacts in SQLite, per the contract.

The HTTP layer (crm_server.py) maps the errors raised here to status codes.

ETags (contract 1.2's conditional writes): each contact row holds a random revision, drawn
anew on every change (through the contract, a seed or an edit by a person), never derived
from the contact's content: a contact that changes and changes back still gets a new ETag,
so a write made against the first state cannot pass for one made against the last.

Emails: a POST with an email another contact holds (compared case-insensitively) is always
refused, as contract 1.0 promised and 1.1 still lists for every server. With
`unique_emails`, a PATCH that would give a contact an email another one holds is refused
too (contract 1.1's servers with unique emails); without it, a PATCH may leave two
contacts with one email, as edits in most CRMs can.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auth0_sync_cli.crm_fields import STATUSES, FieldRules, InvalidBody

# The fields of the contract's ContactFields schema; the nullable ones accept JSON null.
CONTACT_FIELDS: tuple[str, ...] = (
    "email",
    "name",
    "given_name",
    "family_name",
    "phone",
    "status",
    "auth0_user_id",
    "source_updated_at",
)
NULLABLE_FIELDS = frozenset({"name", "given_name", "family_name", "phone"})
CONTACT_RULES = FieldRules(CONTACT_FIELDS, NULLABLE_FIELDS, {"status": STATUSES})
# A contact's body that breaks ContactFields (422); the message says which field and why.
InvalidContact = InvalidBody
DEFAULT_STATUS = "active"
ID_PREFIX = "c_"
IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600
# The listing's page size (GET /contacts without filters), per the contract.
PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX = 100, 500
# A contact's id as text, in SQL: the listing sorts and pages on it (string order, as the
# contract says), through an index on the same expression.
_ID_SQL = f"('{ID_PREFIX}' || seq)"

_ID = re.compile(re.escape(ID_PREFIX) + r"([1-9]\d{0,17})")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS contacts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    name TEXT,
    given_name TEXT,
    family_name TEXT,
    phone TEXT,
    status TEXT NOT NULL,
    auth0_user_id TEXT,
    source_updated_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    revision TEXT
);
CREATE INDEX IF NOT EXISTS contacts_email_key ON contacts (email_key);
CREATE INDEX IF NOT EXISTS contacts_auth0_user_id ON contacts (auth0_user_id);
CREATE INDEX IF NOT EXISTS contacts_id_text ON contacts {_ID_SQL};
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    contact_seq INTEGER NOT NULL,
    seen_at REAL NOT NULL
);
"""
_COLUMNS = ("seq", *CONTACT_FIELDS, "created_at", "updated_at", "revision")
# A database file from before ETags: its contacts get a revision when it is opened.
_MIGRATE_REVISION = "ALTER TABLE contacts ADD COLUMN revision TEXT"
_FILL_REVISIONS = "UPDATE contacts SET revision = lower(hex(randomblob(12))) WHERE revision IS NULL"


def validate_fields(body: object, *, require_email: bool) -> dict[str, str | None]:
    """Check a request body against ContactFields; return its fields or raise InvalidContact."""
    return CONTACT_RULES.validate(body, required=("email",) if require_email else ())


class ContactNotFound(LookupError):
    """No contact has this id."""


class PreconditionFailed(Exception):
    """`If-Match` names a version the contact no longer has; `etag` is the current one."""

    def __init__(self, contact_id: str, etag: str) -> None:
        super().__init__(f"contact {contact_id} changed since that version; its ETag is {etag}")
        self.contact_id = contact_id
        self.etag = etag


@dataclass(frozen=True)
class Versioned:
    """A contact as stored, with its ETag (a quoted strong entity-tag, RFC 9110 8.8.3)."""

    contact: dict[str, Any]
    etag: str


class EmailTaken(Exception):
    """Another contact already has this email (compared case-insensitively)."""

    def __init__(self, contact_id: str) -> None:
        super().__init__(f"a contact with this email already exists: {contact_id}")
        self.contact_id = contact_id


def parse_contact_id(contact_id: str) -> int | None:
    """The row number inside a contact id like "c_12", or None if it is not one of ours."""
    match = _ID.fullmatch(contact_id)
    return int(match.group(1)) if match else None


def _new_revision() -> str:
    return secrets.token_hex(12)


def if_match_allows(header: str | None, etag: str) -> bool:
    """True if a request with this `If-Match` header may change a resource tagged `etag`.

    RFC 9110 13.1.1: absent or `*` (the resource exists) passes; otherwise a list of
    entity-tags passes when one of them equals `etag` by strong comparison (a weak tag
    `W/"..."` never does).
    """
    if header is None or header.strip() == "*":
        return True
    return any(tag.strip() == etag for tag in header.split(","))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _row_to_versioned(row: sqlite3.Row) -> Versioned:
    return Versioned(_row_to_contact(row), f'"{row["revision"]}"')


def _row_to_contact(row: sqlite3.Row) -> dict[str, Any]:
    contact: dict[str, Any] = {"id": f"{ID_PREFIX}{row['seq']}"}
    for name in (*CONTACT_FIELDS, "created_at", "updated_at"):
        value = row[name]
        # Non-nullable optional fields are left out rather than sent as null (the schema
        # would reject null for them); nullable ones are always present.
        if value is not None or name in NULLABLE_FIELDS:
            contact[name] = value
    return contact


class ContactStore:
    """Contacts and idempotency keys in one SQLite database, safe to share between threads."""

    def __init__(
        self,
        db_path: str | None = None,
        clock: Callable[[], float] = time.time,
        *,
        unique_emails: bool = False,
    ) -> None:
        # One connection guarded by a lock: waitress serves from several threads, and an
        # in-memory database exists only inside the connection that created it.
        self._conn = sqlite3.connect(db_path or ":memory:", check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._clock = clock
        self.unique_emails = unique_emails
        with self._lock, self._conn:
            self._conn.executescript(_SCHEMA)
            columns = {row["name"] for row in self._conn.execute("PRAGMA table_info(contacts)")}
            if "revision" not in columns:
                self._conn.execute(_MIGRATE_REVISION)
            self._conn.execute(_FILL_REVISIONS)

    @property
    def connection(self) -> sqlite3.Connection:
        """The database, for the stores that share it (companies); use it under `lock`."""
        return self._conn

    @property
    def lock(self) -> threading.RLock:
        """The lock every use of the database holds."""
        return self._lock

    @property
    def clock(self) -> Callable[[], float]:
        """The clock idempotency keys age by."""
        return self._clock

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def _select(self, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [found.contact for found in self._select_versioned(where, params)]

    def _select_versioned(self, where: str, params: tuple[Any, ...]) -> list[Versioned]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM contacts {where} ORDER BY seq"  # noqa: S608
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [_row_to_versioned(row) for row in rows]

    def find(self, *, email: str | None, auth0_user_id: str | None) -> list[dict[str, Any]]:
        """Contacts matching every criterion given; email is compared case-insensitively."""
        clauses: list[str] = []
        params: list[str] = []
        if email is not None:
            clauses.append("email_key = ?")
            params.append(email.lower())
        if auth0_user_id is not None:
            clauses.append("auth0_user_id = ?")
            params.append(auth0_user_id)
        if not clauses:
            raise ValueError("find needs an email or an auth0_user_id")
        return self._select("WHERE " + " AND ".join(clauses), tuple(params))

    def get(self, contact_id: str) -> dict[str, Any]:
        """The contact with this id, or ContactNotFound."""
        return self.read(contact_id).contact

    def read(self, contact_id: str) -> Versioned:
        """The contact with this id and its ETag, or ContactNotFound."""
        seq = parse_contact_id(contact_id)
        found = self._select_versioned("WHERE seq = ?", (seq,)) if seq is not None else []
        if not found:
            raise ContactNotFound(contact_id)
        return found[0]

    def exists(self, contact_id: str) -> bool:
        """True if a contact has this id."""
        seq = parse_contact_id(contact_id)
        if seq is None:
            return False
        with self._lock:
            return (
                self._conn.execute("SELECT 1 FROM contacts WHERE seq = ?", (seq,)).fetchone()
                is not None
            )

    def all(self) -> list[dict[str, Any]]:
        """Every contact, in creation order."""
        return self._select("", ())

    def page(
        self, *, after: str | None = None, limit: int = PAGE_LIMIT_DEFAULT
    ) -> list[dict[str, Any]]:
        """At most `limit` contacts whose id sorts after `after` (string order), in id order."""
        if not 1 <= limit <= PAGE_LIMIT_MAX:
            raise ValueError(f"limit must be from 1 to {PAGE_LIMIT_MAX}, got {limit}")
        sql = (
            f"SELECT {', '.join(_COLUMNS)} FROM contacts WHERE {_ID_SQL} > ?"  # noqa: S608
            f" ORDER BY {_ID_SQL} LIMIT ?"
        )
        with self._lock:
            rows = self._conn.execute(sql, (after or "", limit)).fetchall()
        return [_row_to_contact(row) for row in rows]

    def _insert(self, fields: Mapping[str, str | None]) -> int:
        now = now_iso()
        row = {name: fields.get(name) for name in CONTACT_FIELDS}
        row["status"] = row["status"] or DEFAULT_STATUS
        email = row["email"]
        assert email is not None  # validate_fields(require_email=True) saw to it
        cursor = self._conn.execute(
            f"INSERT INTO contacts ({', '.join(CONTACT_FIELDS)}, email_key, created_at,"  # noqa: S608
            f" updated_at, revision) VALUES ({', '.join('?' * (len(CONTACT_FIELDS) + 4))})",
            (*row.values(), email.lower(), now, now, _new_revision()),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _email_owner(self, email: str, *, besides: int | None = None) -> int | None:
        row = self._conn.execute(
            "SELECT seq FROM contacts WHERE email_key = ? AND seq IS NOT ? ORDER BY seq LIMIT 1",
            (email.lower(), besides),
        ).fetchone()
        return None if row is None else int(row["seq"])

    def create(
        self, fields: Mapping[str, str | None], idempotency_key: str | None = None
    ) -> tuple[Versioned, bool]:
        """Create a contact; return (it, created). A known key returns the first contact.

        Raises EmailTaken when another contact has the email (checked after the key).
        """
        with self._lock, self._conn:
            if idempotency_key is not None:
                row = self._conn.execute(
                    "SELECT contact_seq, seen_at FROM idempotency_keys WHERE key = ?",
                    (idempotency_key,),
                ).fetchone()
                if row is not None and self._clock() - row["seen_at"] < IDEMPOTENCY_WINDOW_SECONDS:
                    return self.read(f"{ID_PREFIX}{row['contact_seq']}"), False
            email = fields.get("email")
            assert email is not None
            owner = self._email_owner(email)
            if owner is not None:
                raise EmailTaken(f"{ID_PREFIX}{owner}")
            seq = self._insert(fields)
            if idempotency_key is not None:
                self._conn.execute(
                    "INSERT OR REPLACE INTO idempotency_keys (key, contact_seq, seen_at)"
                    " VALUES (?, ?, ?)",
                    (idempotency_key, seq, self._clock()),
                )
            return self.read(f"{ID_PREFIX}{seq}"), True

    def update(
        self,
        contact_id: str,
        fields: Mapping[str, str | None],
        *,
        if_match: str | None = None,
    ) -> Versioned:
        """Change only the fields given; raise ContactNotFound, PreconditionFailed when
        `if_match` (an If-Match header) does not allow it, or EmailTaken (unique emails only)
        when the new email is one another contact holds. Nothing changes when it raises."""
        with self._lock, self._conn:
            stored = self.read(contact_id)
            if not if_match_allows(if_match, stored.etag):
                raise PreconditionFailed(contact_id, stored.etag)
            current = stored.contact
            seq = parse_contact_id(contact_id)
            email = fields.get("email")
            # Keeping its own email (whatever its case) gives a contact nothing new, even
            # where legacy duplicates share it.
            if (
                self.unique_emails
                and email is not None
                and email.lower() != current["email"].lower()
            ):
                owner = self._email_owner(email, besides=seq)
                if owner is not None:
                    raise EmailTaken(f"{ID_PREFIX}{owner}")
            return self._write(stored, fields)

    def _write(self, stored: Versioned, fields: Mapping[str, str | None]) -> Versioned:
        """Store the fields that differ; a write that changes nothing keeps the ETag."""
        current = stored.contact
        changed = {name: value for name, value in fields.items() if current.get(name) != value}
        if not changed:
            return stored
        assignments = [f"{name} = ?" for name in changed]
        params: list[Any] = list(changed.values())
        if "email" in changed:
            assignments.append("email_key = ?")
            params.append(str(changed["email"]).lower())
        assignments.extend(["updated_at = ?", "revision = ?"])
        params.extend([now_iso(), _new_revision(), parse_contact_id(current["id"])])
        self._conn.execute(
            f"UPDATE contacts SET {', '.join(assignments)} WHERE seq = ?",  # noqa: S608
            params,
        )
        return self.read(current["id"])

    def edit(self, contact_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Change a contact as a person in the CRM would: no email-uniqueness check, no
        precondition; a change gets a new ETag like any other."""
        checked = validate_fields(dict(fields), require_email=False)
        with self._lock, self._conn:
            return self._write(self.read(contact_id), checked).contact

    def seed(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a contact without the email-uniqueness check (legacy duplicates in tests)."""
        checked = validate_fields(dict(fields), require_email=True)
        with self._lock, self._conn:
            seq = self._insert(checked)
            return self.get(f"{ID_PREFIX}{seq}")

    def reset(self) -> None:
        """Delete every contact and idempotency key; ids start again at c_1."""
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM contacts")
            self._conn.execute("DELETE FROM idempotency_keys")
            self._conn.execute("DELETE FROM sqlite_sequence WHERE name = 'contacts'")
