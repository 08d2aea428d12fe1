"""`auth0-sync backfill`: every Auth0 user through the same core as the handlers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from auth0_sync.destinations import Listing
from auth0_sync.errors import ConfigError, ManagementApiError
from auth0_sync.names import Env
from auth0_sync.org_state import DynamoOrgStateStore
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync.runtime import build_organizations
from auth0_sync.settings import DEFAULT_FIELD_MAPPING, Settings
from auth0_sync.streams.client import ManagementCredentials
from auth0_sync_cli import deactivations
from auth0_sync_cli.argtypes import add_batch_arguments, real_number, whole_number
from auth0_sync_cli.backfill.borrowed import parse_functions, quiet_handler_logs
from auth0_sync_cli.backfill.brake import sweep_verdict
from auth0_sync_cli.backfill.checkpoint import Checkpoint
from auth0_sync_cli.backfill.engine import Backfill, ProgressLine
from auth0_sync_cli.backfill.organizations import (
    OrganizationsClient,
    OrgBackfillReport,
    OrgCheckpoint,
    PlannedCompanies,
    ReadOnlyOrgState,
    backfill_organizations,
    utc_now,
)
from auth0_sync_cli.backfill.organizations import checkpoint_path as org_checkpoint_path
from auth0_sync_cli.backfill.targets import (
    LocalTarget,
    PlanTarget,
    Target,
    build_target,
    crm_client,
)
from auth0_sync_cli.exits import EXIT_INTERRUPTED, EXIT_NEEDS_ATTENTION, EXIT_OK, CommandError
from auth0_sync_cli.export import (
    ExportClient,
    default_export_path,
    export_fields,
    fetch_export,
    read_export,
)
from auth0_sync_cli.paths import OUTPUT_DIR_HELP, default_output, output_file
from auth0_sync_cli.signals import sigterm_interrupts

DEFAULT_RATE = 10.0
DEFAULT_WORKERS = 4

EXAMPLES = """examples:
  auth0-sync backfill --export users.json.gz --dry-run
  auth0-sync backfill --export users.json.gz --rate 50 --checkpoint backfill.ckpt
  auth0-sync backfill --stack Auth0Sync --rate 50 --checkpoint backfill.ckpt   # export job"""


def mapped_paths(environ: Mapping[str, str]) -> list[str]:
    """The Auth0 attributes the mapping reads (the defaults when the sync's settings are not
    all here, e.g. with --target lambda)."""
    try:
        settings = Settings.from_env(environ)
    except ConfigError:
        return [*DEFAULT_FIELD_MAPPING, "app_metadata"]
    return [*settings.field_mapping, settings.contact_id_path]


def obtain_export(
    args: argparse.Namespace, environ: Mapping[str, str], say: Any
) -> tuple[str | None, str | None]:
    """(the export file, its checkpoint): --export, the checkpoint's own export, or a new
    Management API export job saved to --save-export."""
    if args.export:
        return args.export, args.checkpoint
    if args.checkpoint and os.path.exists(args.checkpoint):
        return None, args.checkpoint  # resume on the export the checkpoint names
    try:
        client = ExportClient(ManagementCredentials.from_env(environ))
    except ConfigError as exc:
        raise CommandError(
            f"no --export FILE given, so the users come from a Management API export job: {exc}"
        ) from exc
    path = args.save_export or default_output(default_export_path())
    try:
        fetch_export(client, export_fields(mapped_paths(environ)), path, say=say)
    except ManagementApiError as exc:
        raise CommandError(str(exc.message)) from exc
    return path, args.checkpoint


def run(args: argparse.Namespace) -> int:
    with quiet_handler_logs():
        return _run(args)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _count_lines(path: str) -> int:
    return sum(1 for _ in read_export(path))


def listing_client(
    target: Target, environ: Mapping[str, str], bucket: TokenBucket
) -> Listing | None:
    """The CRM client that reads the listing for the sweep (the target's own, or one made
    from the CRM settings for --target lambda; None when those are not here)."""
    if isinstance(target, PlanTarget):
        inner = target.crm.inner
        return inner if isinstance(inner, Listing) else None
    if isinstance(target, LocalTarget):
        crm = target.runner.service.core.crm
        return crm if isinstance(crm, Listing) else None
    try:
        return crm_client(Settings.from_env(environ), bucket)
    except ConfigError:
        return None


