"""`auth0-sync destination setup`: prepare the vendor side of a destination.

HubSpot: create the custom contact properties the sync writes (`auth0_user_id`,
`auth0_status`) and the company properties of the organization sync (`auth0_org_id`, with
unique values, `auth0_display_name`, `auth0_status`) when they are missing; running it
again changes nothing. Salesforce: custom fields are created in Setup (or with the
Metadata API), so this checks that the connected app's credentials work and that
`Auth0_User_Id__c` and `Auth0_Status__c` exist on Contact and `Auth0_Org_Id__c`,
`Auth0_Display_Name__c` and `Auth0_Status__c` on Account.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from auth0_sync.destinations import destination
from auth0_sync.errors import CrmRejected, TransientError
from auth0_sync.names import CrmType, Env
from auth0_sync_cli.exits import CommandError

EXAMPLE = (
    "examples:\n"
    "  auth0-sync destination setup --crm hubspot\n"
    "  auth0-sync destination setup --crm salesforce --base-url https://acme.my.salesforce.com\n"
    "\n"
    f"{Env.CRM_API_TOKEN} holds the private app's token (HubSpot) or the connected app's\n"
    '{"client_id": "...", "client_secret": "..."} (Salesforce).'
)


def register(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "destination",
        help="prepare a CRM destination",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = group.add_subparsers(dest="destination_command", required=True, metavar="COMMAND")
    setup = commands.add_parser(
        "setup",
        help="create HubSpot's custom properties / check Salesforce's custom fields",
        description="HubSpot: create the custom contact properties auth0_user_id and "
        "auth0_status, and the company properties auth0_org_id, auth0_display_name and "
        "auth0_status, if they are missing (idempotent). Salesforce: check the connected "
        "app's credentials and that Auth0_User_Id__c and Auth0_Status__c exist on Contact "
        "and Auth0_Org_Id__c, Auth0_Display_Name__c and Auth0_Status__c on Account. "
        f"The token or credentials come from {Env.CRM_API_TOKEN}, in the shape of the "
        "destination's secret.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    setup.add_argument(
        "--crm",
        required=True,
        choices=[CrmType.HUBSPOT.value, CrmType.SALESFORCE.value],
        help="the destination",
    )
    setup.add_argument(
        "--base-url",
        help=f"the API's base URL (default: {Env.CRM_BASE_URL}, else HubSpot's public API)",
    )
    setup.add_argument("--json", action="store_true", help="one JSON document")
    setup.set_defaults(func=run_setup)


def run_setup(args: argparse.Namespace) -> int:
    crm_type = CrmType(args.crm)
    base_url = (
        args.base_url or os.environ.get(Env.CRM_BASE_URL) or destination(crm_type).default_base_url
    )
    if not base_url:
        raise CommandError(f"--base-url (or {Env.CRM_BASE_URL}): the org's My Domain URL")
    secret = os.environ.get(Env.CRM_API_TOKEN, "")
    if not secret.strip():
        raise CommandError(f"{Env.CRM_API_TOKEN}: set it to the destination's token or credentials")
    try:
        if crm_type is CrmType.HUBSPOT:
            from auth0_sync.destinations import bearer_token
            from auth0_sync.destinations.hubspot import HubSpotCrm
            from auth0_sync.destinations.hubspot_companies import HubSpotCompanies

            hubspot = HubSpotCrm(base_url, bearer_token(lambda: secret))
            done = hubspot.ensure_properties()
            done.update(HubSpotCompanies(hubspot).ensure_properties())
        else:
            from auth0_sync.destinations.salesforce import SalesforceCrm, client_credentials
            from auth0_sync.destinations.salesforce_accounts import SalesforceAccounts

            salesforce = SalesforceCrm(base_url, client_credentials(lambda: secret))
            done = salesforce.check_fields()
            done.update(SalesforceAccounts(salesforce).check_fields())
    except (CrmRejected, TransientError) as exc:
        raise CommandError(f"{crm_type}: {exc}", code=1) from exc
    if args.json:
        print(json.dumps({"crm": str(crm_type), "properties": done}, indent=2))
    else:
        for name, what in done.items():
            print(f"{name}: {what}")
    return 0
