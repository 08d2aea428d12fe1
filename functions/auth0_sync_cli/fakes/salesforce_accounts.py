"""The fake Salesforce org's Accounts and AccountContactRelations, written from Salesforce's
public documentation:

- sObject Rows and upsert by external id (REST API Developer Guide, "Insert or Update
  (Upsert) a Record Using an External ID", https://developer.salesforce.com/docs/atlas.
  en-us.api_rest.meta/api_rest/dome_upsert.htm, and resources_sobject_upsert.htm):
  `GET`/`PATCH .../sobjects/Account/Auth0_Org_Id__c/{value}` (PATCH: 201 `{id, success,
  errors, created: true}` when it made the record, 200 with `created: false` when it
  updated it, 300 when several records carry the value; the external id in the body is
  refused), `GET`/`PATCH`/`DELETE .../sobjects/Account/{Id}` (PATCH and DELETE: 204; 404
  NOT_FOUND); Account's `Name` is required (REQUIRED_FIELD_MISSING), a unique external id
  (DUPLICATE_VALUE), the restricted picklist Auth0_Status__c, unknown fields INVALID_FIELD;
- AccountContactRelation (Object Reference, https://developer.salesforce.com/docs/atlas.
  en-us.object_reference.meta/object_reference/sforce_api_objects_accountcontactrelation.
  htm; field list: https://developer.salesforce.com/docs/platform/field-reference/
  references/field-reference/salesforce-field-reference-accountcontactrelation.html):
  `AccountId` and `ContactId` set on create and not updatable, `Roles` a multi-select
  picklist (values joined by ";"; not restricted, so any value is kept), `IsDirect`
  defaulted on create (false here), `IsActive`; create, query, update, delete. It exists
  only in an org with Contacts to Multiple Accounts enabled (`multiple_accounts`; else its
  routes answer 404 NOT_FOUND and a query on it INVALID_TYPE, the fake's reading).
- Contact's `AccountId` (a reference to an Account: INVALID_CROSS_REFERENCE_KEY when it
  names none).
Readings where the pages give no example: a second relation of the same pair is 400
DUPLICATE_VALUE, a relation naming a missing Account or Contact 400
INVALID_CROSS_REFERENCE_KEY. Not modelled: the direct relation Salesforce makes for a
Contact's AccountId, person accounts, Account hierarchies, deleting an Account.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

ACCOUNT_EXTERNAL_ID = "Auth0_Org_Id__c"
ACCOUNT_FIELDS = {  # name -> max length
    "Name": 255,
    ACCOUNT_EXTERNAL_ID: 255,
    "Auth0_Display_Name__c": 255,
    "Auth0_Status__c": 255,
}
ACCOUNT_PICKLIST = {"Auth0_Status__c": ("active", "deactivated")}
RELATION_FIELDS = ("AccountId", "ContactId", "Roles", "IsDirect", "IsActive")


class AccountStore:
    """The org's Accounts and AccountContactRelations (use under the fake's lock)."""

    def __init__(self, multiple_accounts: bool) -> None:
        self.multiple_accounts = multiple_accounts
        self.accounts: dict[str, dict[str, Any]] = {}
        self.relations: dict[str, dict[str, Any]] = {}
        self._account_ids = itertools.count(1)
        self._relation_ids = itertools.count(1)

    def reset(self) -> None:
        self.accounts.clear()
        self.relations.clear()

    def records_of(self, sobject: str) -> list[dict[str, Any]] | None:
        """The records a query on `sobject` reads; None: not an object of this org."""
        if sobject == "Account":
            return list(self.accounts.values())
        if sobject == "AccountContactRelation" and self.multiple_accounts:
            return list(self.relations.values())
        return None

    def fields_of(self, sobject: str) -> tuple[str, ...]:
        return tuple(ACCOUNT_FIELDS) if sobject == "Account" else RELATION_FIELDS


def add_account_routes(
    app: Flask,
    fake: Any,
    api: str,
    errors: Callable[..., Response],
    ok: Callable[..., Response],
) -> None:
    """Register the Account and AccountContactRelation routes on `app`."""
    store: AccountStore = fake.accounts_store

    def missing() -> Response:
        return errors(404, "NOT_FOUND", "The requested resource does not exist")

    def invalid_account(body: Any, *, creating: bool, own_id: str | None) -> Response | None:
        if not isinstance(body, dict):
            return errors(400, "JSON_PARSER_ERROR", "The request body is not a JSON object")
        for name, value in body.items():
            if name not in ACCOUNT_FIELDS:
                return errors(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type Account"
                )
            if value is not None and len(str(value)) > ACCOUNT_FIELDS[name]:
                return errors(400, "STRING_TOO_LONG", f"{name}: data value too large", [name])
            if name in ACCOUNT_PICKLIST and value not in ACCOUNT_PICKLIST[name]:
                return errors(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{name}: bad value for restricted picklist field: {value}",
                    [name],
                )
        if body.get("Name", ... if not creating else None) in (None, ""):
            return errors(
                400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ["Name"]
            )
        held = body.get(ACCOUNT_EXTERNAL_ID)
        for record in store.accounts.values():
            if held and record["Id"] != own_id and record.get(ACCOUNT_EXTERNAL_ID) == held:
                return errors(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {ACCOUNT_EXTERNAL_ID} duplicates value on record "
                    f"with id: {record['Id']}",
                    [ACCOUNT_EXTERNAL_ID],
                )
        return None

    def insert_account(fields: dict[str, Any]) -> str:
        new_id = f"001fk{next(store._account_ids):010d}AAA"
        store.accounts[new_id] = {"Id": new_id, **fields}
        return new_id

    def view(record: dict[str, Any], sobject: str, wanted: list[str]) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "attributes": {"type": sobject, "url": f"{api}/sobjects/{sobject}/{record['Id']}"}
        }
        for name in wanted:
            shown[name] = record.get(name)
        return shown

    def wanted_fields(sobject: str) -> list[str] | Response:
        wanted = [f.strip() for f in request.args.get("fields", "").split(",") if f.strip()]
        unknown = [f for f in wanted if f != "Id" and f not in store.fields_of(sobject)]
        if unknown:
            return errors(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on {sobject}")
        return wanted or ["Id", *store.fields_of(sobject)]

    @app.route(
        api + f"/sobjects/Account/{ACCOUNT_EXTERNAL_ID}/<path:value>", methods=["GET", "PATCH"]
    )
    def account_by_external_id(value: str) -> Response:
        with fake.lock:
            matches = [r for r in store.accounts.values() if r.get(ACCOUNT_EXTERNAL_ID) == value]
            if len(matches) > 1:
                return ok([f"{api}/sobjects/Account/{r['Id']}" for r in matches], 300)
            if request.method == "GET":
                if not matches:
                    return missing()
                wanted = wanted_fields("Account")
                if isinstance(wanted, Response):
                    return wanted
                return ok(view(matches[0], "Account", wanted))
            body: Any = request.get_json(silent=True)
            if isinstance(body, dict) and ACCOUNT_EXTERNAL_ID in body:
                return errors(
                    400, "INVALID_FIELD", f"{ACCOUNT_EXTERNAL_ID} is the external id in the URL"
                )
            if not matches:
                problem = invalid_account(body, creating=True, own_id=None)
                if problem is not None:
                    return problem
                new_id = insert_account({**body, ACCOUNT_EXTERNAL_ID: value})
                return ok({"id": new_id, "success": True, "errors": [], "created": True}, 201)
            record = matches[0]
            problem = invalid_account(body, creating=False, own_id=record["Id"])
            if problem is not None:
                return problem
            record.update(body)
            return ok({"id": record["Id"], "success": True, "errors": [], "created": False})

    def read_or_delete(
        table: dict[str, dict[str, Any]], record_id: str, sobject: str
    ) -> Response | None:
        """A GET or a DELETE of a record that exists (under the lock); None for a PATCH."""
        if request.method == "GET":
            wanted = wanted_fields(sobject)
            if isinstance(wanted, Response):
                return wanted
            return ok(view(table[record_id], sobject, wanted))
        if request.method == "DELETE":
            del table[record_id]
            return Response(status=204)
        return None

    @app.route(api + "/sobjects/Account/<record_id>", methods=["GET", "PATCH", "DELETE"])
    def account_by_id(record_id: str) -> Response:
        with fake.lock:
            record = store.accounts.get(record_id)
            if record is None:
                return missing()
            answer = read_or_delete(store.accounts, record_id, "Account")
            if answer is not None:
                return answer
            body: Any = request.get_json(silent=True)
            problem = invalid_account(body, creating=False, own_id=record_id)
            if problem is not None:
                return problem
            record.update(body)
        return Response(status=204)

    def bad_reference(body: dict[str, Any]) -> Response | None:
        if body.get("AccountId") not in store.accounts:
            return errors(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                ["AccountId"],
            )
        if body.get("ContactId") not in fake.records:
            return errors(
                400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["ContactId"]
            )
        return None

    @app.post(api + "/sobjects/AccountContactRelation")
    def create_relation() -> Response:
        body: Any = request.get_json(silent=True)
        with fake.lock:
            if not store.multiple_accounts:
                return missing()
            if not isinstance(body, dict):
                return errors(400, "JSON_PARSER_ERROR", "The request body is not a JSON object")
            unknown = [k for k in body if k not in RELATION_FIELDS or k == "IsDirect"]
            if unknown:
                return errors(400, "INVALID_FIELD_FOR_INSERT_UPDATE", f"{unknown[0]}", unknown)
            problem = bad_reference(body)
            if problem is not None:
                return problem
            for record in store.relations.values():
                same = (record["AccountId"], record["ContactId"])
                if same == (body["AccountId"], body["ContactId"]):
                    return errors(
                        400,
                        "DUPLICATE_VALUE",
                        f"duplicate value found: duplicates value on record with id: "
                        f"{record['Id']}",
                    )
            new_id = f"07kfk{next(store._relation_ids):010d}AAA"
            store.relations[new_id] = {
                "Id": new_id,
                "Roles": None,
                "IsActive": True,
                **body,
                "IsDirect": False,
            }
        return ok({"id": new_id, "success": True, "errors": []}, 201)

    @app.route(
        api + "/sobjects/AccountContactRelation/<record_id>", methods=["GET", "PATCH", "DELETE"]
    )
    def relation_by_id(record_id: str) -> Response:
        with fake.lock:
            record = store.relations.get(record_id) if store.multiple_accounts else None
            if record is None:
                return missing()
            answer = read_or_delete(store.relations, record_id, "AccountContactRelation")
            if answer is not None:
                return answer
            body: Any = request.get_json(silent=True)
            if not isinstance(body, dict):
                return errors(400, "JSON_PARSER_ERROR", "The request body is not a JSON object")
            fixed = [k for k in body if k not in ("Roles", "IsActive")]
            if fixed:
                return errors(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {', '.join(fixed)}",
                    fixed,
                )
            record.update(body)
        return Response(status=204)
