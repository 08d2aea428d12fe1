"""The generic REST contacts API (docs/contracts/crm-contacts-api.yaml): the contract's
field names are the core's, so this adapter translates nothing.

It turns every HTTP outcome into a domain error once: a 401 reads the token again past the
secret's cache and retries once, then raises `CredentialsRejected` (transient, for the
redrive); the shared transport retries
429/408/5xx/timeouts/connection errors (honouring `Retry-After`, within the retry budget,
the invocation's remaining time and the circuit breaker), then raises `TransientError`;
any other 4xx raises `CrmRejected` with a redacted message (a CRM that echoes the rejected
value must not put an email, or a name we sent it, into a log).

Conditional writes (contract 1.2): the `ETag` of every answer about one contact is kept
(`version_seen`), and `update_guarded` sends it back as `If-Match`; 412 is
`ContactChanged`. A server of contract 1.1 sends no ETag: the adapter then stops asking
for one (`versioned` turns False) and writes unconditionally, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import requests

from auth0_sync.destinations import Contact, ContactPage, SeenVersions
from auth0_sync.destinations.credentials import bearer_refused, current, with_fresh_credential
from auth0_sync.destinations.transport import (
    TRANSIENT_STATUSES,
    CircuitBreaker,
    HttpTransport,
    OverTransport,
    RetryPolicy,
    json_body,
)
from auth0_sync.errors import (
    ContactChanged,
    ContactExists,
    CrmRejected,
    EmailTaken,
    TransientError,
)
from auth0_sync.privacy import redact

__all__ = ["TRANSIENT_STATUSES", "CircuitBreaker", "RestCrmClient"]


class RestCrmClient(OverTransport):
    """Generic REST contacts client: pooled session, bearer token, bounded retries."""

    def __init__(
        self,
        base_url: str,
        token: Callable[[], str],
        *,
        timeout_seconds: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.2,
        backoff_cap: float = 8.0,
        retry_budget_seconds: float = 10.0,
        margin_ms: int = 1500,
        session: requests.Session | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        # Contract 1.2's ETags; False once the server answered a contact without one (1.1).
        self.versioned = True
        self._versions = SeenVersions()
        policy = RetryPolicy(
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            budget_seconds=retry_budget_seconds,
            margin_ms=margin_ms,
        )
        self.transport = HttpTransport(
            "crm",
            policy,
            timeout=timeout_seconds,
            session=session,
            breaker=breaker or CircuitBreaker(),
        )

    # The contract --------------------------------------------------------------------

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]:
        """GET /contacts by email (case-insensitive on the CRM side) or Auth0 user id."""
        params = {k: v for k, v in (("email", email), ("auth0_user_id", auth0_user_id)) if v}
        if not params:
            raise ValueError("find_contacts needs an email or an auth0_user_id")
        found = json_body(self._send("GET", "/contacts", params=params), "GET /contacts")
        if not isinstance(found, list):
            raise TransientError("crm GET /contacts: the answer is not a list", "crm_bad_answer")
        return [c for c in found if isinstance(c, dict)]

    def list_contacts(self, limit: int = 100, after: str | None = None) -> ContactPage:
        """GET /contacts?limit=&after= (contract 1.1): the next page of every contact, in id
        order, after the id `after`; a page shorter than `limit` is the last."""
        params = {"limit": str(limit), **({"after": after} if after else {})}
        page = json_body(self._send("GET", "/contacts", params=params), "GET /contacts")
        if not isinstance(page, list):
            raise TransientError("crm GET /contacts: the answer is not a list", "crm_bad_answer")
        contacts = [{**c, "id": str(c["id"])} for c in page if isinstance(c, dict) and "id" in c]
        full = bool(contacts) and len(page) >= limit
        return ContactPage(contacts, contacts[-1]["id"] if full else None)

    def get_contact(self, contact_id: str) -> Contact | None:
        """GET /contacts/{id}; None when there is no such contact."""
        path = _contact_path(contact_id)
        response = self._send("GET", path, missing_ok=True)
        if response.status_code == 404:
            return None
        return self._contact(response, f"GET {path}")

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        """POST /contacts; the key makes a retried create return the first contact."""
        response = self._send(
            "POST", "/contacts", json=dict(fields), headers={"Idempotency-Key": idempotency_key}
        )
        return self._contact(response, "POST /contacts")

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        """PATCH /contacts/{id} with only the given fields; None when the contact is gone."""
        return self.update_guarded(contact_id, fields, owner=None, version=None)

    def update_guarded(
        self,
        contact_id: str,
        fields: Mapping[str, Any],
        *,
        owner: str | None,
        version: str | None,
    ) -> Contact | None:
        """PATCH with `If-Match: version` (none: unconditional); `ContactChanged` when the
        contact changed since (412). `owner` is not needed: any change, a reassignment
        too, gives the contact a new ETag."""
        del owner
        path = _contact_path(contact_id)
        headers = {"If-Match": version} if version else None
        response = self._send(
            "PATCH", path, json=dict(fields), headers=headers, missing_ok=True, stale_ok=True
        )
        if response.status_code == 404:
            return None
        if response.status_code == 412:
            self._versions.note(contact_id, None)
            raise ContactChanged(f"crm PATCH {path}: HTTP 412: the contact changed since")
        return self._contact(response, f"PATCH {path}")

    def version_seen(self, contact_id: str) -> str | None:
        """The ETag of the last answer about this contact that this thread got."""
        return self._versions.get(str(contact_id))

    def note_version(self, contact_id: str, version: str | None) -> None:
        """Note, for this thread, the version another thread's answer (a batch's) gave."""
        self._versions.note(str(contact_id), version)

    # Transport -----------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        missing_ok: bool = False,
        stale_ok: bool = False,
        repeatable: bool | None = None,
        sent: Iterable[Any] | None = None,
    ) -> requests.Response:
        """One request with the CRM token (read again past its cache on a 401), retried by
        the transport when `repeatable` (by default: any method but a POST without an
        `Idempotency-Key`); a refusal is raised with the values we `sent` (by default the
        body's) masked out of the CRM's message."""
        what = f"crm {method} {path}"
        if repeatable is None:
            # A POST is only safe to repeat when the CRM can recognise the repeat.
            repeatable = method != "POST" or "Idempotency-Key" in (headers or {})

        def send(fresh: bool) -> requests.Response:
            return self.transport.request(
                method,
                self._base_url + path,
                what=what,
                repeatable=repeatable,
                params=params,
                json=json,
                headers={
                    "Authorization": f"Bearer {current(self._token, fresh=fresh)}",
                    **(headers or {}),
                },
            )

        response = with_fresh_credential(send, bearer_refused, what)
        status = response.status_code
        if status < 400 or (status == 404 and missing_ok) or (status == 412 and stale_ok):
            return response
        self._raise_permanent(what, response, sent=(json or {}).values() if sent is None else sent)
        raise AssertionError("unreachable")  # pragma: no cover

    def _contact(self, response: requests.Response, what: str) -> Contact:
        contact = json_body(response, what)
        if not isinstance(contact, dict) or not isinstance(contact.get("id"), str | int):
            raise TransientError(f"crm {what}: the answer is not a contact", "crm_bad_answer")
        contact["id"] = str(contact["id"])
        etag = response.headers.get("ETag")
        if etag is None:
            self.versioned = False
        self._versions.note(contact["id"], etag)
        return contact

    @staticmethod
    def _raise_permanent(what: str, response: requests.Response, *, sent: Iterable[Any]) -> None:
        try:
            body = response.json()
            if not isinstance(body, dict):
                body = {}
            detail = body.get("message") or body.get("error") or ""
        except ValueError:
            detail = ""
        message = f"{what}: HTTP {response.status_code}"
        if detail:
            message += f": {redact(str(detail), sent=sent)}"
        if response.status_code == 409:
            if response.request.method == "POST":
                raise ContactExists(message)
            raise EmailTaken(message)
        if response.status_code == 422 and _names_a_taken_email(str(detail)):
            # The contract lists no 409 for PATCH: the reference CRM answers 422 "field
            # 'email' is already used by another contact", the same conflict.
            raise EmailTaken(message)
        raise CrmRejected(response.status_code, message)


def _contact_path(contact_id: str) -> str:
    """The contact's URL path; the id is one escaped segment (`a/../b` stays one id)."""
    segment = quote(str(contact_id), safe="")
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")  # a dot segment would be resolved away
    return "/contacts/" + segment


def _names_a_taken_email(detail: str) -> bool:
    return "'email'" in detail and "already used" in detail
