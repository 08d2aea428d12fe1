"""Batch calls of the generic contract 1.2: `POST /contacts/batch` (up to 100 creates and
updates) and `POST /contacts/batch/find` (up to 100 emails or Auth0 user ids).

Each operation ends as its single call would (`RestCrmClient`'s create/update): 201/200
is the contact, an update's 404 is None, 409 is `ContactExists` (create) or `EmailTaken`
(update), any other status `CrmRejected`: that record's failure, never the batch's. The
whole answer may be 429/5xx like any request: the shared transport retries it, which is
safe because every create carries its idempotency key and updates are idempotent; a
failure that remains is raised for the whole batch, as for one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auth0_sync.destinations import BatchResult, BatchWrite, Contact
from auth0_sync.destinations.rest import RestCrmClient, _names_a_taken_email
from auth0_sync.destinations.transport import json_body
from auth0_sync.errors import ContactExists, CrmRejected, EmailTaken, TransientError
from auth0_sync.privacy import redact

BATCH_PATH = "/contacts/batch"
FIND_PATH = "/contacts/batch/find"
BATCH_LIMIT = 100  # the contract's most operations (or values) per batch
FIND_KEYS = {"email": "emails", "auth0_user_id": "auth0_user_ids"}


class RestBatches:
    """Contract 1.2's batch calls (`Batching`) over a `RestCrmClient`: the same session,
    token, retry policy, circuit breaker and call count."""

    batch_limit = BATCH_LIMIT

    def __init__(self, client: RestCrmClient) -> None:
        self.client = client

    def find_batch(self, field: str, values: Sequence[str]) -> dict[str, list[Contact]]:
        """`POST /contacts/batch/find`: every value -> its contacts (possibly none)."""
        if field not in FIND_KEYS:
            raise ValueError(f"find_batch looks up {sorted(FIND_KEYS)}, not {field!r}")
        found: dict[str, list[Contact]] = {}
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), BATCH_LIMIT):
            chunk = unique[start : start + BATCH_LIMIT]
            what = "POST " + FIND_PATH
            answer = json_body(
                self.client._send("POST", FIND_PATH, json={FIND_KEYS[field]: chunk}, sent=chunk),
                what,
            )
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, dict):
                raise TransientError(f"crm {what}: no results object", "crm_bad_answer")
            for value in chunk:
                contacts = results.get(value)
                if not isinstance(contacts, list):
                    raise TransientError(f"crm {what}: a value has no answer", "crm_bad_answer")
                found[value] = [
                    {**c, "id": str(c["id"])} for c in contacts if isinstance(c, dict) and "id" in c
                ]
        return found

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchResult]:
        """`POST /contacts/batch`, 100 operations a request: one result per write."""
        results: list[BatchResult] = []
        for start in range(0, len(writes), BATCH_LIMIT):
            chunk = writes[start : start + BATCH_LIMIT]
            operations = [_operation(write) for write in chunk]
            what = "POST " + BATCH_PATH
            # Safe to resend when every create carries its key (updates are idempotent).
            repeatable = all(w.contact_id is not None or w.idempotency_key for w in chunk)
            response = self._send_batch({"operations": operations}, repeatable)
            answer = json_body(response, what)
            answered = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(answered, list) or len(answered) != len(chunk):
                raise TransientError(f"crm {what}: not one result per operation", "crm_bad_answer")
            results.extend(
                self._result(write, result, n)
                for n, (write, result) in enumerate(zip(chunk, answered, strict=True), start)
            )
        return results

    def _send_batch(self, body: dict[str, Any], repeatable: bool) -> Any:
        # The client's own request: a 401 reads the token again, and a refusal masks every
        # value the operations carried.
        sent = [v for op in body["operations"] for v in op["fields"].values()]
        return self.client._send("POST", BATCH_PATH, json=body, repeatable=repeatable, sent=sent)

    def _result(self, write: BatchWrite, result: Any, n: int) -> BatchResult:
        create = write.contact_id is None
        what = f"crm POST {BATCH_PATH} operation {n} ({'create' if create else 'update'})"
        if not isinstance(result, dict) or not isinstance(result.get("status"), int):
            return TransientError(f"{what}: the result has no status", "crm_bad_answer")
        status = int(result["status"])
        if status in (200, 201):
            contact = result.get("contact")
            if not isinstance(contact, dict) or not isinstance(contact.get("id"), str | int):
                return TransientError(f"{what}: the result is not a contact", "crm_bad_answer")
            contact = {**contact, "id": str(contact["id"])}
            # A batch answer carries no ETag: the next guarded write reads the contact first.
            self.client._versions.note(contact["id"], None)
            return contact
        if status == 404 and not create:
            return None
        error = result.get("error")
        detail = ""
        if isinstance(error, dict):
            detail = str(error.get("message") or error.get("error") or "")
        message = f"{what}: HTTP {status}" + (f": {redact(detail)}" if detail else "")
        if status == 409:
            return ContactExists(message) if create else EmailTaken(message)
        if status == 422 and not create and _names_a_taken_email(detail):
            return EmailTaken(message)
        return CrmRejected(status, message)


def _operation(write: BatchWrite) -> dict[str, Any]:
    if write.contact_id is None:
        operation: dict[str, Any] = {"op": "create", "fields": dict(write.fields)}
        if write.idempotency_key:
            operation["idempotency_key"] = write.idempotency_key
        return operation
    return {"op": "update", "id": str(write.contact_id), "fields": dict(write.fields)}
