"""`auth0-sync demo` (what `make demo` runs): the whole pipeline on this machine, told as a story.

It starts the reference CRM and local AWS (moto) on loopback, backfills the users that
existed before the stream (their users export, through `auth0-sync backfill`'s engine),
delivers a realistic Auth0 stream (with the identity lifecycles of `sample.ALL_CASES`
unless told otherwise) through the handlers' code while the CRM rate-limits and then goes
down, shows the DLQ, replays it once the CRM is back, and reconciles every contact of the
CRM (read through the contract's listing) against the Auth0 truth, which the generator
computes from its own model of each user; then `auth0-sync reconcile`'s comparison (an
export taken after the stream vs the CRM listing and the state table) gives its verdict.
It exits non-zero if any event was lost or any contact differs from the truth.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, TextIO

import boto3

from auth0_sync.crm import CircuitBreaker, Crm
from auth0_sync.dead_letter import MemoryDeadLetterQueue, SqsDeadLetterQueue
from auth0_sync.destinations.factory import build_crm
from auth0_sync.destinations.transport import OverTransport
from auth0_sync.names import CrmType, Env
from auth0_sync.org_state import DynamoOrgStateStore
from auth0_sync.organizations import OrganizationSync
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync.runtime import build_organizations, destination_secret
from auth0_sync.service import SyncService
from auth0_sync.settings import Settings
from auth0_sync.state import DynamoSyncStateStore, StateStore
from auth0_sync.sync import Outcome, SyncCore
from auth0_sync_cli import demo_orgs
from auth0_sync_cli.argtypes import whole_number
from auth0_sync_cli.backfill.checkpoint import Checkpoint
from auth0_sync_cli.backfill.engine import CATEGORIES, OTHER, Backfill, BackfillReport
from auth0_sync_cli.backfill.targets import Target, build_target, crm_client
from auth0_sync_cli.demo_brake import brake_lines, planted_mass_deactivation
from auth0_sync_cli.demo_crm import DemoDestination, demo_destination
from auth0_sync_cli.demo_orgs import DEMO_ORGANIZATIONS
from auth0_sync_cli.dlq import DeadLetter, DlqReader, list_letters, render_table, summary_line
from auth0_sync_cli.exits import CommandError
from auth0_sync_cli.export import read_export
from auth0_sync_cli.local_aws import LocalAws
from auth0_sync_cli.paths import output_file
from auth0_sync_cli.reconcile import UNCLAIMED, Comparison, measure
from auth0_sync_cli.replay import ReplayReport, Selection, make_replayer, quiet_handler_logs
from auth0_sync_cli.replay.progress import Progress, on_a_terminal
from auth0_sync_cli.runner import LocalRunner
from auth0_sync_cli.sample import ALL_CASES, BACKFILL_ID_PREFIX, SampleStream, generate
from auth0_sync_cli.signals import sigterm_interrupts
from auth0_sync_cli.tally import Tally
from auth0_sync_cli.truth import KINDS, kinds, lost_events, reconcile

DEFAULT_USERS = 200
DEFAULT_SEED = 7
# The share of the users that signed up before the stream was enabled: the backfill's.
EXISTING_SHARE = 0.15
BACKFILL_WORKERS = 4
# Where the CRM misbehaves, as shares of the stream: [start, end).
RATE_LIMIT_SPAN = (0.35, 0.47)
RATE_LIMIT_RPS = 5.0
OUTAGE_SPAN = (0.55, 0.60)
OUTAGE_STATUS = 503
# Lambda waits a minute or two between retries and a function may run for 30 s; the demo
# keeps the same steps with short waits so the story fits in a minute or so.
DEMO_TIMEOUT_SECONDS = 4.0
DEMO_RETRY_BACKOFF_SECONDS = 0.05
DEMO_CRM_ATTEMPTS = 3
# The CRM client's circuit breaker waits 30 s before it probes a CRM that was down; in the
# demo's compressed time that would dead-letter the whole "CRM back up" phase.
DEMO_BREAKER_COOL_DOWN_SECONDS = 0.5
SHOWN_DLQ_ROWS = 8
SHOWN_PROBLEMS = 10
# Quiet handler logs: the demo prints the story, the handlers' JSON logs would bury it.
QUIET_ENVIRONMENT = {
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


# DLQ depth is sampled this often for the timeline (--plot).
DEPTH_SAMPLE_SECONDS = 0.2


@dataclass
class Timeline:
    """When things happened, in seconds since the demo started: what `--plot` draws."""

    started: float = field(default_factory=time.monotonic)
    # (seconds, status, reason, event type, CRM calls) of every delivered event: what the
    # handlers' metrics would count (`make pictures` draws the dashboard from them).
    deliveries: list[tuple[float, str, str, str | None, int]] = field(default_factory=list)
    # (label, start, end): the rate limit, the outage, the replay.
    windows: list[tuple[str, float, float]] = field(default_factory=list)
    # (seconds, messages in the DLQ, visible or not).
    dlq_depth: list[tuple[float, int]] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    def to_dict(self) -> dict[str, Any]:
        return {
            "deliveries": [[round(t, 3), *rest] for t, *rest in self.deliveries],
            "windows": [[label, round(a, 3), round(b, 3)] for label, a, b in self.windows],
            "dlq_depth": [[round(t, 3), n] for t, n in self.dlq_depth],
        }


class DepthSampler:
    """Reads the DLQ's depth every DEPTH_SAMPLE_SECONDS into the timeline, in a thread."""

    def __init__(self, queue_url: str, timeline: Timeline) -> None:
        # The client is made here: boto3's default session is not safe to share across threads.
        self.reader = DlqReader(queue_url, boto3.client("sqs"), wait_seconds=0)
        self.timeline = timeline
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="dlq-depth", daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                depth = self.reader.depth()
            except Exception:  # a missed sample must not stop the demo
                depth = None
            if depth is not None:
                self.timeline.dlq_depth.append((self.timeline.now(), depth))
            self.stopped.wait(DEPTH_SAMPLE_SECONDS)

    def start(self) -> DepthSampler:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


