"""Salesforce Accounts and their contacts: the organization sync's `Companies` over the
REST API, through the contacts adapter's session, transport and error mapping.

Generic company <-> Account: `auth0_org_id`->`Auth0_Org_Id__c` (Text, External ID,
Unique), `name`->`Name`, `display_name`->`Auth0_Display_Name__c` (Text),
`status`->`Auth0_Status__c` (Picklist `active`/`deactivated`, the field Contact has too);
`source_updated_at` is not written (Salesforce keeps LastModifiedDate).

Calls (REST API Developer Guide, "Insert or Update (Upsert) a Record Using an External
ID" and "Retrieve a Record Using an External ID", https://developer.salesforce.com/docs/
atlas.en-us.api_rest.meta/api_rest/dome_upsert.htm, resources_sobject_upsert.htm): find
with `GET .../sobjects/Account/Auth0_Org_Id__c/{org_id}` (404: none, 300: several); create
by upserting on the external id (`PATCH .../sobjects/Account/Auth0_Org_Id__c/{org_id}`:
201 created, 200 updated), which makes a repeated create safe; update by record id
(`PATCH .../sobjects/Account/{Id}`). An Account has no active flag: an organization's
delete writes `Auth0_Status__c = deactivated` and removes its contacts' relations (the
Account and its history stay).

Memberships depend on the org's "Contacts to Multiple Accounts" setting
(`SALESFORCE_CONTACTS_TO_MULTIPLE_ACCOUNTS`):
- enabled: one `AccountContactRelation` per membership (Object Reference,
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
  sforce_api_objects_accountcontactrelation.htm), found with SOQL on AccountId and
  ContactId, created with `POST .../sobjects/AccountContactRelation`, its `Roles`
  (multi-select picklist: values joined by ";") patched, deleted at the membership's end.
  A direct relation (the contact's own AccountId, `IsDirect`) cannot be deleted: its Roles
  are cleared instead;
- disabled: a contact has one Account, its `AccountId`: a membership sets it when it is
  empty (the contact's first organization) and clears it at its end; a membership of a
  second organization is not written, and roles are not kept (Contact has no field for
  them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from auth0_sync.destinations.companies import COMPANY_ORG_ID_FIELD, Company
from auth0_sync.destinations.salesforce import _RECORD_ID, API, SalesforceCrm, soql_literal
from auth0_sync.destinations.transport import json_body
from auth0_sync.errors import AmbiguousMatch, CrmRejected, TransientError

ACCOUNT_EXTERNAL_ID = "Auth0_Org_Id__c"
ACCOUNTS = f"{API}/sobjects/Account"
RELATIONS = f"{API}/sobjects/AccountContactRelation"
CONTACTS = f"{API}/sobjects/Contact"

# Generic company field -> Account field.
ACCOUNT_FIELD: dict[str, str] = {
    COMPANY_ORG_ID_FIELD: ACCOUNT_EXTERNAL_ID,
    "name": "Name",
    "display_name": "Auth0_Display_Name__c",
    "status": "Auth0_Status__c",
}
COMPANY_FIELD = {sf: name for name, sf in ACCOUNT_FIELD.items()}
# A relation or a contact that is not (any more) there: the membership cannot be written.
GONE_CODES = frozenset({"salesforce_invalid_cross_reference_key", "salesforce_entity_is_deleted"})


def to_account(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Generic company fields -> Account fields ("" is null)."""
    return {
        ACCOUNT_FIELD[name]: None if value == "" else value
        for name, value in fields.items()
        if name in ACCOUNT_FIELD
    }


def roles_value(roles: Sequence[str]) -> str | None:
    """A multi-select picklist's value: the values joined by ";" (null when none)."""
    return ";".join(sorted(roles)) or None


