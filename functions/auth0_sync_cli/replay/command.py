"""`auth0-sync replay`: run each dead-lettered event again and delete its message on success.

The loop and its safety are `auth0_sync.replay.replayer` (shared with the redrive); this
module builds it for a target (this process, or the deployed functions) and prints the
report. `--dry-run` computes each event's CRM change with `--target local`; with
`--target lambda` it shows which function each event would go to, and needs no CRM
settings on this machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from auth0_sync.dead_letter import SqsDeadLetterQueue
from auth0_sync.errors import ConfigError
from auth0_sync.names import SERVICE_NAME, STACK_OUTPUT_REPLAY_FUNCTIONS
from auth0_sync.replay.lambda_target import LambdaInvoker
from auth0_sync.replay.letters import group_by_event
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync.replay.queue import DlqError, DlqReader
from auth0_sync.replay.replayer import DEFAULT_VISIBILITY_SECONDS, Replayer, ReplayReport, Selection
from auth0_sync.settings import Settings
from auth0_sync_cli import deactivations
from auth0_sync_cli.argtypes import add_batch_arguments as batch_arguments
from auth0_sync_cli.argtypes import real_number, whole_number
from auth0_sync_cli.exits import CommandError
from auth0_sync_cli.replay import locate
from auth0_sync_cli.replay.local import local_replay
from auth0_sync_cli.replay.planning import Planner
from auth0_sync_cli.replay.progress import Progress
from auth0_sync_cli.signals import sigterm_interrupts

DEFAULT_TIMEOUT_SECONDS = 30.0
REPLAY_HELP = """\
Recover the original EventBridge event from each DLQ message (any of the three
shapes) and run it again: in this process (--target local, the default; needs
the sync's environment), or by invoking the deployed function synchronously
(--target lambda with --stack NAME or --functions; needs no CRM settings here).
A message is deleted only after its event is applied or skipped; an event that
fails again leaves a message with its new reason, one more attempt and its
first failure. Messages of one event are replayed once. With --target local,
independent users' events run at once (each user's in order, one at a time)
and their CRM calls go in the destination's batch calls (--no-batch: one event
after the other, one call a record).

