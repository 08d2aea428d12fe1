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

- guarded updates (`write_guarded_batch`): the Composite resource, up to 25 `PATCH
  .../sobjects/Contact/{Id}` subrequests, each with its own `If-Unmodified-Since` header
  (https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-
  composite-post.html: "You can also specify headers for each subrequest"; "The entire
  series of requests counts as a single call toward your API limits"), each ending as
  `update_guarded` does: 204 the contact, 404 None, 412 `ContactChanged`, an error list
  as the collections' SaveResult errors.

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
from auth0_sync.errors import (
    ContactChanged,
    ContactExists,
    CrmRejected,
    EmailTaken,
    TransientError,
)
from auth0_sync.privacy import redact, without_values

COLLECTIONS = API + "/composite/sobjects"
COMPOSITE = API + "/composite"
SUBREQUEST_LIMIT = 25  # subrequests per Composite request
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

    guarded_limit = SUBREQUEST_LIMIT

    def write_guarded_batch(self, writes: Sequence[BatchWrite]) -> list[BatchResult]:
        """Updates by record id, each applied only if its record is unmodified since its
        `version` (none: unconditionally): one Composite request per 25."""
        results: list[BatchResult] = [None] * len(writes)
        sendable = [n for n, w in enumerate(writes) if _RECORD_ID.fullmatch(str(w.contact_id))]
        for start in range(0, len(sendable), SUBREQUEST_LIMIT):
            chunk = sendable[start : start + SUBREQUEST_LIMIT]
            subrequests = []
            for n in chunk:
                write = writes[n]
                sub: dict[str, Any] = {
                    "method": "PATCH",
                    "url": f"{API}/sobjects/Contact/{write.contact_id}",
                    "referenceId": f"write{n}",
                    "body": to_record(write.fields),
                }
                if write.version:
                    sub["httpHeaders"] = {"If-Unmodified-Since": write.version}
                subrequests.append(sub)
            body = {"allOrNone": False, "compositeRequest": subrequests}
            # Resending is safe: each write is a PATCH of fields (idempotent), and a resent
            # one whose first attempt landed is refused (412): its record changed since.
            response = self.crm._call("POST", COMPOSITE, json=body)
            answer = json_body(response, "POST composite")
            answered = answer.get("compositeResponse") if isinstance(answer, dict) else None
            if not isinstance(answered, list) or len(answered) != len(chunk):
                raise TransientError(
                    "crm POST composite: not one response per subrequest", "crm_bad_answer"
                )
            date = response.headers.get("Date")
            for n, sub_answer in zip(chunk, answered, strict=True):
                results[n] = self._guarded_result(writes[n], sub_answer, date)
        return results

    def _guarded_result(self, write: BatchWrite, answer: Any, date: str | None) -> BatchResult:
        contact_id = str(write.contact_id)
        status = answer.get("httpStatusCode") if isinstance(answer, dict) else None
        if not isinstance(status, int):
            return TransientError(
                "crm POST composite: a subrequest has no status", "crm_bad_answer"
            )
        if 200 <= status < 300:
            self.crm._versions.note(contact_id, date)
            return {**dict(write.fields), "id": contact_id}
        if status == 404:
            return None
        if status == 412:
            self.crm._versions.note(contact_id, None)
            return ContactChanged("crm PATCH sobjects/Contact/{Id} (composite): HTTP 412")
        if status == 429 or status >= 500:
            return TransientError(
                f"crm PATCH sobjects/Contact/{{Id}} (composite): HTTP {status}", f"crm_{status}"
            )
        errors = answer.get("body")
        first = errors[0] if isinstance(errors, list) and errors else {}
        first = first if isinstance(first, dict) else {}
        saved = {
            "success": False,
            "errors": [
                {
                    "statusCode": first.get("errorCode") or f"HTTP_{status}",
                    "message": first.get("message") or "",
                    "fields": first.get("fields") or [],
                }
            ],
        }
        return self._result(write, (saved, date), creating=False)

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
