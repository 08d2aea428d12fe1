"""A fake HubSpot CRM v3 (contacts and contact properties) on loopback, written from
HubSpot's public API documentation.

Modelled: private-app bearer auth (401 INVALID_AUTHENTICATION); contacts with numeric
string ids, `properties`, `archived`; emails stored in lower case and unique (409 CONFLICT
"Contact already exists. Existing ID: N" on create and on update); unknown properties and
values outside an enumeration's options are 400 VALIDATION_ERROR; reads by id or by a
unique property (`idProperty=email`); search with filterGroups (OR of groups, AND of
filters, EQ/NEQ/HAS_PROPERTY), `limit` at most 200, archived contacts excluded; the list
endpoint (id order, `limit` 1..100, the opaque `paging.next.after` cursor, `archived=true`
for the archived ones only); DELETE archives; the properties API (GET one, POST, 409
OBJECT_ALREADY_EXISTS); the rolling window limit with `X-HubSpot-RateLimit-*` headers on
every non-search answer and 429 RATE_LIMIT (policyName TEN_SECONDLY_ROLLING); the search
endpoints' own per-second limit (429, policyName SECONDLY, no rate-limit headers on search
answers); for the demo, an outage (every request answers one status in HubSpot's error
body), a lower rolling window, and request counts.
The GDPR delete (POST .../gdpr-delete) removes a contact for good, not archived.
Unique properties (`hasUniqueValue`, https://developers.hubspot.com/changelog/updating-
objects-by-custom-field-and-adding-owner-properties-via-the-api): a value another contact
holds is refused on create and update (409 CONFLICT, as HubSpot answers a taken unique
value: https://github.com/mitodl/mitxpro/issues/2652; the message is the fake's own), and
reads and updates by `idProperty` take such a property only (the update reference: "the
name of a property whose values are unique"; another property: 400 here, the answer is
not documented). `unique_owner=False` makes `auth0_user_id` an ordinary property, as a
person may have created it. The search index lags behind writes (`search_lag_seconds`):
search sees each contact as it was that long ago, and not at all before it is that old
("changes ... take several seconds to propagate to the search indexing",
https://docs.locoia.com/connectors/connectors/hubspot; "the Search API is eventually
consistent", https://blog.sequin.io/building-a-sync-on-hubspots-api/); reads by id or
`idProperty` are immediate, and indexed (a bulk run's lookups cost the same at 10,000
contacts as at 10). `drop_next_answer` applies a request and loses its answer
(504), as a timeout after the request left would.
The batch endpoints (read, create, update, upsert) are in `hubspot_batch`.
Companies, company properties and contact-company associations (v4) are in
`hubspot_companies`.
Not modelled: the daily limit, pagination of search beyond
one page, lifecycle stages, merges.
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
import time
import uuid
from collections import Counter, deque
from typing import Any

from flask import Flask, Response, request

from auth0_sync_cli.fakes import stats_of
from auth0_sync_cli.fakes.hubspot_objects import (
    add_property_routes,
    not_unique,
    object_view,
    unique_taken,
)
from auth0_sync_cli.fakes.loopback import LoopbackServer

TOKEN = "pat-na1-fake-token"  # noqa: S105 (a loopback fake's token, not a secret)

STANDARD_PROPERTIES: dict[str, dict[str, Any]] = {
    name: {"name": name, "type": "string", "fieldType": "text", "hubspotDefined": True}
    for name in ("email", "firstname", "lastname", "phone", "company", "lifecyclestage")
}
READ_ONLY = ("hs_object_id", "createdate", "lastmodifieddate")
LIST_LIMIT_MAX = 100


def _error(status: int, category: str, message: str, **extra: Any) -> Response:
    """HubSpot's error answer, as its "API error responses" page shows it
    (https://developers.hubspot.com/docs/faq/api-error-responses): `status` "error", a
    human-readable `message`, a `category` (VALIDATION_ERROR, RATE_LIMITS, ...), a unique
    `correlationId`, and optionally `errors` (`{message, code, in, context}` each, the
    SDKs' generated `Error`/`ErrorDetail` types); the page warns that any field may be
    missing, which the adapter allows for."""
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


class FakeHubSpot(LoopbackServer):
    def __init__(
        self,
        *,
        token: str = TOKEN,
        custom_properties: bool = True,
        window_calls: int = 100,
        window_ms: int = 10_000,
        search_per_second: int = 5,
        unique_owner: bool = True,
        search_lag_seconds: float = 0.0,
    ) -> None:
        super().__init__()
        self.token = token
        self.window_calls = window_calls
        self.window_ms = window_ms
        self.search_per_second = search_per_second
        self.lock = threading.Lock()
        self.properties: dict[str, dict[str, Any]] = dict(STANDARD_PROPERTIES)
        self.records: dict[str, dict[str, Any]] = {}
        # (property, value in lower case) -> ids of the records that were given it: HubSpot
        # looks a contact up by email or a unique property without reading every contact.
        # Checked against the record on each lookup (a value changed or deleted since).
        self._by_value: dict[tuple[str, str], set[str]] = {}
        # Addresses a GDPR delete by email found no contact for (kept, not enforced here).
        self.blocklist: set[str] = set()
        self.next_id = 1001
        self.requests: list[tuple[str, str, int]] = []  # method, path, status
        self.throttled: Counter[str] = Counter()  # policyName -> 429s answered
        self._window: deque[float] = deque()
        self._search: deque[float] = deque()
        self._faults: list[tuple[str, str, int, dict[str, str]]] = []
        self._drops: list[tuple[str, str]] = []
        self.search_lag_seconds = search_lag_seconds
        # record id -> [(when written, properties then)]: what the search index sees.
        self._history: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        self._window_calls_given = window_calls
        self.outage: int | None = None
        from auth0_sync_cli.fakes.hubspot_companies import CompanyStore

        self.companies_store = CompanyStore(custom_properties)
        if custom_properties:
            from auth0_sync.destinations.hubspot import CUSTOM_PROPERTIES

            for spec in CUSTOM_PROPERTIES:
                self.properties[spec["name"]] = dict(spec)
            self.properties["auth0_user_id"]["hasUniqueValue"] = unique_owner

    # Test helpers -------------------------------------------------------------------------

    def seed(self, **properties: str | None) -> str:
        """A contact as if created in HubSpot by hand; its id."""
        with self.lock:
            return self._insert({k: v for k, v in properties.items() if v is not None})

    def reset(self) -> None:
        """No contacts, no requests counted, the limits' windows empty."""
        with self.lock:
            self.records.clear()
            self._by_value.clear()
            self.blocklist.clear()
            self.requests.clear()
            self.throttled.clear()
            self._window.clear()
            self._search.clear()
            self._faults.clear()
            self._drops.clear()
            self._history.clear()
            self.companies_store.reset()

    def edit(self, record_id: str, **properties: str) -> None:
        """A person changes the contact in HubSpot (no validation)."""
        with self.lock:
            self._write(self.records[record_id], dict(properties))

    def drop_next_answer(self, method: str, path_prefix: str) -> None:
        """Apply the next matching request, then answer 504 instead (the answer is lost)."""
        with self.lock:
            self._drops.append((method, path_prefix))

    def contacts(self, archived: bool = False) -> list[dict[str, Any]]:
        with self.lock:
            return [
                json.loads(json.dumps(r))
                for r in self.records.values()
                if r["archived"] == archived
            ]

    def fail_next(
        self, method: str, path_prefix: str, status: int, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next matching request with `status` (once per call)."""
        with self.lock:
            self._faults.append((method, path_prefix, status, headers or {}))

    # What the demo drives (auth0_sync_cli.fakes.DemoCrm) -------------------------------

    def set_outage(self, status: int | None) -> None:
        """Answer every request with `status` in HubSpot's error body (None: outage off)."""
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"outage status must be an HTTP error status 400..599, got {status}")
        self.outage = status

    def set_rate_limit(self, rps: float | None) -> None:
        """Lower the account's rolling window to `rps` calls a second on average (its
        10-second window holds rps * 10 calls); None: back to the window it started with.
        Over it, HubSpot's 429 RATE_LIMIT (policyName TEN_SECONDLY_ROLLING)."""
        if rps is not None and not rps > 0:
            raise ValueError(f"rate limit must be > 0 requests per second or None, got {rps!r}")
        with self.lock:
            given = self._window_calls_given
            self.window_calls = given if rps is None else max(1, int(rps * self.window_ms / 1000))

    def stats(self) -> dict[str, Any]:
        """`{"total": n, "by_method": {...}, "by_status": {...}}` of every answered request."""
        with self.lock:
            return stats_of([(method, status) for method, _, status in self.requests])

    def seed_contact(self, **fields: Any) -> dict[str, Any]:
        """A contact made by hand before the sync, from generic fields (the adapter's own
        translation; fields HubSpot has no property for, like `name`, are dropped)."""
        from auth0_sync.destinations.hubspot import to_properties

        properties = {k: v for k, v in to_properties(fields).items() if v != ""}
        return {"id": self.seed(**properties), **fields}

    def generic_contacts(self) -> list[dict[str, Any]]:
        """Every contact (archived ones aside), in the generic names, read by hand."""
        return [
            {"id": r["id"], **hubspot_contact(r, status_default="active")} for r in self.contacts()
        ]

    def companies(self, archived: bool = False) -> list[dict[str, Any]]:
        """Every company (archived ones or not), as HubSpot holds it."""
        with self.lock:
            return [
                json.loads(json.dumps(r))
                for r in self.companies_store.records.values()
                if r["archived"] == archived
            ]

    def associations(self) -> dict[tuple[str, str], list[str]]:
        """(contact id, company id) -> the labels on the pair (the unlabeled one: none)."""
        with self.lock:
            store = self.companies_store
            return {pair: store.label_texts(types) for pair, types in store.pairs.items()}

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p.startswith(prefix))

    # The API ------------------------------------------------------------------------------

    def wsgi_app(self) -> Flask:
        app = Flask("fake-hubspot")
        fake = self

        @app.before_request
        def gate() -> Response | None:
            if fake.outage is not None:
                category = "RATE_LIMITS" if fake.outage == 429 else "INTERNAL_ERROR"
                return _error(fake.outage, category, "HubSpot is unavailable (a simulated outage)")
            auth = request.headers.get("Authorization", "")
            if not hmac.compare_digest(auth, f"Bearer {fake.token}"):
                return _error(
                    401,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                )
            with fake.lock:
                for n, (method, prefix, status, headers) in enumerate(fake._faults):
                    if request.method == method and request.path.startswith(prefix):
                        del fake._faults[n]
                        category = "RATE_LIMITS" if status == 429 else "INTERNAL_ERROR"
                        response = _error(status, category, "injected fault")
                        response.headers.update(headers)
                        return response
                return fake._throttle()

        @app.after_request
        def record(response: Response) -> Response:
            with fake.lock:
                for n, (method, prefix) in enumerate(fake._drops):
                    if request.method == method and request.path.startswith(prefix):
                        del fake._drops[n]
                        response = _error(504, "GATEWAY_TIMEOUT", "the answer was lost")
                        break
                fake.requests.append((request.method, request.path, response.status_code))
            if not request.path.endswith("/search"):
                response.headers.update(fake._limit_headers())
            return response

        add_property_routes(app, fake.lock, fake.properties, "contacts", _error, _ok)

        @app.post("/crm/v3/objects/contacts/search")
        def search() -> Response:
            body = request.get_json(silent=True) or {}
            limit = body.get("limit", 10)
            if not isinstance(limit, int) or limit > 200:
                return _error(400, "VALIDATION_ERROR", "limit must be at most 200")
            with fake.lock:
                hits = [
                    r
                    for r in fake._indexed()
                    if not r["archived"] and fake._matches(r, body.get("filterGroups") or [])
                ]
                wanted = body.get("properties") or []
                results = [fake._view(r, wanted) for r in hits[:limit]]
            return _ok({"total": len(hits), "results": results})

        @app.get("/crm/v3/objects/contacts")
        def list_page() -> Response:
            # HubSpot's list: id order, `limit` 1..100 (default 10), `after` the opaque
            # cursor of `paging.next.after`, `archived=true` for the archived ones only.
            raw_limit = request.args.get("limit", "10")
            if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= LIST_LIMIT_MAX:
                return _error(
                    400, "VALIDATION_ERROR", f"limit must be between 1 and {LIST_LIMIT_MAX}"
                )
            limit = int(raw_limit)
            start = _cursor_id(request.args.get("after"))
            if start is None:
                return _error(400, "VALIDATION_ERROR", "after is not a valid paging cursor")
            archived = request.args.get("archived", "false").lower() == "true"
            wanted = [p for p in request.args.get("properties", "").split(",") if p]
            with fake.lock:
                ordered = sorted(
                    (r for r in fake.records.values() if r["archived"] == archived),
                    key=lambda r: int(r["id"]),
                )
                page = [r for r in ordered if int(r["id"]) >= start][: limit + 1]
                results = [fake._view(r, wanted) for r in page[:limit]]
            body: dict[str, Any] = {"results": results}
            if len(page) > limit:
                after = _cursor(int(page[limit]["id"]))
                link = f"{fake.base_url}/crm/v3/objects/contacts?after={after}"
                body["paging"] = {"next": {"after": after, "link": link}}
            return _ok(body)

        @app.post("/crm/v3/objects/contacts")
        def create() -> Response:
            properties = (request.get_json(silent=True) or {}).get("properties")
            if not isinstance(properties, dict):
                return _error(400, "VALIDATION_ERROR", "Invalid input JSON: properties")
            with fake.lock:
                problem = fake._invalid(properties)
                if problem is not None:
                    return problem
                holder = fake._holder(properties.get("email"))
                if holder is not None:
                    return _error(409, "CONFLICT", f"Contact already exists. Existing ID: {holder}")
                taken = fake._unique_taken(properties, None)
                if taken is not None:
                    return taken
                new_id = fake._insert(properties)
                # The answer shows the properties written (and HubSpot's own).
                return _ok(fake._view(fake.records[new_id], list(properties)), 201)

        @app.get("/crm/v3/objects/contacts/<path:key>")
        def read(key: str) -> Response:
            with fake.lock:
                refused = fake._not_unique(request.args.get("idProperty"))
                if refused is not None:
                    return refused
                record = fake._find(key, request.args.get("idProperty"))
                if record is None:
                    return _error(
                        404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric."
                    )
                wanted = [p for p in request.args.get("properties", "").split(",") if p]
                return _ok(fake._view(record, wanted))

        @app.patch("/crm/v3/objects/contacts/<path:key>")
        def update(key: str) -> Response:
            properties = (request.get_json(silent=True) or {}).get("properties")
            if not isinstance(properties, dict):
                return _error(400, "VALIDATION_ERROR", "Invalid input JSON: properties")
            with fake.lock:
                refused = fake._not_unique(request.args.get("idProperty"))
                if refused is not None:
                    return refused
                record = fake._find(key, request.args.get("idProperty"))
                if record is None:
                    return _error(
                        404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric."
                    )
                problem = fake._invalid(properties)
                if problem is not None:
                    return problem
                holder = fake._holder(properties.get("email"))
                if holder is not None and holder != record["id"]:
                    return _error(409, "CONFLICT", f"Contact already exists. Existing ID: {holder}")
                taken = fake._unique_taken(properties, record["id"])
                if taken is not None:
                    return taken
                fake._write(record, properties)
                return _ok(fake._view(record, list(properties)))

        @app.post("/crm/v3/objects/contacts/gdpr-delete")
        def gdpr_delete() -> Response:
            # https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact
            # and https://developers.hubspot.com/changelog/changes-to-the-gdpr-deletion-
            # endpoints-for-the-crm-contact-object-api: `{"objectId": id}`, or with
            # `"idProperty": "email"` an address (an unknown one is blocklisted). The record
            # is removed for good (not archived). 204 and 404 for an unknown id are the
            # fake's reading (the page gives no example answer).
            body = request.get_json(silent=True) or {}
            key = str(body.get("objectId") or "")
            by = body.get("idProperty")
            with fake.lock:
                record = fake._find(key, by if isinstance(by, str) else None)
                if record is None:
                    if by == "email":
                        fake.blocklist.add(key.lower())
                        return Response(status=204)
                    return _error(404, "OBJECT_NOT_FOUND", "resource not found")
                del fake.records[record["id"]]
            return Response(status=204)

        @app.delete("/crm/v3/objects/contacts/<path:key>")
        def archive(key: str) -> Response:
            with fake.lock:
                record = fake._find(key, None)
                if record is not None:
                    record["archived"] = True
            return Response(status=204)

        from auth0_sync_cli.fakes.hubspot_batch import add_batch_routes

        add_batch_routes(app, fake, _error, _ok, _now)
        from auth0_sync_cli.fakes.hubspot_companies import add_company_routes

        add_company_routes(app, fake, _error, _ok, _now)
        return app

    # Internals (called under the lock) ---------------------------------------------------

    def _throttle(self) -> Response | None:
        now = time.monotonic()
        if request.path.endswith("/search"):
            queue, limit, span, policy = self._search, self.search_per_second, 1.0, "SECONDLY"
        else:
            queue, limit, span = self._window, self.window_calls, self.window_ms / 1000
            policy = "TEN_SECONDLY_ROLLING"
        while queue and queue[0] <= now - span:
            queue.popleft()
        if len(queue) >= limit:
            self.throttled[policy] += 1
            return _error(
                429,
                "RATE_LIMITS",
                f"You have reached your {policy.lower()} limit.",
                errorType="RATE_LIMIT",
                policyName=policy,
            )
        queue.append(now)
        return None

    def _limit_headers(self) -> dict[str, str]:
        with self.lock:
            now = time.monotonic()
            used = sum(1 for t in self._window if t > now - self.window_ms / 1000)
        return {
            "X-HubSpot-RateLimit-Max": str(self.window_calls),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.window_calls - used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.window_ms),
            "X-HubSpot-RateLimit-Daily": "250000",
            "X-HubSpot-RateLimit-Daily-Remaining": "249000",
        }

    def _insert(self, properties: dict[str, Any]) -> str:
        new_id = str(self.next_id)
        self.next_id += 1
        stamp = _now()
        record = {
            "id": new_id,
            "properties": {"hs_object_id": new_id, "createdate": stamp},
            "createdAt": stamp,
            "archived": False,
        }
        self._write(record, properties)
        self.records[new_id] = record
        return new_id

    def _write(self, record: dict[str, Any], properties: dict[str, Any]) -> None:
        for name, value in properties.items():
            text = "" if value is None else str(value)
            if name == "email":
                text = text.strip().lower()  # HubSpot stores emails in lower case
            before = record["properties"].get(name)
            if before:
                self._by_value.get((name, str(before).lower()), set()).discard(record["id"])
            if text:
                self._by_value.setdefault((name, text.lower()), set()).add(record["id"])
            record["properties"][name] = text
        record["properties"]["lastmodifieddate"] = record["updatedAt"] = _now()
        snapshot = {**record, "properties": dict(record["properties"])}
        self._history.setdefault(record["id"], []).append((time.monotonic(), snapshot))

    def _indexed(self) -> list[dict[str, Any]]:
        """The contacts as the search index sees them: each as it was `search_lag_seconds`
        ago (archiving is seen at once), none younger than that."""
        if not self.search_lag_seconds:
            return list(self.records.values())
        horizon = time.monotonic() - self.search_lag_seconds
        seen = []
        for record_id, record in self.records.items():
            old = [snap for when, snap in self._history.get(record_id, []) if when <= horizon]
            if old:
                seen.append({**old[-1], "archived": record["archived"]})
        return seen

    def _unique_taken(self, properties: dict[str, Any], own_id: str | None) -> Response | None:
        """409 when a unique property (other than email) gets a value another contact has."""
        return unique_taken(
            _error,
            self.properties,
            self._holding,
            properties,
            own_id,
            noun="contact",
            exempt={"email"},
        )

    def _not_unique(self, id_property: str | None) -> Response | None:
        """An `idProperty` must be a property with unique values (email counts as one)."""
        return not_unique(_error, self.properties, id_property, unique={"email"})

    def _invalid(self, properties: dict[str, Any]) -> Response | None:
        errors = []
        for name, value in properties.items():
            spec = self.properties.get(name)
            if spec is None or name in READ_ONLY:
                errors.append(
                    {
                        "message": f'Property "{name}" does not exist',
                        "code": "PROPERTY_DOESNT_EXIST",
                        "context": {"propertyName": [name]},
                    }
                )
                continue
            options = [o["value"] for o in spec.get("options", [])]
            if spec.get("type") == "enumeration" and value not in ("", None, *options):
                errors.append(
                    {
                        "message": f"{value!r} was not one of the allowed options: {options}",
                        "code": "INVALID_OPTION",
                        "context": {"propertyName": [name]},
                    }
                )
            if name == "email" and value and "@" not in str(value):
                errors.append({"message": "Email address is invalid", "code": "INVALID_EMAIL"})
        if not errors:
            return None
        return _error(
            400,
            "VALIDATION_ERROR",
            f"Property values were not valid: {json.dumps(errors)}",
            errors=errors,
        )

    def _holder(self, email: Any) -> str | None:
        if not email:
            return None
        wanted = str(email).strip().lower()
        for record in self._holding("email", wanted):
            if not record["archived"] and record["properties"].get("email") == wanted:
                return str(record["id"])
        return None

    def _holding(self, name: str, value: str) -> list[dict[str, Any]]:
        """The records given `value` (any case) for `name`, oldest first (the order a scan
        of every record would meet them in); the caller checks each one's value now."""
        ids = self._by_value.get((name, value.lower()), set())
        found = (self.records.get(i) for i in sorted(ids, key=int))
        return [r for r in found if r is not None]

    def _find(self, key: str, id_property: str | None) -> dict[str, Any] | None:
        if id_property and id_property != "hs_object_id":
            for record in self._holding(id_property, key):
                value = record["properties"].get(id_property, "")
                if not record["archived"] and value and value.lower() == key.lower():
                    return record
            return None
        found = self.records.get(key)
        return None if found is None or found["archived"] else found

    @staticmethod
    def _matches(record: dict[str, Any], groups: list[dict[str, Any]]) -> bool:
        def one(f: dict[str, Any]) -> bool:
            have = str(record["properties"].get(f.get("propertyName"), "") or "")
            op = f.get("operator")
            if op == "HAS_PROPERTY":
                return have != ""
            same = have.lower() == str(f.get("value", "")).lower()
            return same if op == "EQ" else (not same if op == "NEQ" else False)

        return any(all(one(f) for f in g.get("filters") or []) for g in groups)

    @staticmethod
    def _view(record: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
        return object_view(
            record,
            wanted,
            always={"hs_object_id", "createdate", "lastmodifieddate"},
            default={"email", "firstname", "lastname"},
        )


def _cursor(next_id: int) -> str:
    """A paging cursor: opaque to clients (base64 text, like the documentation's example
    `NTI1Cg%3D%3D`), here the id the next page starts at."""
    return base64.urlsafe_b64encode(f"{next_id}\n".encode()).decode()


def _cursor_id(cursor: str | None) -> int | None:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().strip())
    except ValueError:
        return None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def hubspot_contact(record: dict[str, Any], *, status_default: str | None = None) -> dict[str, Any]:
    """A record in the generic contract's names, read by hand for assertions.
    `status_default`: the status of a contact without `auth0_status` (the demo's truth: a
    contact the sync never wrote is one nobody deactivated)."""
    p = record["properties"]
    return {
        "email": p.get("email") or None,
        "given_name": p.get("firstname") or None,
        "family_name": p.get("lastname") or None,
        "phone": p.get("phone") or None,
        "auth0_user_id": p.get("auth0_user_id") or None,
        "status": p.get("auth0_status") or status_default,
    }
