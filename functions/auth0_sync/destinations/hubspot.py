"""HubSpot CRM v3 contacts, with a private app's bearer token.

Generic contact <-> HubSpot record: `email`, `given_name`->`firstname`,
`family_name`->`lastname`, `phone`, and two custom properties the sync owns:
`auth0_user_id` (the owner) and `auth0_status` (`active`/`deactivated`); a cleared field is
written as "" (HubSpot's way to clear a property). `source_updated_at` is not written
(HubSpot keeps `lastmodifieddate` itself).

Calls: find by `auth0_user_id` with a read by that unique property (`GET
/crm/v3/objects/contacts/{user_id}?idProperty=auth0_user_id`, immediately consistent), or,
where a person made the property without unique values, `POST .../contacts/search`
(filter group, `EQ`; its index lags a few seconds behind writes); find by email with
`GET /crm/v3/objects/contacts/{email}?idProperty=email` (emails are unique in HubSpot, and
a read is immediately consistent where the search index lags a few seconds behind a
create); create with `POST /crm/v3/objects/contacts` (409 CONFLICT:
the email exists, the core links it); update with `PATCH /crm/v3/objects/contacts/{id}`.

Ownership before every write (`auth0_sync.writes`): HubSpot has no conditional requests,
so a write to a contact the user owns is addressed by the owner key instead, `PATCH
.../contacts/{user_id}?idProperty=auth0_user_id` (https://developers.hubspot.com/docs/
api-reference/2026-03/crm/objects/contacts/update-contact): a contact a person gave to
someone else answers 404 and is not written. Whether `auth0_user_id` has unique values is
read once from the properties API (`hasUniqueValue`); without them, each such write reads
the contact first (one GET), and `destination setup` is the fix.

Limits: the account's rolling window (default 100 calls per 10 s, learned from the
`X-HubSpot-RateLimit-Max` / `-Interval-Milliseconds` headers; `-Remaining` adds the calls
other processes of the account made) and the search endpoint's own
per-second limit are kept client-side; a 429 is honoured by the shared transport
(Retry-After when given, else a fifth of the window, or the next second for search); a 429
of the daily limit is not waited for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import requests

from auth0_sync.destinations import (
    EMAIL_FIELD,
    OWNER_FIELD,
    STATUS_FIELD,
    Contact,
    ContactPage,
)
from auth0_sync.destinations.credentials import bearer_refused, current, with_fresh_credential
from auth0_sync.destinations.limits import RollingLimit
from auth0_sync.destinations.transport import (
    CircuitBreaker,
    HttpTransport,
    OverTransport,
    RetryPolicy,
    json_body,
    retry_after,
)
from auth0_sync.errors import ContactExists, CrmRejected, EmailTaken, TransientError
from auth0_sync.privacy import redact

CONTACTS = "/crm/v3/objects/contacts"
SEARCH = CONTACTS + "/search"
PROPERTIES = "/crm/v3/properties/contacts"
GDPR_DELETE = f"{CONTACTS}/gdpr-delete"

# Generic contract field -> HubSpot contact property.
PROPERTY_OF: dict[str, str] = {
    EMAIL_FIELD: "email",
    "given_name": "firstname",
    "family_name": "lastname",
    "phone": "phone",
    OWNER_FIELD: "auth0_user_id",
    STATUS_FIELD: "auth0_status",
}
FIELD_OF = {prop: name for name, prop in PROPERTY_OF.items()}

# The custom properties `auth0-sync destination setup --crm hubspot` creates.
CUSTOM_PROPERTIES: list[dict[str, Any]] = [
    {
        "name": "auth0_user_id",
        "label": "Auth0 user id",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
        "description": "The Auth0 user this contact belongs to (written by auth0-sync).",
        "hasUniqueValue": True,
    },
    {
        "name": "auth0_status",
        "label": "Auth0 status",
        "type": "enumeration",
        "fieldType": "select",
        "groupName": "contactinformation",
        "description": "deactivated when the Auth0 user was deleted (written by auth0-sync).",
        "options": [
            {"label": "Active", "value": "active", "displayOrder": 0},
            {"label": "Deactivated", "value": "deactivated", "displayOrder": 1},
        ],
    },
]

# HubSpot's documented defaults: 100 calls per 10 s for a private app on most tiers, and a
# lower limit on the search endpoints (kept a little under 5 per second).
DEFAULT_WINDOW_CALLS = 100
DEFAULT_WINDOW_SECONDS = 10.0
DEFAULT_SEARCH_PER_SECOND = 4
# The list endpoint's documented page size limit.
LIST_LIMIT_MAX = 100
# How far the search index may lag behind a write: "several seconds" in practice
# (https://docs.locoia.com/connectors/connectors/hubspot, "Propagation Time"; HubSpot's
# search is eventually consistent: https://blog.sequin.io/building-a-sync-on-hubspots-api/).
# No documented bound: kept wide.
SEARCH_LAG_SECONDS = 30.0
# How long HubSpot may still apply a request whose answer we did not get (a timeout): not
# documented either; a held request longer than this is the risk that remains.
LATE_WRITE_SECONDS = 60.0


def to_properties(fields: Mapping[str, Any]) -> dict[str, str]:
    """Generic fields -> HubSpot properties; None clears ("")."""
    return {
        PROPERTY_OF[name]: "" if value is None else str(value)
        for name, value in fields.items()
        if name in PROPERTY_OF
    }


def to_contact(record: Mapping[str, Any]) -> Contact:
    """A HubSpot contact record -> a generic contact ("" and absent are None)."""
    properties = record.get("properties") or {}
    contact: Contact = {"id": str(record["id"])}
    for prop, name in FIELD_OF.items():
        value = properties.get(prop)
        contact[name] = value if value not in (None, "") else None
    return contact


class HubSpotCrm(OverTransport):
    """HubSpot adapter: generic contacts over CRM v3, under HubSpot's rate limits."""

    def __init__(
        self,
        base_url: str,
        token: Callable[[], str],
        *,
        timeout_seconds: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.2,
        retry_budget_seconds: float = 10.0,
        margin_ms: int = 1500,
        window_calls: int = DEFAULT_WINDOW_CALLS,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        search_per_second: int = DEFAULT_SEARCH_PER_SECOND,
        search_lag_seconds: float = SEARCH_LAG_SECONDS,
        late_write_seconds: float = LATE_WRITE_SECONDS,
        session: requests.Session | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self.transport = HttpTransport(
            "crm",
            RetryPolicy(
                max_attempts=max_attempts,
                backoff_base=backoff_base,
                budget_seconds=retry_budget_seconds,
                margin_ms=margin_ms,
            ),
            timeout=timeout_seconds,
            session=session,
            breaker=breaker or CircuitBreaker(),
            wait_hint=self._wait_hint,
            retryable=None,
            config_hint="check CRM_BASE_URL (https://api.hubapi.com)",
            sleep=sleep,
        )
        self.window = RollingLimit(window_calls, window_seconds, name="HubSpot rolling")
        self.search_limit = RollingLimit(search_per_second, 1.0, name="HubSpot search")
        self.versioned = False  # no conditional requests: writes are addressed by owner
        self._owner_unique: bool | None = None  # auth0_user_id's hasUniqueValue, read once
        self._owner_unique_lock = threading.Lock()  # once for all threads (a bulk run's)
        self._search_lag = search_lag_seconds
        # No conditional requests: after a write of unknown outcome, the user's next write
        # waits this long (auth0_sync.writes).
        self.late_write_seconds = late_write_seconds

    @property
    def limits(self) -> tuple[RollingLimit, ...]:
        return (self.window, self.search_limit)

    @property
    def search_lag_seconds(self) -> float:
        """How long a contact may be missing from the owner lookup after it was created:
        none for a read by the unique property, the search index's lag otherwise."""
        return 0.0 if self.owner_unique else self._search_lag

    @property
    def owner_unique(self) -> bool:
        """Whether `auth0_user_id` has unique values (so it can address reads and writes);
        read from the properties API once per adapter."""
        if self._owner_unique is None:
            with self._owner_unique_lock:
                if self._owner_unique is None:
                    path = f"{PROPERTIES}/{PROPERTY_OF[OWNER_FIELD]}"
                    response = self._send("GET", path, missing_ok=True)
                    spec = json_body(response, "GET " + PROPERTIES + "/{name}")
                    found = response.status_code != 404 and isinstance(spec, dict)
                    self._owner_unique = bool(found and spec.get("hasUniqueValue"))
        return self._owner_unique

    # The Crm protocol ------------------------------------------------------------------

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]:
        """By email: a read by the unique email; by Auth0 id: a search (filter, EQ)."""
        if email:
            found = self.get_contact(email, id_property="email")
            return [] if found is None else [found]
        if not auth0_user_id:
            raise ValueError("find_contacts needs an email or an auth0_user_id")
        if self.owner_unique:
            found = self.get_contact(auth0_user_id, id_property=PROPERTY_OF[OWNER_FIELD])
            return [] if found is None else [found]
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": PROPERTY_OF[OWNER_FIELD],
                            "operator": "EQ",
                            "value": auth0_user_id,
                        }
                    ]
                }
            ],
            "properties": list(FIELD_OF),
            "limit": 10,
        }
        answer = json_body(self._send("POST", SEARCH, json=body, search=True), "POST " + SEARCH)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise TransientError(f"crm POST {SEARCH}: no results list", "crm_bad_answer")
        return [to_contact(r) for r in results if isinstance(r, dict) and "id" in r]

    def list_contacts(self, limit: int = LIST_LIMIT_MAX, after: str | None = None) -> ContactPage:
        """GET /crm/v3/objects/contacts (archived ones are not listed): one page of at most
        100 contacts; `after` is HubSpot's opaque `paging.next.after` of the page before."""
        params = {
            "limit": str(max(1, min(limit, LIST_LIMIT_MAX))),
            "properties": ",".join(FIELD_OF),
        }
        if after:
            params["after"] = after
        what = "GET " + CONTACTS
        answer = json_body(self._send("GET", CONTACTS, params=params), what)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise TransientError(f"crm {what}: no results list", "crm_bad_answer")
        paging = answer.get("paging")
        following = paging.get("next") if isinstance(paging, dict) else None
        cursor = following.get("after") if isinstance(following, dict) else None
        contacts = [to_contact(r) for r in results if isinstance(r, dict) and "id" in r]
        return ContactPage(contacts, str(cursor) if cursor else None)

    def get_contact(self, contact_id: str, *, id_property: str | None = None) -> Contact | None:
        """GET one contact (by record id, or by a unique property); None when not found."""
        params = {"properties": ",".join(FIELD_OF)}
        if id_property:
            params["idProperty"] = id_property
        path = _contact_path(contact_id)
        response = self._send("GET", path, params=params, missing_ok=True)
        if response.status_code == 404:
            return None
        return self._contact(response, "GET " + CONTACTS + "/{id}")

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:  # noqa: ARG002
        """POST a contact. HubSpot has no idempotency key: a repeat meets 409 on the email,
        which the core resolves by linking the contact the first attempt created."""
        body = {"properties": {k: v for k, v in to_properties(fields).items() if v != ""}}
        response = self._send("POST", CONTACTS, json=body, repeatable=False)
        return self._contact(response, "POST " + CONTACTS)

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        """PATCH the given fields; None when the contact is gone (or archived)."""
        path = _contact_path(contact_id)
        body = {"properties": to_properties(fields)}
        response = self._send("PATCH", path, json=body, missing_ok=True)
        if response.status_code == 404:
            return None
        return self._contact(response, "PATCH " + CONTACTS + "/{id}")

    def update_guarded(
        self,
        contact_id: str,
        fields: Mapping[str, Any],
        *,
        owner: str | None,
        version: str | None,
    ) -> Contact | None:
        """PATCH the contact only while it carries `owner` (None: by record id, as is):
        addressed by the unique `auth0_user_id`, else read first. None when no contact
        carries it any more (given away, deleted, archived)."""
        del version  # HubSpot has no conditional requests
        if owner is None:
            return self.update_contact(contact_id, fields)
        if not self.owner_unique:
            current = self.get_contact(contact_id)
            if current is None or current.get(OWNER_FIELD) != owner:
                return None
            return self.update_contact(contact_id, fields)
        path = _contact_path(owner)
        body = {"properties": to_properties(fields)}
        params = {"idProperty": PROPERTY_OF[OWNER_FIELD]}
        response = self._send("PATCH", path, json=body, params=params, missing_ok=True)
        if response.status_code == 404:
            return None
        return self._contact(response, "PATCH " + CONTACTS + "/{id}")

    def version_seen(self, contact_id: str) -> str | None:  # noqa: ARG002
        return None

    def archive_contact(self, contact_id: str) -> bool:
        """DELETE (archive) a contact; False when it was not there."""
        response = self._send("DELETE", _contact_path(contact_id), missing_ok=True)
        return response.status_code != 404

    def erase_contact(self, contact_id: str) -> bool:
        """Permanently delete a contact, GDPR-compliant (not restorable, unlike an archive):
        POST /crm/v3/objects/contacts/gdpr-delete with `{"objectId": id}`
        (https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact).
        False when it was not there."""
        response = self._send("POST", GDPR_DELETE, json={"objectId": contact_id}, missing_ok=True)
        return response.status_code != 404

    # Custom properties (destination setup) -----------------------------------------------

    def ensure_properties(self) -> dict[str, str]:
        """Create the custom properties the sync writes, if missing: name -> what happened."""
        done: dict[str, str] = {}
        for spec in CUSTOM_PROPERTIES:
            path = f"{PROPERTIES}/{quote(spec['name'], safe='')}"
            if self._send("GET", path, missing_ok=True).status_code != 404:
                done[spec["name"]] = "exists"
                continue
            response = self._send("POST", PROPERTIES, json=spec, conflict_ok=True)
            done[spec["name"]] = "exists" if response.status_code == 409 else "created"
        return done

    # Transport ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | list[Any] | None = None,
        missing_ok: bool = False,
        conflict_ok: bool = False,
        repeatable: bool = True,
        search: bool = False,
    ) -> requests.Response:
        what = f"crm {method} {_template(path)}"
        limit = self.search_limit if search else self.window

        def send(fresh: bool) -> requests.Response:
            limit.acquire(self.transport.time_left_for, self.transport.wait)
            return self.transport.request(
                method,
                self._base_url + path,
                what=what,
                repeatable=repeatable,
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {current(self._token, fresh=fresh)}"},
            )

        # 401 INVALID_AUTHENTICATION: the token again past the secret's cache, once.
        response = with_fresh_credential(send, bearer_refused, what)
        self._learn(response)
        status = response.status_code
        if status < 400 or (status == 404 and missing_ok) or (status == 409 and conflict_ok):
            return response
        sent = json.get("properties") if isinstance(json, Mapping) else None
        self._raise(what, method, response, (sent if isinstance(sent, Mapping) else {}).values())
        raise AssertionError("unreachable")  # pragma: no cover

    def _learn(self, response: requests.Response) -> None:
        headers = response.headers
        try:
            limit = int(headers.get("X-HubSpot-RateLimit-Max", "0"))
            interval = float(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "0"))
            left = headers.get("X-HubSpot-RateLimit-Remaining")
            remaining = int(left) if left is not None else None
        except ValueError:
            return
        # Remaining counts the whole account's calls (HubSpot's limits are per account:
        # https://developers.hubspot.com/docs/api/usage-details; "the remaining requests
        # still allowed", https://developers.hubspot.com/changelog/2018-11-06-rate-limit-
        # information-headers-will-be-included-in-http-responses).
        self.window.learn(limit or None, interval / 1000 if interval else None, remaining)

    def _wait_hint(self, response: requests.Response) -> float | None:
        if response.status_code != 429:
            return None
        given = retry_after(response)
        if given is not None:
            return given
        if _policy(response) == "DAILY":
            return self.transport.policy.budget_seconds or 0.0  # ends the retries at once
        if _policy(response) == "SECONDLY":
            return 1.0  # the search endpoints' per-second limit: the next second
        try:
            interval = float(response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", 0))
        except ValueError:
            interval = 0.0
        # A rolling window frees a slot whenever an old call leaves it: a fifth of it.
        return (interval / 1000 if interval else self.window.window) / 5

    def _contact(self, response: requests.Response, what: str) -> Contact:
        record = json_body(response, what)
        if not isinstance(record, dict) or not isinstance(record.get("id"), str | int):
            raise TransientError(f"crm {what}: the answer is not a contact", "crm_bad_answer")
        return to_contact(record)

    @staticmethod
    def _raise(what: str, method: str, response: requests.Response, sent: Iterable[Any]) -> None:
        """HubSpot's error body (`status`, `message`, `category`) -> our errors; the
        category is in the reason (`hubspot_validation_error`)."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        category = str(body.get("category") or body.get("errorType") or "")
        message = f"{what}: HTTP {response.status_code}"
        if category:
            message += f" {category}"
        if body.get("message"):
            message += f": {redact(str(body['message']), sent=sent)}"
        if response.status_code == 409 and method in ("POST", "PATCH"):
            raise ContactExists(message) if method == "POST" else EmailTaken(message)
        reason = f"hubspot_{category.lower()}" if _is_code(category) else None
        raise CrmRejected(response.status_code, message, reason)


def _policy(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("policyName", "")) if isinstance(body, dict) else ""


def _is_code(text: str) -> bool:
    return bool(text) and text.replace("_", "").isalnum() and text.isascii()


def _contact_path(contact_id: str) -> str:
    """The contact's URL path; the id is one escaped segment (`a/../b` stays one id)."""
    segment = quote(str(contact_id), safe="@")
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    return f"{CONTACTS}/{segment}"


def _template(path: str) -> str:
    """The path without ids or emails, for messages that may be logged."""
    if path.startswith("/crm/v3/objects/companies/"):  # hubspot_companies
        return "/crm/v3/objects/companies/{id}"
    if path.startswith("/crm/v4/objects/contacts/"):
        return "/crm/v4/objects/contacts/{id}/associations/companies/{id}"
    if path.startswith(CONTACTS + "/") and path != SEARCH and "/batch/" not in path:
        return CONTACTS + "/{id}"
    return path