@dataclass
class Ledger:
    """Every outcome of every delivery and replay, to prove nothing was lost."""

    phase: Tally = field(default_factory=Tally)
    stream: Tally = field(default_factory=Tally)
    # (event id, status, reason) of every delivery and replay, in order.
    outcomes: list[tuple[str | None, str, str]] = field(default_factory=list)
    timeline: Timeline = field(default_factory=Timeline)
    # The current step's progress line (a terminal only).
    progress: Progress | None = None

    def add(self, outcome: Outcome) -> None:
        if self.progress is not None:
            self.progress.update(outcome)
        self.phase.add(outcome)
        self.stream.add(outcome)
        self.outcomes.append((outcome.event_id, outcome.status, outcome.reason))
        self.timeline.deliveries.append(
            (
                self.timeline.now(),
                outcome.status,
                outcome.reason,
                outcome.event_type,
                outcome.crm_calls,
            )
        )

    def next_phase(self) -> Tally:
        done, self.phase = self.phase, Tally()
        return done


class Story:
    """Numbered steps with a one-line explanation each, and their timing."""

    def __init__(self, out: TextIO) -> None:
        self.step = 0
        self.started = time.monotonic()
        self.out = out

    def print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def say(self, title: str, *details: str) -> None:
        self.step += 1
        self.print(f"\n{self.step:>2}. {title}")
        for line in details:
            self.print(f"    {line}")

    def note(self, line: str) -> None:
        self.print(f"    {line}")


def _outcome_line(tally: Tally, seconds: float) -> str:
    data = tally.to_dict()
    failed = sum(data["failed"].values())
    # Why, when any: a healthy CRM still sees the lifecycles' refusals (owned_by_other).
    why = f" ({_counts(data['failed'])})" if failed else ""
    return (
        f"{tally.events} events: {data['applied']} applied, "
        f"{sum(data['skipped'].values())} skipped, {failed} dead-lettered{why}, "
        f"{tally.crm_calls} CRM calls ({seconds:.1f}s)"
    )


def _counts(counter: Counter[str] | dict[str, int]) -> str:
    items = sorted(counter.items())
    return ", ".join(f"{reason} {n}" for reason, n in items) or "none"


def invocation_seconds(crm: object, base: float = DEMO_TIMEOUT_SECONDS) -> float:
    """The demo's invocation timeout for `crm`: its short `base`, plus the longest the
    client may wait for a slot of a rate limit the CRM declares (HubSpot's rolling window,
    as its headers say: 10 s by default), plus the margin the client keeps free of the
    deadline. Lambda's retry delays are scaled down in the demo; the CRM's window is not,
    and a client that cannot wait it out dead-letters events the CRM would have taken."""
    if not isinstance(crm, OverTransport):
        return base
    longest = max((limit.window for limit in crm.limits), default=0.0)
    if not longest:
        return base
    return base + longest + crm.transport.policy.margin_ms / 1000


