"""The fake HubSpot's CRM v3 contact batch endpoints, written from HubSpot's reference:

- `POST /crm/v3/objects/contacts/batch/read` (body `inputs` [{id}], `properties`,
  optional `idProperty`: "Retrieve a batch of ... by ID or unique property value",
  https://developers.hubspot.com/docs/api-reference/latest/crm/objects/objects/batch/get-objects);
- `.../batch/create` (`inputs` [{properties}]),
  https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/create-contacts;
- `.../batch/update` (`inputs` [{id, properties, idProperty?}]: "Update a batch of contacts by
  ID (contactId) or unique property value (idProperty) ... Properties values can be cleared by
  passing an empty string"),
  https://developers.hubspot.com/docs/api-reference/2026-03/crm/objects/contacts/batch/update-contacts.md;
- `.../batch/upsert` (`inputs` [{id, idProperty, properties}], results carry `new`),
  https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts.

Answers are the documented `BatchResponse`: `status` COMPLETE, `results`, `startedAt`,
`completedAt`, and with a partial failure HTTP 207 with `numErrors` and `errors`
({status, category, message, context}). Modelled: at most 100 inputs a batch (400
VALIDATION_ERROR beyond, as the pages' "up to 100" says); a batch counts once against the
rolling window; ids not found in a read (and an update) are 207 errors OBJECT_NOT_FOUND with
`context.ids`; a create (or upsert) whose email another contact holds, or two inputs with one
email, fail the whole batch with 409 CONFLICT "Contact already exists. Existing ID: N" naming
the first only, and nothing is written (HubSpot/hubspot-api-python#51; Joystream/youtube-synch
#355); an invalid property fails the whole batch with 400 VALIDATION_ERROR (the single call's
rule, "follows the same rules as creating an individual object"). Whether a missing id in an
update is a 207 error or fails the whole batch is not documented: 207 here, and the adapter
copes with both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

if TYPE_CHECKING:
    from auth0_sync_cli.fakes.hubspot import FakeHubSpot

BATCH = "/crm/v3/objects/contacts/batch"
BATCH_LIMIT = 100
NOT_FOUND = (
    "Could not get some CONTACT objects, they may be deleted or not exist. "
    "Check that ids are valid."
)


def add_batch_routes(
    app: Flask,
    fake: FakeHubSpot,
    error: Callable[..., Response],
    ok: Callable[..., Response],
    now: Callable[[], str],
) -> None:
    """Serve the four batch endpoints on `app` over `fake`'s records."""

    def inputs_of(body: Any) -> list[dict[str, Any]] | Response:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            return error(400, "VALIDATION_ERROR", "Invalid input JSON: inputs")
        if len(inputs) > BATCH_LIMIT:
            return error(
                400, "VALIDATION_ERROR", f"Batch size must be at most {BATCH_LIMIT} inputs"
            )
        return inputs

    def answer(results: list[dict[str, Any]], missing: list[str], status: int) -> Response:
        started = now()
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": now(),
        }
        if missing:
            body["numErrors"] = 1
            body["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": NOT_FOUND,
                    "context": {"ids": missing},
                }
            ]
            status = 207
        return ok(body, status)

    def conflict_among(batch: list[dict[str, Any]]) -> Response | None:
        """409 for the first email another contact (or an earlier input) holds."""
        seen: dict[str, str] = {}
        for n, properties in enumerate(batch):
            email = str(properties.get("email") or "").strip().lower()
            if not email:
                continue
            holder = fake._holder(email)
            if holder is None and email in seen:
                holder = seen[email]
            if holder is not None:
                return error(409, "CONFLICT", f"Contact already exists. Existing ID: {holder}")
            seen[email] = f"(input {n})"
        return None

    @app.post(BATCH + "/read")
    def batch_read() -> Response:
        body = request.get_json(silent=True) or {}
        inputs = inputs_of(body)
        if isinstance(inputs, Response):
            return inputs
        id_property = body.get("idProperty")
        wanted = [str(p) for p in body.get("properties") or []]
        with fake.lock:
            refused = fake._not_unique(id_property)
            if refused is not None:
                return refused
            results, missing = [], []
            for item in inputs:
                record = fake._find(str(item.get("id", "")), id_property)
                if record is None:
                    missing.append(str(item.get("id", "")))
                else:
                    results.append(fake._view(record, wanted))
        return answer(results, missing, 200)

    @app.post(BATCH + "/create")
    def batch_create() -> Response:
        inputs = inputs_of(request.get_json(silent=True) or {})
        if isinstance(inputs, Response):
            return inputs
        batch: list[dict[str, Any]] = []
        for item in inputs:
            properties = item.get("properties")
            if not isinstance(properties, dict):
                return error(400, "VALIDATION_ERROR", "Invalid input JSON: properties")
            batch.append(properties)
        with fake.lock:
            for properties in batch:
                problem = fake._invalid(properties) or fake._unique_taken(properties, None)
                if problem is not None:
                    return problem
            taken = conflict_among(batch)
            if taken is not None:
                return taken
            ids = [fake._insert(properties) for properties in batch]
            results = [
                fake._view(fake.records[i], list(p)) for i, p in zip(ids, batch, strict=True)
            ]
        return answer(results, [], 201)

    @app.post(BATCH + "/update")
    def batch_update() -> Response:
        inputs = inputs_of(request.get_json(silent=True) or {})
        if isinstance(inputs, Response):
            return inputs
        with fake.lock:
            found: list[tuple[dict[str, Any], dict[str, Any]]] = []
            missing = []
            for item in inputs:
                properties = item.get("properties")
                if not isinstance(properties, dict):
                    return error(400, "VALIDATION_ERROR", "Invalid input JSON: properties")
                refused = fake._not_unique(item.get("idProperty"))
                if refused is not None:
                    return refused
                record = fake._find(str(item.get("id", "")), item.get("idProperty"))
                if record is None:
                    missing.append(str(item.get("id", "")))
                    continue
                problem = fake._invalid(properties)
                holder = fake._holder(properties.get("email"))
                if problem is None and holder is not None and holder != record["id"]:
                    problem = error(
                        409, "CONFLICT", f"Contact already exists. Existing ID: {holder}"
                    )
                problem = problem or fake._unique_taken(properties, record["id"])
                if problem is not None:
                    return problem
                found.append((record, properties))
            for record, properties in found:
                fake._write(record, properties)
            results = [fake._view(record, list(properties)) for record, properties in found]
        return answer(results, missing, 200)

    @app.post(BATCH + "/upsert")
    def batch_upsert() -> Response:
        inputs = inputs_of(request.get_json(silent=True) or {})
        if isinstance(inputs, Response):
            return inputs
        with fake.lock:
            plan: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
            for item in inputs:
                properties = item.get("properties")
                id_property = item.get("idProperty")
                if not isinstance(properties, dict) or not id_property:
                    return error(400, "VALIDATION_ERROR", "Invalid input JSON: idProperty")
                refused = fake._not_unique(id_property)
                if refused is not None:
                    return refused
                record = fake._find(str(item.get("id", "")), id_property)
                # A new record takes the key it was looked up by.
                properties = {**properties, id_property: str(item.get("id", ""))}
                problem = fake._invalid(properties) or fake._unique_taken(
                    properties, record["id"] if record else None
                )
                if problem is not None:
                    return problem
                plan.append((record, properties))
            fresh = [p for record, p in plan if record is None]
            taken = conflict_among(fresh)
            for record, properties in plan:
                holder = fake._holder(properties.get("email"))
                if record is not None and holder is not None and holder != record["id"]:
                    taken = taken or error(
                        409, "CONFLICT", f"Contact already exists. Existing ID: {holder}"
                    )
            if taken is not None:
                return taken
            results = []
            for record, properties in plan:
                new = record is None
                if record is None:
                    record = fake.records[fake._insert(properties)]
                else:
                    fake._write(record, properties)
                results.append({**fake._view(record, list(properties)), "new": new})
        return answer(results, [], 200)