exit codes: 0 everything replayed (or nothing to replay), 1 something is left
in the DLQ, 2 a usage or configuration error, 130 interrupted."""
DEFAULT_RATE = 10.0
# `--dry-run --target lambda` holds the messages only while listing them.
PREVIEW_VISIBILITY_SECONDS = 60


def make_replayer(
    queue_url: str,
    *,
    dry_run: bool = False,
    target: str = "local",
    functions: Mapping[str, str] | None = None,
    rate: float | None = None,
    progress: bool = False,
    visibility_seconds: int = DEFAULT_VISIBILITY_SECONDS,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    environ: Mapping[str, str] | None = None,
    wait_seconds: int | None = None,
    hold_deletes: bool = True,
    batch: bool = False,
    batch_size: int | None = None,
) -> Replayer:
    """The replayer for a target (local: this process; lambda: the deployed functions).
    `batch` (local): independent users' events at once, their CRM calls in the destination's
    batch calls (`auth0_sync_cli.replay.local`)."""
    env = os.environ if environ is None else environ
    wait = locate.default_wait_seconds(env) if wait_seconds is None else wait_seconds
    reader = DlqReader(queue_url, wait_seconds=wait)
    common: dict[str, Any] = {
        "limiter": TokenBucket(rate),
        "progress": Progress() if progress else None,
        "visibility_seconds": visibility_seconds,
    }
    if dry_run:
        planner = Planner(Settings.from_env(env), timeout=timeout)
        return Replayer(reader, plan=planner.plan, calls_made=planner.crm.calls_made, **common)
    failures = SqsDeadLetterQueue(queue_url)
    if target == "lambda":
        invoker = lambda_invoker(functions)
        return Replayer(
            reader, invoke=invoker.invoke, failures=failures, name_for=invoker.name_for, **common
        )
    # The handler's permanent failures go to this queue too, with the replayed history.
    local = local_replay(
        Settings.from_env(env),
        failures,
        bucket=TokenBucket(rate),
        timeout=timeout,
        batch=batch,
        batch_size=batch_size,
        hold_deletes=hold_deletes,
    )
    common.pop("limiter")
    return local.replayer(reader, **common)


def lambda_invoker(functions: Mapping[str, str] | None) -> LambdaInvoker:
    if not functions:
        raise ConfigError(
            "--target lambda needs --stack NAME (the deployed stack) or --functions "
            "user.created=NAME,user.updated=NAME,user.deleted=NAME"
        )
    invoker = LambdaInvoker(functions)
    invoker.check()
    return invoker


@contextmanager
def quiet_handler_logs() -> Iterator[None]:
    """Errors only from the handlers' loggers while inside: their per-event lines would
    bury the summary that says the same. The levels are restored on the way out."""
    names = [SERVICE_NAME, *logging.root.manager.loggerDict]
    loggers = [
        logging.getLogger(name)
        for name in names
        if name == SERVICE_NAME or name.startswith(SERVICE_NAME + ".")
    ]
    before = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in before:
            if logger.level == logging.ERROR:  # unless configured again meanwhile
                logger.setLevel(level)


def preview_lambda(
    queue_url: str, selection: Selection, invoker: LambdaInvoker, *, as_json: bool
) -> int:
    """`--dry-run --target lambda`: each selected event and the function it would go to."""
    reader = DlqReader(queue_url, wait_seconds=locate.default_wait_seconds())
    letters = reader.scan(PREVIEW_VISIBILITY_SECONDS)
    reader.release(letters)
    groups = group_by_event(x for x in letters if selection.matches(x))
    groups = groups[: selection.max_events] if selection.max_events is not None else groups
    rows = [
        {
            "event_id": group[0].event_id,
            "type": group[0].event_type,
            "user_id": group[0].user_id,
            "messages": len(group),
            "reason": group[0].reason,
            "function": invoker.name_for(group[0].event) if group[0].event else None,
        }
        for group in groups
    ]
    if as_json:
        print(json.dumps({"dry_run": True, "target": "lambda", "events": rows}, indent=2))
        return 0
    if not letters:
        print(f"nothing to replay: the DLQ {queue_url} is empty")
        return 0
    print(f"dry run (nothing sent, nothing deleted) of {queue_url}:")
    for row in rows:
        where = f"would invoke {row['function']}" if row["function"] else "cannot replay"
        print(
            f"  {row['event_id'] or '-'}  {row['type'] or '-'}  {row['user_id'] or '-'}  "
            f"{where}  (was: {row['reason']})"
        )
    print(f"  {len(rows)} event(s) selected of {len(letters)} message(s) read")
    return 0


def run(args: argparse.Namespace) -> int:
    with quiet_handler_logs():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    held = deactivations.HeldDeletes(args.allow_deactivations)
    selection = Selection(
        types=frozenset(args.type or ()),
        user_id=args.user,
        max_events=args.limit,
        wants=held.wants,
    )
    try:
        queue_url = locate.resolve_queue_url(args.queue_url, stack=args.stack)
        functions = args.functions
        if functions is None and args.stack and args.target == "lambda":
            functions = locate.functions_of_stack(args.stack)
        if args.dry_run and args.target == "lambda":
            return preview_lambda(
                queue_url, selection, lambda_invoker(functions), as_json=args.json
            )
        replayer = make_replayer(
            queue_url,
            dry_run=args.dry_run,
            target=args.target,
            functions=functions,
            rate=args.rate,
            progress=args.progress or sys.stderr.isatty(),
            visibility_seconds=args.visibility,
            timeout=args.timeout,
            hold_deletes=args.allow_deactivations is None,
            batch=args.batch and args.target == "local" and not args.dry_run,
            batch_size=args.batch_size,
        )
        with sigterm_interrupts():
            report = replayer.run(selection, held.gate)
        if note := held.note():
            report.warnings.append(note)
    except (ConfigError, DlqError) as exc:  # they say which setting: one line, exit 2
        raise CommandError(str(exc)) from exc
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(report, queue_url)
    if report.interrupted:
        return 130
    # Held deletes left alone, or more of them than allowed: they wait for a person.
    left = report.left or held.note() is not None or held.over()
    return 1 if left and not report.dry_run else 0


def print_report(report: ReplayReport, queue_url: str) -> None:
    if report.scanned == 0:
        print(f"nothing to replay: the DLQ {queue_url} is empty")
        return
    if report.selected_messages == 0:
        print(
            f"nothing to replay: none of the {report.scanned} message(s) in {queue_url} "
            "match the selection"
        )
        return
    title = "dry run (nothing written)" if report.dry_run else "replay"
    print(f"{title} of {queue_url}:")
    if report.dry_run:
        for result in report.results:
            print(f"  {result.line(dry_run=True)}")
    print(report.render())


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """--batch/--no-batch and --batch-size (replay and redrive, in this process)."""
    batch_arguments(
        parser,
        batch_help="--target local: run independent users' events at once (each user's one "
        "after the other, in order) and gather their CRM reads, creates and updates into the "
        "destination's batch calls (up to 100 records a request; Salesforce 200); --rate "
        "then counts a batch request as one call (default); --no-batch: one event after the "
        "other, one call a record",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="run dead-lettered events again; delete each message once its event is handled",
        description=REPLAY_HELP,
        epilog="examples:\n"
        "  auth0-sync replay --dry-run\n"
        "  auth0-sync replay --stack Auth0Sync --dry-run\n"
        "  auth0-sync replay --type user.updated --limit 10 --rate 5\n"
        "  auth0-sync replay --target lambda --stack Auth0Sync --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    locate.add_queue_argument(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing, delete nothing: with --target local, show what would happen to "
        "each event, including the CRM change (GETs only); with --target lambda, the function "
        "each event would go to",
    )
    parser.add_argument(
        "--limit", type=whole_number(1), metavar="N", help="replay at most N events"
    )
    # The old spelling, kept working for scripts; not shown in --help.
    parser.add_argument(
        "--max", dest="limit", type=whole_number(1), metavar="N", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--type",
        action="append",
        type=locate.event_type,
        metavar="TYPE",
        help=f"only events of this type (repeatable): {locate.EVENT_TYPES}",
    )
    parser.add_argument("--user", metavar="ID", help="only events of this Auth0 user id")
    parser.add_argument(
        "--rate",
        type=real_number(above_zero=True),
        default=DEFAULT_RATE,
        metavar="R",
        help="at most R CRM calls per second: batched, every request takes a token (a batch "
        "request is one); --no-batch or --target lambda, each event's calls are counted "
        "after it. The CRM's rate limit is shared with live traffic (default %(default)s)",
    )
    parser.add_argument(
        "--target",
        choices=("local", "lambda"),
        default="local",
        help="where each event runs: local = the handlers' code in this process, with the "
        "sync's environment (what `auth0-sync sandbox` prints); lambda = the deployed "
        "function of its type, invoked synchronously (default %(default)s)",
    )
    parser.add_argument(
        "--functions",
        type=locate.functions,
        metavar="TYPE=NAME,...",
        help="--target lambda: the function of each type (default: the --stack's "
        f"{STACK_OUTPUT_REPLAY_FUNCTIONS} output), e.g. "
        "user.created=Auth0Sync-HandlersUserCreated-AbC,user.updated=...,user.deleted=...",
    )
    parser.add_argument(
        "--timeout",
        type=real_number(above_zero=True),
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="S",
        help="--target local: the invocation's time budget, like the function's timeout "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--visibility",
        type=whole_number(1),
        default=DEFAULT_VISIBILITY_SECONDS,
        metavar="S",
        help="hide the messages in hand from other readers this long, renewed while "
        "replaying; a killed replay's messages come back after it (default %(default)s)",
    )
    add_batch_arguments(parser)
    deactivations.add_argument(parser)
    parser.add_argument("--progress", action="store_true", help="progress bar even off a TTY")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)
