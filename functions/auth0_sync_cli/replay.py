"""`auth0-sync replay`: run each dead-lettered event again and delete its message on success.

How a message is handled (nothing lost, nothing applied twice, safe to interrupt):
- every message is received with a visibility timeout, so a second replay or a killed one
  cannot take it at the same time; messages are released on exit, even on Ctrl-C;
- the event is invoked synchronously (in process, or the deployed function), so its outcome
  is known; applied or skipped -> the message is deleted;
- it fails again -> a new message with the new reason is in the DLQ first (the handler writes
  permanent failures itself; replay writes transient ones), then the old one is deleted; a
  crash between the two leaves both, and the next replay of the pair applies once and
  deletes both (the idempotency record and the per-user state make the second a duplicate);
- messages of the same event (a redelivery failed twice) are replayed once, deleted together.

`--dry-run` runs the same service with a CRM adapter that only reads (it records the
POST/PATCH it would send) and a state store that never writes, and deletes nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.crm import Contact, Crm, RemainingMillis
from auth0_sync.dead_letter import Failure, SqsDeadLetterQueue
from auth0_sync.errors import ConfigError, ContactExists, TransientError
from auth0_sync.events import identity_of, normalise_type
from auth0_sync.names import SERVICE_NAME, STACK_OUTPUT_REPLAY_FUNCTIONS, EventType, SkipReason
from auth0_sync.routing import route_for
from auth0_sync.runtime import build_crm_client, build_service
from auth0_sync.service import SyncService
from auth0_sync.settings import Settings
from auth0_sync.state import DynamoSyncStateStore, SyncState, Unchanged
from auth0_sync.sync import Outcome, StateStore, SyncCore
from auth0_sync_cli.argtypes import real_number, whole_number
from auth0_sync_cli.dlq import (
    DeadLetter,
    DlqError,
    DlqReader,
    add_queue_argument,
    default_wait_seconds,
    resolve_queue_url,
    stack_outputs,
)
from auth0_sync_cli.runner import LocalContext, LocalRunner, function_name_for
from auth0_sync_cli.signals import sigterm_interrupts

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

Status = Literal["applied", "skipped", "failed", "not_replayed"]
Invoke = Callable[[Any], Outcome]

DEFAULT_VISIBILITY_SECONDS = 300
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_RATE = 10.0
# A held message's visibility is renewed when less than this is left (one invocation+).
RENEW_MARGIN_SECONDS = 60


class NotReplayable(Exception):
    """The message cannot be run again as it is (no event, no function for its type)."""


# The replay targets ----------------------------------------------------------------------


class LambdaInvoker:
    """Invokes the deployed function for the event's type, synchronously (RequestResponse)."""

    def __init__(self, functions: Mapping[str, str], client: LambdaClient | None = None) -> None:
        self.functions = dict(functions)
        self._client = client

    @property
    def client(self) -> LambdaClient:
        if self._client is None:
            # No SDK retries: a retried invoke would run the event twice (idempotent, but
            # the outcome would read "duplicate"); wait as long as a function may run.
            config = Config(read_timeout=910, retries={"max_attempts": 1, "mode": "standard"})
            self._client = boto3.client("lambda", config=config)
        return self._client

    def check(self) -> None:
        """Fail early, naming the function, when one of them cannot be found."""
        for event_type, name in self.functions.items():
            try:
                self.client.get_function_configuration(FunctionName=name)
            except (ClientError, BotoCoreError) as exc:
                raise ConfigError(f"--functions {event_type}={name}: {exc}") from exc

    def name_for(self, raw: Any) -> str:
        """The function the event goes to (for the failure record), or "lambda"."""
        route = route_for(identity_of(raw)["event_type"] or "")
        return (self.functions.get(route.event_type.value) if route else None) or "lambda"

    def invoke(self, raw: Any) -> Outcome:
        """The handler's outcome; `TransientError` when the function raised or Lambda refused."""
        ids = identity_of(raw)
        event_type = ids["event_type"]
        if event_type is None:
            raise NotReplayable("the event has no detail.type: no function to send it to")
        route = route_for(event_type)
        if route is None:
            # What the handlers answer for a type they do not handle.
            return Outcome(
                "skipped", SkipReason.UNKNOWN_TYPE, ids["event_id"], event_type, ids["user_id"]
            )
        name = self.functions.get(route.event_type.value)
        if name is None:
            raise NotReplayable(
                f"no function given for {route.event_type}: add it to --functions "
                f"({route.event_type}=FUNCTION_NAME)"
            )
        try:
            response = self.client.invoke(
                FunctionName=name,
                InvocationType="RequestResponse",
                Payload=json.dumps(raw).encode("utf-8"),
            )
            payload = json.loads(response["Payload"].read() or b"null")
        except (ClientError, BotoCoreError, ValueError) as exc:
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else "error"
            raise TransientError(f"lambda invoke {name}: {exc}", f"lambda_{code}") from exc
        if response.get("FunctionError"):
            # Permanent failures return normally; an error is what Lambda would retry.
            error = payload if isinstance(payload, dict) else {}
            error_type = str(error.get("errorType", "error"))
            raise TransientError(
                f"{name}: {error_type}: {error.get('errorMessage', payload)}",
                "transient" if error_type == "TransientError" else "function_error",
            )
        if not isinstance(payload, dict) or "status" not in payload:
            raise TransientError(f"{name}: unexpected answer {str(payload)[:200]}", "bad_answer")
        return Outcome.from_dict(payload)


