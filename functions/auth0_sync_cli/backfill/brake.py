"""Backfill's deactivation brake: what the sweep would deactivate, counted before the
backfill writes anything (`auth0_sync.brake` decides)."""

from __future__ import annotations

from auth0_sync.brake import DeactivationLimit, Verdict, check
from auth0_sync.destinations import Listing
from auth0_sync_cli.backfill.sweep import SeenUsers, every_contact, orphaned
from auth0_sync_cli.export import read_export


def sweep_verdict(
    export: str, listing: Listing, limit: DeactivationLimit, allow: int | None
) -> Verdict:
    """What backfill's sweep would deactivate: the active contacts carrying an Auth0 user id
    the whole export does not list, counted in one pass over the listing (contacts: every
    contact listed)."""
    seen = SeenUsers()
    try:
        for item in read_export(export):
            if item.user is not None:
                seen.add(item.user)
        contacts = planned = 0
        for contact in every_contact(listing):
            contacts += 1
            planned += orphaned(contact, seen)
    finally:
        seen.close()
    return check(planned, contacts, limit, allow)
