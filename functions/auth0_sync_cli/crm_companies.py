"""Companies and memberships of the reference CRM (contract 1.2), in the contacts' database.

Companies mirror the identity provider's organizations as contacts mirror its users: created
with an optional `Idempotency-Key` (kept apart from the contacts' keys), found by
`auth0_org_id`, listed a page at a time in id order, changed field by field. With
`unique_org_ids` a POST or PATCH giving a company an `auth0_org_id` another one holds is
refused (409); without it the server keeps whatever it is sent, as the contract allows.

A membership links one contact to one company with that contact's roles there: a PUT sets
the whole list (stored sorted, without repeats), a DELETE removes it. Nothing is deleted on
its own: a deactivated company or contact keeps its memberships.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auth0_sync_cli.crm_fields import STATUSES, FieldRules, InvalidBody, json_type, text_error
from auth0_sync_cli.crm_store import (
    DEFAULT_STATUS,
    ID_PREFIX,
    IDEMPOTENCY_WINDOW_SECONDS,
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    ContactNotFound,
    ContactStore,
    now_iso,
    parse_contact_id,
)

COMPANY_FIELDS: tuple[str, ...] = (
    "auth0_org_id",
    "name",
    "display_name",
    "status",
    "source_updated_at",
)
COMPANY_NULLABLE = frozenset({"display_name"})
COMPANY_RULES = FieldRules(COMPANY_FIELDS, COMPANY_NULLABLE, {"status": STATUSES})
MEMBERSHIP_KEYS = frozenset({"roles", "source_updated_at"})
COMPANY_ID_PREFIX = "co_"
_COMPANY_ID = re.compile(re.escape(COMPANY_ID_PREFIX) + r"([1-9]\d{0,17})")
_COMPANY_ID_SQL = f"('{COMPANY_ID_PREFIX}' || seq)"
_COLUMNS = ("seq", *COMPANY_FIELDS, "created_at", "updated_at")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS companies (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    auth0_org_id TEXT,
    name TEXT NOT NULL,
    display_name TEXT,
    status TEXT NOT NULL,
    source_updated_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS companies_auth0_org_id ON companies (auth0_org_id);
CREATE INDEX IF NOT EXISTS companies_id_text ON companies {_COMPANY_ID_SQL};
CREATE TABLE IF NOT EXISTS company_idempotency_keys (
    key TEXT PRIMARY KEY,
    company_seq INTEGER NOT NULL,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    company_seq INTEGER NOT NULL,
    contact_seq INTEGER NOT NULL,
    roles TEXT NOT NULL,
    source_updated_at TEXT,
    PRIMARY KEY (company_seq, contact_seq)
);
"""


class CompanyNotFound(LookupError):
    """No company has this id."""


class OrgIdTaken(Exception):
    """Another company holds this `auth0_org_id` (servers with unique ids only)."""

    def __init__(self, company_id: str) -> None:
        super().__init__(f"field 'auth0_org_id' is already used by another company: {company_id}")
        self.company_id = company_id


@dataclass(frozen=True)
class Membership:
    """One contact's membership of one company, as the contract's Membership schema."""

    company_id: str
    contact_id: str
    roles: tuple[str, ...]
    source_updated_at: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The contract's Membership (no company id: the path names it)."""
        body: dict[str, Any] = {"contact_id": self.contact_id, "roles": list(self.roles)}
        if self.source_updated_at is not None:
            body["source_updated_at"] = self.source_updated_at
        return body


def validate_company(body: object, *, creating: bool) -> dict[str, str | None]:
    """A body checked against CompanyFields (`name` required on create), or InvalidBody."""
    return COMPANY_RULES.validate(body, required=("name",) if creating else ())


def validate_membership(body: object) -> tuple[tuple[str, ...], str | None]:
    """The roles (sorted, without repeats) and source_updated_at of a MembershipFields body."""
    if not isinstance(body, dict):
        raise InvalidBody(f"body must be a JSON object, got {json_type(body)}")
    unknown = sorted(str(key) for key in body if key not in MEMBERSHIP_KEYS)
    if unknown:
        raise InvalidBody(f"unknown field(s): {unknown}")
    if "roles" not in body:
        raise InvalidBody("missing required field(s): ['roles']")
    roles = body["roles"]
    if not isinstance(roles, list):
        raise InvalidBody(f"field 'roles' must be an array, got {json_type(roles)}")
    for role in roles:
        if not isinstance(role, str):
            raise InvalidBody(f"every role must be a string, got {json_type(role)}")
        if (problem := text_error("roles", role)) is not None:
            raise InvalidBody(problem)
    source_updated_at = body.get("source_updated_at")
    time_rules = FieldRules(("source_updated_at",))
    if "source_updated_at" in body and (
        problem := time_rules.field_error("source_updated_at", source_updated_at)
    ):
        raise InvalidBody(problem)
    return tuple(sorted(set(roles))), source_updated_at


