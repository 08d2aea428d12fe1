"""Destinations: the CRMs the sync writes to, behind one `Crm` protocol.

The core speaks the generic contract's field names (`email`, `given_name`, `family_name`,
`phone`, `name`, and the fields the sync owns: `auth0_user_id`, `status`,
`source_updated_at`); each adapter translates them to and from its vendor's records at its
boundary (`rest`: the generic REST contract itself, `hubspot`: CRM v3 contacts,
`salesforce`: REST API Contact). A `Destination` says which generic fields the vendor can
hold, which it cannot be without, and its default mapping.

This package knows nothing of the settings (which read `DESTINATIONS` to validate a
mapping): `auth0_sync.destinations.factory.build_crm` turns settings into an adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from auth0_sync.names import CrmType

Contact = dict[str, Any]
RemainingMillis = Callable[[], int]


# Fields of the generic contract the sync itself owns (never mapped).
@runtime_checkable
class Archiving(Protocol):
    """A destination that can archive a contact (HubSpot): `deletePolicy=archive`."""

    def archive_contact(self, contact_id: str) -> bool: ...


@runtime_checkable
class Erasing(Protocol):
    """A destination with a permanent, GDPR erasure of a contact (HubSpot's gdpr-delete):
    `deletePolicy=erase`."""

    def erase_contact(self, contact_id: str) -> bool: ...


OWNER_FIELD = "auth0_user_id"
STATUS_FIELD = "status"
STAMP_FIELD = "source_updated_at"
EMAIL_FIELD = "email"
ACTIVE, DEACTIVATED = "active", "deactivated"


class Crm(Protocol):
    """What the sync core needs from a destination, in generic contract field names."""

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]: ...

    def get_contact(self, contact_id: str) -> Contact | None: ...

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact: ...

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None: ...

    def calls_made(self) -> int: ...

    def set_deadline(self, remaining_ms: RemainingMillis | None) -> None: ...


@dataclass(frozen=True)
class BatchWrite:
    """One operation of a batch write: a create (`contact_id` None, with the key that makes
    a repeat return the first contact where the destination has keys) or a partial update;
    `owner`: the update reaches the contact only while it carries that Auth0 user (the
    unconditional destination's guarded write, `Guarded.update_guarded`)."""

    fields: Mapping[str, Any]
    contact_id: str | None = None
    idempotency_key: str | None = None
    owner: str | None = None
    # A guarded update's version (`Guarded.update_guarded`): applied only while the contact
    # still has it; a contact changed since ends as `ContactChanged` (GuardedBatching).
    version: str | None = None


# What one operation of a batch came to, as its single call would have ended: the contact
# (created or updated), None (an update of a contact that is gone: `update_contact`'s None),
# or the error the single call would have raised (`ContactExists`, `EmailTaken`,
# `CrmRejected`...). A failure of the whole batch (401, 429 or 5xx after the retries) is
# raised instead, as for a single call.
BatchResult = Contact | None | Exception


@runtime_checkable
class Batching(Protocol):
    """A destination with batch calls: many users' reads or writes in one request
    (`batch_limit` at most), each operation ending as its single call would.

    - `find_batch(field, values)`: `field` is `email` or `auth0_user_id`; every value sent
      maps to the contacts that `find_contacts(field=value)` would answer.
    - `write_batch(writes)`: one result per write, in order (see `BatchResult`); a record's
      own failure (409, 422, 404) is that record's, never the batch's.
    """

    batch_limit: int

    def find_batch(self, field: str, values: Sequence[str]) -> dict[str, list[Contact]]: ...

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchResult]: ...


@runtime_checkable
class Guarded(Protocol):
    """A destination whose writes can carry a precondition (see `auth0_sync.writes`).

    - `versioned`: the destination refuses a write based on an old version of the contact
      (`ContactChanged`): the generic contract's `ETag` / `If-Match` (412), Salesforce's
      `If-Unmodified-Since` on sObject rows (412, to the second).
    - `update_guarded(..., owner=U)`: the write reaches the contact only while it carries
      U: HubSpot addresses it by the unique `auth0_user_id` (`idProperty`), so a contact
      given to someone else is not found (None); a versioned destination ignores `owner`
      (a change by anyone gives the contact a new version).
    - `version_seen(id)`: the version of the contact in the last answer about it that the
      calling thread got (a read, a create or a write); None when unknown.
    """

    versioned: bool

    def version_seen(self, contact_id: str) -> str | None: ...

    def update_guarded(
        self,
        contact_id: str,
        fields: Mapping[str, Any],
        *,
        owner: str | None,
        version: str | None,
    ) -> Contact | None: ...


class SeenVersions:
    """Per thread, the version of each contact in the last answer about it (a few hundred
    at most: only the current event's contacts matter)."""

    LIMIT = 256

    def __init__(self) -> None:
        import threading

        self._local = threading.local()

    def _map(self) -> dict[str, str | None]:
        seen: dict[str, str | None] | None = getattr(self._local, "seen", None)
        if seen is None:
            seen = self._local.seen = {}
        return seen

    def note(self, contact_id: str, version: str | None) -> None:
        seen = self._map()
        seen.pop(contact_id, None)
        seen[contact_id] = version
        while len(seen) > self.LIMIT:
            seen.pop(next(iter(seen)))

    def get(self, contact_id: str) -> str | None:
        return self._map().get(contact_id)


class ContactPage(list[Contact]):
    """One page of a destination's listing, in generic names; `next_after` is what to pass
    as `after` for the next page (None: this page is the last)."""

    def __init__(self, contacts: Iterable[Contact] = (), next_after: str | None = None) -> None:
        super().__init__(contacts)
        self.next_after = next_after


@runtime_checkable
class Listing(Crm, Protocol):
    """A destination that can list every contact, a page at a time (backfill's sweep and
    `reconcile` read it)."""

    def list_contacts(self, limit: int = 100, after: str | None = None) -> ContactPage: ...


@dataclass(frozen=True)
class Destination:
    """What the settings and the core know of a destination (no HTTP here)."""

    crm_type: CrmType
    # Generic fields a mapping may write to this destination.
    fields: frozenset[str]
    # Generic fields a contact cannot be without: the core never clears them.
    required: frozenset[str]
    default_mapping: Mapping[str, str] = field(default_factory=dict)
    default_base_url: str | None = None


# The default mapping for the vendors, in generic names.
_VENDOR_MAPPING = {
    "email": "email",
    "given_name": "given_name",
    "family_name": "family_name",
    "phone_number": "phone",
}

DESTINATIONS: dict[CrmType, Destination] = {
    CrmType.REST: Destination(
        CrmType.REST,
        fields=frozenset({"email", "name", "given_name", "family_name", "phone"}),
        required=frozenset({EMAIL_FIELD}),
        default_mapping={
            "email": "email",
            "name": "name",
            "given_name": "given_name",
            "family_name": "family_name",
            "phone_number": "phone",
        },
    ),
    CrmType.HUBSPOT: Destination(
        CrmType.HUBSPOT,
        fields=frozenset({"email", "given_name", "family_name", "phone"}),
        required=frozenset({EMAIL_FIELD}),
        default_mapping=_VENDOR_MAPPING,
        default_base_url="https://api.hubapi.com",
    ),
    # Salesforce requires LastName; the adapter writes a placeholder when Auth0 has no
    # family name (see salesforce.py), so family_name may still be cleared (anonymization).
    CrmType.SALESFORCE: Destination(
        CrmType.SALESFORCE,
        fields=frozenset({"email", "given_name", "family_name", "phone"}),
        required=frozenset({EMAIL_FIELD}),
        default_mapping=_VENDOR_MAPPING,
    ),
}


def destination(crm_type: CrmType | str) -> Destination:
    return DESTINATIONS[CrmType(crm_type)]


def with_defaults(values: Any, type_key: str, url_key: str, mapping_key: str) -> Any:
    """`values` (settings or CDK context) with the destination's default base URL and
    mapping where none is given; an unknown type is left for the enum to name."""
    if not isinstance(values, dict):
        return values
    try:
        spec = destination(str(values.get(type_key) or CrmType.REST))
    except ValueError:
        return values
    values = dict(values)
    if spec.default_base_url and not values.get(url_key):
        values[url_key] = spec.default_base_url
    if values.get(mapping_key) is None:
        values[mapping_key] = dict(spec.default_mapping)
    return values


def mapping_problem(crm_type: CrmType | str, mapping: Mapping[str, str]) -> str | None:
    """Why `mapping` does not fit the destination (None: it fits)."""
    allowed = destination(crm_type).fields
    unknown = sorted(set(mapping.values()) - allowed)
    if not unknown:
        return None
    return (
        f"maps to field(s) {unknown} that {CrmType(crm_type)} cannot hold; "
        f"allowed: {sorted(allowed)}"
    )


def bearer_token(secret: Callable[[], str]) -> Callable[[], str]:
    """A token provider over the secret text: the token itself, or JSON `{"token": ...}`;
    read past the secret's cache when the adapter asks (`credentials.current(fresh=True)`)."""
    import json

    from auth0_sync.destinations.credentials import Cached, current
    from auth0_sync.errors import TransientError

    def token(fresh: bool) -> str:
        text = current(secret, fresh=fresh)
        if text.lstrip().startswith("{"):
            try:
                text = str(json.loads(text).get("token", ""))
            except (ValueError, AttributeError):
                text = ""
        if not text.strip():
            raise TransientError(
                'the CRM secret holds no token: set it to the token, or to {"token": "..."}',
                "crm_token_unavailable",
            )
        return text.strip()

    return Cached(token)