class CarryOverDeadLetters:
    """The handler's permanent failures, written with the replayed message's history."""

    def __init__(self, inner: SqsDeadLetterQueue) -> None:
        self.inner = inner
        self.current: DeadLetter | None = None

    def send_permanent(self, event: Any, failure: Failure) -> None:
        if self.current is not None:
            failure = carried_over(failure, self.current)
        self.inner.send_permanent(event, failure)


def carried_over(failure: Failure, previous: DeadLetter) -> Failure:
    """One more attempt, first failed when the replayed message says."""
    first = previous.first_failure_at or previous.sent_at
    return replace(
        failure, attempts=(previous.attempts or 1) + 1, first_failure_at=first.isoformat()
    )


# Dry run: the same service, reading only ---------------------------------------------------


@dataclass(frozen=True)
class PlannedCall:
    method: str
    path: str
    body: dict[str, Any]

    def render(self) -> str:
        return f"{self.method} {self.path} {json.dumps(self.body, sort_keys=True)}"


class PlanningCrm:
    """Reads through the destination's adapter; records the create/update the sync would
    send (in the generic contract's terms), answering as the destination would."""

    def __init__(self, inner: Crm) -> None:
        self.inner = inner
        self.planned: list[PlannedCall] = []

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]:
        return self.inner.find_contacts(email=email, auth0_user_id=auth0_user_id)

    def get_contact(self, contact_id: str) -> Contact | None:
        return self.inner.get_contact(contact_id)

    def calls_made(self) -> int:
        return self.inner.calls_made()

    def set_deadline(self, remaining_ms: RemainingMillis | None) -> None:
        self.inner.set_deadline(remaining_ms)

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        del idempotency_key
        email = fields.get("email")
        # A destination answers 409 to a create whose email is taken; the sync then links.
        if isinstance(email, str) and email and self.find_contacts(email=email):
            raise ContactExists("crm POST /contacts: HTTP 409: a contact has this email (dry run)")
        self.planned.append(PlannedCall("POST", "/contacts", dict(fields)))
        return {"id": "(new)", **fields}

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        current = self.get_contact(contact_id)
        if current is None:
            return None
        self.planned.append(PlannedCall("PATCH", f"/contacts/{contact_id}", dict(fields)))
        return {**current, **fields}


class ReadOnlyState:
    """The per-user state as stored, without taking a lease or writing anything back."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner

    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState:
        del owner, lease_seconds
        return self.inner.get(user_id) or SyncState(user_id)

    def commit(self, state: SyncState, owner: str) -> None:
        del state, owner

    def release(self, user_id: str, owner: str) -> None:
        del user_id, owner

    def get(self, user_id: str) -> SyncState | None:
        return self.inner.get(user_id)

    def claim_contact(self, contact_id: str, user_id: str, expected_owner: str | None) -> bool:
        del contact_id, user_id, expected_owner
        return True

    def mark_linked(self, secondary_id: str, primary_id: str) -> None:
        del secondary_id, primary_id

    def record_unchanged(self, user_id: str, seen: Unchanged) -> SyncState | None:
        del seen  # a dry run records nothing: the lease path plans the rest
        return self.inner.get(user_id) or SyncState(user_id)


class KeptFailures:
    """Dead letters of a dry run: kept in memory, never sent."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []

    def send_permanent(self, event: Any, failure: Failure) -> None:
        del event
        self.failures.append(failure)


