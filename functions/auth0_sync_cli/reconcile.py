"""`auth0-sync reconcile`: how far the CRM is from Auth0, and what the rules can repair.

Three sources are compared: an Auth0 users export (what should be), the CRM's whole
listing (contract 1.1, what is) and the sync-state table (what the sync believes it wrote).
The expected fields of a user are what a `user.updated` carrying its export line would
write (the mapping, and the removal/keep rules of docs/sync-rules.md: an attribute absent
from the export is kept, unless ABSENT_FIELDS=clear). A user whose state shows a change
newer than the export is not compared field by field: the export is older than the CRM.
None of the three is held whole: the listing and the states go a page at a time into a
temporary SQLite file, and the export is walked once against it (`reconcile_index`).

`--fix` goes through the core, like any event: a drifted user's state forgets its contact
(so the next event finds it again in the CRM and writes exactly what differs there, status
and owner included), then a snapshot of its export line runs; the contact of a user Auth0
no longer has gets the `user.deleted` that never came. What the rules leave alone (a
contact no user claims, one claimed twice, an ambiguous email) is reported for a person.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import boto3

from auth0_sync import modes
from auth0_sync.brake import check
from auth0_sync.destinations import Contact, Listing
from auth0_sync.errors import SyncError
from auth0_sync.events import iso
from auth0_sync.mapping import desired_fields, digest
from auth0_sync.outcome import Outcome
from auth0_sync.policies import NoEmailPolicy, blocked_status, email_is_unverified
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync.settings import REQUIRED_CRM_FIELDS, Settings
from auth0_sync.state import CLAIM_KEY_PREFIX, DynamoSyncStateStore, SyncState, _from_item, _plain
from auth0_sync_cli import deactivations
from auth0_sync_cli.backfill.borrowed import quiet_handler_logs
from auth0_sync_cli.backfill.command import add_target_arguments, batch_workers, obtain_export
from auth0_sync_cli.backfill.engine import category
from auth0_sync_cli.backfill.snapshot import deletion_event, snapshot_event, snapshot_time
from auth0_sync_cli.backfill.sweep import every_contact
from auth0_sync_cli.backfill.targets import Target, build_target, crm_client, stack_environment
from auth0_sync_cli.exits import EXIT_NEEDS_ATTENTION, EXIT_OK, CommandError
from auth0_sync_cli.export import read_export
from auth0_sync_cli.paths import OUTPUT_DIR_HELP, output_file
from auth0_sync_cli.reconcile_index import Sources
from auth0_sync_cli.reconcile_orgs import reconcile_organizations
from auth0_sync_cli.reconcile_orgs import render as render_organizations
from auth0_sync_cli.signals import sigterm_interrupts

DEFAULT_RATE = 10.0
OWNER, STATUS, ACTIVE, DEACTIVATED = "auth0_user_id", "status", "active", "deactivated"

# The kinds of drift, in the order they are reported.
NO_CONTACT = "no_contact"  # an Auth0 user without a contact
FIELD_DIFFERS = "field_differs"  # the contact holds another value than Auth0 says
USER_GONE = "user_gone"  # an active contact whose Auth0 user no longer exists
CLAIMED_TWICE = "claimed_twice"  # one contact, two users (their states, or two contacts)
UNCLAIMED = "unclaimed"  # an active contact no Auth0 user claims
STATE_DISAGREES = "state_disagrees"  # the sync state says otherwise than the CRM
KINDS = (NO_CONTACT, FIELD_DIFFERS, USER_GONE, CLAIMED_TWICE, UNCLAIMED, STATE_DISAGREES)
# What --fix can repair through the core; the rest waits for a person.
FIXABLE = frozenset({NO_CONTACT, FIELD_DIFFERS, USER_GONE, STATE_DISAGREES})
STATE_PAGE = 1000  # sync states read per scan page
EXPORTED_BATCH = 500  # exported user ids written to disk at a time
COLUMNS = ("kind", "user_id", "contact_id", "field", "auth0", "crm", "detail")


@dataclass(frozen=True)
class Drift:
    kind: str
    user_id: str | None = None
    contact_id: str | None = None
    field: str | None = None
    auth0: str | None = None
    crm: str | None = None
    detail: str = ""

    def row(self) -> list[str]:
        return ["" if v is None else str(v) for v in (asdict(self)[c] for c in COLUMNS)]


@dataclass
class Comparison:
    """The drift found, and what was looked at."""

    drift: list[Drift] = field(default_factory=list)
    users: int = 0
    contacts: int = 0
    states: int = 0
    newer_than_export: int = 0
    newest: str = ""  # the newest time the export shows (it was taken after it)

    def counts(self) -> dict[str, int]:
        found = Counter(d.kind for d in self.drift)
        return {kind: found[kind] for kind in KINDS}


def load_states(table: str) -> Iterator[tuple[str, SyncState]]:
    """Every user's sync state, a scan page at a time (claim items, keyed `#contact#...`,
    are left out)."""
    client = boto3.client("dynamodb")
    pages = client.get_paginator("scan").paginate(
        # A page is at most 1 MB in DynamoDB; the page size also bounds a server that
        # answers more at once (moto answers a whole table).
        TableName=table,
        ConsistentRead=True,
        PaginationConfig={"PageSize": STATE_PAGE},
    )
    for page in pages:
        for item in page.get("Items", []):
            plain = _plain(item)
            key = str(plain.get("user_id", ""))
            if key and not key.startswith("#") and not key.startswith(CLAIM_KEY_PREFIX):
                yield key, _from_item(key, plain)


def _same(a: Any, b: Any) -> bool:
    return (a or None) == (b or None)


ContactSource = Mapping[str, Contact] | Iterable[tuple[str, Contact]]
StateSource = Mapping[str, SyncState] | Iterable[tuple[str, SyncState]]


def compare(
    users: Iterable[dict[str, Any]],
    contacts: ContactSource,
    states: StateSource,
    settings: Settings,
    *,
    directory: str | None = None,
) -> Comparison:
    """Every difference between the export, the CRM and the state (see the module doc).

    Each source is read once, as it comes: `contacts` as (contact id, contact) pairs in
    listing order and `states` as (user id, state) pairs (or mappings of them), into a
    temporary SQLite file in `directory` (`reconcile_index`); then the users, in export
    order. None of them is held whole in memory."""
    with Sources(directory) as sources:
        sources.add_contacts(contacts.items() if isinstance(contacts, Mapping) else contacts)
        sources.add_states(states.items() if isinstance(states, Mapping) else states)
        return _compare(users, sources, settings)


def _compare(users: Iterable[dict[str, Any]], sources: Sources, settings: Settings) -> Comparison:
    result = Comparison(contacts=sources.count_contacts(), states=sources.count_states())
    exported: list[str] = []
    for user in users:
        result.users += 1
        user_id = str(user["user_id"])
        exported.append(user_id)
        if len(exported) >= EXPORTED_BATCH:
            sources.add_exported(exported)
            exported = []
        moment = snapshot_time(user)
        result.newest = max(result.newest, moment, str(user.get("created_at") or ""))
        result.drift.extend(_user_drift(user, sources, sources.state(user_id), settings, result))
    sources.add_exported(exported)
    for contact_id, users_of in sources.claimed_twice_by_states():
        result.drift.append(
            Drift(
                CLAIMED_TWICE,
                ", ".join(users_of),
                contact_id,
                detail="the sync state of each of these users names this contact",
            )
        )
    for owner, ids in sources.claimed_twice_by_owner():
        result.drift.append(
            Drift(
                CLAIMED_TWICE,
                owner,
                ", ".join(ids),
                detail="these contacts all carry this Auth0 user id",
            )
        )
    for contact_id, contact in sources.contacts():
        # No status (a vendor contact the sync never wrote: no auth0_status) is active.
        if (contact.get(STATUS) or ACTIVE) != ACTIVE:
            continue
        holder = contact.get(OWNER)
        if holder and not sources.was_exported(str(holder)):
            theirs = sources.state(str(holder))
            newest = _iso(result.newest)
            if theirs and theirs.last_change_time and theirs.last_change_time > newest:
                continue  # a user the stream brought after the export was taken
            result.drift.append(
                Drift(
                    USER_GONE,
                    str(holder),
                    contact_id,
                    detail="active, but the export has no such Auth0 user",
                )
            )
        elif not holder and not sources.claimed(contact_id):
            result.drift.append(
                Drift(
                    UNCLAIMED,
                    None,
                    contact_id,
                    crm=str(contact.get("email") or ""),
                    detail="active, and no Auth0 user claims it",
                )
            )
    return result


def _waits_by_rule(user: Mapping[str, Any], settings: Settings, sources: Sources) -> bool:
    """A user the rules leave without a contact: no email (NO_EMAIL_POLICY=skip), or an
    unverified email another contact holds (CLAIM_UNVERIFIED_EMAIL=false)."""
    email = user.get("email")
    if not email:
        return settings.no_email_policy == NoEmailPolicy.SKIP
    unverified = email_is_unverified(user) and not settings.claim_unverified_email
    return unverified and sources.holds_email(str(email))


def _iso(moment: str) -> str:
    try:
        return iso(datetime.fromisoformat(moment.replace("Z", "+00:00")))
    except ValueError:
        return moment


def _user_drift(
    user: dict[str, Any],
    sources: Sources,
    state: SyncState | None,
    settings: Settings,
    result: Comparison,
) -> list[Drift]:
    user_id = str(user["user_id"])
    found: list[Drift] = []
    contact: Contact | None = None
    live = state is not None and state.deleted_at is None
    if live and state is not None and state.contact_id:
        contact = sources.contact(state.contact_id)
        if contact is None:
            found.append(
                Drift(
                    STATE_DISAGREES,
                    user_id,
                    state.contact_id,
                    detail="the sync state names a contact the CRM does not have",
                )
            )
        elif contact.get(OWNER) not in (None, "", user_id):
            found.append(
                Drift(
                    STATE_DISAGREES,
                    user_id,
                    state.contact_id,
                    OWNER,
                    user_id,
                    str(contact.get(OWNER)),
                    detail="the sync state names a contact of another Auth0 user",
                )
            )
            contact = None
        elif not contact.get(OWNER):
            found.append(
                Drift(
                    STATE_DISAGREES,
                    user_id,
                    state.contact_id,
                    OWNER,
                    user_id,
                    contact.get(OWNER),
                    detail="the contact the sync state names no longer carries the user",
                )
            )
    if contact is None:
        contact = sources.first_owned(user_id)
    if contact is None:
        # SYNC_MODE=update_only never creates one; some users wait by rule (no email...).
        if modes.contact_expected(settings) and not _waits_by_rule(user, settings, sources):
            found.append(Drift(NO_CONTACT, user_id, detail="no contact carries this Auth0 user"))
        return found
    contact_id = str(contact["id"])
    if (
        state is not None
        and state.last_change_time
        and state.last_change_time > _iso(snapshot_time(user))
    ):
        result.newer_than_export += 1
        return found
    wanted = desired_fields(
        user,
        None,
        settings.field_mapping,
        absent=settings.absent_fields,
        required=REQUIRED_CRM_FIELDS,
    )
    differs = set()
    for name, value in sorted(wanted.items()):
        # SYNC_MODE=create_only: a value the contact holds is not drift, whatever Auth0 says.
        if not _same(contact.get(name), value) and modes.is_drift(
            settings, name, contact.get(name)
        ):
            differs.add(name)
            found.append(Drift(FIELD_DIFFERS, user_id, contact_id, name, value, contact.get(name)))
    status = blocked_status(
        user, None, settings.blocked_policy, active=ACTIVE, deactivated=DEACTIVATED
    )
    status = status or ACTIVE  # a blocked user's contact shows deactivated (BLOCKED_POLICY)
    if contact.get(STATUS, ACTIVE) != status:
        found.append(Drift(FIELD_DIFFERS, user_id, contact_id, STATUS, status, contact.get(STATUS)))
    if live and state is not None and state.contact_id == contact_id:
        for name, written in sorted(state.written.items()):
            kept = contact.get(name)
            # create_only: a value the contact holds was kept on purpose (the state
            # remembers what Auth0 said), not changed behind the sync's back.
            if (
                name not in differs
                and digest(kept or None) != written
                and modes.is_drift(settings, name, kept)
            ):
                found.append(
                    Drift(
                        STATE_DISAGREES,
                        user_id,
                        contact_id,
                        name,
                        None,
                        contact.get(name),
                        detail="changed in the CRM since the sync wrote it",
                    )
                )
    return found


# --fix -----------------------------------------------------------------------------------------


@dataclass
class FixReport:
    attempted: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[dict[str, Any]] = field(default_factory=list)


def forget_contact(store: DynamoSyncStateStore, user_id: str) -> None:
    """Under the user's lease: the state no longer names a contact or what was written, so
    the next event finds the contact in the CRM again and compares with what it holds."""
    owner = f"reconcile:{uuid.uuid4().hex[:8]}"
    state = store.acquire(user_id, owner, 30.0)
    try:
        store.commit(replace(state, contact_id=None, written={}, matched_by=None), owner)
    except BaseException:
        store.release(user_id, owner)
        raise


def fix(
    comparison: Comparison,
    export: str,
    target: Target,
    store: DynamoSyncStateStore | None,
    *,
    workers: int = 1,
) -> FixReport:
    """Repair what the rules allow, through the target (rate-limited like any event).

    Each user to repair gets one event (a snapshot, or a deletion for a user gone from
    Auth0), so the users are independent: `workers` of them run at once, and a target
    with batch calls carries their CRM calls in batches (`auth0_sync.gathering`)."""
    report = FixReport()
    lock = threading.Lock()
    users = {
        d.user_id
        for d in comparison.drift
        if d.kind in (FIELD_DIFFERS, STATE_DISAGREES, NO_CONTACT)
    }
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime())

    def repairs() -> Iterator[tuple[str | None, dict[str, Any]]]:
        for item in read_export(export):
            if item.user is None or item.user.get("user_id") not in users:
                continue
            user = item.user
            yield str(user["user_id"]), snapshot_event(user, id_prefix=f"reconcile_{run_id}_")
        deleted_at = comparison.newest or "1970-01-01T00:00:00.000Z"
        for drift in comparison.drift:
            if drift.kind == USER_GONE and drift.user_id:
                yield None, deletion_event(drift.user_id, deleted_at, id_prefix="reconcile_gone_")

    def repair(job: tuple[str | None, dict[str, Any]]) -> None:
        forget, event = job
        if forget is not None and store is not None:
            forget_contact(store, forget)
        outcome = target.run(event)
        with lock:
            _count(outcome, report)

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="reconcile") as pool:
        for _ in pool.map(repair, repairs()):
            pass
    return report


def _count(outcome: Outcome, report: FixReport) -> None:
    report.attempted += 1
    kind = category(outcome)
    report.outcomes[kind] += 1
    if kind in ("ambiguous", "owned_by_other", "failed"):
        report.problems.append(
            {"user_id": outcome.user_id, "reason": outcome.reason, "message": outcome.message}
        )


# The command -----------------------------------------------------------------------------------


def _table(rows: list[list[str]]) -> str:
    widths = [min(40, max(len(r[i]) for r in rows)) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell[:40].ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


def measure(export: str, crm: Listing, settings: Settings) -> Comparison:
    contacts = ((str(c["id"]), c) for c in every_contact(crm))
    states = load_states(settings.state_table)
    users = (item.user for item in read_export(export) if item.user is not None)
    return compare(users, contacts, states, settings)


def run(args: argparse.Namespace) -> int:
    with quiet_handler_logs(), sigterm_interrupts():
        return _run_command(args)


def _run_command(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    if args.stack:
        environ.update(stack_environment(args.stack))
    settings = Settings.from_env(environ)
    bucket = TokenBucket(args.rate)
    crm = crm_client(settings, bucket)
    export, _ = obtain_export(args, environ, lambda line: print(line, file=sys.stderr))
    if export is None:
        raise CommandError("give --export FILE (or nothing: a Management API export job)")
    try:
        found = measure(export, crm, settings)
    except SyncError as exc:
        raise CommandError(f"cannot read the CRM listing: {exc}") from exc
    document: dict[str, Any] = {
        "export": export,
        "users": found.users,
        "contacts": found.contacts,
        "states": found.states,
        "newer_than_export": found.newer_than_export,
        "in_step": not found.drift,
        "counts": found.counts(),
        "drift": [asdict(d) for d in found.drift],
    }
    left = found
    if args.fix and found.drift:
        braked = check(
            sum(d.kind == USER_GONE for d in found.drift),
            found.contacts,
            deactivations.limit_of(environ),
            args.allow_deactivations,
        )
        if braked.stopped:  # before the first write: the state is not forgotten either
            raise deactivations.stop(braked, "reconcile --fix")
        target = build_target(
            target=args.target,
            dry_run=False,
            bucket=bucket,
            stack=args.stack,
            functions=args.functions,
            timeout=args.timeout,
            environ=environ,
            batch=args.batch,
            batch_size=args.batch_size,
        )
        # The state is forgotten here, whichever target then runs the snapshots.
        store = DynamoSyncStateStore(settings.state_table)
        repaired = fix(found, export, target, store, workers=batch_workers(target, args.workers))
        left = measure(export, crm, settings)
        document["fix"] = {
            "events": repaired.attempted,
            "outcomes": dict(sorted(repaired.outcomes.items())),
            "problems": repaired.problems,
        }
        document["left_for_a_person"] = [asdict(d) for d in left.drift]
        document["in_step_after_fix"] = not left.drift
    orgs_left = False
    if args.organizations:
        document["organizations"], orgs_left = reconcile_organizations(
            settings, crm, environ, repair=args.fix, lease_seconds=args.timeout
        )
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            writer.writerows(d.row() for d in found.drift)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(_render(found, document, left if args.fix else None))
        if args.organizations:
            print(render_organizations(document["organizations"]))
    return EXIT_NEEDS_ATTENTION if left.drift or orgs_left else EXIT_OK


def _render(found: Comparison, document: dict[str, Any], left: Comparison | None) -> str:
    lines = [
        f"reconcile of {document['export']}: {found.users} Auth0 users, {found.contacts} "
        f"contacts, {found.states} sync states"
    ]
    if found.newer_than_export:
        lines.append(
            f"  {found.newer_than_export} user(s) changed after the export: not compared field "
            "by field"
        )
    if not found.drift:
        lines.append("in step: no drift")
        return "\n".join(lines)
    lines.append("drift: " + ", ".join(f"{k} {n}" for k, n in found.counts().items() if n))
    lines.append(_table([list(COLUMNS), *(d.row() for d in found.drift)]))
    if left is not None:
        fixed = document["fix"]
        outcomes = ", ".join(f"{k} {n}" for k, n in fixed["outcomes"].items())
        lines.append(f"fix: {fixed['events']} event(s) through the sync ({outcomes})")
        if left.drift:
            lines.append("left for a person:")
            lines.append(_table([list(COLUMNS), *(d.row() for d in left.drift)]))
        else:
            lines.append("in step after the fix")
    return "\n".join(lines)


EXAMPLES = """examples:
  auth0-sync reconcile --export users.json.gz
  auth0-sync reconcile --export users.json.gz --csv drift.csv --json
  auth0-sync reconcile --stack Auth0Sync --fix --rate 20   # a fresh export job"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reconcile",
        help="measure the drift between Auth0, the CRM and the sync state; --fix repairs it",
        description="Compare an Auth0 users export with the CRM's whole listing and the "
        "sync-state table. Reports Auth0 users with no contact, field differences (field "
        "by field), active contacts whose Auth0 user no longer exists, contacts claimed "
        "by two users, contacts claimed by no one, and state entries that disagree with the "
        "CRM. Exit 0 when in step, 1 when drift is found (after --fix: when some is left).",
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
        "--csv", metavar="FILE", type=output_file(), help="also write the drift as CSV to FILE"
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="repair what the rules allow through the sync (rate-limited), then report what "
        "is left for a person",
    )
    parser.add_argument(
        "--organizations",
        action="store_true",
        help="also compare the CRM's companies and memberships with Auth0's organizations, "
        "both ways (Management API scopes read:organizations, read:organization_members, "
        "read:organization_member_roles); with --fix, repair them",
    )
    add_target_arguments(parser, DEFAULT_RATE)
    deactivations.add_argument(parser, "--fix (contacts of users the export does not have)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run, checkpoint=None)
