"""`auth0-sync catch-up --since TIME [--until TIME]`: the events of a delivery gap, again.

When delivery stopped for a while (the partner source pending, the stream disabled after
failures, the bus deleted), the events of that gap never reached the handlers. The Events
API still has them: each is wrapped in the bus envelope and run through the same path as
a live event. Events that did arrive come again as duplicates, which the state item turns
away without a CRM call, so a generous window costs little.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from auth0_sync.errors import ConfigError, ManagementApiError
from auth0_sync.events import identity_of
from auth0_sync.lanes import Lanes
from auth0_sync.names import EventType
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync.streams.client import ManagementCredentials
from auth0_sync_cli.backfill.borrowed import quiet_handler_logs
from auth0_sync_cli.backfill.command import add_target_arguments, batch_workers
from auth0_sync_cli.backfill.engine import NEEDS_A_PERSON, category
from auth0_sync_cli.backfill.snapshot import bus_envelope
from auth0_sync_cli.backfill.targets import Target, build_target
from auth0_sync_cli.events_api import EventsClient
from auth0_sync_cli.exits import EXIT_INTERRUPTED, EXIT_NEEDS_ATTENTION, EXIT_OK, CommandError
from auth0_sync_cli.signals import sigterm_interrupts

DEFAULT_RATE = 10.0
HANDLED_TYPES = tuple(str(t) for t in EventType)


def parse_time(text: str) -> datetime:
    """An ISO-8601 time (`2026-03-01T09:00:00Z`); without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO-8601 time: {text!r} (e.g. 2026-03-01T09:00:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class CatchUpReport:
    since: str
    until: str
    read: int = 0
    outside: int = 0
    unreadable: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    crm_calls: int = 0
    last_offset: str | None = None
    interrupted: bool = False
    problems: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "events_read": self.read,
            "outside_the_window": self.outside,
            "unreadable_messages": self.unreadable,
            "by_type": dict(sorted(self.by_type.items())),
            "counts": dict(sorted(self.counts.items())),
            "reasons": dict(sorted(self.reasons.items())),
            "crm_calls": self.crm_calls,
            "last_event_id": self.last_offset,
            "interrupted": self.interrupted,
            "needs_a_person": self.problems,
        }

    def render(self) -> str:
        lines = [
            f"catch-up {self.since} .. {self.until}: {self.read} event(s) read from the Events "
            f"API ({', '.join(f'{t} {n}' for t, n in sorted(self.by_type.items())) or 'none'})"
        ]
        for name, n in sorted(self.counts.items()):
            detail = ", ".join(
                f"{r.split(':', 1)[1]} {k}"
                for r, k in sorted(self.reasons.items())
                if r.split(":", 1)[0] == name
            )
            lines.append(f"  {name:<16}{n:>6}   ({detail})")
        lines.append(f"  {'CRM calls':<16}{self.crm_calls:>6}")
        lines.extend(
            f"  needs a person: {p['event_id']} {p['user_id']} {p['reason']}: {p['message']}"
            for p in self.problems
        )
        if self.interrupted:
            lines.append(
                f"  interrupted: resume with --last-event-id {self.last_offset}"
                if self.last_offset
                else "  interrupted"
            )
        return "\n".join(lines)


