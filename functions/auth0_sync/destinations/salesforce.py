"""Salesforce REST API (Contact), with the OAuth 2.0 client-credentials flow against the
org's My Domain (CRM_BASE_URL, e.g. https://acme.my.salesforce.com).

Generic contact <-> Contact: `email`->`Email`, `given_name`->`FirstName`,
`family_name`->`LastName`, `phone`->`Phone`, and two custom fields the sync owns:
`Auth0_User_Id__c` (External ID, unique) and `Auth0_Status__c` (picklist `active` /
`deactivated`). Salesforce requires LastName: when Auth0 has no family name (or it is
cleared, or the contact is anonymized) the adapter writes `LASTNAME_PLACEHOLDER`, and reads
it back as "no family name". `source_updated_at` is not written (Salesforce keeps
LastModifiedDate).

Calls: find with SOQL (`GET /services/data/vXX.X/query`, values escaped); create by
upserting on the external id (`PATCH .../sobjects/Contact/Auth0_User_Id__c/{user_id}`:
201 created, 200/204 updated, 300 several matches), which makes a repeated create safe;
update by record id (`PATCH .../sobjects/Contact/{Id}`). Unique emails come from the org's
duplicate rule (DUPLICATES_DETECTED) or a unique field (DUPLICATE_VALUE on Email).

Errors are JSON arrays of `{errorCode, message, fields}`: the error code goes into the
reason (`salesforce_required_field_missing`); REQUEST_LIMIT_EXCEEDED, UNABLE_TO_LOCK_ROW
and SERVER_UNAVAILABLE are transient. `Sforce-Limit-Info: api-usage=N/M` is read on every
answer: the adapter stops short of the org's last `reserve` share of its daily API calls.
The token is cached until Salesforce says INVALID_SESSION_ID (401), then fetched again,
once per call; a token endpoint that refuses the client id or secret (`invalid_client`) is
asked again once with the pair read past the secret's cache (a rotated secret); a refusal
that persists is `CredentialsRejected`, transient (the redrive retries it).

Conditional writes: Salesforce's ETag and `If-Match` work on Account rows only; on other
sObject rows (Contact) it documents the weak validator `If-Unmodified-Since` (412 when the
record's LastModifiedDate is later), https://developer.salesforce.com/docs/atlas.en-us.
api_rest.meta/api_rest/intro_rest_conditional_requests.htm and resources_sobject_retrieve_
patch.htm. The version of a contact is the `Date` of the last answer about it (the org's
clock, never earlier than the LastModifiedDate of a write it answers), and a write by
record id carries it. To the second: a change within the same second as our last write
is not seen (docs/sync-rules.md, "Writes").
"""

from __future__ import annotations

import json
import re
import threading
import time
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
    SeenVersions,
)
from auth0_sync.destinations.credentials import (
    REFUSED_HINT,
    Cached,
    current,
    with_fresh_credential,
)
from auth0_sync.destinations.transport import (
    CircuitBreaker,
    HttpTransport,
    OverTransport,
    RetryPolicy,
    json_body,
    last_answer,
)
from auth0_sync.errors import (
    AmbiguousMatch,
    ContactChanged,
    ContactExists,
    CredentialsRejected,
    CrmRejected,
    EmailTaken,
    TransientError,
)
from auth0_sync.privacy import redact

API_VERSION = "v60.0"
API = f"/services/data/{API_VERSION}"
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 (a URL path)
EXTERNAL_ID = "Auth0_User_Id__c"
LASTNAME_PLACEHOLDER = "(unknown)"

# Generic contract field -> Contact field.
SF_FIELD: dict[str, str] = {
    EMAIL_FIELD: "Email",
    "given_name": "FirstName",
    "family_name": "LastName",
    "phone": "Phone",
    OWNER_FIELD: EXTERNAL_ID,
    STATUS_FIELD: "Auth0_Status__c",
}
GENERIC_FIELD = {sf: name for name, sf in SF_FIELD.items()}
SELECT = "SELECT Id, " + ", ".join(SF_FIELD.values()) + " FROM Contact"  # noqa: S608 (constants)

