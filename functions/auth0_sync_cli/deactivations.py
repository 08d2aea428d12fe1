"""The bulk commands' side of the deactivation brake (`auth0_sync.brake`): the flag, and
counting what backfill's sweep would deactivate before the backfill writes anything."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from auth0_sync.brake import DeactivationLimit, Verdict, check
from auth0_sync.destinations import Listing
from auth0_sync.errors import ConfigError
from auth0_sync.names import Env
from auth0_sync_cli.argtypes import whole_number
from auth0_sync_cli.backfill.sweep import SeenUsers, every_contact, orphaned
from auth0_sync_cli.exits import EXIT_NEEDS_ATTENTION, CommandError
from auth0_sync_cli.export import read_export


def add_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--allow-deactivations",
        type=whole_number(0),
        metavar="N",
        help=f"{what} may deactivate up to N contacts in this run (instead of "
        f"{Env.DEACTIVATION_LIMIT}, default 10%% of the contacts): above the limit the command "
        "stops before writing and says how many it would deactivate",
    )


def limit_of(environ: Mapping[str, str]) -> DeactivationLimit:
    try:
        return DeactivationLimit.from_env(environ)
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc


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


def stop(verdict: Verdict, command: str) -> CommandError:
    """The error that ends a braked run (exit 1: a person decides)."""
    return CommandError(verdict.message(command), code=EXIT_NEEDS_ATTENTION)


def would_stop(verdict: Verdict, command: str) -> str:
    """A dry run's warning: the real run would stop here."""
    said = verdict.message(command).replace("nothing was written", "it would stop first")
    return f"without --dry-run, {said}"
