"""The fake Salesforce org's sObject Collections for Contact, written from the REST API
Developer Guide:

- create: `POST /services/data/vXX.X/composite/sobjects` ("add up to 200 records, returning
  a list of SaveResult objects ... Objects are created in the order they're listed. The
  SaveResult objects are returned in the order in which the create requests were
  specified", https://developer.salesforce.com/docs/platform/api-rest/guide/
  resources-composite-sobjects-collections-create.html);
- update: `PATCH .../composite/sobjects` (each record with its `id`; resources_composite_
  sobjects_collections_update.htm);
- upsert: `PATCH .../composite/sobjects/Contact/{ExternalIdField}` (each record with the
  external id field; results carry `created`; resources_composite_sobjects_collections_
  upsert.htm).

Body `{allOrNone, records}`, each record with `attributes.type`; the answer is 200 with one
SaveResult `{id, success, errors: [{statusCode, message, fields}]}` per record, in order, and
400 for a request that is not well formed. `allOrNone` true rolls every record back when one
fails (the others' results then say ALL_OR_NONE_OPERATION_ROLLED_BACK); false (the
default) lets each record succeed or fail alone. A record fails as its single call would
(the same checks: REQUIRED_FIELD_MISSING, DUPLICATES_DETECTED, DUPLICATE_VALUE, ...); an
update of a deleted record is ENTITY_IS_DELETED and of an unknown id
INVALID_CROSS_REFERENCE_KEY (the fake's choice of the documented codes). More than 200
records: 400 EXCEEDED_ID_LIMIT. A collection is one API call against the daily allowance.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

if TYPE_CHECKING:
    from auth0_sync_cli.fakes.salesforce import FakeSalesforce

COLLECTION_LIMIT = 200


def add_collection_routes(
    app: Flask,
    fake: FakeSalesforce,
    api: str,
    external_id: str,
    errors: Callable[..., Response],
    ok: Callable[..., Response],
) -> None:
    """Serve the Contact collections (create, update, upsert by the external id)."""

    def records_of(body: Any) -> list[dict[str, Any]] | Response:
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return errors(400, "JSON_PARSER_ERROR", "records must be a list of sObjects")
        if len(records) > COLLECTION_LIMIT:
            return errors(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records "
                "into this call",
            )
        return records

    def failure(response: Response) -> dict[str, Any]:
        body = response.get_json()
        first = body[0] if isinstance(body, list) and body else {}
        error = {"statusCode": first.get("errorCode"), "message": first.get("message")}
        error["fields"] = first.get("fields") or []
        return {"success": False, "errors": [error]}

    def failed(code: str, message: str) -> dict[str, Any]:
        return {
            "success": False,
            "errors": [{"statusCode": code, "message": message, "fields": []}],
        }

    def run(body: Any, one: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
        records = records_of(body)
        if isinstance(records, Response):
            return records
        all_or_none = bool(body.get("allOrNone", False))
        with fake.lock:
            saved = (copy.deepcopy(fake.records), dict(fake.modified))
            results = []
            for record in records:
                if (record.get("attributes") or {}).get("type") != "Contact":
                    results.append(failed("INVALID_TYPE", "attributes.type must be Contact"))
                    continue
                fields = {k: v for k, v in record.items() if k not in ("attributes", "id")}
                results.append(one({**fields, "id": record.get("id")}))
            if all_or_none and not all(r["success"] for r in results):
                fake.records, fake.modified = saved
                results = [
                    r
                    if not r["success"]
                    else failed("ALL_OR_NONE_OPERATION_ROLLED_BACK", "rolled back")
                    for r in results
                ]
        return ok(results)

    def create_one(record: dict[str, Any]) -> dict[str, Any]:
        record.pop("id", None)
        problem = fake._invalid(record, creating=True, own_id=None)
        if problem is not None:
            return failure(problem)
        return {"id": fake._insert(record), "success": True, "errors": []}

    def update_one(record: dict[str, Any]) -> dict[str, Any]:
        record_id = str(record.pop("id", "") or "")
        if record_id not in fake.records:
            if record_id in fake.deleted:
                return failed("ENTITY_IS_DELETED", "entity is deleted")
            return failed("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        problem = fake._invalid(record, creating=False, own_id=record_id)
        if problem is not None:
            return failure(problem)
        fake.records[record_id].update(record)
        fake._touch(record_id)
        return {"id": record_id, "success": True, "errors": []}

    def upsert_one(record: dict[str, Any]) -> dict[str, Any]:
        record.pop("id", None)
        value = record.get(external_id)
        if not value:
            return failed("MISSING_ARGUMENT", f"{external_id} not specified")
        matches = [r for r in fake.holding(external_id, value) if r.get(external_id) == value]
        if len(matches) > 1:
            return failed("DUPLICATE_EXTERNAL_ID", f"{external_id}: more than one record found")
        if not matches:
            created = create_one(record)
            return {**created, "created": True} if created["success"] else created
        own = matches[0]["Id"]
        problem = fake._invalid(record, creating=False, own_id=own)
        if problem is not None:
            return failure(problem)
        fake.records[own].update(record)
        fake._touch(own)
        return {"id": own, "success": True, "errors": [], "created": False}

    @app.post(api + "/composite/sobjects")
    def collection_create() -> Response:
        return run(request.get_json(silent=True), create_one)

    @app.patch(api + "/composite/sobjects")
    def collection_update() -> Response:
        return run(request.get_json(silent=True), update_one)

    @app.patch(api + "/composite/sobjects/Contact/<field>")
    def collection_upsert(field: str) -> Response:
        if field != external_id:
            return errors(400, "INVALID_FIELD", f"{field} is not an external id field")
        return run(request.get_json(silent=True), upsert_one)
