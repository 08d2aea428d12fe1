"""Settings -> the configured destination's adapter: the one factory the handlers, the
redrive's probe and the CLI's commands build their CRM client with.

It lives apart from `auth0_sync.destinations` because it reads `Settings`, which itself
reads the destinations' specs to validate a mapping: settings -> destinations, and
factory -> settings, with no way back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from auth0_sync.destinations import Crm, Listing, bearer_token
from auth0_sync.destinations.companies import Companies
from auth0_sync.names import CrmType
from auth0_sync.settings import DeletePolicy, Settings

if TYPE_CHECKING:
    import requests

    from auth0_sync.destinations.transport import CircuitBreaker


def build_crm(
    settings: Settings,
    secret: Callable[[], str],
    *,
    session: requests.Session | None = None,
    max_attempts: int | None = None,
    backoff_base: float | None = None,
    breaker: CircuitBreaker | None = None,
    timeout_seconds: float | None = None,
) -> Listing:
    """The adapter for `settings.crm_type`; `secret` reads the destination's secret text.
    The keywords, when given, replace the adapter's own (a rate-limited session for the
    CLI's commands, the demo's short retries, the redrive probe's one short attempt).
    Each vendor's module is imported only when it is the one configured (cold start)."""
    crm_type = CrmType(settings.crm_type)
    given = {
        "max_attempts": max_attempts,
        "backoff_base": backoff_base,
        "breaker": breaker,
        "session": session,
        "timeout_seconds": timeout_seconds,
    }
    options: dict[str, Any] = {
        "timeout_seconds": settings.crm_timeout_seconds,
        "retry_budget_seconds": settings.crm_retry_budget_seconds,
        **{name: value for name, value in given.items() if value is not None},
    }
    if crm_type is CrmType.HUBSPOT:
        from auth0_sync.destinations.hubspot import HubSpotCrm

        return HubSpotCrm(settings.crm_base_url, bearer_token(secret), **options)
    if crm_type is CrmType.SALESFORCE:
        from auth0_sync.destinations.salesforce import SalesforceCrm, client_credentials

        return SalesforceCrm(settings.crm_base_url, client_credentials(secret), **options)
    from auth0_sync.destinations.rest import RestCrmClient

    return RestCrmClient(settings.crm_base_url, bearer_token(secret), **options)


def check_secret(crm_type: CrmType | str, secret: Callable[[], str]) -> None:
    """Read the secret and check its shape for the destination (no call to the vendor);
    a `TransientError` says what is wrong."""
    if CrmType(crm_type) is CrmType.SALESFORCE:
        from auth0_sync.destinations.salesforce import client_credentials

        client_credentials(secret)()
    else:
        bearer_token(secret)()


def build_companies(settings: Settings, crm: Crm) -> Companies | None:
    """The organization sync's companies over the destination's adapter: the generic
    contract's `/companies`, HubSpot's companies and associations, Salesforce's Accounts and
    AccountContactRelations. None for an adapter that is none of them (a test double)."""
    crm_type = CrmType(settings.crm_type)
    if crm_type is CrmType.HUBSPOT:
        from auth0_sync.destinations.hubspot import HubSpotCrm
        from auth0_sync.destinations.hubspot_companies import HubSpotCompanies

        if isinstance(crm, HubSpotCrm):
            archive = settings.delete_policy in (DeletePolicy.ARCHIVE, DeletePolicy.ERASE)
            return HubSpotCompanies(crm, archive=archive)
        return None
    if crm_type is CrmType.SALESFORCE:
        from auth0_sync.destinations.salesforce import SalesforceCrm
        from auth0_sync.destinations.salesforce_accounts import SalesforceAccounts

        if isinstance(crm, SalesforceCrm):
            return SalesforceAccounts(
                crm, multiple_accounts=settings.salesforce_contacts_to_multiple_accounts
            )
        return None
    from auth0_sync.destinations.rest import RestCrmClient
    from auth0_sync.destinations.rest_companies import RestCompanies

    return RestCompanies(crm) if isinstance(crm, RestCrmClient) else None