def demo_runner(
    settings: Settings,
    crm: Crm,
    state: StateStore,
    dlq: SqsDeadLetterQueue | MemoryDeadLetterQueue,
    on_outcome: Callable[[Outcome], None],
    base_timeout: float = DEMO_TIMEOUT_SECONDS,
    organizations: OrganizationSync | None = None,
) -> LocalRunner:
    """The handlers' service on `crm`, retried like Lambda with the demo's short waits,
    each invocation long enough to wait out the CRM's declared rate limit."""
    service = SyncService(
        SyncCore(settings, crm, state), dlq, on_outcome=on_outcome, organizations=organizations
    )
    return LocalRunner(
        service,
        dlq,
        backoff_seconds=DEMO_RETRY_BACKOFF_SECONDS,
        timeout_seconds=invocation_seconds(crm, base_timeout),
    )


def build_runner(settings: Settings, dlq: SqsDeadLetterQueue, ledger: Ledger) -> LocalRunner:
    """The handlers' service, as `process` builds it (the adapter of CRM_TYPE), with the
    demo's short retry waits."""
    crm = build_crm(
        settings,
        destination_secret(settings),
        max_attempts=DEMO_CRM_ATTEMPTS,
        backoff_base=DEMO_RETRY_BACKOFF_SECONDS,
        breaker=CircuitBreaker(cool_down=DEMO_BREAKER_COOL_DOWN_SECONDS),
    )
    state = DynamoSyncStateStore(settings.state_table)
    organizations = build_organizations(
        settings, crm, state, DynamoOrgStateStore(settings.state_table, state.client)
    )
    return demo_runner(settings, crm, state, dlq, ledger.add, organizations=organizations)


def _deliver(runner: LocalRunner, events: Sequence[Any]) -> None:
    for raw in events:
        runner.run(raw)


def _span(total: int, share: tuple[float, float]) -> tuple[int, int]:
    return int(total * share[0]), int(total * share[1])


def _show_dlq(story: Story, letters: Sequence[DeadLetter]) -> None:
    if not letters:
        story.note("(empty)")
        return
    table = render_table(letters[:SHOWN_DLQ_ROWS]).splitlines()
    for line in table:
        story.note(line[:150])
    if len(letters) > SHOWN_DLQ_ROWS:
        story.note(f"... and {len(letters) - SHOWN_DLQ_ROWS} more")
    story.note(summary_line(letters))


def _dry_run_lines(report: ReplayReport) -> list[str]:
    lines = [
        f"would apply {sum(report.counts('applied').values())} "
        f"({_counts(report.counts('applied'))}); "
        f"would skip {sum(report.counts('skipped').values())} "
        f"({_counts(report.counts('skipped'))}); "
        f"would fail again {sum(report.counts('failed').values())} "
        f"({_counts(report.counts('failed'))})",
        "for example:",
    ]
    examples = [r for r in report.results if r.planned][:2]
    examples += [r for r in report.results if r.status != "applied"][:2]
    for result in examples:
        lines.extend("  " + line[:140] for line in result.line(dry_run=True).splitlines())
    return lines


@dataclass
class RecordedTarget:
    """The backfill's target, noting each snapshot's outcome in the ledger under the id the
    generator's model gives that user's backfill (so no snapshot can be lost unseen)."""

    inner: Target
    ledger: Ledger
    name: str = "local"
    dry_run: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, raw: dict[str, Any]) -> Outcome:
        outcome = self.inner.run(raw)
        user_id = raw["detail"]["data"]["object"].get("user_id")
        with self.lock:
            self.ledger.outcomes.append(
                (f"{BACKFILL_ID_PREFIX}{user_id}", outcome.status, outcome.reason)
            )
        return outcome


def write_export(path: str, users: Sequence[dict[str, Any]]) -> str:
    """A users export as Auth0's export job writes it (format json: one user a line)."""
    with open(path, "w", encoding="utf-8") as out:
        for user in users:
            out.write(json.dumps(user) + "\n")
    return path