class Planner:
    """What replaying an event would do, computed by the real service without writing."""

    def __init__(
        self, settings: Settings, state: StateStore | None = None, timeout: float = 30.0
    ) -> None:
        self.crm = PlanningCrm(build_crm_client(settings))
        store = ReadOnlyState(state or DynamoSyncStateStore(settings.state_table))
        # No idempotency table: it is written on every call. The state still turns an event
        # already applied into a skip (duplicate, stale or deleted) with no CRM change.
        self.service = SyncService(SyncCore(settings, self.crm, store), KeptFailures())
        self.timeout = timeout

    def plan(self, raw: Any) -> tuple[Outcome, list[PlannedCall]]:
        """The outcome the replay would have and the CRM writes it would make."""
        self.crm.planned = []
        outcome = self.service.handle(raw, LocalContext(function_name_for(raw), self.timeout))
        return outcome, list(self.crm.planned)


# The replay --------------------------------------------------------------------------------


@dataclass
class EventResult:
    """How replaying one event (one or more messages) ended."""

    event_id: str | None
    event_type: str | None
    user_id: str | None
    status: Status
    reason: str
    detail: str | None = None
    messages: int = 1
    deleted: int = 0
    crm_calls: int = 0
    planned: list[str] = field(default_factory=list)

    def line(self, dry_run: bool) -> str:
        verb = {
            "applied": "would apply" if dry_run else "applied",
            "skipped": "would skip" if dry_run else "skipped",
            "failed": "would fail again" if dry_run else "failed again",
            "not_replayed": "cannot replay",
        }[self.status]
        text = f"{self.event_id or '-'}  {self.event_type or '-'}  {self.user_id or '-'}  "
        text += f"{verb}: {self.reason}"
        if self.detail and self.status in ("failed", "not_replayed"):
            text += f": {self.detail}"
        for call in self.planned:
            text += f"\n      {call}"
        return text


@dataclass
class ReplayReport:
    dry_run: bool
    scanned: int = 0
    selected_messages: int = 0
    results: list[EventResult] = field(default_factory=list)
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)

    def counts(self, status: Status) -> Counter[str]:
        return Counter(r.reason for r in self.results if r.status == status)

    @property
    def deleted(self) -> int:
        return sum(r.deleted for r in self.results)

    @property
    def left(self) -> list[EventResult]:
        return [r for r in self.results if r.status in ("failed", "not_replayed")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "interrupted": self.interrupted,
            "messages_scanned": self.scanned,
            "messages_selected": self.selected_messages,
            "events": len(self.results),
            "applied": dict(sorted(self.counts("applied").items())),
            "skipped": dict(sorted(self.counts("skipped").items())),
            "failed": dict(sorted(self.counts("failed").items())),
            "not_replayed": dict(sorted(self.counts("not_replayed").items())),
            "messages_deleted": self.deleted,
            "crm_calls": sum(r.crm_calls for r in self.results),
            "left": [asdict(r) for r in self.left],
            "results": [asdict(r) for r in self.results],
            "warnings": self.warnings,
        }

    def render(self) -> str:
        def line(title: str, counts: Counter[str]) -> str:
            detail = ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))
            return f"  {title:<18}{sum(counts.values()):>6}" + (f"   ({detail})" if detail else "")

        would = "would be " if self.dry_run else ""
        lines = [
            f"  {'messages selected':<18}{self.selected_messages:>6}   "
            f"(of {self.scanned} read; {len(self.results)} distinct events)",
            line(f"{would}applied", self.counts("applied")),
            line(f"{would}skipped", self.counts("skipped")),
            line("would fail again" if self.dry_run else "failed again", self.counts("failed")),
            line("cannot replay", self.counts("not_replayed")),
        ]
        if not self.dry_run:
            lines.append(f"  {'messages deleted':<18}{self.deleted:>6}")
            lines.append(f"  {'CRM calls':<18}{sum(r.crm_calls for r in self.results):>6}")
        if self.interrupted:
            lines.append("  interrupted: the rest stays in the DLQ, released for the next run")
        if self.left:
            lines.append("left in the DLQ:")
            lines.extend(f"  {r.line(self.dry_run)}" for r in self.left)
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


