"""The batch calls of a destination adapter (`Batching`), where its vendor has them: the
generic contract 1.2 (`rest_batch`), HubSpot's CRM v3 batch endpoints (`hubspot_batch`),
Salesforce's sObject Collections (`salesforce_batch`). Each works over the adapter it is
given: the same session, token, limits, retries and call count."""

from __future__ import annotations

from typing import Any

from auth0_sync.destinations import Batching


def batches_of(crm: Any) -> Batching | None:
    """The batch calls over `crm` (an adapter of `auth0_sync.destinations`), or None when
    it has none (a test double, an adapter without batch endpoints)."""
    from auth0_sync.destinations.rest import RestCrmClient

    if isinstance(crm, Batching):
        return crm
    from auth0_sync.destinations.hubspot import HubSpotCrm

    if isinstance(crm, HubSpotCrm):
        from auth0_sync.destinations.hubspot_batch import HubSpotBatches

        return HubSpotBatches(crm)
    from auth0_sync.destinations.salesforce import SalesforceCrm

    if isinstance(crm, SalesforceCrm):
        from auth0_sync.destinations.salesforce_batch import SalesforceBatches

        return SalesforceBatches(crm)
    if isinstance(crm, RestCrmClient):
        from auth0_sync.destinations.rest_batch import RestBatches

        return RestBatches(crm)
    return None
