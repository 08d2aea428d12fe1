"""What the organization sync needs from a destination: companies and memberships.

Only the generic REST contract (1.2) offers them yet (`destinations.rest_companies`);
HubSpot's companies and Salesforce's Accounts are not built: `companies_for` answers None
for them and the organization events are skipped as `organizations_unsupported`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

Company = dict[str, Any]
COMPANY_ORG_ID_FIELD = "auth0_org_id"
COMPANY_ACTIVE = "active"
COMPANY_DEACTIVATED = "deactivated"


class Companies(Protocol):
    def find_companies(self, auth0_org_id: str) -> list[Company]: ...

    def create_company(self, fields: Mapping[str, Any], idempotency_key: str) -> Company: ...

    def update_company(self, company_id: str, fields: Mapping[str, Any]) -> Company | None:
        """None when there is no such company (any more)."""
        ...

    def put_membership(self, company_id: str, contact_id: str, roles: Sequence[str]) -> bool:
        """Exactly these roles; False when the company or the contact does not exist."""
        ...

    def delete_membership(self, company_id: str, contact_id: str) -> None: ...
