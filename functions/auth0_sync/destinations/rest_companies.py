"""Companies and memberships of the generic REST contract 1.2 (docs/contracts): `/companies`
(found by `auth0_org_id`, created with an `Idempotency-Key`, patched), and
`PUT`/`DELETE /companies/{id}/members/{contact_id}` (the whole list of roles).

It speaks through the contacts client's transport, so its calls share the retries, the
retry budget, the circuit breaker and the call count, and its errors are mapped as the
contacts' are: 429/408/5xx/timeouts are `TransientError` after the retries, any other
4xx `CrmRejected` (a 409 on create is the company made meanwhile: it is found again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests

from auth0_sync.destinations.companies import COMPANY_ORG_ID_FIELD, Company
from auth0_sync.destinations.rest import RestCrmClient
from auth0_sync.destinations.transport import json_body
from auth0_sync.errors import ContactExists, CrmRejected, TransientError

COMPANIES_PATH = "/companies"


def _segment(value: str) -> str:
    segment = quote(str(value), safe="")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


class RestCompanies:
    """The contract's companies, over a `RestCrmClient`'s session and transport."""

    def __init__(self, client: RestCrmClient) -> None:
        self._client = client

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._client._send(method, path, **kwargs)  # the one transport, shared

    def find_companies(self, auth0_org_id: str) -> list[Company]:
        found = json_body(
            self._send("GET", COMPANIES_PATH, params={COMPANY_ORG_ID_FIELD: auth0_org_id}),
            "GET /companies",
        )
        if not isinstance(found, list):
            raise TransientError("crm GET /companies: the answer is not a list", "crm_bad_answer")
        return [self._company_of(c, "GET /companies") for c in found]

    def create_company(self, fields: Mapping[str, Any], idempotency_key: str) -> Company:
        try:
            response = self._send(
                "POST",
                COMPANIES_PATH,
                json=dict(fields),
                headers={"Idempotency-Key": idempotency_key},
            )
        except ContactExists as exc:  # 409: a company holds this auth0_org_id already
            found = self.find_companies(str(fields[COMPANY_ORG_ID_FIELD]))
            if len(found) == 1:
                return found[0]
            raise CrmRejected(409, f"crm POST /companies: HTTP 409 ({exc.message})") from exc
        return self._company_of(json_body(response, "POST /companies"), "POST /companies")

    def update_company(self, company_id: str, fields: Mapping[str, Any]) -> Company | None:
        path = f"{COMPANIES_PATH}/{_segment(company_id)}"
        response = self._send("PATCH", path, json=dict(fields), missing_ok=True)
        if response.status_code == 404:
            return None
        return self._company_of(json_body(response, f"PATCH {path}"), f"PATCH {path}")

    def put_membership(self, company_id: str, contact_id: str, roles: Sequence[str]) -> bool:
        path = f"{COMPANIES_PATH}/{_segment(company_id)}/members/{_segment(contact_id)}"
        response = self._send("PUT", path, json={"roles": list(roles)}, missing_ok=True)
        return response.status_code != 404

    def delete_membership(self, company_id: str, contact_id: str) -> None:
        path = f"{COMPANIES_PATH}/{_segment(company_id)}/members/{_segment(contact_id)}"
        # 404: no such company; nothing to remove from it.
        self._send("DELETE", path, missing_ok=True)

    def list_companies(self, limit: int = 500) -> list[Company]:
        """Every company, a page at a time (`after`: the last id of the page before)."""
        companies: list[Company] = []
        after: str | None = None
        while True:
            params = {"limit": str(limit), **({"after": after} if after else {})}
            page = json_body(self._send("GET", COMPANIES_PATH, params=params), "GET /companies")
            if not isinstance(page, list):
                raise TransientError(
                    "crm GET /companies: the answer is not a list", "crm_bad_answer"
                )
            if not page:
                return companies
            companies += [self._company_of(c, "GET /companies") for c in page]
            after = str(companies[-1]["id"])

    def members_of(self, company_id: str) -> dict[str, list[str]]:
        """contact id -> roles of every membership of the company ({} when it is gone)."""
        path = f"{COMPANIES_PATH}/{_segment(company_id)}/members"
        response = self._send("GET", path, missing_ok=True)
        if response.status_code == 404:
            return {}
        found = json_body(response, f"GET {path}")
        if not isinstance(found, list):
            raise TransientError(f"crm GET {path}: the answer is not a list", "crm_bad_answer")
        return {
            str(m["contact_id"]): sorted(str(r) for r in m.get("roles") or [])
            for m in found
            if isinstance(m, dict) and m.get("contact_id") is not None
        }

    @staticmethod
    def _company_of(value: Any, what: str) -> Company:
        if not isinstance(value, dict) or not isinstance(value.get("id"), str | int):
            raise TransientError(f"crm {what}: the answer is not a company", "crm_bad_answer")
        return {**value, "id": str(value["id"])}