def backfill(path: str, settings: Settings, ledger: Ledger, timeout: float) -> BackfillReport:
    """What `auth0-sync backfill --export PATH` does (target local), in this process, each
    invocation `timeout` seconds long (the stream's)."""
    bucket = TokenBucket(None)
    target = build_target(
        target="local",
        dry_run=False,
        bucket=bucket,
        timeout=timeout,
        backoff_seconds=DEMO_RETRY_BACKOFF_SECONDS,
        environ=os.environ,
    )
    engine = Backfill(
        RecordedTarget(target, ledger),
        Checkpoint(None, path),
        workers=BACKFILL_WORKERS,
        listing=crm_client(settings, bucket),
    )
    return engine.run(read_export(path))


def backfill_line(report: BackfillReport) -> str:
    shown = [name for name in (*CATEGORIES, *OTHER) if report.counts[name]]
    shown = [name for name in CATEGORIES[:3] if name not in shown] + shown
    parts = ", ".join(
        f"{name.replace('_', ' ')} {report.counts[name]}"
        for name in (*CATEGORIES, *OTHER)
        if name in shown
    )
    return (
        f"backfill: {report.users} users: {parts}; {report.crm_calls} CRM calls "
        f"({report.seconds:.1f}s)"
    )


def reconcile_line(found: Comparison) -> str:
    head = (
        f"auth0-sync reconcile: {found.users} Auth0 users, {found.contacts} contacts, "
        f"{found.states} sync states: "
    )
    if not found.drift:
        return head + "in step"
    line = head + "drift " + ", ".join(f"{k} {n}" for k, n in found.counts().items() if n)
    if {k for k, n in found.counts().items() if n} == {UNCLAIMED}:
        line += " (contacts from before that no Auth0 user claims: left for a person)"
    return line


CASE_STORY = {
    "resignups_same_id": "re-signups under the same social id",
    "resignups_new_id": "re-signups under a new id (same email)",
    "links": "account links (both arrival orders)",
    "hints": "app_metadata ids pointing at another user's contact",
    "email_swaps": "email swaps",
    "removals": "removed fields",
    "naive_times": "change times without an offset",
    "ties": "equal change times",
    "bystanders": "contacts from before that nobody claims",
    "no_email": "users without an email",
    "unverified": "unverified signups with another's address",
    "blocked": "blocked users (half of them unblocked again)",
    "unlinks": "accounts linked, then unlinked",
}


def _lifecycles_line(counts: dict[str, int]) -> str | None:
    parts = [f"{counts[key]} {text}" for key, text in CASE_STORY.items() if counts.get(key)]
    return ("lifecycles: " + ", ".join(parts)) if parts else None


def _reconciliation(
    sample: SampleStream,
    target: DemoDestination,
    ledger: Ledger,
    replay: ReplayReport,
    dlq_before: Sequence[DeadLetter],
    dlq_after: Sequence[DeadLetter],
) -> tuple[list[tuple[str, str, str]], int, int, int]:
    stats = target.server.stats()  # before the listing: its GETs are the check's
    contacts = target.contacts()
    truth = sample.truth
    mismatches = reconcile(truth, contacts, fields=target.fields, stored=target.stored)
    stream_ids = {e["detail"]["id"] for e in sample.events}
    left_ids = {x.event_id for x in dlq_after}
    lost = lost_events(truth, ledger.outcomes, left_ids)
    unexpected = left_ids - set(sample.poison_ids)
    endings = truth.counts()
    statuses = Counter(str(c.get("status")) for c in contacts)
    seeded = {item.contact_id for item in truth.preexisting}
    unowned = sum(1 for c in contacts if c["id"] in seeded and not c.get("auth0_user_id"))
    methods = stats["by_method"]
    by_status = stats["by_status"]
    stream = ledger.stream.to_dict()
    rows = [
        (
            "Auth0 users (truth)",
            str(len(truth.users)),
            f"{endings['alive']} alive, {endings['deleted']} deleted, "
            f"{endings['linked']} linked into another account",
        ),
        (
            "CRM contacts",
            str(len(contacts)),
            f"{_counts(statuses)}; {len(seeded)} from before the stream, {unowned} still "
            "owned by nobody",
        ),
        (
            "Mismatches",
            str(len(mismatches)),
            "every contact against the truth, both ways"
            + (f": {_counts(kinds(mismatches))}" if mismatches else ""),
        ),
        ("Events in the stream", str(len(sample.events)), f"{len(stream_ids)} distinct ids"),
        (
            "Lost events",
            str(len(lost)),
            "every event applied, skipped for a reason the truth justifies, or in the DLQ",
        ),
        (
            "CRM calls",
            str(stats["total"]),
            f"GET {methods.get('GET', 0)}, POST {methods.get('POST', 0)}, "
            f"PATCH {methods.get('PATCH', 0)}; answered 429 {by_status.get('429', 0)}, "
            f"{OUTAGE_STATUS} {by_status.get(str(OUTAGE_STATUS), 0)}",
        ),
        ("Delivered: applied", str(stream["applied"]), _counts(stream["applied_by"])),
        (
            "Delivered: skipped",
            str(sum(stream["skipped"].values())),
            _counts(stream["skipped"]),
        ),
        (
            "Delivered: to the DLQ",
            str(sum(stream["failed"].values())),
            _counts(stream["failed"]),
        ),
        (
            "Replayed",
            str(len(replay.results)),
            f"applied {_counts(replay.counts('applied'))}; "
            f"skipped {_counts(replay.counts('skipped'))}; "
            f"failed again {_counts(replay.counts('failed'))}",
        ),
        ("DLQ before replay", str(len(dlq_before)), summary_line(dlq_before).split(": ", 1)[-1]),
        (
            "DLQ after replay",
            str(len(dlq_after)),
            "the malformed event (poison: fix it at the source)"
            if left_ids and not unexpected
            else summary_line(dlq_after).split(": ", 1)[-1],
        ),
    ]
    for problem in mismatches[:SHOWN_PROBLEMS]:
        rows.append(("  mismatch", "", f"{KINDS[problem.kind]}: {problem}"))
    if len(mismatches) > SHOWN_PROBLEMS:
        rows.append(("  mismatch", "", f"... and {len(mismatches) - SHOWN_PROBLEMS} more"))
    org_rows, org_mismatches = demo_orgs.org_rows(sample, target.server, contacts, SHOWN_PROBLEMS)
    rows[3:3] = org_rows
    for event_id in sorted(lost)[:SHOWN_PROBLEMS]:
        rows.append(("  lost", "", f"{event_id}: {lost[event_id]}"))
    if len(lost) > SHOWN_PROBLEMS:
        rows.append(("  lost", "", f"... and {len(lost) - SHOWN_PROBLEMS} more"))
    return rows, len(mismatches) + org_mismatches, len(lost), len(unexpected)