# A query answers at most 2000 records at once; a LIMIT above that would page (queryMore).
QUERY_BATCH_MAX = 2000
# How long a refusal to spend the org's last calls rests on the usage last seen.
USAGE_MAX_AGE_SECONDS = 60.0

TRANSIENT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})
# A record id: 15 or 18 letters and digits. Anything else is nobody's id (never sent).
_RECORD_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
# SOQL string literal escapes (Salesforce: "Quoted String Escape Sequences").
_SOQL_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def soql_literal(value: str) -> str:
    """`value` as a quoted SOQL string: a quote or backslash in it cannot end the literal."""
    return "'" + "".join(_SOQL_ESCAPES.get(ch, ch) for ch in value) + "'"


def client_credentials(secret: Callable[[], str]) -> Callable[[], tuple[str, str]]:
    """The connected app's `{"client_id": ..., "client_secret": ...}` from the secret text
    (read past the secret's cache when the token endpoint refuses the cached pair)."""

    def read(fresh: bool) -> tuple[str, str]:
        try:
            data = json.loads(current(secret, fresh=fresh))
        except ValueError:
            data = None
        if not isinstance(data, dict) or not data.get("client_id") or not data.get("client_secret"):
            raise TransientError(
                'the CRM secret must be JSON {"client_id": "...", "client_secret": "..."} '
                "for CRM_TYPE=salesforce",
                "crm_token_unavailable",
            )
        return str(data["client_id"]), str(data["client_secret"])

    return Cached(read)


