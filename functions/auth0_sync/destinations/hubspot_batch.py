"""HubSpot's CRM v3 contact batch endpoints (`Batching`), up to 100 inputs a request, each
request one call against the rolling window:

- reads: `POST /crm/v3/objects/contacts/batch/read` with `idProperty` `email` or the unique
  `auth0_user_id` (https://developers.hubspot.com/docs/api-reference/latest/crm/objects/
  objects/batch/get-objects); ids not found come back as a 207's OBJECT_NOT_FOUND error: no
  contact. Where `auth0_user_id` is not unique, each value is looked up as a single call does.
- creates: `.../batch/upsert` by `idProperty=auth0_user_id` where it is unique (https://
  developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts):
  a resent batch finds the contacts its first attempt made instead of making them twice, as
  the generic contract's idempotency key does; else `.../batch/create`, sent once (as a single
  create: a repeat meets 409 and the core links).
- updates: `.../batch/update` by record id, or by the unique `auth0_user_id` for a write
  that must reach the contact only while it carries its user (https://developers.hubspot.com/
  docs/api-reference/2026-03/crm/objects/contacts/batch/update-contacts.md: "by ID
  (contactId) or unique property value (idProperty)").

A record's failure is that record's: HubSpot fails a whole create batch on one taken email
(409 CONFLICT naming the first only: HubSpot/hubspot-api-python#51) or one invalid property
(400), so a batch refused with 400/409 is split in halves until the failing records stand
alone, and a record alone ends as its single call would (`ContactExists`, `EmailTaken`,
`CrmRejected`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from auth0_sync.destinations import OWNER_FIELD, BatchResult, BatchWrite, Contact
from auth0_sync.destinations.hubspot import (
    CONTACTS,
    FIELD_OF,
    PROPERTY_OF,
    HubSpotCrm,
    to_contact,
    to_properties,
)
from auth0_sync.destinations.transport import json_body
from auth0_sync.errors import ContactExists, CrmRejected, EmailTaken, TransientError

BATCH = CONTACTS + "/batch"
BATCH_LIMIT = 100  # HubSpot's inputs per batch request


class HubSpotBatches:
    """HubSpot's batch endpoints over a `HubSpotCrm` (same session, token, limits)."""

    batch_limit = BATCH_LIMIT

    def __init__(self, crm: HubSpotCrm) -> None:
        self.crm = crm

    def find_batch(self, field: str, values: Sequence[str]) -> dict[str, list[Contact]]:
        """Every value -> its contacts (none or one: both properties are unique)."""
        if field not in ("email", OWNER_FIELD):
            raise ValueError(f"find_batch looks up email or {OWNER_FIELD}, not {field!r}")
        unique = list(dict.fromkeys(values))
        if field == OWNER_FIELD and not self.crm.owner_unique:
            return {v: self.crm.find_contacts(auth0_user_id=v) for v in unique}
        prop = PROPERTY_OF[field]
        found: dict[str, list[Contact]] = {v: [] for v in unique}
        by_key = {v.strip().lower(): v for v in unique}
        for start in range(0, len(unique), BATCH_LIMIT):
            chunk = unique[start : start + BATCH_LIMIT]
            body = {
                "inputs": [{"id": v} for v in chunk],
                "properties": list(FIELD_OF),
                "idProperty": prop,
            }
            for record in self._results(self._post("/read", body), "/read"):
                key = str((record.get("properties") or {}).get(prop) or "").strip().lower()
                if key in by_key:
                    found[by_key[key]] = [to_contact(record)]
        return found

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchResult]:
        """Creates and updates, 100 a request; one result per write, in order."""
        results: list[BatchResult] = [None] * len(writes)
        creates = [n for n, w in enumerate(writes) if w.contact_id is None]
        updates = [n for n, w in enumerate(writes) if w.contact_id is not None]
        for group, send in ((creates, self._create), (updates, self._update)):
            for start in range(0, len(group), BATCH_LIMIT):
                chunk = group[start : start + BATCH_LIMIT]
                for n, result in zip(
                    chunk, self._split(send, [writes[n] for n in chunk]), strict=True
                ):
                    results[n] = result
        return results

    # One request, and the halves of a refused one ------------------------------------------

    def _split(self, send: Any, writes: list[BatchWrite]) -> list[BatchResult]:
        try:
            results: list[BatchResult] = send(writes)
            return results
        except CrmRejected as exc:
            if exc.status not in (400, 409):
                raise
            if len(writes) == 1:
                return [self._own_error(writes[0], exc)]
            half = len(writes) // 2
            return self._split(send, writes[:half]) + self._split(send, writes[half:])

    @staticmethod
    def _own_error(write: BatchWrite, exc: CrmRejected) -> Exception:
        if exc.status == 409:
            return (
                ContactExists(exc.message) if write.contact_id is None else EmailTaken(exc.message)
            )
        return exc

    def _create(self, writes: list[BatchWrite]) -> list[BatchResult]:
        owners = [str(w.fields.get(OWNER_FIELD) or "") for w in writes]
        if self.crm.owner_unique and all(owners):
            prop = PROPERTY_OF[OWNER_FIELD]
            inputs = [
                {"id": owner, "idProperty": prop, "properties": _create_properties(w.fields)}
                for owner, w in zip(owners, writes, strict=True)
            ]
            records = self._results(self._post("/upsert", {"inputs": inputs}), "/upsert")
            return _in_order(records, prop, owners)
        inputs = [{"properties": _create_properties(w.fields)} for w in writes]
        answer = self._post("/create", {"inputs": inputs}, repeatable=False)
        records = self._results(answer, "/create")
        if len(records) != len(writes):
            raise TransientError(
                f"crm POST {BATCH}/create: not one result per input", "crm_bad_answer"
            )
        # HubSpot does not promise the results' order: match each by its email.
        emails = [str(w.fields.get("email") or "").strip().lower() for w in writes]
        return _in_order(records, "email", emails)

    def _update(self, writes: list[BatchWrite]) -> list[BatchResult]:
        """By record id, or addressed by the owner (`idProperty=auth0_user_id`, as the
        single guarded write): a contact that no longer carries the owner is not found."""
        if any(w.owner for w in writes) and not self.crm.owner_unique:
            # Without unique values the single guarded write reads the contact first.
            return [
                self.crm.update_guarded(str(w.contact_id), w.fields, owner=w.owner, version=None)
                for w in writes
            ]
        inputs = []
        for w in writes:
            item: dict[str, Any] = {"properties": to_properties(w.fields)}
            if w.owner:
                item.update(id=w.owner, idProperty=PROPERTY_OF[OWNER_FIELD])
            else:
                item["id"] = str(w.contact_id)
            inputs.append(item)
        records = self._results(self._post("/update", {"inputs": inputs}), "/update")
        by_id = {str(r["id"]): to_contact(r) for r in records}
        # An id missing from the results is one HubSpot did not find (207 OBJECT_NOT_FOUND).
        return [by_id.get(str(w.contact_id)) for w in writes]

    def _post(self, action: str, body: Mapping[str, Any], *, repeatable: bool = True) -> Any:
        path = BATCH + action
        response = self.crm._send("POST", path, json=body, repeatable=repeatable)
        return json_body(response, "POST " + path)

    @staticmethod
    def _results(answer: Any, action: str) -> list[dict[str, Any]]:
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise TransientError(f"crm POST {BATCH}{action}: no results list", "crm_bad_answer")
        return [r for r in results if isinstance(r, dict) and "id" in r]


def _create_properties(fields: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in to_properties(fields).items() if v != ""}


def _in_order(records: list[dict[str, Any]], prop: str, keys: list[str]) -> list[BatchResult]:
    """The records in the order of `keys` (each matched by `prop`, case-insensitive)."""
    by_key = {
        str((r.get("properties") or {}).get(prop) or "").strip().lower(): to_contact(r)
        for r in records
    }
    out: list[BatchResult] = []
    for key in keys:
        contact = by_key.get(key.strip().lower())
        if contact is None:
            out.append(
                TransientError(f"crm POST {BATCH}: no result for an input", "crm_bad_answer")
            )
        else:
            out.append(contact)
    return out