@dataclass
class DemoResult:
    """What the demo found: its exit code, the reconciliation rows and the counts."""

    exit_code: int
    crm: str
    seconds: float
    rows: list[tuple[str, str, str]]
    counts: dict[str, Any]
    timeline: Timeline

    def to_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "ok": self.exit_code == 0,
            "crm": self.crm,
            "seconds": round(self.seconds, 1),
            "reconciliation": [
                {"name": name.strip(), "value": int(value) if value else None, "detail": detail}
                for name, value, detail in self.rows
            ],
            "counts": self.counts,
        }


def run_demo(
    users: int,
    seed: int,
    cases: Sequence[str] = ALL_CASES,
    *,
    crm_type: CrmType = CrmType.REST,
    unique_emails: bool = False,
    out: TextIO | None = None,
    sample_depth: bool = False,
) -> DemoResult:
    """The story, told on `out` (stdout by default), against the reference CRM or a
    vendor's fake (`crm_type`); exit code 0 when the CRM equals the truth and no event was
    lost. `sample_depth`: record the DLQ's depth for the timeline."""
    os.environ.update(QUIET_ENVIRONMENT)
    story = Story(sys.stdout if out is None else out)
    target = demo_destination(crm_type, unique_emails=unique_emails, rps=RATE_LIMIT_RPS)
    story.print(
        "auth0-sync demo: Auth0 Event Streams -> EventBridge -> handlers -> CRM, on this machine"
    )
    story.print(f"(no AWS account: the AWS APIs are moto on loopback, the CRM is {target.name})")
    with ExitStack() as running:
        running.enter_context(quiet_handler_logs())
        # Port 0: the OS picks a free port as the server binds it (no probe, no race).
        crm = target.server
        crm.start()
        running.callback(crm.stop)
        aws = LocalAws(port=0, crm_token=target.secret)
        resources = aws.start()
        running.callback(aws.stop)
        os.environ.update(resources.environment())
        os.environ[Env.CRM_TYPE] = str(crm_type)
        os.environ[Env.CRM_BASE_URL] = crm.base_url
        os.environ.pop(Env.CRM_API_TOKEN, None)  # the token comes from the secret, as in AWS
        os.environ.pop(Env.FIELD_MAPPING, None)  # the destination's default mapping
        story.say(
            f"Start {target.name} (CRM_TYPE={crm_type}) and local AWS on loopback",
            f"CRM {crm.base_url} ({target.describe})",
            f"AWS {aws.endpoint_url} (moto): table {resources.state_table}; DLQ; "
            "the CRM secret in Secrets Manager, in the destination's shape",
        )

        workdir = running.enter_context(tempfile.TemporaryDirectory(prefix="auth0-sync-demo-"))
        sample = generate(
            users,
            seed=seed,
            cases=cases,
            existing_share=EXISTING_SHARE,
            organizations=DEMO_ORGANIZATIONS if crm_type == CrmType.REST else 0,
        )
        sample.seed_preexisting(lambda fields: crm.seed_contact(**fields))
        c = sample.counts
        claimed = sum(1 for p in sample.people.values() if p.claims is not None)
        lines = [
            f"{c['signups']} signups, {c['profile_changes']} profile changes, {c['logins']} "
            f"logins (noise: no CRM call), {c['deletes']} deletes, {c['duplicates']} "
            "redeliveries, a fifth out of order",
            "plus a test event, a malformed event, an unknown type and a legacy type name; "
            f"{claimed} of the users are already in the CRM (linked by email)",
        ]
        lifecycles = _lifecycles_line(c)
        if lifecycles is not None:
            lines.append(lifecycles)
        organizations_line = demo_orgs.story_line(sample)
        if organizations_line is not None:
            lines.append(organizations_line)
        extra = len(sample.people) - users
        who = f"{users} users" + (f" and {extra} more in the lifecycles" if extra else "")
        if sample.existing:
            lines.append(
                f"{len(sample.existing)} of the users signed up before the stream was enabled: "
                "no signup event, a users export instead"
            )
        story.say(
            f"Generate an Auth0 stream: {who} (seed {seed}), {len(sample.events)} events",
            *lines,
        )

        settings = Settings.from_env(os.environ)
        dlq = SqsDeadLetterQueue(resources.dlq_url)
        ledger = Ledger()
        timeline = ledger.timeline
        if sample_depth:
            running.callback(DepthSampler(resources.dlq_url, timeline).start().stop)
        runner = build_runner(settings, dlq, ledger)

        existing = {str(user["user_id"]) for user in sample.existing}
        again = sum(1 for u in existing if len(sample.people[u].changes) > 1)
        backfilled = backfill(
            write_export(os.path.join(workdir, "users-before.json"), sample.existing),
            settings,
            ledger,
            runner.timeout_seconds,
        )
        story.say(
            f"Backfill the {len(existing)} users from before the stream (auth0-sync backfill "
            "--export FILE): each a user.updated snapshot at its updated_at, through the core",
            f"{again} of them change again in the stream: those later events win over the "
            "snapshot; a snapshot never overwrites a newer event",
        )
        story.note(backfill_line(backfilled))
        total = len(sample.events)
        limit_from, limit_to = _span(total, RATE_LIMIT_SPAN)
        outage_from, outage_to = _span(total, OUTAGE_SPAN)
        phases: list[tuple[int, int, str, Callable[[], None] | None, str | None]] = [
            (0, limit_from, "Deliver events to the handlers, CRM healthy", None, None),
            (
                limit_from,
                limit_to,
                target.rate_limit_title,
                lambda: crm.set_rate_limit(RATE_LIMIT_RPS),
                "429 rate limit",
            )
            if target.rate_limit_title is not None
            else (
                limit_from,
                limit_to,
                f"No rate-limit phase ({target.no_rate_limit}); CRM healthy",
                None,
                None,
            ),
            (
                limit_to,
                outage_from,
                "Rate limit off" if target.rate_limit_title is not None else "CRM healthy",
                lambda: crm.set_rate_limit(None),
                None,
            ),
            (
                outage_from,
                outage_to,
                f"CRM outage (every request answers {OUTAGE_STATUS}): each event is retried "
                "like Lambda, then dead-lettered; login noise needs no CRM and goes through",
                lambda: crm.set_outage(OUTAGE_STATUS),
                f"{OUTAGE_STATUS} outage",
            ),
            (
                outage_to,
                total,
                "CRM back up: deliver the rest",
                lambda: crm.set_outage(None),
                None,
            ),
        ]
        for start, end, title, switch, window in phases:
            if switch is not None:
                switch()
            window_start = timeline.now()
            began = time.monotonic()
            answered = Counter(crm.stats()["by_status"])
            story.say(f"{title}: events {start + 1}-{end}")
            ledger.progress = on_a_terminal(f"    events {start + 1}-{end}", end - start)
            _deliver(runner, sample.events[start:end])
            if ledger.progress is not None:
                ledger.progress.clear()
                ledger.progress = None
            line = _outcome_line(ledger.next_phase(), time.monotonic() - began)
            answered = Counter(crm.stats()["by_status"]) - answered
            # 429 and 5xx are the faults; a 409 is the contract's "email known" (then linked).
            faults = {c: n for c, n in answered.items() if c == "429" or c.startswith("5")}
            if faults:
                line += "; the CRM answered " + ", ".join(
                    f"{code} x{n}" for code, n in sorted(faults.items())
                )
            story.note(line)
            if window is not None:
                timeline.windows.append((window, window_start, timeline.now()))

        reader = DlqReader(resources.dlq_url, wait_seconds=0)
        dlq_before = list_letters(reader)
        story.say("The DLQ now (auth0-sync dlq list): the CRM's failures and the malformed event")
        _show_dlq(story, dlq_before)

        began = time.monotonic()
        dry = make_replayer(resources.dlq_url, dry_run=True, visibility_seconds=60, wait_seconds=0)
        dry_report = dry.run(Selection())
        story.say(
            "Dry run (auth0-sync replay --dry-run): what a replay would do; GETs only, "
            "nothing written, nothing deleted",
            *_dry_run_lines(dry_report),
        )
        story.note(f"({time.monotonic() - began:.1f}s; the DLQ still holds {reader.depth()})")

        began = time.monotonic()
        replay_start = timeline.now()
        replayer = make_replayer(
            resources.dlq_url, progress=sys.stderr.isatty(), visibility_seconds=60, wait_seconds=0
        )
        replay_report = replayer.run(Selection())
        timeline.windows.append(("replay", replay_start, timeline.now()))
        ledger.outcomes.extend((r.event_id, r.status, r.reason) for r in replay_report.results)
        story.say("Replay the DLQ (auth0-sync replay), the CRM healthy again")
        for line in replay_report.render().splitlines():
            story.note(line)
        story.note(f"({time.monotonic() - began:.1f}s)")

        dlq_after = list_letters(reader)
        rows, mismatches, lost, unexpected = _reconciliation(
            sample, target, ledger, replay_report, dlq_before, dlq_after
        )
        # After the truth's listing: the comparison's GETs are not counted as the sync's.
        found = measure(
            write_export(os.path.join(workdir, "users-after.json"), sample.export_now()),
            crm_client(settings, TokenBucket(None)),
            settings,
        )
        story.say("Reconciliation: Auth0 truth vs the CRM")
        width = max(len(name) for name, _, _ in rows)
        for name, value, detail in rows:
            story.note(f"{name:<{width}}  {value:>6}   {detail}")
        story.note(reconcile_line(found))

        # After the reconciliation: the brake writes nothing, so nothing above changes.
        began = time.monotonic()
        braked = planted_mass_deactivation(workdir, crm_client(settings, TokenBucket(None)))
        story.say("The deactivation brake: a planted mass deactivation", *brake_lines(braked))
        story.note(f"({time.monotonic() - began:.1f}s)")

    elapsed = time.monotonic() - story.started
    counts = {
        "crm": str(crm_type),
        "users": users,
        "seed": seed,
        "events": len(sample.events),
        "mismatches": mismatches,
        "lost_events": lost,
        "unexpected_in_dlq": unexpected,
        "dlq_before_replay": len(dlq_before),
        "dlq_after_replay": len(dlq_after),
        "delivered": ledger.stream.to_dict(),
        "backfill": {
            "users": backfilled.users,
            "counts": {name: backfilled.counts[name] for name in (*CATEGORIES, *OTHER)},
            "crm_calls": backfilled.crm_calls,
        },
        "reconcile": {"in_step": not found.drift, "drift": found.counts()},
        "brake": {
            "planned": braked.planned,
            "contacts": braked.contacts,
            "allowed": braked.allowed,
            "stopped": braked.stopped,
        },
        "replayed": {
            status: dict(sorted(replay_report.counts(status).items()))
            for status in ("applied", "skipped", "failed")
        },
    }
    if mismatches or lost or unexpected:
        story.print(
            f"\nFAILED: {mismatches} mismatch(es), {lost} lost event(s), {unexpected} "
            f"unexpected message(s) left in the DLQ ({elapsed:.0f}s)"
        )
        return DemoResult(1, str(crm_type), elapsed, rows, counts, timeline)
    story.print(
        f"\nOK: the CRM equals the Auth0 truth, 0 mismatches, 0 lost events; "
        f"every process stopped ({elapsed:.0f}s)"
    )
    return DemoResult(0, str(crm_type), elapsed, rows, counts, timeline)


