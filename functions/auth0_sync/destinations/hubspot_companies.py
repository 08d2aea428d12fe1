"""HubSpot companies and contact-company associations: the organization sync's `Companies`
over HubSpot's CRM v3 companies and v4 associations, through the contacts adapter's
transport (its rate limits, retries, breaker, call count and error mapping).

Generic company <-> HubSpot company: `auth0_org_id` (a custom property with unique values,
made by `auth0-sync destination setup`), `name`, `display_name`->`auth0_display_name`,
`status`->`auth0_status` (`active`/`deactivated`); `source_updated_at` is not written
(HubSpot keeps `hs_lastmodifieddate`).

Calls (https://developers.hubspot.com/docs/api-reference/latest/crm/objects/companies/guide):
find with a read by the unique property (`GET /crm/v3/objects/companies/{org_id}?idProperty=
auth0_org_id`, immediately consistent); create with `POST /crm/v3/objects/companies` (sent
once: HubSpot has no idempotency key; a repeat meets 409 on the unique `auth0_org_id` and
the company is read again); update with `PATCH .../companies/{id}`; an organization's delete
with `DELETE .../companies/{id}` (archive) under `DELETE_POLICY=archive` or `erase` (HubSpot
has no GDPR delete for companies), else `auth0_status=deactivated`.

Memberships (https://developers.hubspot.com/docs/api-reference/crm-associations-v4/guide):
`PUT /crm/v4/objects/contacts/{contact}/associations/companies/{company}` with the default
unlabeled type (HUBSPOT_DEFINED 279, contact to company) and one USER_DEFINED association
label per Auth0 role (its text `Auth0 role: <name>`; a missing label is made with
`POST /crm/v4/associations/contacts/companies/labels`, the account's labels read once per
adapter). Its answer lists the labels between the pair (`LabelsBetweenObjectPair`); a role
label the member no longer has is removed with `POST /crm/v4/associations/contacts/
companies/batch/labels/archive`; labels without that prefix are not the sync's and stay.
A membership's end is `DELETE` of the pair's association (every label with it).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from auth0_sync.destinations.companies import COMPANY_DEACTIVATED, COMPANY_ORG_ID_FIELD, Company
from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.destinations.transport import json_body
from auth0_sync.errors import ContactExists, CrmRejected, TransientError

COMPANIES = "/crm/v3/objects/companies"
COMPANY_PROPERTIES = "/crm/v3/properties/companies"
ASSOCIATIONS = "/crm/v4/objects/contacts"
LABELS = "/crm/v4/associations/contacts/companies/labels"
ARCHIVE_LABELS = "/crm/v4/associations/contacts/companies/batch/labels/archive"
# HubSpot's default (unlabeled) contact-to-company association type.
UNLABELED_TYPE = 279
LABEL_PREFIX = "auth0_role_"  # the labels' internal names
# A role's label text: the prefix marks the labels the sync owns (any other label, a
# person's "Decision maker", is left alone).
ROLE_LABEL = "Auth0 role: "

# Generic company field -> HubSpot company property.
COMPANY_PROPERTY_OF: dict[str, str] = {
    COMPANY_ORG_ID_FIELD: "auth0_org_id",
    "name": "name",
    "display_name": "auth0_display_name",
    "status": "auth0_status",
}
COMPANY_FIELD_OF = {prop: name for name, prop in COMPANY_PROPERTY_OF.items()}

# The company properties `auth0-sync destination setup --crm hubspot` creates.
CUSTOM_COMPANY_PROPERTIES: list[dict[str, Any]] = [
    {
        "name": "auth0_org_id",
        "label": "Auth0 organization id",
        "type": "string",
        "fieldType": "text",
        "groupName": "companyinformation",
        "description": "The Auth0 organization this company is (written by auth0-sync).",
        "hasUniqueValue": True,
    },
    {
        "name": "auth0_display_name",
        "label": "Auth0 display name",
        "type": "string",
        "fieldType": "text",
        "groupName": "companyinformation",
        "description": "The Auth0 organization's display name (written by auth0-sync).",
    },
    {
        "name": "auth0_status",
        "label": "Auth0 status",
        "type": "enumeration",
        "fieldType": "select",
        "groupName": "companyinformation",
        "description": "deactivated when the Auth0 organization was deleted (by auth0-sync).",
        "options": [
            {"label": "Active", "value": "active", "displayOrder": 0},
            {"label": "Deactivated", "value": "deactivated", "displayOrder": 1},
        ],
    },
]


def _segment(value: str) -> str:
    segment = quote(str(value), safe="")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


def template(path: str) -> str:
    """A companies or associations path without its ids, for messages."""
    if path.startswith(COMPANIES + "/"):
        return COMPANIES + "/{id}"
    if path.startswith(ASSOCIATIONS + "/"):
        return ASSOCIATIONS + "/{id}/associations/companies/{id}"
    return path


def to_company_properties(fields: Mapping[str, Any]) -> dict[str, str]:
    """Generic company fields -> HubSpot properties; None clears ("")."""
    return {
        COMPANY_PROPERTY_OF[name]: "" if value is None else str(value)
        for name, value in fields.items()
        if name in COMPANY_PROPERTY_OF
    }


def to_company(record: Mapping[str, Any]) -> Company:
    properties = record.get("properties") or {}
    company: Company = {"id": str(record["id"])}
    for prop, name in COMPANY_FIELD_OF.items():
        value = properties.get(prop)
        company[name] = value if value not in (None, "") else None
    return company


class HubSpotCompanies:
    """The organization sync's companies on HubSpot, over a `HubSpotCrm`'s transport."""

    def __init__(self, crm: HubSpotCrm, *, archive: bool = False) -> None:
        self._crm = crm
        self.archive = archive  # DELETE_POLICY archive/erase: a deleted org's company too
        self._labels: dict[str, int] | None = None  # role label -> association type id
        self._lock = threading.Lock()

    def find_companies(self, auth0_org_id: str) -> list[Company]:
        params = {
            "idProperty": COMPANY_PROPERTY_OF[COMPANY_ORG_ID_FIELD],
            "properties": ",".join(COMPANY_FIELD_OF),
        }
        path = f"{COMPANIES}/{_segment(auth0_org_id)}"
        response = self._crm._send("GET", path, params=params, missing_ok=True)
        if response.status_code == 404:
            return []
        return [self._company(json_body(response, "GET " + template(path)), "GET")]

    def create_company(self, fields: Mapping[str, Any], idempotency_key: str) -> Company:  # noqa: ARG002
        body = {"properties": {k: v for k, v in to_company_properties(fields).items() if v}}
        try:
            response = self._crm._send("POST", COMPANIES, json=body, repeatable=False)
        except ContactExists as exc:  # 409: the unique auth0_org_id is taken (a repeat)
            found = self.find_companies(str(fields[COMPANY_ORG_ID_FIELD]))
            if len(found) == 1:
                return found[0]
            raise CrmRejected(409, exc.message) from exc
        return self._company(json_body(response, "POST " + COMPANIES), "POST")

    def update_company(self, company_id: str, fields: Mapping[str, Any]) -> Company | None:
        path = f"{COMPANIES}/{_segment(company_id)}"
        if self.archive and fields.get("status") == COMPANY_DEACTIVATED:
            # Archive (restorable for 90 days in HubSpot); an archived company answers 404
            # to reads, so it is not found again.
            self._crm._send("DELETE", path, missing_ok=True)
            return {"id": str(company_id), **fields}
        body = {"properties": to_company_properties(fields)}
        response = self._crm._send("PATCH", path, json=body, missing_ok=True)
        if response.status_code == 404:
            return None
        return self._company(json_body(response, "PATCH " + template(path)), "PATCH")

    def put_membership(self, company_id: str, contact_id: str, roles: Sequence[str]) -> bool:
        types = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": UNLABELED_TYPE}]
        types += [
            {"associationCategory": "USER_DEFINED", "associationTypeId": self._label(role)}
            for role in roles
        ]
        path = self._pair(contact_id, company_id)
        response = self._crm._send("PUT", path, json=types, missing_ok=True)
        if response.status_code == 404:
            return False
        answer = json_body(response, "PUT " + template(path))
        labels = answer.get("labels") if isinstance(answer, dict) else None
        if not isinstance(labels, list):
            raise TransientError(f"crm PUT {template(path)}: no labels list", "crm_bad_answer")
        known = self._known_labels()
        ended = {str(x).removeprefix(ROLE_LABEL) for x in labels if str(x).startswith(ROLE_LABEL)}
        extra = sorted({known[r] for r in ended - set(roles) if r in known})
        if extra:
            body = {
                "inputs": [
                    {
                        "from": {"id": str(contact_id)},
                        "to": {"id": str(company_id)},
                        "types": [
                            {"associationCategory": "USER_DEFINED", "associationTypeId": t}
                            for t in extra
                        ],
                    }
                ]
            }
            self._crm._send("POST", ARCHIVE_LABELS, json=body)
        return True

    def delete_membership(self, company_id: str, contact_id: str) -> None:
        # Removes the association with every label; 404: nothing there to remove.
        self._crm._send("DELETE", self._pair(contact_id, company_id), missing_ok=True)

    # Setup (destination setup) ----------------------------------------------------------

    def ensure_properties(self) -> dict[str, str]:
        """Create the company properties the sync writes, if missing: name -> what happened."""
        done: dict[str, str] = {}
        for spec in CUSTOM_COMPANY_PROPERTIES:
            path = f"{COMPANY_PROPERTIES}/{quote(spec['name'], safe='')}"
            key = f"companies.{spec['name']}"
            if self._crm._send("GET", path, missing_ok=True).status_code != 404:
                done[key] = "exists"
                continue
            response = self._crm._send("POST", COMPANY_PROPERTIES, json=spec, conflict_ok=True)
            done[key] = "exists" if response.status_code == 409 else "created"
        return done

    # Labels --------------------------------------------------------------------------------

    def _known_labels(self) -> dict[str, int]:
        with self._lock:
            labels = self._labels
        if labels is None:
            answer = json_body(self._crm._send("GET", LABELS), "GET " + LABELS)
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list):
                raise TransientError(f"crm GET {LABELS}: no results list", "crm_bad_answer")
            labels = _user_labels(results)
            with self._lock:
                self._labels = labels
        return labels

    def _label(self, role: str) -> int:
        """The association type id of the role's label, made if the account lacks it."""
        found = self._known_labels().get(role)
        if found is not None:
            return found
        slug = "".join(c if c.isalnum() else "_" for c in role.lower())[:40]
        digest = hashlib.sha256(role.encode()).hexdigest()[:8]  # "Admin" and "admin" differ
        name = f"{LABEL_PREFIX}{slug}_{digest}"
        text = ROLE_LABEL + role
        response = self._crm._send(
            "POST", LABELS, json={"label": text, "name": name}, conflict_ok=True
        )
        if response.status_code == 409:  # made meanwhile (another function): read again
            with self._lock:
                self._labels = None
            found = self._known_labels().get(role)
            if found is None:
                raise CrmRejected(409, f"crm POST {LABELS}: HTTP 409 for the label {role!r}")
            return found
        answer = json_body(response, "POST " + LABELS)
        results = answer.get("results") if isinstance(answer, dict) else None
        made = _user_labels(results if isinstance(results, list) else [])
        if role not in made:
            raise TransientError(f"crm POST {LABELS}: no label in the answer", "crm_bad_answer")
        with self._lock:
            self._labels = {**(self._labels or {}), **made}
        return made[role]

    @staticmethod
    def _pair(contact_id: str, company_id: str) -> str:
        contact, company = _segment(contact_id), _segment(company_id)
        return f"{ASSOCIATIONS}/{contact}/associations/companies/{company}"

    @staticmethod
    def _company(record: Any, method: str) -> Company:
        if not isinstance(record, dict) or not isinstance(record.get("id"), str | int):
            raise TransientError(f"crm {method} {COMPANIES}: not a company", "crm_bad_answer")
        return to_company(record)


def _user_labels(results: list[Any]) -> dict[str, int]:
    """Role -> type id of the sync's labels (USER_DEFINED, `Auth0 role: <role>`) in a
    labels answer."""
    return {
        str(r["label"]).removeprefix(ROLE_LABEL): int(r["typeId"])
        for r in results
        if isinstance(r, dict)
        and r.get("category") == "USER_DEFINED"
        and str(r.get("label") or "").startswith(ROLE_LABEL)
        and isinstance(r.get("typeId"), int)
    }
