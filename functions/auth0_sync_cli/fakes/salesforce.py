"""A fake Salesforce org (OAuth token endpoint, SOQL query, Contact sObject) on loopback,
written from Salesforce's public REST API documentation.

Modelled: the client-credentials token endpoint (form-encoded; 400 `invalid_client`);
sessions that can be expired (401 `[{"errorCode": "INVALID_SESSION_ID"}]`); errors as JSON
arrays of `{message, errorCode[, fields]}`; SOQL `SELECT ... FROM Contact [WHERE f op '...'
[AND|OR ...]] [ORDER BY f [ASC|DESC]] [LIMIT n]` (op = != < >: keyset paging on Id) with
the documented string escapes (a quote that is not escaped ends the literal and the rest
is parsed as SOQL: MALFORMED_QUERY, or a wider query), case-insensitive comparisons;
18-character record ids; GET/PATCH by Id (404 NOT_FOUND, ENTITY_IS_DELETED; a GET with
`fields` answers those fields only, `Id` included only when asked for); upsert by the
external id `Auth0_User_Id__c` (201 created, 200 updated with `created: false`, 300 when
several records carry it); LastName required (REQUIRED_FIELD_MISSING), field lengths
(STRING_TOO_LONG), email syntax (INVALID_EMAIL_ADDRESS), a restricted picklist
(INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST), unknown fields (INVALID_FIELD); a unique
external id (DUPLICATE_VALUE); a blocking duplicate rule on Email (DUPLICATES_DETECTED);
the org's daily API allowance with `Sforce-Limit-Info: api-usage=N/M` on every answer and
403 REQUEST_LIMIT_EXCEEDED past it; for the demo, an outage of the REST API (503
SERVER_UNAVAILABLE) and request counts.
Conditional requests on Contact rows (https://developer.salesforce.com/docs/atlas.en-us.
api_rest.meta/api_rest/intro_rest_conditional_requests.htm, resources_sobject_retrieve_
patch.htm): each record's LastModifiedDate (to the second, kept aside from its fields)
changes with every write, a person's edit (`edit`) too; a PATCH by Id with
`If-Unmodified-Since` (an HTTP date) older than it gets 412 and changes nothing, and an
unreadable date 400. Every answer carries the org's `Date` (from `clock`). ETag/If-Match
is documented for Account rows only: not modelled on Contact. The error bodies of that
412 and 400 are not documented: here `[{errorCode, message}]` like the others.
Accounts, AccountContactRelations and Contact's AccountId: `salesforce_accounts`.
Not modelled: other sObjects, relationship queries, query paging (`nextRecordsUrl`: a
query answers at most its LIMIT), composite and bulk APIs other than the sObject
Collections of Contact (`salesforce_batch`), field-level security, Lead
conversion, concurrent request limits, a 24-hour rolling allowance (the count only grows).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from email.utils import formatdate, parsedate_to_datetime
from typing import Any, NamedTuple

from flask import Flask, Response, request

from auth0_sync_cli.fakes import stats_of
from auth0_sync_cli.fakes.loopback import LoopbackServer
from auth0_sync_cli.fakes.salesforce_composite import add_composite_route, in_composite

CLIENT_ID = "3MVG9-fake-consumer-key"
CLIENT_SECRET = "fake-consumer-secret"  # noqa: S105 (a loopback fake's, not a secret)
API = "/services/data/v60.0"
EXTERNAL_ID = "Auth0_User_Id__c"
FIELDS = {  # name -> max length
    "FirstName": 40,
    "LastName": 80,
    "Email": 80,
    "Phone": 40,
    EXTERNAL_ID: 255,
    "Auth0_Status__c": 255,
    "AccountId": 18,  # a reference to an Account (salesforce_accounts)
}
PICKLIST = {"Auth0_Status__c": ("active", "deactivated")}
# The error code of each outage status (the REST API's documented codes).
OUTAGE_CODES = {500: "UNKNOWN_EXCEPTION", 503: "SERVER_UNAVAILABLE"}
NO_RATE_LIMIT = (
    "Salesforce has no per-second request limit: its over-limit answer is 403 "
    "REQUEST_LIMIT_EXCEEDED once the org's 24-hour API allowance is spent"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _errors(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    """Salesforce's error answer: a JSON array of `{message, errorCode}`, with `fields` when
    the error is about fields. REST API Developer Guide, "Status Codes and Error Responses"
    (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
    errorcodes.htm): the body holds the message, the error code and "the field or object
    where the error occurred"; a 401 "contains the message and errorCode" (no fields)."""
    error: dict[str, Any] = {"message": message, "errorCode": code}
    if fields:
        error["fields"] = fields
    return Response(json.dumps([error]), status=status, mimetype="application/json")


