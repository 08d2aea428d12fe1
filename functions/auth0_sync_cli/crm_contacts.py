"""The reference CRM's contact routes: `/contacts`, `/contacts/{id}` and the batches of contract
1.2 (`POST /contacts/batch`, `POST /contacts/batch/find`).

A batch operation runs through the very function its single call runs through (`create_one`,
`update_one`), so it answers with the same status and the same error as that call would:
the contract's "each operation behaves exactly as the single call it stands for" holds by
construction. Operations run in the order sent, each seeing the effect of those before it;
one failing stops nothing. A whole batch is one request for the fault injection and the
rate limit (crm_faults applies to the request before any operation runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from werkzeug.routing import BaseConverter

from auth0_sync_cli.crm_faults import Faults
from auth0_sync_cli.crm_fields import InvalidBody, json_type, text_error
from auth0_sync_cli.crm_http import (
    contact_response,
    error_response,
    json_response,
    listing_limit,
    request_body,
)
from auth0_sync_cli.crm_store import (
    ContactNotFound,
    ContactStore,
    EmailTaken,
    PreconditionFailed,
    Versioned,
    if_match_allows,
    validate_fields,
)

CONTACTS_PATH = "/contacts"
BATCH_PATH = CONTACTS_PATH + "/batch"
BATCH_FIND_PATH = BATCH_PATH + "/find"
IDEMPOTENCY_HEADER = "Idempotency-Key"
IF_MATCH_HEADER = "If-Match"
# The most operations of one batch, and the most values of one batch find (the contract).
BATCH_LIMIT = 100
_CREATE_KEYS = frozenset({"op", "idempotency_key", "fields"})
_UPDATE_KEYS = frozenset({"op", "id", "fields"})
_FIND_LISTS = ("emails", "auth0_user_ids")


class BatchTooLarge(Exception):
    """More than BATCH_LIMIT operations or values: 413, and nothing is done."""

    def __init__(self, what: str, count: int) -> None:
        super().__init__(f"{count} {what} in one request; at most {BATCH_LIMIT} are allowed")


@dataclass(frozen=True)
class Outcome:
    """What one create or update answers: a status and the contact, or an error."""

    status: int
    stored: Versioned | None = None
    error: str = ""
    message: str = ""
    etag: str = ""  # of a 412: the contact's current ETag

    def response(self) -> Response:
        """The answer of the single call."""
        if self.stored is None:
            response = error_response(self.status, self.error, self.message)
            if self.etag:
                response.headers["ETag"] = self.etag
            return response
        response = contact_response(self.stored, self.status)
        if self.status == 201:
            response.headers["Location"] = f"{CONTACTS_PATH}/{self.stored.contact['id']}"
        return response

    def result(self) -> dict[str, Any]:
        """The same answer as one result of a batch (the contract's ContactBatchResult)."""
        if self.stored is None:
            return {"status": self.status, "error": {"error": self.error, "message": self.message}}
        return {"status": self.status, "contact": self.stored.contact}


def _invalid(exc: InvalidBody) -> Outcome:
    return Outcome(422, error="invalid", message=str(exc))


def create_one(store: ContactStore, body: object, idempotency_key: str | None) -> Outcome:
    """`POST /contacts`: 201 created, 200 for a key seen before, 409 or 422."""
    try:
        fields = validate_fields(body, require_email=True)
    except InvalidBody as exc:
        return _invalid(exc)
    try:
        stored, created = store.create(fields, idempotency_key)
    except EmailTaken as exc:
        return Outcome(409, error="conflict", message=str(exc))
    return Outcome(201 if created else 200, stored)


def update_one(
    store: ContactStore,
    contact_id: str,
    body: Callable[[], object],
    if_match: str | None = None,
) -> Outcome:
    """`PATCH /contacts/{id}`: 200, or 404, then 412, then 422, then 409 (unique emails).

    The precondition is judged before the body is read (RFC 9110 13.2.1), so a stale write
    learns it is stale whatever it carries; the body comes as a thunk for that reason.
    """
    try:
        current = store.read(contact_id)
    except ContactNotFound:
        return Outcome(404, error="not_found", message=f"no contact with id {contact_id!r}")
    if not if_match_allows(if_match, current.etag):
        return _stale(PreconditionFailed(contact_id, current.etag))
    try:
        fields = validate_fields(body(), require_email=False)
    except InvalidBody as exc:
        return _invalid(exc)
    try:
        return Outcome(200, store.update(contact_id, fields, if_match=if_match))
    except PreconditionFailed as exc:  # changed between the check above and the write
        return _stale(exc)
    except EmailTaken as exc:  # only a server with unique emails refuses it
        message = f"field 'email' is already used by another contact: {exc.contact_id}"
        return Outcome(409, error="conflict", message=message)


def _stale(exc: PreconditionFailed) -> Outcome:
    message = (
        f"contact {exc.contact_id!r} changed since the version in If-Match; nothing was "
        "written (read it again, then decide)"
    )
    return Outcome(412, error="precondition_failed", message=message, etag=exc.etag)


def batch_items(body: object, name: str, what: str) -> list[Any]:
    """The list `name` of a batch body: 422 unless a non-empty list, 413 past the limit."""
    if not isinstance(body, dict):
        raise InvalidBody(f"body must be a JSON object, got {json_type(body)}")
    items = body[name]
    if not isinstance(items, list):
        raise InvalidBody(f"field '{name}' must be an array, got {json_type(items)}")
    if len(items) > BATCH_LIMIT:
        raise BatchTooLarge(what, len(items))
    if not items:
        raise InvalidBody(f"field '{name}' must hold at least one of the {what}")
    return items


def run_operation(store: ContactStore, operation: object) -> Outcome:
    """One operation of `POST /contacts/batch`, as its single call; 422 if malformed."""
    if not isinstance(operation, dict):
        kind_of = json_type(operation)
        return _invalid(InvalidBody(f"an operation must be a JSON object, got {kind_of}"))
    kind = operation.get("op")
    if kind not in ("create", "update"):
        return _invalid(InvalidBody(f"field 'op' must be 'create' or 'update', got {kind!r}"))
    allowed = _CREATE_KEYS if kind == "create" else _UPDATE_KEYS
    unknown = sorted(str(key) for key in operation if key not in allowed)
    missing = sorted(key for key in allowed - {"idempotency_key"} if key not in operation)
    if unknown or missing:
        name = f"{'an' if kind == 'update' else 'a'} {kind} operation"
        problems = [f"unknown key(s) in {name}: {unknown}"] if unknown else []
        problems += [f"missing key(s) in {name}: {missing}"] if missing else []
        return _invalid(InvalidBody("; ".join(problems)))
    fields = operation["fields"]
    if kind == "update":
        contact_id = operation["id"]
        if not isinstance(contact_id, str):
            return _invalid(InvalidBody(f"key 'id' must be a string, got {json_type(contact_id)}"))
        return update_one(store, contact_id, lambda: fields)
    key = operation.get("idempotency_key")
    if key is not None and not isinstance(key, str):
        return _invalid(
            InvalidBody(f"key 'idempotency_key' must be a string, got {json_type(key)}")
        )
    return create_one(store, fields, key)


def _find_values(body: object) -> tuple[str, list[str]]:
    """The one list of `POST /contacts/batch/find` and its name, or InvalidBody/BatchTooLarge."""
    if not isinstance(body, dict):
        raise InvalidBody(f"body must be a JSON object, got {json_type(body)}")
    unknown = sorted(str(key) for key in body if key not in _FIND_LISTS)
    if unknown:
        raise InvalidBody(f"unknown field(s): {unknown}")
    given = [name for name in _FIND_LISTS if name in body]
    if len(given) != 1:
        raise InvalidBody("send exactly one of 'emails' and 'auth0_user_ids'")
    name = given[0]
    values = batch_items(body, name, "values")
    for value in values:
        if not isinstance(value, str):
            raise InvalidBody(f"every value of '{name}' must be a string, got {json_type(value)}")
        if (problem := text_error(name, value)) is not None:
            raise InvalidBody(problem)
    return name, values


class ContactIdConverter(BaseConverter):
    """A contact id in a path: any segment but `batch`, so that `/contacts/batch` is the
    batch path alone (POST only: other methods get 405, OPTIONS advertises POST) instead of
    also reading as the contact "batch"."""

    regex = r"(?!batch(?:/|$))[^/]+"


def register_contact_routes(app: Flask, store: ContactStore, faults: Faults) -> None:
    """Serve the contract's contact paths from `store` (`faults` for the batch cut)."""
    app.url_map.converters["contact_id"] = ContactIdConverter

    @app.get(CONTACTS_PATH)
    def find_contacts() -> Response:
        # A limit outside its range is refused even where it has no effect (a lookup).
        limit = listing_limit()
        if isinstance(limit, Response):
            return limit
        email = request.args.get("email")
        auth0_user_id = request.args.get("auth0_user_id")
        if email is not None or auth0_user_id is not None:
            # A lookup answers every match: `limit` and `after` are ignored (the contract).
            return json_response(store.find(email=email, auth0_user_id=auth0_user_id))
        return json_response(store.page(after=request.args.get("after"), limit=limit))

    @app.post(CONTACTS_PATH)
    def create_contact() -> Response:
        return create_one(store, request_body(), request.headers.get(IDEMPOTENCY_HEADER)).response()

    @app.get(f"{CONTACTS_PATH}/<contact_id:contact_id>")
    def read_contact(contact_id: str) -> Response:
        return contact_response(store.read(contact_id))

    @app.patch(f"{CONTACTS_PATH}/<contact_id:contact_id>")
    def update_contact(contact_id: str) -> Response:
        if_match = request.headers.get(IF_MATCH_HEADER)
        return update_one(store, contact_id, request_body, if_match).response()

    @app.post(BATCH_PATH)
    def batch() -> Response:
        body = request_body()
        if isinstance(body, dict):
            unknown = sorted(str(key) for key in body if key != "operations")
            if unknown:
                raise InvalidBody(f"unknown field(s): {unknown}")
            if "operations" not in body:
                raise InvalidBody("missing required field(s): ['operations']")
        operations = batch_items(body, "operations", "operations")
        cut = faults.batch_cut
        if cut is not None and len(operations) > cut:
            for operation in operations[:cut]:
                run_operation(store, operation)
            return error_response(
                503,
                "unavailable",
                f"simulated failure in the middle of a batch: its first {cut} of "
                f"{len(operations)} operations were applied; resend it",
            )
        return json_response({"results": [run_operation(store, op).result() for op in operations]})

    @app.post(BATCH_FIND_PATH)
    def batch_find() -> Response:
        name, values = _find_values(request_body())
        if name == "emails":
            results = {value: store.find(email=value, auth0_user_id=None) for value in values}
        else:
            results = {value: store.find(email=None, auth0_user_id=value) for value in values}
        return json_response({"results": results})
