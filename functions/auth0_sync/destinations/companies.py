"""What the organization sync needs from a destination: companies and memberships.

Every destination has them: the generic REST contract 1.2 (`destinations.rest_companies`),
HubSpot's companies and v4 associations (`destinations.hubspot_companies`) and Salesforce's
Accounts (`destinations.salesforce_accounts`); `destinations.factory.build_companies` picks
the destination's. Each turns its vendor's errors into ours at this boundary, so the rules
of `auth0_sync.organizations` apply unchanged. An adapter without companies (a test
double) has the organization events skipped as `organizations_unsupported`.
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