def _ok(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


class MalformedQuery(Exception):
    pass


Condition = tuple[str, str, str | None]  # field, operator, literal (None: null)


class Soql(NamedTuple):
    """A parsed query: the fields, WHERE as OR of AND-groups, ORDER BY (field, descending)
    and LIMIT."""

    fields: list[str]
    groups: list[list[Condition]]
    limit: int
    order_by: tuple[str, bool] | None = None
    sobject: str = "Contact"


def parse_soql(query: str) -> Soql:
    """`SELECT f, ... FROM Contact|Account|AccountContactRelation [WHERE f op 'v' [AND|OR
    ...]] [ORDER BY f [ASC|DESC]] [LIMIT n]`, op one of = != < > (MalformedQuery otherwise)."""
    tokens = _tokens(query)
    pos = 0

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise MalformedQuery(f"unexpected end of query, expecting {expected or 'more'}")
        token = tokens[pos]
        if expected and token.upper() != expected:
            raise MalformedQuery(f"unexpected token: '{token}'")
        pos += 1
        return token

    take("SELECT")
    fields = []
    while True:
        fields.append(take())
        if pos < len(tokens) and tokens[pos] == ",":
            pos += 1
            continue
        break
    take("FROM")
    sobject = take()
    if sobject not in ("Contact", "Account", "AccountContactRelation"):
        raise MalformedQuery("sObject type not supported by this fake")
    groups: list[list[Condition]] = [[]]
    limit = 2000
    if pos < len(tokens) and tokens[pos].upper() == "WHERE":
        pos += 1
        while True:
            field = take()
            op = take()
            if op not in ("=", "!=", "<", ">"):
                raise MalformedQuery(f"unexpected token: '{op}'")
            value = take()
            if value.upper() == "NULL":
                literal: str | None = None
            elif value.startswith("'"):
                literal = value[1:]
            else:
                raise MalformedQuery(f"unexpected token: '{value}'")
            groups[-1].append((field, op, literal))
            if pos < len(tokens) and tokens[pos].upper() in ("AND", "OR"):
                if take().upper() == "OR":
                    groups.append([])
                continue
            break
    order_by = None
    if pos < len(tokens) and tokens[pos].upper() == "ORDER":
        pos += 1
        take("BY")
        order_field = take()
        descending = False
        if pos < len(tokens) and tokens[pos].upper() in ("ASC", "DESC"):
            descending = take().upper() == "DESC"
        order_by = (order_field, descending)
    if pos < len(tokens) and tokens[pos].upper() == "LIMIT":
        pos += 1
        limit = int(take())
    if pos != len(tokens):
        raise MalformedQuery(f"unexpected token: '{tokens[pos]}'")
    return Soql(fields, groups, limit, order_by, sobject)


def _tokens(query: str) -> list[str]:
    """Words, punctuation and string literals ('...' with backslash escapes, kept as
    "'" + the decoded text)."""
    escapes = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'"}
    escapes["\\"] = "\\"
    out: list[str] = []
    i = 0
    while i < len(query):
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch == "'":
            i += 1
            text = []
            while True:
                if i >= len(query):
                    raise MalformedQuery("unterminated string literal")
                ch = query[i]
                if ch == "\\":
                    if i + 1 >= len(query) or query[i + 1] not in escapes:
                        raise MalformedQuery("invalid escape sequence in string literal")
                    text.append(escapes[query[i + 1]])
                    i += 2
                elif ch == "'":
                    i += 1
                    break
                else:
                    text.append(ch)
                    i += 1
            out.append("'" + "".join(text))
        elif query.startswith("!=", i):
            out.append("!=")
            i += 2
        elif ch in ",=()<>":
            out.append(ch)
            i += 1
        else:
            match = re.match(r"[A-Za-z0-9_.@+-]+", query[i:])
            if not match:
                raise MalformedQuery(f"unexpected character: {ch!r}")
            out.append(match.group(0))
            i += len(match.group(0))
    return out


class FakeSalesforce(LoopbackServer):
    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        daily_limit: int = 100_000,
        unique_external_id: bool = True,
        email_duplicate_rule: bool = True,
        custom_fields: bool = True,
        multiple_accounts: bool = False,
    ) -> None:
        super().__init__()
        from auth0_sync_cli.fakes.salesforce_accounts import AccountStore

        # Accounts and AccountContactRelations (the latter with Contacts to Multiple
        # Accounts enabled): `salesforce_accounts`.
        self.accounts_store = AccountStore(multiple_accounts)
        # Without custom_fields: an org where Auth0_User_Id__c / Auth0_Status__c are missing.
        self.fields = {k: v for k, v in FIELDS.items() if custom_fields or not k.endswith("__c")}
        self.client_id = client_id
        self.client_secret = client_secret
        self.daily_limit = daily_limit
        self.api_used = 0
        self.unique_external_id = unique_external_id
        self.email_duplicate_rule = email_duplicate_rule
        self.lock = threading.Lock()
        self.records: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.sessions: set[str] = set()
        self.token_requests = 0
        self.queries: list[str] = []
        self.requests: Counter[str] = Counter()  # "METHOD route" -> count
        self._ids = itertools.count(1)
        self._faults: list[tuple[str, str, int, str]] = []
        self.answered: list[tuple[str, int]] = []  # method, status of every request
        self.outage: int | None = None
        self.clock: Callable[[], float] = time.time  # the org's clock (Date, LastModifiedDate)
        self.modified: dict[str, int] = {}  # record id -> LastModifiedDate (epoch seconds)
        # (indexed field, value in lower case) -> ids of the records that held it (`holding`)
        self._index: dict[tuple[str, str], set[str]] = {}

    # Test helpers -------------------------------------------------------------------------

    def seed(self, **fields: Any) -> str:
        with self.lock:
            return self._insert({k: v for k, v in fields.items() if v is not None})

    def reset(self) -> None:
        """No contacts, nothing counted; sessions stay valid."""
        with self.lock:
            self.records.clear()
            self.deleted.clear()
            self.requests.clear()
            self.queries.clear()
            self._faults.clear()
            self.answered.clear()
            self.modified.clear()
            self._index.clear()
            self.accounts_store.reset()
            self.api_used = 0

    def edit(self, record_id: str, **fields: Any) -> None:
        """A person changes the Contact in Salesforce (no validation; LastModifiedDate
        moves on)."""
        with self.lock:
            self.records[record_id].update(fields)
            self._touch(record_id)

    def contacts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.records.values()]

    def accounts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.accounts_store.accounts.values()]

    def relations(self) -> list[dict[str, Any]]:
        """Every AccountContactRelation (Contacts to Multiple Accounts)."""
        with self.lock:
            return [dict(r) for r in self.accounts_store.relations.values()]

    # What the demo drives (auth0_sync_cli.fakes.DemoCrm) -------------------------------

    def set_outage(self, status: int | None) -> None:
        """Answer every REST API request with `status` and Salesforce's error array
        (503: SERVER_UNAVAILABLE); the token endpoint stays up. None: outage off."""
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"outage status must be an HTTP error status 400..599, got {status}")
        self.outage = status

    def set_rate_limit(self, rps: float | None) -> None:
        """Salesforce has no per-second request limit (its over-limit answer is 403
        REQUEST_LIMIT_EXCEEDED once the org's 24-hour allowance is spent: `daily_limit`),
        so only None is accepted."""
        if rps is not None:
            raise ValueError(NO_RATE_LIMIT)

    def stats(self) -> dict[str, Any]:
        """`{"total": n, "by_method": {...}, "by_status": {...}}` of every answered request
        (the token endpoint's included)."""
        with self.lock:
            return stats_of(list(self.answered))

    def seed_contact(self, **fields: Any) -> dict[str, Any]:
        """A contact made by hand before the sync, from generic fields (the adapter's own
        translation: a missing family name is its LastName placeholder, as Salesforce
        requires one; fields Contact has none for, like `name`, are dropped)."""
        from auth0_sync.destinations.salesforce import to_record

        record = to_record({"family_name": None, **fields})
        return {"id": self.seed(**record), **fields}

    def generic_contacts(self) -> list[dict[str, Any]]:
        """Every Contact, in the generic names, read by hand."""
        return [
            {"id": r["Id"], **salesforce_contact(r, status_default="active")}
            for r in self.contacts()
        ]

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def delete(self, record_id: str) -> None:
        with self.lock:
            self.records.pop(record_id)
            self.deleted.add(record_id)

    def fail_next(self, method: str, path_prefix: str, status: int, code: str) -> None:
        with self.lock:
            self._faults.append((method, path_prefix, status, code))

    # The API ------------------------------------------------------------------------------

    def wsgi_app(self) -> Flask:
        app = Flask("fake-salesforce")
        fake = self

        @app.post("/services/oauth2/token")
        def token() -> Response:
            form = request.form
            with fake.lock:
                fake.token_requests += 1
            if form.get("grant_type") != "client_credentials":
                return _ok(
                    {
                        "error": "unsupported_grant_type",
                        "error_description": "grant type not supported",
                    },
                    400,
                )
            if (
                form.get("client_id") != fake.client_id
                or form.get("client_secret") != fake.client_secret
            ):
                return _ok(
                    {"error": "invalid_client", "error_description": "invalid client credentials"},
                    400,
                )
            access = "00Dfake!" + uuid.uuid4().hex
            with fake.lock:
                fake.sessions.add(access)
            return _ok(
                {
                    "access_token": access,
                    "instance_url": fake.base_url,
                    "id": f"{fake.base_url}/id/00Dfake/005fake",
                    "token_type": "Bearer",
                    "issued_at": "1767225600000",
                    "signature": "fake",
                }
            )

        @app.before_request
        def gate() -> Response | None:
            if not request.path.startswith(API) or in_composite():
                return None
            auth = request.headers.get("Authorization", "")
            with fake.lock:
                route = re.sub(r"/Contact/.*", "/Contact/{x}", request.path.removeprefix(API))
                fake.requests[f"{request.method} {route}"] += 1
                if fake.outage is not None:
                    code = OUTAGE_CODES.get(fake.outage, "UNKNOWN_EXCEPTION")
                    return _errors(fake.outage, code, "Salesforce is unavailable (simulated)")
                if auth.removeprefix("Bearer ") not in fake.sessions:
                    return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
                fake.api_used += 1
                if fake.api_used > fake.daily_limit:
                    return _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                for n, (method, prefix, status, code) in enumerate(fake._faults):
                    if request.method == method and request.path.startswith(API + prefix):
                        del fake._faults[n]
                        return _errors(status, code, "injected fault")
            return None

        @app.after_request
        def limit_info(response: Response) -> Response:
            if in_composite():  # a subrequest: its composite request is the one answered
                return response
            with fake.lock:
                fake.answered.append((request.method, response.status_code))
            if request.path.startswith(API):
                used = min(fake.api_used, fake.daily_limit)
                response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{fake.daily_limit}"
            response.headers["Date"] = formatdate(fake.clock(), usegmt=True)
            return response

        @app.get(API + "/query")
        def query() -> Response:
            text = request.args.get("q", "")
            with fake.lock:
                fake.queries.append(text)
                try:
                    fields, groups, limit, order_by, sobject = parse_soql(text)
                except MalformedQuery as exc:
                    return _errors(400, "MALFORMED_QUERY", str(exc))
                store = fake.accounts_store
                if sobject == "Contact":
                    rows, known = list(fake.records.values()), tuple(fake.fields)
                else:
                    found = store.records_of(sobject)
                    if found is None:
                        return _errors(
                            400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported."
                        )
                    rows, known = found, store.fields_of(sobject)
                named = [*fields, *([order_by[0]] if order_by else [])]
                named += [cond[0] for group in groups for cond in group]
                unknown = [f for f in named if f != "Id" and f not in known]
                if unknown:
                    return _errors(
                        400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{sobject}'"
                    )
                if sobject == "Contact":
                    rows = _indexed(fake, rows, groups)
                hits = [r for r in rows if _where(r, groups)]
                if order_by is not None:
                    name, descending = order_by
                    # Nulls first ascending, as SOQL's default NULLS FIRST.
                    hits.sort(key=lambda r: (r.get(name) is not None, str(r.get(name) or "")))
                    if descending:
                        hits.reverse()
                records = [fake._view(r, fields, sobject) for r in hits[:limit]]
            return _ok({"totalSize": len(records), "done": True, "records": records})

        @app.post(API + "/sobjects/Contact")
        def create() -> Response:
            body: Any = request.get_json(silent=True)
            with fake.lock:
                problem = fake._invalid(body, creating=True, own_id=None)
                if problem is not None:
                    return problem
                new_id = fake._insert(body)
            return _ok({"id": new_id, "success": True, "errors": []}, 201)

        @app.route(API + f"/sobjects/Contact/{EXTERNAL_ID}/<path:value>", methods=["GET", "PATCH"])
        def by_external_id(value: str) -> Response:
            with fake.lock:
                matches = [
                    r for r in fake.holding(EXTERNAL_ID, value) if r.get(EXTERNAL_ID) == value
                ]
                if len(matches) > 1:
                    urls = [f"{API}/sobjects/Contact/{r['Id']}" for r in matches]
                    return _ok(urls, 300)
                if request.method == "GET":
                    if not matches:
                        return _errors(404, "NOT_FOUND", "The requested resource does not exist")
                    return _ok(fake._view(matches[0], ["Id", *FIELDS]))
                body: Any = request.get_json(silent=True)
                if isinstance(body, dict) and EXTERNAL_ID in body:
                    return _errors(
                        400, "INVALID_FIELD", f"{EXTERNAL_ID} is the external id in the URL"
                    )
                if not matches:
                    problem = fake._invalid(body, creating=True, own_id=None)
                    if problem is not None:
                        return problem
                    new_id = fake._insert({**body, EXTERNAL_ID: value})
                    return _ok({"id": new_id, "success": True, "errors": [], "created": True}, 201)
                record = matches[0]
                problem = fake._invalid(body, creating=False, own_id=record["Id"])
                if problem is not None:
                    return problem
                record.update(body)
                fake._touch(record["Id"])
                return _ok({"id": record["Id"], "success": True, "errors": [], "created": False})

        @app.route(API + "/sobjects/Contact/<record_id>", methods=["GET", "PATCH"])
        def by_id(record_id: str) -> Response:
            with fake.lock:
                record = fake.records.get(record_id)
                if record is None:
                    if record_id in fake.deleted:
                        return _errors(404, "ENTITY_IS_DELETED", "entity is deleted")
                    return _errors(404, "NOT_FOUND", "The requested resource does not exist")
                if request.method == "GET":
                    return fake._field_values(record)
                stale = fake._precondition(record_id)
                if stale is not None:
                    return stale
                body: Any = request.get_json(silent=True)
                problem = fake._invalid(body, creating=False, own_id=record_id)
                if problem is not None:
                    return problem
                record.update(body)
                fake._touch(record_id)
            return Response(status=204)

        from auth0_sync_cli.fakes.salesforce_batch import add_collection_routes

        add_collection_routes(app, fake, API, EXTERNAL_ID, _errors, _ok)
        from auth0_sync_cli.fakes.salesforce_accounts import add_account_routes

        add_account_routes(app, fake, API, _errors, _ok)
        add_composite_route(app, API, _errors, _ok)
        return app

    # Internals (under the lock) ----------------------------------------------------------

    def _insert(self, fields: dict[str, Any]) -> str:
        new_id = f"003fk{next(self._ids):010d}AAA"
        self.records[new_id] = {"Id": new_id, **fields}
        self._touch(new_id)
        return new_id

    def _touch(self, record_id: str) -> None:
        """A Contact written (every write comes here): LastModifiedDate, and its indexed
        values noted (`holding`)."""
        self.modified[record_id] = int(self.clock())
        record = self.records.get(record_id, {})
        for name in INDEXED:
            if record.get(name) is not None:
                self._index.setdefault((name, str(record[name]).lower()), set()).add(record_id)

    def holding(self, name: str, value: Any) -> list[dict[str, Any]]:
        """The Contacts whose indexed field `name` (`INDEXED`) holds `value`, whatever its
        case, in the order they were made: looked up as Salesforce's index would, not by
        reading every record (the index keeps every id that ever held a value; each is
        checked here, so a record since changed or deleted is not found)."""
        wanted = str(value).lower()
        found = (self.records.get(i) for i in self._index.get((name, wanted), ()))
        held = [r for r in found if r is not None and str(r.get(name)).lower() == wanted]
        return sorted(held, key=lambda r: str(r["Id"]))  # ids count up: the order made

    def _precondition(self, record_id: str) -> Response | None:
        """`If-Unmodified-Since`: 412 when the record was modified after that second."""
        given = request.headers.get("If-Unmodified-Since")
        if given is None:
            return None
        try:
            since = parsedate_to_datetime(given).timestamp()
        except (TypeError, ValueError):
            return _errors(400, "BAD_REQUEST", "If-Unmodified-Since is not an HTTP date")
        if self.modified.get(record_id, 0) > since:
            return _errors(412, "PRECONDITION_FAILED", "The record was modified since")
        return None

    def _invalid(self, body: Any, *, creating: bool, own_id: str | None) -> Response | None:
        if not isinstance(body, dict):
            return _errors(400, "JSON_PARSER_ERROR", "The request body is not a JSON object")
        for name, value in body.items():
            if name not in self.fields:
                return _errors(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type Contact"
                )
            if value is not None and len(str(value)) > self.fields[name]:
                return _errors(
                    400,
                    "STRING_TOO_LONG",
                    f"{name}: data value too large: (max length={self.fields[name]})",
                    [name],
                )
            if name in PICKLIST and value not in PICKLIST[name]:
                return _errors(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{name}: bad value for restricted picklist field: {value}",
                    [name],
                )
        account = body.get("AccountId")
        if account is not None and account not in self.accounts_store.accounts:
            return _errors(
                400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["AccountId"]
            )
        last = body.get("LastName", ... if not creating else None)
        if last is None or last == "":
            return _errors(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [LastName]",
                ["LastName"],
            )
        email = body.get("Email")
        if email and not _EMAIL.match(str(email)):
            return _errors(
                400, "INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {email}", ["Email"]
            )
        owner = body.get(EXTERNAL_ID)
        holders = [
            r["Id"]
            for r in (self.holding(EXTERNAL_ID, owner) if owner else [])
            if r["Id"] != own_id and r.get(EXTERNAL_ID) == owner
        ]
        if self.unique_external_id and owner and holders:
            holder = holders[0]
            return _errors(
                400,
                "DUPLICATE_VALUE",
                f"duplicate value found: {EXTERNAL_ID} duplicates value on record with id: "
                f"{holder}",
                [EXTERNAL_ID],
            )
        taken = email and any(r["Id"] != own_id for r in self.holding("Email", email))
        if self.email_duplicate_rule and email and taken:
            return _errors(
                400,
                "DUPLICATES_DETECTED",
                "You're creating a duplicate record. We recommend you use an existing record "
                "instead.",
            )
        return None

    def _field_values(self, record: dict[str, Any]) -> Response:
        """GET sObject Rows: with `fields`, the requested fields only (no `Id` unless it is
        asked for), and 400 when one does not exist; without, every field of the record.
        Salesforce REST API Developer Guide, "Get Field Values from a Standard Object
        Record" (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
        dome_get_field_values.htm): `?fields=AccountNumber,BillingPostalCode` answers
        `{"AccountNumber": ..., "BillingPostalCode": ...}`. The `attributes` block (type and
        url) is what every record of the REST API carries, as in the query answers."""
        wanted = [f.strip() for f in request.args.get("fields", "").split(",") if f.strip()]
        unknown = [f for f in wanted if f != "Id" and f not in self.fields]
        if unknown:
            return _errors(
                400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity 'Contact'"
            )
        return _ok(self._view(record, wanted or ["Id", *self.fields]))

    @staticmethod
    def _view(
        record: dict[str, Any], fields: list[str], sobject: str = "Contact"
    ) -> dict[str, Any]:
        view: dict[str, Any] = {
            "attributes": {"type": sobject, "url": f"{API}/sobjects/{sobject}/{record['Id']}"}
        }
        for name in fields:
            view[name] = record.get(name)
        return view