def to_record(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Generic fields -> Contact fields; a missing family name is the placeholder."""
    record: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in SF_FIELD:
            continue
        if name == "family_name" and value in (None, ""):
            value = LASTNAME_PLACEHOLDER
        record[SF_FIELD[name]] = None if value == "" else value
    return record


def to_contact(record: Mapping[str, Any]) -> Contact:
    """A Contact record -> a generic contact (the LastName placeholder reads as None)."""
    contact: Contact = {"id": str(record["Id"])}
    for sf, name in GENERIC_FIELD.items():
        value = record.get(sf)
        if name == "family_name" and value == LASTNAME_PLACEHOLDER:
            value = None
        contact[name] = value if value not in (None, "") else None
    return contact


class SalesforceCrm(OverTransport):
    """Salesforce adapter: generic contacts over the REST API, within the org's limits."""

    def __init__(
        self,
        base_url: str,
        credentials: Callable[[], tuple[str, str]],
        *,
        timeout_seconds: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.2,
        retry_budget_seconds: float = 10.0,
        margin_ms: int = 1500,
        reserve: float = 0.05,
        usage_max_age: float = USAGE_MAX_AGE_SECONDS,
        session: requests.Session | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._login_url = base_url.rstrip("/")
        self._credentials = credentials
        self.reserve = reserve
        self.api_usage: tuple[int, int] | None = None  # last Sforce-Limit-Info (used, max)
        # The allowance is a rolling 24 hours: a refusal is re-checked with one call once
        # the usage it rests on is this old (else a warm container would refuse forever).
        self.usage_max_age = usage_max_age
        self._clock = clock
        self._usage_seen_at = 0.0
        self.tokens_fetched = 0
        self._session_token: tuple[str, str] | None = None  # (access token, instance URL)
        self._lock = threading.Lock()
        self.versioned = True  # If-Unmodified-Since on sObject rows
        self._versions = SeenVersions()
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
            retryable=lambda r: "UNABLE_TO_LOCK_ROW" in _codes(r),
            config_hint="check CRM_BASE_URL (the org's My Domain URL)",
            sleep=sleep,
        )

    # The Crm protocol ----------------------------------------------------------------------

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]:
        """SOQL on Email (case-insensitive in Salesforce) or on the external id."""
        if email:
            where = f"Email = {soql_literal(email)}"
        elif auth0_user_id:
            where = f"{EXTERNAL_ID} = {soql_literal(auth0_user_id)}"
        else:
            raise ValueError("find_contacts needs an email or an auth0_user_id")
        query = f"{SELECT} WHERE {where} LIMIT 10"
        answer = json_body(self._call("GET", f"{API}/query", params={"q": query}), "query")
        records = answer.get("records") if isinstance(answer, dict) else None
        if not isinstance(records, list):
            raise TransientError("crm GET query: the answer has no records", "crm_bad_answer")
        return [to_contact(r) for r in records if isinstance(r, dict) and "Id" in r]

    def list_contacts(self, limit: int = QUERY_BATCH_MAX, after: str | None = None) -> ContactPage:
        """One page of every Contact in Id order: SOQL `WHERE Id > 'after' ORDER BY Id
        LIMIT n` (keyset paging: no server-side cursor to expire, unlike nextRecordsUrl);
        deleted records are not listed. A page shorter than `limit` is the last."""
        size = max(1, min(limit, QUERY_BATCH_MAX))
        where = ""
        if after:
            if not _RECORD_ID.fullmatch(after):
                raise ValueError(f"after must be a Salesforce record id, got {after!r}")
            where = f" WHERE Id > {soql_literal(after)}"
        query = f"{SELECT}{where} ORDER BY Id LIMIT {size}"
        answer = json_body(self._call("GET", f"{API}/query", params={"q": query}), "query")
        records = answer.get("records") if isinstance(answer, dict) else None
        if not isinstance(records, list):
            raise TransientError("crm GET query: the answer has no records", "crm_bad_answer")
        contacts = [to_contact(r) for r in records if isinstance(r, dict) and "Id" in r]
        full = bool(contacts) and len(records) >= size
        return ContactPage(contacts, contacts[-1]["id"] if full else None)

    def get_contact(self, contact_id: str) -> Contact | None:
        if not _RECORD_ID.fullmatch(str(contact_id)):
            return None
        fields = ",".join(SF_FIELD.values())
        path = f"{API}/sobjects/Contact/{contact_id}"
        response = self._call("GET", path, params={"fields": fields}, missing_ok=True)
        if response.status_code == 404:
            return None
        record = json_body(response, "GET sobjects/Contact/{Id}")
        if not isinstance(record, dict):
            raise TransientError("crm GET Contact: the answer is not a record", "crm_bad_answer")
        self._versions.note(str(contact_id), response.headers.get("Date"))
        # The answer holds the requested fields only ("Get Field Values from a Standard
        # Object Record": no Id unless asked for): the id is the one asked for.
        return to_contact({**record, "Id": contact_id})

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:  # noqa: ARG002
        """Upsert on the external id: a repeated create finds the contact it made."""
        owner = fields.get(OWNER_FIELD)
        record = to_record({"family_name": None, **fields})
        if not owner:
            response = self._call("POST", f"{API}/sobjects/Contact", json=record, repeatable=False)
        else:
            record.pop(EXTERNAL_ID, None)  # the external id is in the URL
            path = f"{API}/sobjects/Contact/{EXTERNAL_ID}/{quote(str(owner), safe='')}"
            response = self._call("PATCH", path, json=record, creating=True)
        if response.status_code == 300:
            raise AmbiguousMatch(f"several Salesforce contacts carry {EXTERNAL_ID} {owner}")
        record_id = None
        if response.status_code != 204:
            body = json_body(response, "upsert Contact")
            record_id = body.get("id") if isinstance(body, dict) else None
        if not record_id:  # 204 (older API versions): read the id by the external id
            found = self.find_contacts(auth0_user_id=str(owner))
            if len(found) != 1:
                raise TransientError("crm upsert Contact: no id in the answer", "crm_bad_answer")
            record_id = found[0]["id"]
        else:
            self._versions.note(str(record_id), response.headers.get("Date"))
        return {**dict(fields), "id": str(record_id)}

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        """PATCH the given fields by record id; None when the contact is gone."""
        return self.update_guarded(contact_id, fields, owner=None, version=None)

    def update_guarded(
        self,
        contact_id: str,
        fields: Mapping[str, Any],
        *,
        owner: str | None,
        version: str | None,
    ) -> Contact | None:
        """PATCH by record id with `If-Unmodified-Since: version` (none: unconditional);
        `ContactChanged` when the record was modified since (412). `owner` is not needed:
        a reassignment modifies the record too."""
        del owner
        if not _RECORD_ID.fullmatch(str(contact_id)):
            return None
        path = f"{API}/sobjects/Contact/{contact_id}"
        headers = {"If-Unmodified-Since": version} if version else None
        response = self._call(
            "PATCH", path, json=to_record(fields), missing_ok=True, headers=headers, stale_ok=True
        )
        if response.status_code == 404:
            return None
        if response.status_code == 412:
            self._versions.note(str(contact_id), None)
            raise ContactChanged("crm PATCH sobjects/Contact/{Id}: HTTP 412: modified since")
        self._versions.note(str(contact_id), response.headers.get("Date"))
        return {**dict(fields), "id": str(contact_id)}

    def version_seen(self, contact_id: str) -> str | None:
        """The `Date` of the last answer about this contact that this thread got."""
        return self._versions.get(str(contact_id))

    def note_version(self, contact_id: str, version: str | None) -> None:
        """Note, for this thread, the version another thread's answer (a batch's) gave."""
        self._versions.note(str(contact_id), version)

    def check_fields(self) -> dict[str, str]:
        """The custom fields the sync writes exist on Contact (`destination setup`)."""
        query = f"SELECT Id, {EXTERNAL_ID}, Auth0_Status__c FROM Contact LIMIT 1"  # noqa: S608
        try:
            self._call("GET", f"{API}/query", params={"q": query})
        except CrmRejected as exc:
            if exc.reason == "salesforce_invalid_field":
                raise CrmRejected(
                    exc.status,
                    f"{exc.message}: create the Contact fields {EXTERNAL_ID} (Text(255), "
                    "External ID, Unique) and Auth0_Status__c (Picklist: active, deactivated, "
                    "restricted) in Setup > Object Manager > Contact",
                    exc.reason,
                ) from exc
            raise
        return {EXTERNAL_ID: "exists", "Auth0_Status__c": "exists"}

    # Transport ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
        repeatable: bool = True,
        creating: bool = False,
        headers: Mapping[str, str] | None = None,
        stale_ok: bool = False,
    ) -> requests.Response:
        what = f"crm {method} {_template(path)}"
        self._check_reserve(what)
        for fresh in (False, True):
            token, instance = self._token(fresh)
            try:
                response = self.transport.request(
                    method,
                    instance + path,
                    what=what,
                    repeatable=repeatable,
                    params=params,
                    json=json,
                    headers={"Authorization": f"Bearer {token}", **(headers or {})},
                )
            except TransientError as exc:
                last = last_answer(exc)
                if last is None or not _codes(last):
                    raise
                response = last  # a retried error code (a row lock): say which
            self._note_usage(response)
            expired = response.status_code == 401 and "INVALID_SESSION_ID" in _codes(response)
            if expired and fresh:  # a session just issued is refused too
                raise CredentialsRejected(f"{what}: HTTP 401 INVALID_SESSION_ID: {REFUSED_HINT}")
            if not expired:
                break
            # The session ended (timeout, revoked): one new token, one more try.
        status = response.status_code
        if status < 400 or (status == 404 and missing_ok) or (status == 412 and stale_ok):
            return response
        self._raise(what, response, creating=creating, sent=(json or {}).values())
        raise AssertionError("unreachable")  # pragma: no cover

    def _token(self, fresh: bool) -> tuple[str, str]:
        with self._lock:
            if self._session_token is not None and not fresh:
                return self._session_token
        what = f"crm POST {TOKEN_PATH}"

        def send(fresh_secret: bool) -> requests.Response:
            client_id, client_secret = current(self._credentials, fresh=fresh_secret)
            return self.transport.request(
                "POST",
                self._login_url + TOKEN_PATH,
                what=what,
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": client_secret,
                },
            )

        # A rotated or expired client secret: the pair again past the secret's cache, once.
        response = with_fresh_credential(send, _client_refused, what)
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if response.status_code != 200 or not body.get("access_token"):
            error = str(body.get("error") or f"http_{response.status_code}")
            detail = redact(str(body.get("error_description") or ""))
            reason = f"salesforce_{error.lower()}" if _is_code(error) else None
            raise CrmRejected(
                response.status_code,
                f"{what}: HTTP {response.status_code} {error}: {detail}; check the connected "
                "app's client id and secret, and that the client-credentials flow is enabled "
                "with a Run As user",
                reason,
            )
        instance = str(body.get("instance_url") or self._login_url).rstrip("/")
        with self._lock:
            self._session_token = (str(body["access_token"]), instance)
            self.tokens_fetched += 1
            return self._session_token

    def _note_usage(self, response: requests.Response) -> None:
        match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            with self._lock:
                self.api_usage = (int(match.group(1)), int(match.group(2)))
                self._usage_seen_at = self._clock()

    def _check_reserve(self, what: str) -> None:
        usage = self.api_usage
        if usage is None or self.reserve <= 0:
            return
        used, limit = usage
        if limit and used >= limit * (1 - self.reserve):
            with self._lock:
                now = self._clock()
                if now - self._usage_seen_at >= self.usage_max_age:
                    self._usage_seen_at = now  # this call probes; the others still wait
                    return
            raise TransientError(
                f"{what}: the org has used {used} of its {limit} daily API calls; the last "
                f"{self.reserve:.0%} are left to the org's other integrations",
                "salesforce_request_limit_exceeded",
            )

    @staticmethod
    def _raise(
        what: str, response: requests.Response, *, creating: bool, sent: Iterable[Any]
    ) -> None:
        """Salesforce's `[{errorCode, message, fields}]` -> our errors, the code in the reason."""
        errors = _errors(response)
        first = errors[0] if errors else {}
        code = str(first.get("errorCode") or "")
        fields = first.get("fields") or []
        message = f"{what}: HTTP {response.status_code}"
        if code:
            message += f" {code}"
        if first.get("message"):
            message += f": {redact(str(first['message']), sent=sent)}"
        if fields:
            message += f" (fields {fields})"
        on_email = code == "DUPLICATES_DETECTED" or (
            code == "DUPLICATE_VALUE"
            and ("Email" in fields or "Email" in str(first.get("message")))
        )
        if on_email:
            raise ContactExists(message) if creating else EmailTaken(message)
        reason = f"salesforce_{code.lower()}" if _is_code(code) else None
        if code in TRANSIENT_CODES or (not code and response.status_code >= 500):
            raise TransientError(message, reason or f"crm_{response.status_code}")
        raise CrmRejected(response.status_code, message, reason)