def catch_up(
    client: EventsClient,
    target: Target,
    since: datetime,
    until: datetime,
    *,
    last_event_id: str | None = None,
    event_types: tuple[str, ...] = HANDLED_TYPES,
    idle_seconds: float = 10.0,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    workers: int = 1,
) -> CatchUpReport:
    """Run the window's events through the target, and stop once past `until`: at the
    first event at or after it, or at an offset-only heartbeat (the server has sent
    everything up to now) once now is past it.

    `workers` users' events run at once (`Lanes`): each user's (or organization's) in the
    order the API gives them, one after the other, so a target with batch calls carries
    independent users' CRM calls in batches. `last_offset` only passes an event once it
    and every event before it are done, so a resume skips nothing."""
    report = CatchUpReport(_stamp(since), _stamp(until))
    lanes = Lanes(workers)
    lock = threading.Lock()
    marks: deque[tuple[int, str]] = deque()  # (jobs that must be done, offset then passed)

    def passed(offset: str | None) -> None:
        if offset:
            marks.append((lanes.submitted(), offset))
        through = lanes.done_through()
        while marks and marks[0][0] <= through:
            report.last_offset = marks.popleft()[1]

    def run(event: dict[str, Any]) -> None:
        outcome = target.run(event)
        kind = category(outcome)
        with lock:
            report.counts[kind] += 1
            report.reasons[f"{kind}:{outcome.reason}"] += 1
            report.crm_calls += outcome.crm_calls
            if kind in NEEDS_A_PERSON:
                report.problems.append(
                    {
                        "event_id": outcome.event_id,
                        "user_id": outcome.user_id,
                        "reason": outcome.reason,
                        "message": outcome.message,
                    }
                )

    stop = False
    try:
        for item in client.events(
            since=_stamp(since),
            last_event_id=last_event_id,
            event_types=event_types,
            idle_seconds=idle_seconds,
        ):
            detail = item.event
            if detail is None:
                passed(item.offset)
                if item.caught_up:
                    if now() >= until:
                        break  # caught up, and the window is over: nothing more can be in it
                    continue
                report.unreadable += 1  # an event message without a CloudEvent object
                report.problems.append(
                    {
                        "event_id": None,
                        "user_id": None,
                        "reason": "unreadable_message",
                        "message": f"{item.name} message {item.offset}: its data has no "
                        "CloudEvent object under `event`",
                    }
                )
                continue
            moment = _time_of(detail)
            if moment is not None and moment >= until:
                break  # the API is in time order: the rest is after the gap
            report.read += 1
            if moment is None or moment < since or detail.get("type") not in event_types:
                report.outside += 1
                passed(item.offset)
                continue
            event_type = str(detail["type"])
            report.by_type[event_type] += 1
            event = bus_envelope(detail, event_type, str(detail.get("time")))
            lanes.submit(_whose(event), partial(run, event))
            passed(item.offset)
    except KeyboardInterrupt:
        report.interrupted = stop = True
    finally:
        try:
            lanes.close(stop=stop)
        except KeyboardInterrupt:
            report.interrupted = True
            lanes.close(stop=True)
        passed(None)
    return report


def _whose(event: dict[str, Any]) -> str:
    """The lane key of an event: its user, else its organization (else its own id)."""
    ids = identity_of(event)
    if ids["user_id"]:
        return f"user:{ids['user_id']}"
    obj = (event.get("detail") or {}).get("data", {}).get("object") or {}
    org = obj.get("id") if isinstance(obj, dict) else None
    return f"org:{org}" if org else f"event:{ids['event_id']}"


def _time_of(detail: dict[str, Any]) -> datetime | None:
    try:
        return parse_time(str(detail.get("time")))
    except argparse.ArgumentTypeError:
        return None


def run(args: argparse.Namespace) -> int:
    with quiet_handler_logs(), sigterm_interrupts():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    until: datetime = args.until or datetime.now(UTC)
    if until <= args.since:
        raise CommandError(f"--until {_stamp(until)} is not after --since {_stamp(args.since)}")
    environ = dict(os.environ)
    try:
        client = EventsClient(ManagementCredentials.from_env(environ))
    except ConfigError as exc:
        raise CommandError(f"the Events API: {exc}") from exc
    target = build_target(
        target=args.target,
        dry_run=False,
        bucket=TokenBucket(args.rate),
        stack=args.stack,
        functions=args.functions,
        timeout=args.timeout,
        environ=environ,
        batch=args.batch,
        batch_size=args.batch_size,
    )
    try:
        report = catch_up(
            client,
            target,
            args.since,
            until,
            last_event_id=args.last_event_id,
            idle_seconds=args.idle,
            workers=batch_workers(target, args.workers),
        )
    except ManagementApiError as exc:
        raise CommandError(exc.message) from exc
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_NEEDS_ATTENTION if report.problems else EXIT_OK


EXAMPLES = """examples:
  auth0-sync catch-up --since 2026-03-01T09:00:00Z --until 2026-03-01T13:30:00Z
  auth0-sync catch-up --since 2026-03-01T09:00:00Z --stack Auth0Sync --target lambda --json"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "catch-up",
        help="recover a delivery gap: run the gap's events from the Auth0 Events API",
        description="Pull the events of a window from the Auth0 Events API (GET "
        "/api/v2/events, Server-Sent Events; scope read:events; AUTH0_DOMAIN with "
        "AUTH0_MGMT_TOKEN or AUTH0_CLIENT_ID/AUTH0_CLIENT_SECRET) and run them through the "
        "same path as live events. Events that did arrive are duplicates and cost no CRM "
        "call. Use it when delivery stopped for a while, or after `auth0-sync streams "
        "health` reports failed deliveries.",
        epilog=EXAMPLES,
    )
    parser.add_argument(
        "--since", type=parse_time, required=True, metavar="TIME", help="start of the gap"
    )
    parser.add_argument(
        "--until", type=parse_time, metavar="TIME", help="end of the gap (default: now)"
    )
    parser.add_argument(
        "--last-event-id",
        metavar="ID",
        help="resume after this offset (an interrupted catch-up prints it)",
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=10.0,
        metavar="S",
        help="a stream silent this long, or sending only comment heartbeats, is read to "
        "its end (default %(default)s)",
    )
    add_target_arguments(parser, DEFAULT_RATE)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)