def case_list(text: str) -> tuple[str, ...]:
    """`all`, `none`, or lifecycle names separated by commas (see sample.ALL_CASES)."""
    if text == "all":
        return ALL_CASES
    if text == "none":
        return ()
    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in chosen if name not in ALL_CASES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown case(s) {unknown or [text]}: give all, none, or some of "
            f"{', '.join(ALL_CASES)}"
        )
    return chosen


PLOT_NEEDS = (
    "--plot needs matplotlib, which `make demo` does not install: "
    "`.venv/bin/pip install -r requirements-dev.txt` (or `make install`), then run again"
)


UNIQUE_EMAILS_REST_ONLY = (
    "--unique-emails is the reference CRM's mode (--crm rest); HubSpot and Salesforce have "
    "their own uniqueness rules, which their fakes always apply: drop --unique-emails"
)


def run(args: argparse.Namespace) -> int:
    if args.unique_emails and args.crm != CrmType.REST:
        args.parser.error(UNIQUE_EMAILS_REST_ONLY)
    draw = None
    if args.plot:
        try:  # only now: the demo's own import stays light, matplotlib optional
            from auth0_sync_cli.plot import draw_timeline
        except ImportError as exc:
            raise CommandError(PLOT_NEEDS) from exc
        draw = draw_timeline
    try:
        with sigterm_interrupts():
            result = run_demo(
                args.users,
                args.seed,
                args.cases,
                crm_type=CrmType(args.crm),
                unique_emails=args.unique_emails,
                # With --json, stdout holds the one JSON document; the story goes to stderr.
                out=sys.stderr if args.json else sys.stdout,
                sample_depth=draw is not None,
            )
    except OSError as exc:
        raise CommandError(f"cannot start the demo's servers: {exc}") from exc
    document = result.to_dict()
    if draw is not None:
        try:
            draw(result.timeline.to_dict(), args.plot)
        except OSError as exc:
            raise CommandError(f"--plot {args.plot}: {exc.strerror or exc}") from exc
        document["plot"] = args.plot
        if not args.json:
            print(f"timeline written to {args.plot}")
    if args.json:
        print(json.dumps(document, indent=2))
    return result.exit_code


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole pipeline on this machine: backfill, stream, CRM faults, DLQ, replay, "
        "reconcile",
        description="Start the reference CRM (or a vendor's fake: --crm) and local AWS on "
        "loopback, backfill the users "
        "from before the stream, deliver a realistic "
        "Auth0 stream while the CRM rate-limits and goes down, replay the DLQ, and reconcile "
        "the CRM against the Auth0 truth. Exits 1 if an event was lost or a contact differs.",
        epilog="examples:\n  auth0-sync demo\n  auth0-sync demo --users 40 --seed 3 --json\n"
        "  auth0-sync demo --crm hubspot\n  auth0-sync demo --plot demo-timeline.png",
    )
    parser.add_argument(
        "--crm",
        choices=[str(t) for t in CrmType],
        default=str(CrmType.REST),
        help="the CRM the story runs against: the reference CRM (rest, default), or the "
        "local fake of HubSpot or Salesforce, through that destination's adapter",
    )
    parser.add_argument(
        "--users", type=whole_number(1, 100_000), default=DEFAULT_USERS, help="default %(default)s"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="default %(default)s")
    parser.add_argument(
        "--cases",
        type=case_list,
        default=ALL_CASES,
        metavar="LIST",
        help="identity lifecycles in the stream: all (default), none (the simple stream), or "
        f"some of {', '.join(ALL_CASES)}, separated by commas",
    )
    parser.add_argument(
        "--unique-emails",
        action="store_true",
        help="run the reference CRM with unique emails (a PATCH to a taken email gets 409); "
        "--crm rest only (the vendors' fakes keep their own uniqueness rules)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (the reconciliation rows, the counts, the exit code); "
        "the story goes to stderr",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE",
        type=output_file(),
        help="write the timeline (events per second, the 429 and 503 windows, DLQ depth, the "
        "replay) as a PNG to FILE; needs matplotlib (requirements-dev.txt)",
    )
    parser.set_defaults(func=run, parser=parser)