def _errors(response: requests.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


# The token endpoint's answers to a client id or secret it does not accept (OAuth 2.0
# errors: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_flow_errors.htm).
# `invalid_grant` (the flow is not enabled, no Run As user) is the app's setup: not retried.
CLIENT_REFUSED = frozenset({"invalid_client", "invalid_client_id", "invalid_client_credentials"})


def _client_refused(response: requests.Response) -> bool:
    if response.status_code not in (400, 401):
        return False
    try:
        body = response.json()
    except ValueError:
        return response.status_code == 401
    error = body.get("error") if isinstance(body, dict) else None
    return response.status_code == 401 or error in CLIENT_REFUSED


def _codes(response: requests.Response) -> set[str]:
    if response.status_code < 400:
        return set()
    return {str(e.get("errorCode")) for e in _errors(response)}


def _is_code(text: str) -> bool:
    return bool(text) and text.replace("_", "").isalnum() and text.isascii()


def _template(path: str) -> str:
    """The path without ids, for messages that may be logged."""
    path = path.removeprefix(API)
    if path.startswith(f"/sobjects/Contact/{EXTERNAL_ID}/"):
        return f"{API}/sobjects/Contact/{EXTERNAL_ID}/{{user_id}}"
    if path.startswith("/sobjects/Contact/"):
        return f"{API}/sobjects/Contact/{{Id}}"
    for sobject in ("Account", "AccountContactRelation"):  # salesforce_accounts
        if path.startswith(f"/sobjects/{sobject}/"):
            return f"{API}/sobjects/{sobject}/{{id}}"
    return API + path
