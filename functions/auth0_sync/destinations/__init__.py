"""Destinations: the CRMs the sync writes to, behind one `Crm` protocol.

The core speaks the generic contract's field names (`email`, `given_name`, `family_name`,
`phone`, `name`, and the fields the sync owns: `auth0_user_id`, `status`,
`source_updated_at`); each adapter translates them to and from its vendor's records at its
boundary (`rest`: the generic REST contract itself, `hubspot`: CRM v3 contacts,
`salesforce`: REST API Contact). A `Destination` says which generic fields the vendor can
hold, which it cannot be without, and its default mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from auth0_sync.names import CrmType

if TYPE_CHECKING:
    import requests

    from auth0_sync.destinations.transport import CircuitBreaker
    from auth0_sync.settings import Settings

Contact = dict[str, Any]
RemainingMillis = Callable[[], int]


# Fields of the generic contract the sync itself owns (never mapped).
@runtime_checkable
class Archiving(Protocol):
    """A destination that can archive a contact (HubSpot): `deletePolicy=archive`."""

    def archive_contact(self, contact_id: str) -> bool: ...


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


def build_crm(
    settings: Settings,
    secret: Callable[[], str],
    *,
    session: requests.Session | None = None,
    max_attempts: int | None = None,
    backoff_base: float | None = None,
    breaker: CircuitBreaker | None = None,
) -> Listing:
    """The adapter for `settings.crm_type`; `secret` reads the destination's secret text.
    The keywords, when given, replace the adapter's own (a rate-limited session for the
    CLI's commands, the demo's short retries)."""
    crm_type = CrmType(settings.crm_type)
    given = {
        "max_attempts": max_attempts,
        "backoff_base": backoff_base,
        "breaker": breaker,
        "session": session,
    }
    options: dict[str, Any] = {
        "timeout_seconds": settings.crm_timeout_seconds,
        "retry_budget_seconds": settings.crm_retry_budget_seconds,
        **{name: value for name, value in given.items() if value is not None},
    }
    if crm_type is CrmType.HUBSPOT:
        from auth0_sync.destinations.hubspot import HubSpotCrm

        return HubSpotCrm(settings.crm_base_url, bearer_token(secret), **options)
    if crm_type is CrmType.SALESFORCE:
        from auth0_sync.destinations.salesforce import SalesforceCrm, client_credentials

        return SalesforceCrm(settings.crm_base_url, client_credentials(secret), **options)
    from auth0_sync.destinations.rest import RestCrmClient

    return RestCrmClient(settings.crm_base_url, bearer_token(secret), **options)


def check_secret(crm_type: CrmType | str, secret: Callable[[], str]) -> None:
    """Read the secret and check its shape for the destination (no call to the vendor);
    a `TransientError` says what is wrong."""
    if CrmType(crm_type) is CrmType.SALESFORCE:
        from auth0_sync.destinations.salesforce import client_credentials

        client_credentials(secret)()
    else:
        bearer_token(secret)()


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