class SalesforceAccounts:
    """The organization sync's companies on Salesforce, over a `SalesforceCrm`."""

    def __init__(self, crm: SalesforceCrm, *, multiple_accounts: bool = False) -> None:
        self._crm = crm
        self.multiple_accounts = multiple_accounts

    def find_companies(self, auth0_org_id: str) -> list[Company]:
        path = f"{ACCOUNTS}/{ACCOUNT_EXTERNAL_ID}/{quote(str(auth0_org_id), safe='')}"
        fields = ",".join(["Id", *COMPANY_FIELD])
        response = self._crm._call("GET", path, params={"fields": fields}, missing_ok=True)
        if response.status_code == 404:
            return []
        if response.status_code == 300:
            raise AmbiguousMatch(f"several Accounts carry {ACCOUNT_EXTERNAL_ID} {auth0_org_id}")
        record = json_body(response, "GET Account by external id")
        if not isinstance(record, dict) or not record.get("Id"):
            raise TransientError("crm GET Account: the answer is not a record", "crm_bad_answer")
        company: Company = {"id": str(record["Id"])}
        for sf, name in COMPANY_FIELD.items():
            company[name] = record.get(sf) if record.get(sf) not in (None, "") else None
        return [company]

    def create_company(self, fields: Mapping[str, Any], idempotency_key: str) -> Company:  # noqa: ARG002
        """Upsert on the external id: a repeated create updates the Account it made."""
        org_id = str(fields[COMPANY_ORG_ID_FIELD])
        record = to_account(fields)
        record.pop(ACCOUNT_EXTERNAL_ID, None)  # the external id is in the URL
        path = f"{ACCOUNTS}/{ACCOUNT_EXTERNAL_ID}/{quote(org_id, safe='')}"
        response = self._crm._call("PATCH", path, json=record)
        if response.status_code == 300:
            raise AmbiguousMatch(f"several Accounts carry {ACCOUNT_EXTERNAL_ID} {org_id}")
        body = json_body(response, "upsert Account") if response.status_code != 204 else None
        record_id = body.get("id") if isinstance(body, dict) else None
        if not record_id:  # 204 (older API versions): read it by the external id
            found = self.find_companies(org_id)
            if len(found) != 1:
                raise TransientError("crm upsert Account: no id in the answer", "crm_bad_answer")
            return found[0]
        return {**dict(fields), "id": str(record_id)}

    def update_company(self, company_id: str, fields: Mapping[str, Any]) -> Company | None:
        if not _RECORD_ID.fullmatch(str(company_id)):
            return None
        response = self._crm._call(
            "PATCH", f"{ACCOUNTS}/{company_id}", json=to_account(fields), missing_ok=True
        )
        if response.status_code == 404:
            return None
        return {**dict(fields), "id": str(company_id)}

    def put_membership(self, company_id: str, contact_id: str, roles: Sequence[str]) -> bool:
        if not (_RECORD_ID.fullmatch(str(company_id)) and _RECORD_ID.fullmatch(str(contact_id))):
            return False
        if not self.multiple_accounts:
            return self._set_account(company_id, contact_id)
        value = roles_value(roles)
        try:
            relation = self._relation(company_id, contact_id)
            if relation is None:
                body = {"AccountId": company_id, "ContactId": contact_id, "Roles": value}
                self._crm._call("POST", RELATIONS, json=body, repeatable=False)
                return True
            if _same_roles(relation.get("Roles"), value):
                return True
            path = f"{RELATIONS}/{relation['Id']}"
            response = self._crm._call("PATCH", path, json={"Roles": value}, missing_ok=True)
            return response.status_code != 404
        except CrmRejected as exc:
            if exc.reason in GONE_CODES:
                return False  # the Account or the Contact is gone: looked up again
            if exc.reason == "salesforce_duplicate_value":
                # Made meanwhile (a repeat whose answer was lost): its Roles on the retry.
                raise TransientError(
                    f"{exc.message}; the relation is read again on the retry",
                    "salesforce_duplicate_value",
                ) from exc
            raise

    def delete_membership(self, company_id: str, contact_id: str) -> None:
        if not (_RECORD_ID.fullmatch(str(company_id)) and _RECORD_ID.fullmatch(str(contact_id))):
            return
        if not self.multiple_accounts:
            account = self._account_of(contact_id)
            if account == company_id:
                self._crm._call(
                    "PATCH", f"{CONTACTS}/{contact_id}", json={"AccountId": None}, missing_ok=True
                )
            return
        relation = self._relation(company_id, contact_id)
        if relation is None:
            return
        path = f"{RELATIONS}/{relation['Id']}"
        if relation.get("IsDirect"):
            # The contact's own Account: the relation goes with the contact's AccountId,
            # which a person set; the sync clears the roles it wrote instead.
            self._crm._call("PATCH", path, json={"Roles": None}, missing_ok=True)
        else:
            self._crm._call("DELETE", path, missing_ok=True)

    # Setup (destination setup) -----------------------------------------------------------

    def check_fields(self) -> dict[str, str]:
        """The custom fields the organization sync writes exist on Account."""
        names = [ACCOUNT_EXTERNAL_ID, "Auth0_Display_Name__c", "Auth0_Status__c"]
        query = f"SELECT Id, {', '.join(names)} FROM Account LIMIT 1"  # noqa: S608 (constants)
        try:
            self._crm._call("GET", f"{API}/query", params={"q": query})
        except CrmRejected as exc:
            if exc.reason == "salesforce_invalid_field":
                raise CrmRejected(
                    exc.status,
                    f"{exc.message}: create the Account fields {ACCOUNT_EXTERNAL_ID} "
                    "(Text(255), External ID, Unique), Auth0_Display_Name__c (Text(255)) and "
                    "Auth0_Status__c (Picklist: active, deactivated) in Setup > Object "
                    "Manager > Account",
                    exc.reason,
                ) from exc
            raise
        return {f"Account.{name}": "exists" for name in names}

    # Internals ------------------------------------------------------------------------------

    def _relation(self, company_id: str, contact_id: str) -> dict[str, Any] | None:
        query = (
            "SELECT Id, Roles, IsDirect FROM AccountContactRelation "  # noqa: S608 (escaped)
            f"WHERE AccountId = {soql_literal(company_id)} "
            f"AND ContactId = {soql_literal(contact_id)} LIMIT 1"
        )
        answer = json_body(self._crm._call("GET", f"{API}/query", params={"q": query}), "query")
        records = answer.get("records") if isinstance(answer, dict) else None
        if not isinstance(records, list):
            raise TransientError("crm GET query: the answer has no records", "crm_bad_answer")
        found = [r for r in records if isinstance(r, dict) and r.get("Id")]
        return found[0] if found else None

    def _account_of(self, contact_id: str) -> str | None:
        """The contact's AccountId ("" when it has none); None when the contact is gone."""
        path = f"{CONTACTS}/{contact_id}"
        response = self._crm._call("GET", path, params={"fields": "AccountId"}, missing_ok=True)
        if response.status_code == 404:
            return None
        record = json_body(response, "GET sobjects/Contact/{Id}")
        if not isinstance(record, dict):
            raise TransientError("crm GET Contact: the answer is not a record", "crm_bad_answer")
        return str(record.get("AccountId") or "")

    def _set_account(self, company_id: str, contact_id: str) -> bool:
        account = self._account_of(contact_id)
        if account is None:
            return False
        if account:  # this Account already, or the contact's first organization's
            return True
        try:
            response = self._crm._call(
                "PATCH", f"{CONTACTS}/{contact_id}", json={"AccountId": company_id}, missing_ok=True
            )
        except CrmRejected as exc:
            if exc.reason in GONE_CODES:
                return False
            raise
        return response.status_code != 404


def _same_roles(current: Any, value: str | None) -> bool:
    have = sorted(x for x in str(current or "").split(";") if x)
    return have == sorted(x for x in (value or "").split(";") if x)
