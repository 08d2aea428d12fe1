"""Salesforce's sObject Collections for Contact (`Batching`): up to 200 records a request,
`allOrNone=false` so each record succeeds or fails alone, one API call each against the
org's allowance.

- reads: one SOQL query per 100 values (`WHERE Email = '..' OR Email = '..'`, values
  escaped), as `find_contacts` does for one; the answer's `Date` is kept as the version of
  each record it read (as a GET's is), so a write based on it needs no second read;
- creates: `PATCH .../composite/sobjects/Contact/Auth0_User_Id__c` (upsert on the external
  id, https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
  resources_composite_sobjects_collections_upsert.htm), as the single create upserts: a
  resent collection finds the contacts its first attempt made; without an owner,
  `POST .../composite/sobjects` (https://developer.salesforce.com/docs/platform/api-rest/
  guide/resources-composite-sobjects-collections-create.html), sent once;
- updates: `PATCH .../composite/sobjects` by record id (resources_composite_sobjects_
  collections_update.htm).

Each SaveResult maps to what the single call ends with: success is the contact; a
duplicate email (DUPLICATES_DETECTED, DUPLICATE_VALUE on Email) is `ContactExists` for a
create and `EmailTaken` for an update; an update of a record that is gone
(ENTITY_IS_DELETED, INVALID_CROSS_REFERENCE_KEY, NOT_FOUND) is None; a row lock or the
allowance is transient; any other code is `CrmRejected` with the code in the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from auth0_sync.destinations import OWNER_FIELD, BatchResult, BatchWrite, Contact
from auth0_sync.destinations.salesforce import (
    _RECORD_ID,
    API,
    EXTERNAL_ID,
    SELECT,
    SF_FIELD,
    TRANSIENT_CODES,
    SalesforceCrm,
    soql_literal,
    to_contact,
    to_record,
)
from auth0_sync.destinations.transport import json_body
from auth0_sync.errors import ContactExists, CrmRejected, EmailTaken, TransientError
from auth0_sync.privacy import redact, without_values

COLLECTIONS = API + "/composite/sobjects"
COLLECTION_LIMIT = 200  # records per sObject Collections request
FIND_LIMIT = 100  # values per SOQL query (keeps the query string short)
GONE = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND"})


class SalesforceBatches:
    """sObject Collections over a `SalesforceCrm` (same token, session, allowance)."""

    batch_limit = COLLECTION_LIMIT

    def __init__(self, crm: SalesforceCrm) -> None:
        self.crm = crm

    def find_batch(self, field: str, values: Sequence[str]) -> dict[str, list[Contact]]:
        if field not in ("email", OWNER_FIELD):
            raise ValueError(f"find_batch looks up email or {OWNER_FIELD}, not {field!r}")
        column = SF_FIELD[field]
        unique = list(dict.fromkeys(values))
        found: dict[str, list[Contact]] = {v: [] for v in unique}
        by_key: dict[str, list[str]] = {}
        for value in unique:
            by_key.setdefault(value.strip().lower(), []).append(value)
        for start in range(0, len(unique), FIND_LIMIT):
            chunk = unique[start : start + FIND_LIMIT]
            where = " OR ".join(f"{column} = {soql_literal(v)}" for v in chunk)
            query = f"{SELECT} WHERE {where} LIMIT {10 * len(chunk)}"
            response = self.crm._call("GET", f"{API}/query", params={"q": query})
            answer = json_body(response, "query")
            date = response.headers.get("Date")
            records = answer.get("records") if isinstance(answer, dict) else None
            if not isinstance(records, list):
                raise TransientError("crm GET query: the answer has no records", "crm_bad_answer")
            for record in records:
                if not isinstance(record, dict) or "Id" not in record:
                    continue
                key = str(record.get(column) or "").strip().lower()
                # The answer's Date is the version of what it read, as a GET's is: a write
                # based on it is refused if the record changed since (to the second).
                self.crm._versions.note(str(record["Id"]), date)
                for value in by_key.get(key, []):
                    found[value].append(to_contact(record))
        return found

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchResult]:
        results: list[BatchResult] = [None] * len(writes)
        creates = [n for n, w in enumerate(writes) if w.contact_id is None]
        updates = [n for n, w in enumerate(writes) if w.contact_id is not None]
        for group, send in ((creates, self._create), (updates, self._update)):
            for start in range(0, len(group), COLLECTION_LIMIT):
                chunk = group[start : start + COLLECTION_LIMIT]
                answered = send([writes[n] for n in chunk])
                for n, result in zip(chunk, answered, strict=True):
                    results[n] = result
        return results

    def _create(self, writes: list[BatchWrite]) -> list[BatchResult]:
        owned = all(w.fields.get(OWNER_FIELD) for w in writes)
        records = [
            {"attributes": {"type": "Contact"}, **to_record({"family_name": None, **w.fields})}
            for w in writes
        ]
        if owned:
            path = f"{COLLECTIONS}/Contact/{quote(EXTERNAL_ID, safe='')}"
            saved = self._send("PATCH", path, records, repeatable=True)
        else:
            saved = self._send("POST", COLLECTIONS, records, repeatable=False)
        return [self._result(w, r, creating=True) for w, r in zip(writes, saved, strict=True)]

    def _update(self, writes: list[BatchWrite]) -> list[BatchResult]:
        sendable = [w for w in writes if _RECORD_ID.fullmatch(str(w.contact_id))]
        records = [
            {"attributes": {"type": "Contact"}, "id": str(w.contact_id), **to_record(w.fields)}
            for w in sendable
        ]
        saved = iter(self._send("PATCH", COLLECTIONS, records) if records else [])
        # An id that is nobody's (not 15/18 letters and digits) is never sent: gone, as
        # the single update answers.
        return [
            self._result(w, next(saved), creating=False) if w in sendable else None for w in writes
        ]

    def _send(
        self, method: str, path: str, records: list[dict[str, Any]], *, repeatable: bool = True
    ) -> list[tuple[Any, str | None]]:
        body = {"allOrNone": False, "records": records}
        response = self.crm._call(method, path, json=body, repeatable=repeatable)
        saved = json_body(response, f"{method} composite/sobjects")
        if not isinstance(saved, list) or len(saved) != len(records):
            raise TransientError(
                f"crm {method} composite/sobjects: not one result per record", "crm_bad_answer"
            )
        date = response.headers.get("Date")
        return [(result, date) for result in saved]

    def _result(
        self, write: BatchWrite, answer: tuple[Any, str | None], *, creating: bool
    ) -> BatchResult:
        saved, date = answer
        what = f"crm composite/sobjects record ({'create' if creating else 'update'})"
        if not isinstance(saved, dict):
            return TransientError(f"{what}: not a SaveResult", "crm_bad_answer")
        if saved.get("success") and saved.get("id"):
            record_id = str(saved["id"])
            self.crm._versions.note(record_id, date)
            return {**dict(write.fields), "id": record_id}
        errors = saved.get("errors") or [{}]
        first = errors[0] if isinstance(errors[0], dict) else {}
        code = str(first.get("statusCode") or first.get("errorCode") or "")
        fields = first.get("fields") or []
        sent = [v for v in write.fields.values() if v]
        detail = redact(without_values(str(first.get("message") or ""), sent))
        message = f"{what}: {code}: {detail}" + (f" (fields {fields})" if fields else "")
        on_email = code == "DUPLICATES_DETECTED" or (
            code == "DUPLICATE_VALUE" and ("Email" in fields or "Email" in detail)
        )
        if on_email:
            return ContactExists(message) if creating else EmailTaken(message)
        if not creating and code in GONE:
            return None
        reason = f"salesforce_{code.lower()}" if code.replace("_", "").isalnum() else None
        if code in TRANSIENT_CODES:
            return TransientError(message, reason or "crm_bad_answer")
        return CrmRejected(400, message, reason)