# With batch calls, users in flight per batch slot: a user's calls are of three kinds (find
# by owner, find by email, write), so as many users as three batches hold fill each batch.
BATCH_PHASES = 3
MAX_BATCH_WORKERS = 300


def batch_workers(target: Target, workers: int) -> int:
    """Users in flight: with batch calls, enough to fill a batch of each kind (each user
    waits for the batch that carries its call), else `workers`."""
    if isinstance(target, LocalTarget):
        limit = getattr(target.runner.service.core.crm, "batch_limit", None)
        if isinstance(limit, int):
            return max(workers, min(BATCH_PHASES * limit, MAX_BATCH_WORKERS))
    return workers


def _run(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    bucket = TokenBucket(args.rate)
    target = build_target(
        target=args.target,
        dry_run=args.dry_run,
        bucket=bucket,
        stack=args.stack,
        functions=args.functions,
        timeout=args.timeout,
        environ=environ,
        batch=args.batch and not args.dry_run,
        batch_size=args.batch_size,
    )
    return backfill_with(args, target, environ, bucket)


def backfill_with(
    args: argparse.Namespace, target: Target, environ: Mapping[str, str], bucket: TokenBucket
) -> int:
    """The backfill of `args` through `target` (built from the flags by `_run`; a benchmark
    gives its own, e.g. a local target on in-memory state): the export, the brake, the
    users, the sweep, the report printed; the exit code."""
    export, checkpoint_path = obtain_export(args, environ, _say)
    checkpoint = Checkpoint.open(checkpoint_path, export)
    if args.dry_run:
        checkpoint = Checkpoint(None, checkpoint.export)  # a plan never moves the checkpoint
    show = args.progress or sys.stderr.isatty()
    total = _count_lines(checkpoint.export) - checkpoint.done_through if show else None
    # (the sweep's deletes, if any, come on top of the total)
    listing = listing_client(target, environ, bucket)
    braked = None
    if listing is not None:  # the brake: what the sweep would deactivate, before any write
        braked = sweep_verdict(
            checkpoint.export, listing, deactivations.limit_of(environ), args.allow_deactivations
        )
        if braked.stopped and not args.dry_run:
            raise deactivations.stop(braked, "backfill")
    engine = Backfill(
        target,
        checkpoint,
        workers=1 if args.dry_run else batch_workers(target, args.workers),
        progress=ProgressLine(total, show),
        sample=args.sample,
        listing=listing,
    )
    with sigterm_interrupts():
        report = engine.run(read_export(checkpoint.export))
    if braked is not None and braked.stopped:  # a dry run: the real run would stop
        report.warnings.append(deactivations.would_stop(braked, "backfill"))
    organizations = None
    if args.organizations and not report.interrupted:
        with sigterm_interrupts():
            organizations = backfill_organizations_of(args, target, environ, bucket)
    if args.json:
        document = report.to_dict()
        if organizations is not None:
            document["organizations"] = organizations.to_dict()
        print(json.dumps(document, indent=2))
    else:
        print(report.render())
        if organizations is not None:
            print(organizations.render())
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_NEEDS_ATTENTION if report.needs_a_person and not args.dry_run else EXIT_OK


def backfill_organizations_of(
    args: argparse.Namespace, target: Target, environ: Mapping[str, str], bucket: TokenBucket
) -> OrgBackfillReport:
    """After the users (their contacts first): every organization, its members and roles."""
    if isinstance(target, LocalTarget):
        settings, users = target.runner.service.core.settings, target.state
    elif isinstance(target, PlanTarget):
        settings, users = target.service.core.settings, target.state
    else:
        raise CommandError(
            "--organizations runs with --target local: the deployed organization handlers "
            "take events, not an organization's listing"
        )
    if not settings.organizations:
        raise CommandError(f"--organizations: organization sync is off ({Env.ORGANIZATIONS})")
    client = getattr(users, "client", None)
    org_state = DynamoOrgStateStore(settings.state_table, client)
    sync = build_organizations(settings, crm_client(settings, bucket), users, org_state)
    if sync.companies is None:
        raise CommandError(
            f"--organizations: the {settings.crm_type} destination has no companies yet"
        )
    planned = None
    if args.dry_run:
        planned = PlannedCompanies(sync.companies)
        sync.companies, sync.state = planned, ReadOnlyOrgState(org_state)
    try:
        lister = OrganizationsClient(ManagementCredentials.from_env(environ))
    except ConfigError as exc:
        raise CommandError(f"--organizations lists them with the Management API: {exc}") from exc
    path = None if args.dry_run else org_checkpoint_path(args.checkpoint)
    try:
        return backfill_organizations(
            lister,
            sync,
            OrgCheckpoint.open(path, utc_now),
            lease_seconds=args.timeout,
            planned=planned,
        )
    except ManagementApiError as exc:
        raise CommandError(str(exc.message)) from exc


def add_target_arguments(parser: argparse.ArgumentParser, rate_default: float) -> None:
    """--target, --stack, --functions, --rate, --workers, --timeout, --batch, --batch-size
    (backfill, reconcile --fix, catch-up)."""
    parser.add_argument(
        "--target",
        choices=("local", "lambda"),
        default="local",
        help="local: the sync runs in this process against local-aws, or the state table "
        "and DLQ of --stack (default); lambda: invoke the deployed handlers",
    )
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help="a deployed stack: its handler's environment (state table, DLQ, CRM, mapping) "
        "and, with --target lambda, its functions",
    )
    parser.add_argument(
        "--functions",
        type=parse_functions,
        metavar="TYPE=NAME,...",
        help="--target lambda: the function of each type (default: the --stack's output)",
    )
    parser.add_argument(
        "--rate",
        type=real_number(above_zero=True),
        default=rate_default,
        metavar="R",
        help="at most R CRM calls per second, for all workers together: the CRM's limit is "
        f"shared with live traffic (default {rate_default:g})",
    )
    parser.add_argument(
        "--workers",
        type=whole_number(1, 64),
        default=DEFAULT_WORKERS,
        metavar="N",
        help="users in flight at once (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=real_number(above_zero=True),
        default=30.0,
        metavar="S",
        help="--target local: each invocation's time budget (default %(default)s)",
    )
    add_batch_arguments(
        parser,
        batch_help="--target local: gather independent users' CRM reads, creates and updates "
        "into the destination's batch calls (up to 100 records a request; Salesforce 200), "
        "with as many users in flight as a batch holds (default); --no-batch: one call a "
        "record",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="sync every Auth0 user that existed before the stream (run it before enabling)",
        description="Each exported user becomes a user.updated snapshot at its updated_at "
        "and goes through the same correlation, ownership and ordering rules as a live "
        "event: a snapshot never overwrites a newer event, a user already in step costs no "
        "CRM write, and a rerun is a duplicate. The users come from --export FILE (NDJSON, "
        "gzipped or not) or from a Management API export job (AUTH0_DOMAIN and "
        f"{Env.AUTH0_MGMT_TOKEN}, or AUTH0_CLIENT_ID/AUTH0_CLIENT_SECRET; scope read:users).",
        epilog=EXAMPLES,
    )
    parser.add_argument("--export", metavar="FILE", help="a users export (NDJSON, .gz or not)")
    parser.add_argument(
        "--save-export",
        metavar="FILE",
        type=output_file(),
        help="without --export: where the export job's download is saved (default "
        f"users-export-<UTC time>.json.gz in {OUTPUT_DIR_HELP})",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        type=output_file(),
        help="record the last export line done here; an interrupted backfill given the same "
        "FILE resumes after it (on the export it names)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing; print the plan: create, link, update, unchanged, ambiguous, "
        "owned by another, and a sample of field changes",
    )
    parser.add_argument(
        "--sample",
        type=whole_number(0),
        default=10,
        metavar="N",
        help="--dry-run: how many field changes to show (default %(default)s)",
    )
    add_target_arguments(parser, DEFAULT_RATE)
    deactivations.add_argument(parser, "the sweep (of contacts of users not in the export)")
    parser.add_argument(
        "--organizations",
        action="store_true",
        help="after the users: every Auth0 organization, its members and their roles as "
        "companies and memberships (--target local; Management API scopes "
        "read:organizations, read:organization_members, read:organization_member_roles); "
        "with --checkpoint FILE it resumes from FILE.orgs.json",
    )
    parser.add_argument("--progress", action="store_true", help="progress line even off a TTY")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)