# Contact fields Salesforce keeps an index on: Email, and every external id ("The platform
# maintains indexes on ... Email (for contacts and leads)"; "External IDs cause an index to be
# created on that field": https://developer.salesforce.com/docs/platform/salesforce-large-
# data-volumes-bp/guide/ldv-deployments-infrastructure-indexes.html).
INDEXED = ("Email", EXTERNAL_ID)


def _indexed(
    fake: FakeSalesforce, rows: list[dict[str, Any]], groups: list[list[Condition]]
) -> list[dict[str, Any]]:
    """The Contacts a WHERE of equalities on indexed fields (`f = 'v' OR ...`, a batch's
    lookup) can match, from the index (`FakeSalesforce.holding`) instead of every condition
    on every record (a batch of 100 emails into 10,000 contacts took a second); the query
    still checks each one (`_where`), in the order made, so the answer is the scan's. Any
    other WHERE: every row."""
    found: dict[str, dict[str, Any]] = {}
    for group in groups:
        if len(group) != 1:
            return rows
        [(name, op, literal)] = group
        if op != "=" or name not in INDEXED or literal is None:
            return rows
        found.update((r["Id"], r) for r in fake.holding(name, literal))
    return sorted(found.values(), key=lambda r: str(r["Id"]))


def _where(record: dict[str, Any], groups: list[list[Condition]]) -> bool:
    def one(field: str, op: str, literal: str | None) -> bool:
        have = record.get(field)
        if op in ("<", ">"):
            # Strings compare in order (record ids: the fake's are all of one case).
            if have is None or literal is None:
                return False
            return str(have) > literal if op == ">" else str(have) < literal
        if literal is None:
            same = have in (None, "")
        else:
            same = have is not None and str(have).lower() == literal.lower()
        return same if op == "=" else not same

    return any(all(one(*cond) for cond in group) for group in groups)


def salesforce_contact(
    record: dict[str, Any], *, status_default: str | None = None
) -> dict[str, Any]:
    """A record in the generic contract's names, read by hand for assertions (LastName
    "(unknown)" is the adapter's documented placeholder for no family name).
    `status_default`: the status of a Contact without Auth0_Status__c (the demo's truth: a
    contact the sync never wrote is one nobody deactivated)."""
    last = record.get("LastName")
    return {
        "email": record.get("Email"),
        "given_name": record.get("FirstName"),
        "family_name": None if last == "(unknown)" else last,
        "phone": record.get("Phone"),
        "auth0_user_id": record.get("Auth0_User_Id__c") or None,
        "status": record.get("Auth0_Status__c") or status_default,
    }
