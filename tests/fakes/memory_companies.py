"""An in-memory CRM of companies and memberships with the contract 1.2 semantics the
organization sync relies on (docs/contracts/crm-contacts-api.yaml: companies found by
`auth0_org_id`, POST with an idempotency key, PATCH of some fields, PUT of a membership
with the whole list of roles, DELETE of a membership; 404 for an unknown contact)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MemoryCompanies:
    contacts: set[str] = field(default_factory=set)  # the contacts that exist
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    patches: list[dict[str, Any]] = field(default_factory=list)

    def find_companies(self, auth0_org_id: str) -> list[dict[str, Any]]:
        self.calls += 1
        return [dict(c) for c in self.companies.values() if c.get("auth0_org_id") == auth0_org_id]

    def create_company(self, fields: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        self.calls += 1
        if idempotency_key in self.keys:
            return dict(self.companies[self.keys[idempotency_key]])
        company_id = f"co_{len(self.companies) + 1}"
        self.companies[company_id] = {**fields, "id": company_id}
        self.keys[idempotency_key] = company_id
        return dict(self.companies[company_id])

    def update_company(self, company_id: str, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        self.calls += 1
        if company_id not in self.companies:
            return None
        self.patches.append(dict(fields))
        self.companies[company_id].update(fields)
        return dict(self.companies[company_id])

    def put_membership(self, company_id: str, contact_id: str, roles: Sequence[str]) -> bool:
        self.calls += 1
        if company_id not in self.companies or contact_id not in self.contacts:
            return False
        self.members[(company_id, contact_id)] = sorted(roles)
        return True

    def delete_membership(self, company_id: str, contact_id: str) -> None:
        self.calls += 1
        self.members.pop((company_id, contact_id), None)
