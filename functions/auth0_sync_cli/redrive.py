"""`auth0-sync redrive`: what the scheduled function does, now, on demand.

Against local AWS (the default), the redrive core (`auth0_sync.redrive`) runs in this
process with the sync's environment, as `replay` does. With `--stack NAME` it invokes the
deployed redrive function synchronously (the same code, its own role and settings), so
this machine needs no CRM settings and no access to the token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.dead_letter import SqsDeadLetterQueue
from auth0_sync.errors import ConfigError
from auth0_sync.names import (
    REDRIVE_MAX_AGE_DAYS,
    REDRIVE_RATE_PER_SECOND,
    STACK_OUTPUT_REDRIVE_FUNCTION,
)
from auth0_sync.redrive import (
    DAY_SECONDS,
    MAX_FAILURES_IN_A_ROW,
    RedrivePolicy,
    probe_for,
    redrive,
    render,
)
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync.replay.queue import DlqError, DlqReader
from auth0_sync.replay.replayer import DEFAULT_VISIBILITY_SECONDS
from auth0_sync.settings import Settings
from auth0_sync_cli.argtypes import real_number, whole_number
from auth0_sync_cli.replay import locate
from auth0_sync_cli.replay.command import add_batch_arguments, quiet_handler_logs
from auth0_sync_cli.replay.local import local_replay
from auth0_sync_cli.replay.progress import Progress
from auth0_sync_cli.signals import sigterm_interrupts

DEFAULT_TIMEOUT_SECONDS = 30.0
REDRIVE_HELP = """\
One run of the automatic redrive (the scheduled function runs the same code).
It reads the DLQ; if some events failed only for transient reasons (CRM 5xx,
429, timeouts, a held lease...) and first failed within the age limit, it
probes the CRM with one GET and, when the CRM answers, replays them with
replay's safety: a message is deleted only once its event is applied or
skipped; an event failing again gets a new message with one more attempt and
its first failure. In this process it batches as `replay` does (--no-batch).
Permanent failures and old ones stay for a person
(`auth0-sync dlq list`, `dlq show ID`, `replay`, `dlq delete ID --reason`).

exit codes: 0 nothing left in the DLQ, 1 something failed again, is left for a
person, or the CRM did not answer (the run waits for the next), 2 a usage or
configuration error, 130 interrupted."""


def run_local(args: argparse.Namespace) -> dict[str, Any]:
    """One redrive run in this process, against the DLQ the flags or local-aws name."""
    queue_url = locate.resolve_queue_url(args.queue_url)
    settings = Settings.from_env(os.environ)
    failures = SqsDeadLetterQueue(queue_url)
    local = local_replay(
        settings,
        failures,
        bucket=TokenBucket(args.rate or REDRIVE_RATE_PER_SECOND),
        timeout=args.timeout,
        batch=args.batch,
        batch_size=args.batch_size,
    )
    replayer = local.replayer(
        DlqReader(queue_url, wait_seconds=locate.default_wait_seconds()),
        progress=Progress("redrive") if args.progress or sys.stderr.isatty() else None,
        visibility_seconds=DEFAULT_VISIBILITY_SECONDS,
        max_consecutive_failures=MAX_FAILURES_IN_A_ROW,
    )
    policy = RedrivePolicy((args.max_age_days or REDRIVE_MAX_AGE_DAYS) * DAY_SECONDS)
    with sigterm_interrupts():
        report = redrive(replayer, probe_for(settings), policy, max_events=args.limit)
    return {"queue_url": queue_url, **report.to_dict()}


def run_deployed(stack: str) -> dict[str, Any]:
    """Invoke the stack's redrive function and wait for its report."""
    name = locate.stack_outputs(stack).get(STACK_OUTPUT_REDRIVE_FUNCTION)
    if not name:
        raise ConfigError(
            f"--stack {stack}: no {STACK_OUTPUT_REDRIVE_FUNCTION} output (deployed with "
            "redrive=false?); `auth0-sync replay --target lambda --stack` replays by hand"
        )
    # One attempt (a retried invoke would be a second run); a run takes minutes.
    config = Config(read_timeout=910, retries={"max_attempts": 1, "mode": "standard"})
    try:
        response = boto3.client("lambda", config=config).invoke(
            FunctionName=name, InvocationType="RequestResponse", Payload=b"{}"
        )
        payload = json.loads(response["Payload"].read() or b"null")
    except (ClientError, BotoCoreError, ValueError) as exc:
        raise DlqError(f"--stack {stack}: cannot run the redrive function {name}: {exc}") from exc
    if response.get("FunctionError") or not isinstance(payload, dict) or "redriven" not in payload:
        error = payload if isinstance(payload, dict) else {}
        raise DlqError(
            f"--stack {stack}: the redrive function {name} failed: "
            f"{error.get('errorType', 'error')}: {error.get('errorMessage', payload)}"
        )
    return {"function": name, **payload}


# Flags of a local run; with --stack the function's own settings apply.
LOCAL_ONLY = ("queue_url", "max_age_days", "rate", "limit", "batch_size")


def run(args: argparse.Namespace) -> int:
    given = [f"--{name.replace('_', '-')}" for name in LOCAL_ONLY if getattr(args, name)]
    if args.stack and given:
        print(
            f"auth0-sync redrive: {', '.join(given)} apply to a local run; with --stack the "
            "deployed function uses its own settings (context keys redriveMaxAgeDays, ...)",
            file=sys.stderr,
        )
        return 2
    try:
        with quiet_handler_logs():
            report = run_deployed(args.stack) if args.stack else run_local(args)
    except (ConfigError, DlqError) as exc:
        print(f"auth0-sync redrive: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        where = report.get("function") or report.get("queue_url")
        print(f"redrive ({where}):")
        print(render(report))
    if report["interrupted"]:
        return 130
    clean = not (report["still_failing"] or report["left_for_a_person"] or report["stopped"])
    return 0 if clean else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "redrive",
        help="replay the DLQ's transient failures now, if the CRM answers (what the "
        "scheduled function does)",
        description=REDRIVE_HELP,
        epilog="examples:\n  auth0-sync redrive\n  auth0-sync redrive --stack Auth0Sync --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--queue-url", help="the DLQ (default: $DLQ_URL, else the local-aws queue)")
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help=f"run the deployed stack's redrive function ({STACK_OUTPUT_REDRIVE_FUNCTION} "
        "output) instead of this process",
    )
    parser.add_argument(
        "--max-age-days",
        type=real_number(above_zero=True),
        metavar="D",
        help="transient failures first seen longer ago stay for a person (default "
        f"{REDRIVE_MAX_AGE_DAYS})",
    )
    parser.add_argument(
        "--rate",
        type=real_number(above_zero=True),
        metavar="R",
        help=f"at most R CRM calls per second (default {REDRIVE_RATE_PER_SECOND:g}); batched, "
        "a batch request is one call",
    )
    parser.add_argument(
        "--limit", type=whole_number(1), metavar="N", help="redrive at most N events"
    )
    parser.add_argument(
        "--timeout",
        type=real_number(above_zero=True),
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="S",
        help="each event's time budget, like the handlers' timeout (default %(default)s)",
    )
    add_batch_arguments(parser)
    parser.add_argument("--progress", action="store_true", help="progress bar even off a TTY")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)