class RateLimiter:
    """At most `rate` events per second, spaced evenly (clock and sleep injectable)."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class Progress:
    """A one-line progress bar on stderr (a TTY, or when asked)."""

    def __init__(self, total: int, enabled: bool, stream: IO[str] | None = None) -> None:
        self.total = total
        self.enabled = enabled and total > 0
        self.stream = stream or sys.stderr
        self.done = 0
        self.counts: Counter[str] = Counter()

    def update(self, result: EventResult) -> None:
        self.done += 1
        self.counts[result.status] += 1
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        summary = "  ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(self.counts.items()))
        self.stream.write(
            f"\rreplay [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}  {summary}"
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()


@dataclass(frozen=True)
class Selection:
    """Which messages to replay: by normalised event type, user id, and how many events."""

    types: frozenset[str] = frozenset()
    user_id: str | None = None
    max_events: int | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.types and letter.event_type not in self.types:
            return False
        return self.user_id is None or letter.user_id == self.user_id


def _key(letter: DeadLetter) -> str:
    return letter.event_id or f"message:{letter.message_id}"


def group_by_event(letters: Sequence[DeadLetter]) -> list[list[DeadLetter]]:
    """Messages of one event together, in the order the first of each was read."""
    groups: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        groups.setdefault(_key(letter), []).append(letter)
    return list(groups.values())


class Replayer:
    """Replays selected DLQ messages through `invoke` (or plans them with `planner`)."""

    def __init__(
        self,
        reader: DlqReader,
        *,
        invoke: Invoke | None = None,
        failures: SqsDeadLetterQueue | None = None,
        planner: Planner | None = None,
        carry: CarryOverDeadLetters | None = None,
        name_for: Callable[[Any], str] = function_name_for,
        limiter: RateLimiter | None = None,
        progress: bool = False,
        visibility_seconds: int = DEFAULT_VISIBILITY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (invoke is None) == (planner is None):
            raise ValueError("give either invoke (replay) or planner (dry run)")
        if invoke is not None and failures is None:
            raise ValueError("a replay needs the DLQ to write failures that happen again")
        self.reader = reader
        self.invoke = invoke
        self.failures = failures
        self.planner = planner
        self.carry = carry
        self.name_for = name_for
        self.limiter = limiter or RateLimiter(None)
        self.progress = progress
        self.visibility = visibility_seconds
        self.clock = clock

    def run(self, selection: Selection) -> ReplayReport:
        """Replay (or plan) the selection; returns the report even when interrupted."""
        report = ReplayReport(dry_run=self.planner is not None)
        self._deleted: set[str] = set()
        wanted: set[str] = set()

        def enough(letters: list[DeadLetter]) -> bool:
            if selection.max_events is None:
                return False
            wanted.update(_key(x) for x in letters if selection.matches(x))
            return len(wanted) >= selection.max_events

        letters = self.reader.scan(self.visibility, enough=enough)
        held_until = self.clock() + self.visibility
        report.scanned = len(letters)
        groups = group_by_event([x for x in letters if selection.matches(x)])
        groups = groups[: selection.max_events] if selection.max_events is not None else groups
        chosen = {x.message_id for group in groups for x in group}
        report.selected_messages = len(chosen)
        # What is not replayed now is visible again at once for other readers.
        self._release([x for x in letters if x.message_id not in chosen], report)
        chosen_letters = [x for group in groups for x in group]
        pending = list(chosen_letters)  # held, not yet replayed: renewed while we work
        progress = Progress(len(groups), self.progress)
        try:
            for group in groups:
                if held_until - self.clock() < RENEW_MARGIN_SECONDS:
                    refused = self.reader.set_visibility(pending, self.visibility)
                    held_until = self.clock() + self.visibility
                    if refused:
                        report.warnings.append(
                            f"{len(refused)} message(s) could not be held; another reader may "
                            "replay them too (safe: it applies once)"
                        )
                self.limiter.wait()
                result = self._replay(group, report) if self.invoke else self._plan(group)
                report.results.append(result)
                for letter in group:
                    pending.remove(letter)
                progress.update(result)
        except KeyboardInterrupt:
            report.interrupted = True
        finally:
            progress.finish()
            # Whatever was not deleted (the event in flight included) comes back for the
            # next run; a replayed event that was applied then reads as a duplicate.
            self._release([x for x in chosen_letters if x.message_id not in self._deleted], report)
        return report

    def _release(self, letters: Sequence[DeadLetter], report: ReplayReport) -> None:
        refused = self.reader.release(letters)
        if refused:
            report.warnings.append(
                f"{len(refused)} message(s) could not be released; they come back within "
                f"{self.visibility}s"
            )

    def _result(
        self, group: list[DeadLetter], status: Status, reason: str, **extra: Any
    ) -> EventResult:
        first = group[0]
        return EventResult(
            first.event_id,
            first.event_type,
            first.user_id,
            status,
            reason,
            messages=len(group),
            **extra,
        )

    def _plan(self, group: list[DeadLetter]) -> EventResult:
        assert self.planner is not None
        letter = group[0]
        if letter.event is None:
            return self._result(group, "not_replayed", letter.shape, detail=letter.reason)
        try:
            outcome, calls = self.planner.plan(letter.event)
        except TransientError as exc:
            return self._result(group, "failed", exc.reason, detail=exc.message)
        status: Status = "failed" if outcome.status == "dead_lettered" else outcome.status
        return self._result(
            group,
            status,
            outcome.reason,
            detail=outcome.message,
            crm_calls=outcome.crm_calls,
            planned=[call.render() for call in calls],
        )

    def _replay(self, group: list[DeadLetter], report: ReplayReport) -> EventResult:
        assert self.invoke is not None
        assert self.failures is not None
        letter = group[0]
        if letter.event is None:
            return self._result(group, "not_replayed", letter.shape, detail=letter.reason)
        if self.carry is not None:
            self.carry.current = letter
        try:
            outcome = self.invoke(letter.event)
        except NotReplayable as exc:
            return self._result(group, "not_replayed", "not_replayable", detail=str(exc))
        except TransientError as exc:
            failure = carried_over(
                Failure(
                    error_class=type(exc).__name__,
                    reason=exc.reason,
                    message=exc.message,
                    handler=self.name_for(letter.event),
                ),
                letter,
            )
            try:
                self.failures.send_permanent(letter.event, failure)
            except TransientError as send_error:
                # The new reason could not be recorded: keep the old message instead.
                return self._result(
                    group, "failed", exc.reason, detail=f"{exc.message}; {send_error.message}"
                )
            deleted = self._delete(group, report)
            return self._result(group, "failed", exc.reason, detail=exc.message, deleted=deleted)
        finally:
            if self.carry is not None:
                self.carry.current = None
        deleted = self._delete(group, report)
        if outcome.status == "dead_lettered":
            # The handler has written the new failure to the DLQ already.
            return self._result(
                group, "failed", outcome.reason, detail=outcome.message, deleted=deleted
            )
        return self._result(
            group, outcome.status, outcome.reason, crm_calls=outcome.crm_calls, deleted=deleted
        )

    def _delete(self, group: list[DeadLetter], report: ReplayReport) -> int:
        deleted = 0
        for letter in group:
            try:
                self.reader.delete(letter)
                self._deleted.add(letter.message_id)
                deleted += 1
            except DlqError as exc:
                report.warnings.append(str(exc))
        return deleted


# The command -------------------------------------------------------------------------------


def parse_functions(text: str) -> dict[str, str]:
    """`user.created=fn-a,user.updated=fn-b` -> {event type: function name}."""
    functions: dict[str, str] = {}
    known = {str(t) for t in EventType}
    for item in filter(None, (part.strip() for part in text.split(","))):
        event_type, sep, name = item.partition("=")
        event_type = normalise_type(event_type.strip())
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"{item!r}: expected TYPE=FUNCTION_NAME")
        if event_type not in known:
            raise argparse.ArgumentTypeError(
                f"{item!r}: unknown event type {event_type!r}; one of {sorted(known)}"
            )
        functions[event_type] = name.strip()
    if not functions:
        raise argparse.ArgumentTypeError("give at least one TYPE=FUNCTION_NAME")
    return functions


def functions_of_stack(stack: str) -> dict[str, str]:
    """The handlers' names from the stack's output (`user.created=fn,...`)."""
    text = stack_outputs(stack).get(STACK_OUTPUT_REPLAY_FUNCTIONS)
    if not text:
        raise ConfigError(f"--stack {stack}: no {STACK_OUTPUT_REPLAY_FUNCTIONS} output")
    try:
        return parse_functions(text)
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"--stack {stack}: {STACK_OUTPUT_REPLAY_FUNCTIONS}: {exc}") from exc


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
) -> Replayer:
    """The replayer for a target (local: this process; lambda: the deployed functions)."""
    env = os.environ if environ is None else environ
    wait = default_wait_seconds(env) if wait_seconds is None else wait_seconds
    reader = DlqReader(queue_url, wait_seconds=wait)
    common: dict[str, Any] = {
        "limiter": RateLimiter(rate),
        "progress": progress,
        "visibility_seconds": visibility_seconds,
    }
    if dry_run:
        planner = Planner(Settings.from_env(env), timeout=timeout)
        return Replayer(reader, planner=planner, **common)
    failures = SqsDeadLetterQueue(queue_url)
    if target == "lambda":
        if not functions:
            raise ConfigError(
                "--target lambda needs --stack NAME (the deployed stack) or --functions "
                "user.created=NAME,user.updated=NAME,user.deleted=NAME"
            )
        invoker = LambdaInvoker(functions)
        invoker.check()
        return Replayer(
            reader, invoke=invoker.invoke, failures=failures, name_for=invoker.name_for, **common
        )
    carry = CarryOverDeadLetters(failures)
    service = build_service(Settings.from_env(env), dead_letters=carry)
    runner = LocalRunner(service, failures, timeout_seconds=timeout)
    return Replayer(reader, invoke=runner.invoke, failures=failures, carry=carry, **common)


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


def run(args: argparse.Namespace) -> int:
    with quiet_handler_logs():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        queue_url = resolve_queue_url(args.queue_url, stack=args.stack)
        functions = args.functions
        if functions is None and args.stack and args.target == "lambda":
            functions = functions_of_stack(args.stack)
        replayer = make_replayer(
            queue_url,
            dry_run=args.dry_run,
            target=args.target,
            functions=functions,
            rate=args.rate,
            progress=args.progress or sys.stderr.isatty(),
            visibility_seconds=args.visibility,
            timeout=args.timeout,
        )
    except (ConfigError, DlqError) as exc:
        print(f"auth0-sync replay: {exc}", file=sys.stderr)
        return 2
    selection = Selection(
        types=frozenset(normalise_type(t) for t in args.type or ()),
        user_id=args.user,
        max_events=args.max,
    )
    try:
        with sigterm_interrupts():
            report = replayer.run(selection)
    except DlqError as exc:
        print(f"auth0-sync replay: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        title = "dry run (nothing written)" if report.dry_run else "replay"
        print(f"{title} of {queue_url}:")
        if report.dry_run:
            for result in report.results:
                print(f"  {result.line(dry_run=True)}")
        print(report.render())
    if report.interrupted:
        return 130
    return 1 if report.left and not report.dry_run else 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="run dead-lettered events again; delete each message once its event is handled",
        description="Recover the original EventBridge event from each DLQ message (any of "
        "the three shapes) and run it again: in this process (--target local, the default; "
        "needs the sync's environment) or by invoking the deployed function synchronously "
        "(--target lambda --functions ...). A message is deleted only after its event is "
        "applied or skipped; an event that fails again leaves a message with its new reason.",
    )
    add_queue_argument(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would happen to each event, including the CRM change, and write "
        "nothing (GETs only; no state, no idempotency record, no message deleted)",
    )
    parser.add_argument("--max", type=whole_number(1), metavar="N", help="replay at most N events")
    parser.add_argument(
        "--type",
        action="append",
        metavar="T",
        help="only events of this type (repeatable), e.g. user.updated",
    )
    parser.add_argument("--user", metavar="ID", help="only events of this Auth0 user id")
    parser.add_argument(
        "--rate",
        type=real_number(above_zero=True),
        default=DEFAULT_RATE,
        metavar="R",
        help="at most R events per second: the CRM's rate limit is shared with live traffic "
        "(default %(default)s)",
    )
    parser.add_argument("--target", choices=("local", "lambda"), default="local")
    parser.add_argument(
        "--functions",
        type=parse_functions,
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
    parser.add_argument("--progress", action="store_true", help="progress bar even off a TTY")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)