def parse_company_id(company_id: str) -> int | None:
    """The row number inside a company id like "co_12", or None if it is not one of ours."""
    match = _COMPANY_ID.fullmatch(company_id)
    return int(match.group(1)) if match else None


def _row_to_company(row: sqlite3.Row) -> dict[str, Any]:
    company: dict[str, Any] = {"id": f"{COMPANY_ID_PREFIX}{row['seq']}"}
    for name in (*COMPANY_FIELDS, "created_at", "updated_at"):
        value = row[name]
        if value is not None or name in COMPANY_NULLABLE:
            company[name] = value
    return company


class CompanyStore:
    """Companies, their idempotency keys and memberships, in the contact store's database
    and under its lock (a membership names a contact, which must exist)."""

    def __init__(self, contacts: ContactStore, *, unique_org_ids: bool = False) -> None:
        self._contacts = contacts
        self._conn = contacts.connection
        self._lock = contacts.lock
        self._clock = contacts.clock
        self.unique_org_ids = unique_org_ids
        with self._lock, self._conn:
            self._conn.executescript(_SCHEMA)

    def _select(
        self, where: str, params: tuple[Any, ...], order: str = "seq", limit: str = ""
    ) -> list[dict[str, Any]]:
        columns = ", ".join(_COLUMNS)
        sql = f"SELECT {columns} FROM companies {where} ORDER BY {order} {limit}"  # noqa: S608
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [_row_to_company(row) for row in rows]

    def get(self, company_id: str) -> dict[str, Any]:
        """The company with this id, or CompanyNotFound."""
        seq = parse_company_id(company_id)
        found = self._select("WHERE seq = ?", (seq,)) if seq is not None else []
        if not found:
            raise CompanyNotFound(company_id)
        return found[0]

    def find(self, auth0_org_id: str) -> list[dict[str, Any]]:
        """Every company mirroring this organization (more than one only without unique ids)."""
        return self._select("WHERE auth0_org_id = ?", (auth0_org_id,))

    def all(self) -> list[dict[str, Any]]:
        """Every company, in creation order."""
        return self._select("", ())

    def page(
        self, *, after: str | None = None, limit: int = PAGE_LIMIT_DEFAULT
    ) -> list[dict[str, Any]]:
        """At most `limit` companies whose id sorts after `after` (string order), in id order."""
        if not 1 <= limit <= PAGE_LIMIT_MAX:
            raise ValueError(f"limit must be from 1 to {PAGE_LIMIT_MAX}, got {limit}")
        where = f"WHERE {_COMPANY_ID_SQL} > ?"
        return self._select(where, (after or "", limit), order=_COMPANY_ID_SQL, limit="LIMIT ?")

    def _org_id_holder(self, auth0_org_id: str, *, besides: int | None = None) -> str | None:
        row = self._conn.execute(
            "SELECT seq FROM companies WHERE auth0_org_id = ? AND seq IS NOT ?"
            " ORDER BY seq LIMIT 1",
            (auth0_org_id, besides),
        ).fetchone()
        return None if row is None else f"{COMPANY_ID_PREFIX}{row['seq']}"

    def _insert(self, fields: Mapping[str, str | None]) -> str:
        now = now_iso()
        row = {name: fields.get(name) for name in COMPANY_FIELDS}
        row["status"] = row["status"] or DEFAULT_STATUS
        cursor = self._conn.execute(
            f"INSERT INTO companies ({', '.join(COMPANY_FIELDS)}, created_at, updated_at)"  # noqa: S608
            f" VALUES ({', '.join('?' * (len(COMPANY_FIELDS) + 2))})",
            (*row.values(), now, now),
        )
        return f"{COMPANY_ID_PREFIX}{cursor.lastrowid}"

    def create(
        self, fields: Mapping[str, str | None], idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Create a company; return (it, created). A known key returns the first company.

        Raises OrgIdTaken (unique ids only, checked after the key)."""
        with self._lock, self._conn:
            if idempotency_key is not None:
                row = self._conn.execute(
                    "SELECT company_seq, seen_at FROM company_idempotency_keys WHERE key = ?",
                    (idempotency_key,),
                ).fetchone()
                if row is not None and self._clock() - row["seen_at"] < IDEMPOTENCY_WINDOW_SECONDS:
                    return self.get(f"{COMPANY_ID_PREFIX}{row['company_seq']}"), False
            org_id = fields.get("auth0_org_id")
            if self.unique_org_ids and org_id is not None:
                holder = self._org_id_holder(org_id)
                if holder is not None:
                    raise OrgIdTaken(holder)
            company_id = self._insert(fields)
            if idempotency_key is not None:
                self._conn.execute(
                    "INSERT OR REPLACE INTO company_idempotency_keys (key, company_seq, seen_at)"
                    " VALUES (?, ?, ?)",
                    (idempotency_key, parse_company_id(company_id), self._clock()),
                )
            return self.get(company_id), True

    def update(self, company_id: str, fields: Mapping[str, str | None]) -> dict[str, Any]:
        """Change only the fields given; CompanyNotFound, or OrgIdTaken (unique ids only)."""
        with self._lock, self._conn:
            current = self.get(company_id)
            seq = parse_company_id(company_id)
            org_id = fields.get("auth0_org_id")
            if self.unique_org_ids and org_id is not None and org_id != current.get("auth0_org_id"):
                holder = self._org_id_holder(org_id, besides=seq)
                if holder is not None:
                    raise OrgIdTaken(holder)
            changed = {name: value for name, value in fields.items() if current.get(name) != value}
            if not changed:
                return current
            assignments = [f"{name} = ?" for name in changed] + ["updated_at = ?"]
            self._conn.execute(
                f"UPDATE companies SET {', '.join(assignments)} WHERE seq = ?",  # noqa: S608
                (*changed.values(), now_iso(), seq),
            )
            return self.get(company_id)

    def seed(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a company with no uniqueness check (one made in the CRM before the sync)."""
        checked = validate_company(dict(fields), creating=True)
        with self._lock, self._conn:
            return self.get(self._insert(checked))

    def members(self, company_id: str) -> list[Membership]:
        """The company's memberships, in contact id order (string order); CompanyNotFound."""
        self.get(company_id)
        return self._memberships("WHERE company_seq = ?", (parse_company_id(company_id),))

    def all_memberships(self) -> list[Membership]:
        """Every membership, by company then contact."""
        return self._memberships("", ())

    def _memberships(self, where: str, params: tuple[Any, ...]) -> list[Membership]:
        order = f"('{COMPANY_ID_PREFIX}' || company_seq), ('{ID_PREFIX}' || contact_seq)"
        sql = (
            "SELECT company_seq, contact_seq, roles, source_updated_at FROM memberships"  # noqa: S608
            f" {where} ORDER BY {order}"
        )
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [
            Membership(
                f"{COMPANY_ID_PREFIX}{row['company_seq']}",
                f"{ID_PREFIX}{row['contact_seq']}",
                tuple(json.loads(row["roles"])),
                row["source_updated_at"],
            )
            for row in rows
        ]

    def require_contact(self, contact_id: str) -> None:
        """ContactNotFound unless a contact has this id."""
        if not self._contacts.exists(contact_id):
            raise ContactNotFound(contact_id)

    def put_member(
        self,
        company_id: str,
        contact_id: str,
        roles: tuple[str, ...],
        source_updated_at: str | None = None,
    ) -> tuple[Membership, bool]:
        """Make the contact a member with exactly these roles; return (it, created).

        Raises CompanyNotFound, then ContactNotFound."""
        with self._lock, self._conn:
            self.get(company_id)
            self.require_contact(contact_id)
            key = (parse_company_id(company_id), parse_contact_id(contact_id))
            existed = self._conn.execute(
                "SELECT 1 FROM memberships WHERE company_seq = ? AND contact_seq = ?", key
            ).fetchone()
            self._conn.execute(
                "INSERT OR REPLACE INTO memberships (company_seq, contact_seq, roles,"
                " source_updated_at) VALUES (?, ?, ?, ?)",
                (*key, json.dumps(sorted(set(roles))), source_updated_at),
            )
            membership = Membership(
                company_id, contact_id, tuple(sorted(set(roles))), source_updated_at
            )
            return membership, existed is None

    def delete_member(self, company_id: str, contact_id: str) -> None:
        """End the membership if there is one; CompanyNotFound if there is no such company."""
        with self._lock, self._conn:
            self.get(company_id)
            contact_seq = parse_contact_id(contact_id)
            if contact_seq is not None:
                self._conn.execute(
                    "DELETE FROM memberships WHERE company_seq = ? AND contact_seq = ?",
                    (parse_company_id(company_id), contact_seq),
                )

    def reset(self) -> None:
        """Delete every company, key and membership; ids start again at co_1."""
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM memberships")
            self._conn.execute("DELETE FROM company_idempotency_keys")
            self._conn.execute("DELETE FROM companies")
            self._conn.execute("DELETE FROM sqlite_sequence WHERE name = 'companies'")
