"""The CRM `auth0-sync demo --crm` runs: the reference server (rest) or a vendor's fake
(hubspot, salesforce), with the secret in the destination's documented shape, the story's
words for its faults, and how the truth reads its contacts back.

The truth's side reads each fake's records by hand (`generic_contacts`), never through the
adapter under test; the generic fields each vendor holds are written out here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auth0_sync.names import LOCAL_CRM_TOKEN, CrmType
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.fakes import DemoCrm
from auth0_sync_cli.fakes.hubspot import TOKEN as HUBSPOT_TOKEN
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, NO_RATE_LIMIT, FakeSalesforce
from auth0_sync_cli.truth import CRM_FIELDS, Value, list_contacts

# The generic fields HubSpot and Salesforce hold (the README's "Destinations"): no `name`.
VENDOR_FIELDS = ("email", "given_name", "family_name", "phone")


@dataclass(frozen=True)
class DemoDestination:
    """One CRM for the demo, and what the story and the truth need to know of it."""

    crm_type: CrmType
    name: str  # as the story names it
    server: DemoCrm
    secret: str  # the Secrets Manager value, in the destination's documented shape
    describe: str  # what the server models, for the story's first step
    contacts: Callable[[], list[dict[str, Any]]]  # every contact, in generic names
    fields: tuple[str, ...] = CRM_FIELDS
    stored: Callable[[str, Value], Value] | None = None
    # The rate-limit phase's title; None: the CRM has no per-second limit (`no_rate_limit`).
    rate_limit_title: str | None = None
    no_rate_limit: str = ""


def _lower_email(name: str, value: Value) -> Value:
    """HubSpot stores emails in lower case."""
    return value.strip().lower() if name == "email" and isinstance(value, str) else value


def demo_destination(crm_type: CrmType, *, unique_emails: bool, rps: float) -> DemoDestination:
    """The CRM for `--crm` (not started)."""
    if crm_type is CrmType.HUBSPOT:
        hubspot = FakeHubSpot()
        window = int(rps * hubspot.window_ms / 1000)
        return DemoDestination(
            crm_type,
            "a fake HubSpot",
            hubspot,
            json.dumps({"token": HUBSPOT_TOKEN}),
            "CRM v3 contacts: private-app token; search and reads by email; unique emails, "
            "kept in lower case; the rolling 10-second limit and the search endpoints' own "
            "per-second limit",
            hubspot.generic_contacts,
            fields=VENDOR_FIELDS,
            stored=_lower_email,
            rate_limit_title=(
                f"HubSpot's rolling limit lowered to {window} calls per 10 s ({rps:g}/s): the "
                "client keeps under what the X-HubSpot-RateLimit headers say and waits out a "
                "429"
            ),
        )
    if crm_type is CrmType.SALESFORCE:
        org = FakeSalesforce()
        return DemoDestination(
            crm_type,
            "a fake Salesforce org",
            org,
            json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
            "REST API, Contact: OAuth client credentials; SOQL; upsert on Auth0_User_Id__c; "
            "LastName required; a duplicate rule on Email; the daily API allowance "
            "(Sforce-Limit-Info)",
            org.generic_contacts,
            fields=VENDOR_FIELDS,
            no_rate_limit=NO_RATE_LIMIT,
        )
    server = CrmServer(port=0, unique_emails=unique_emails)
    return DemoDestination(
        CrmType.REST,
        "the reference CRM",
        server,
        LOCAL_CRM_TOKEN,
        "the contacts contract, with fault injection"
        + ("; unique emails" if unique_emails else ""),
        lambda: list_contacts(server.base_url, server.token),
        rate_limit_title=(
            f"CRM rate limit on ({rps:g} requests/s): the client waits what Retry-After says"
        ),
    )
