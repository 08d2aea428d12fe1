"""The replay loop: run each dead-lettered event again, delete its message only on success.

How a message is handled (nothing lost, nothing applied twice, safe to interrupt):
- every message is received with a visibility timeout, so a second replay or a killed one
  cannot take it at the same time; messages are released on exit, even on Ctrl-C;
- messages of the same event (a redelivery failed twice) are replayed once, deleted together;
- the event is invoked synchronously (in process, or the deployed function), so its outcome
  is known; applied or skipped -> its messages are deleted;
- it fails again -> a new message with the new reason is in the DLQ first, then the old ones
  are deleted. The new one keeps the history: one more attempt, the first failure's time.
  The handler writes permanent failures itself (the event carries its history to it); the
  replay writes transient ones. A crash between the two leaves both, and the next replay
  applies once and deletes both (the per-user state makes the second a duplicate);
- the target cannot take the event now (a throttled function) -> its messages stay as they
  are and the run stops, leaving the rest for the next one.

With `forward` instead of `invoke` (the scheduled redrive of the buffered topology), the
chosen events are handed to their type's queue all at once (`auth0_sync.replay.buffer_target`)
and their outcome comes later, asynchronously: an event its queue took is `queued` and its
messages are deleted only then; one its queue refused keeps its messages (`failed`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from auth0_sync.dead_letter import Failure, History, with_history
from auth0_sync.errors import TransientError
from auth0_sync.replay.letters import DeadLetter, group_by_event, oldest_history
from auth0_sync.replay.pacing import Budget, TokenBucket
from auth0_sync.replay.queue import DlqError, DlqReader
from auth0_sync.sync import Outcome

Status = Literal["applied", "skipped", "failed", "not_replayed", "queued"]
Invoke = Callable[[Any], Outcome]
# Per event handed over: its status (queued, failed, not_replayed), reason and detail.
Sent = tuple[Status, str, str | None]
# Hands events (with their history) to their queues; one answer per event, in order.
Forward = Callable[[Sequence[Any]], list[Sent]]
# A dry run: the outcome a replay would have and the CRM writes it would make.
Plan = Callable[[Any], tuple[Outcome, list[str]]]
# Called once the groups to replay are known (never with none): None to go on, or why not.
Gate = Callable[[int], str | None]

DEFAULT_VISIBILITY_SECONDS = 300
# A held message's visibility is renewed when less than this is left (one invocation+).
RENEW_MARGIN_SECONDS = 60


class NotReplayable(Exception):
    """The message cannot be run again as it is (no event, no function for its type)."""


class Deferred(Exception):
    """The target cannot take the event now (throttled, unavailable): nothing ran."""


class FunctionFailed(Exception):
    """The deployed function raised: its error type and the reason read from its message."""

    def __init__(self, error_class: str, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.error_class = error_class
        self.reason = reason
        self.message = message


class DeadLetterWriter(Protocol):
    def send_permanent(self, event: Any, failure: Failure) -> None: ...


class ProgressSink(Protocol):
    def start(self, total: int) -> None: ...
    def update(self, result: EventResult) -> None: ...
    def finish(self) -> None: ...


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
            "queued": "queued to its buffer",
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
    # Why the run ended before the selection was done (time budget, a throttled target...).
    stopped: str | None = None
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
            "stopped": self.stopped,
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
        if self.stopped:
            lines.append(f"  stopped: {self.stopped}; the rest stays in the DLQ")
        if self.left:
            lines.append("left in the DLQ:")
            lines.extend(f"  {r.line(self.dry_run)}" for r in self.left)
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


@dataclass(frozen=True)
class Selection:
    """Which messages to replay: by normalised event type, user id, and how many events;
    `wants` (given the messages of one event) may keep an event out as a whole."""

    types: frozenset[str] = frozenset()
    user_id: str | None = None
    max_events: int | None = None
    wants: Callable[[Sequence[DeadLetter]], bool] | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.types and letter.event_type not in self.types:
            return False
        return self.user_id is None or letter.user_id == self.user_id


def _failure_after(
    history: History, error_class: str, reason: str, message: str, handler: str
) -> Failure:
    """The new failure of a replayed event: one more attempt, first failed as before."""
    return Failure(
        error_class=error_class,
        reason=reason,
        message=message,
        handler=handler,
        attempts=history.attempts + 1,
        first_failure_at=history.first_failure_at,
    )


class Replayer:
    """Replays selected DLQ messages through `invoke` (or plans them with `plan`)."""

    def __init__(
        self,
        reader: DlqReader,
        *,
        invoke: Invoke | None = None,
        failures: DeadLetterWriter | None = None,
        plan: Plan | None = None,
        name_for: Callable[[Any], str] = lambda _event: "replay",
        limiter: TokenBucket | None = None,
        budget: Budget | None = None,
        progress: ProgressSink | None = None,
        visibility_seconds: int = DEFAULT_VISIBILITY_SECONDS,
        max_consecutive_failures: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        calls_made: Callable[[], int] | None = None,
        forward: Forward | None = None,
    ) -> None:
        if sum(x is not None for x in (invoke, plan, forward)) != 1:
            raise ValueError("give one of invoke (replay), plan (dry run) or forward (queues)")
        if invoke is not None and failures is None:
            raise ValueError("a replay needs the DLQ to write failures that happen again")
        self.reader = reader
        self.invoke = invoke
        self.failures = failures
        self.plan = plan
        self.name_for = name_for
        self.limiter = limiter or TokenBucket(None)
        self.budget = budget or Budget()
        self.progress = progress
        self.visibility = visibility_seconds
        # Stop after this many transient failures in a row: the target is down again.
        self.max_consecutive_failures = max_consecutive_failures
        self.clock = clock
        # The CRM requests this process has sent (a local target's or the planner's
        # client): each event's calls are counted where they are made, a failed attempt's
        # included. None (the deployed functions): the calls their outcome reports.
        self.calls_made = calls_made
        self.forward = forward

    def run(self, selection: Selection, gate: Gate | None = None) -> ReplayReport:
        """Replay (or plan) the selection; returns the report even when interrupted."""
        report = ReplayReport(dry_run=self.plan is not None)
        self._deleted: set[str] = set()
        wanted: set[str] = set()

        def enough(letters: list[DeadLetter]) -> bool:
            if selection.max_events is None or selection.wants is not None:
                return False
            wanted.update(x.key for x in letters if selection.matches(x))
            return len(wanted) >= selection.max_events

        letters = self.reader.scan(self.visibility, enough=enough)
        held_until = self.clock() + self.visibility
        report.scanned = len(letters)
        groups = group_by_event([x for x in letters if selection.matches(x)])
        if selection.wants is not None:
            groups = [group for group in groups if selection.wants(group)]
        groups = groups[: selection.max_events] if selection.max_events is not None else groups
        chosen = {x.message_id for group in groups for x in group}
        report.selected_messages = len(chosen)
        # What is not replayed now is visible again at once for other readers.
        self._release([x for x in letters if x.message_id not in chosen], report)
        chosen_letters = [x for group in groups for x in group]
        if groups and gate is not None:
            report.stopped = gate(len(groups))
            if report.stopped is not None:
                self._release(chosen_letters, report)
                return report
        if self.progress is not None:
            self.progress.start(len(groups))
        try:
            if self.forward is not None:
                self._forward(groups, report)
            else:
                self._loop(groups, held_until, report)
        except KeyboardInterrupt:
            report.interrupted = True
        finally:
            if self.progress is not None:
                self.progress.finish()
            # Whatever was not deleted (the event in flight included) comes back for the
            # next run; a replayed event that was applied then reads as a duplicate.
            self._release([x for x in chosen_letters if x.message_id not in self._deleted], report)
        return report

    def _loop(
        self, groups: list[list[DeadLetter]], held_until: float, report: ReplayReport
    ) -> None:
        """Replay (or plan) the groups one after the other, in order."""
        pending = [x for group in groups for x in group]  # held, not yet replayed: renewed
        failures_in_a_row = 0
        for group in groups:
            if not self.budget.allows_another():
                report.stopped = "out of time for this run"
                break
            if held_until - self.clock() < RENEW_MARGIN_SECONDS:
                self._renew(pending, report)
                held_until = self.clock() + self.visibility
            # --rate is CRM calls per second: a token before the event, and its other
            # calls charged after it, as the backfill's Lambda target does.
            self.limiter.take()
            before = self.calls_made() if self.calls_made is not None else 0
            try:
                result = self._replay(group, report) if self.invoke else self._plan(group)
            except Deferred as exc:
                report.stopped = f"the target cannot take events now: {exc}"
                break
            if self.calls_made is not None:
                result.crm_calls = self.calls_made() - before
            self.limiter.charge(result.crm_calls - 1)
            report.results.append(result)
            for letter in group:
                pending.remove(letter)
            if self.progress is not None:
                self.progress.update(result)
            failures_in_a_row = failures_in_a_row + 1 if result.status == "failed" else 0
            limit = self.max_consecutive_failures
            if limit is not None and failures_in_a_row >= limit:
                report.stopped = f"{failures_in_a_row} events in a row failed again"
                break

    def _forward(self, groups: list[list[DeadLetter]], report: ReplayReport) -> None:
        """Hand every group's event, with its history, to its queue; delete the messages
        of the events their queue took, and only those."""
        assert self.forward is not None
        sendable = []
        for group in groups:
            letter = group[0]
            if letter.event is None:
                report.results.append(
                    self._result(group, "not_replayed", letter.shape, detail=letter.detail)
                )
            else:
                sendable.append(group)
        if not sendable:
            return
        events = [with_history(g[0].event or {}, oldest_history(g)) for g in sendable]
        for group, (status, reason, detail) in zip(sendable, self.forward(events), strict=True):
            deleted = self._delete(group, report) if status == "queued" else 0
            report.results.append(
                self._result(group, status, reason, detail=detail, deleted=deleted)
            )

    def _renew(self, held: Sequence[DeadLetter], report: ReplayReport) -> None:
        """Hold the messages not replayed yet for another visibility timeout."""
        refused = self.reader.set_visibility(held, self.visibility)
        refused = [r for r in refused if r not in self._deleted]  # deleted meanwhile
        if refused:
            report.warnings.append(
                f"{len(refused)} message(s) could not be held; another reader may "
                "replay them too (safe: it applies once)"
            )

    def _release(self, letters: Sequence[DeadLetter], report: ReplayReport) -> None:
        refused = self.reader.release(letters)
        if refused:
            report.warnings.append(
                f"{len(refused)} message(s) could not be released; they come back within "
                f"{self.visibility}s"
            )

    @staticmethod
    def _result(group: list[DeadLetter], status: Status, reason: str, **extra: Any) -> EventResult:
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
        assert self.plan is not None
        letter = group[0]
        if letter.event is None:
            return self._result(group, "not_replayed", letter.shape, detail=letter.detail)
        try:
            outcome, calls = self.plan(letter.event)
        except NotReplayable as exc:
            return self._result(group, "not_replayed", "not_replayable", detail=str(exc))
        except TransientError as exc:
            return self._result(group, "failed", exc.reason, detail=exc.message)
        status: Status = "failed" if outcome.status == "dead_lettered" else outcome.status
        return self._result(
            group,
            status,
            outcome.reason,
            detail=outcome.message,
            crm_calls=outcome.crm_calls,
            planned=calls,
        )

    def _replay(self, group: list[DeadLetter], report: ReplayReport) -> EventResult:
        assert self.invoke is not None
        assert self.failures is not None
        letter = group[0]
        if letter.event is None:
            return self._result(group, "not_replayed", letter.shape, detail=letter.detail)
        history = oldest_history(group)
        try:
            outcome = self.invoke(with_history(letter.event, history))
        except NotReplayable as exc:
            return self._result(group, "not_replayed", "not_replayable", detail=str(exc))
        except (TransientError, FunctionFailed) as exc:
            error_class = exc.error_class if isinstance(exc, FunctionFailed) else type(exc).__name__
            failure = _failure_after(
                history, error_class, exc.reason, exc.message, self.name_for(letter.event)
            )
            try:
                self.failures.send_permanent(letter.event, failure)
            except TransientError as send_error:
                # The new reason could not be recorded: keep the old messages instead.
                return self._result(
                    group, "failed", exc.reason, detail=f"{exc.message}; {send_error.message}"
                )
            deleted = self._delete(group, report)
            return self._result(group, "failed", exc.reason, detail=exc.message, deleted=deleted)
        deleted = self._delete(group, report)
        if outcome.status == "dead_lettered":
            # The handler has written the new failure (with the history) to the DLQ already.
            return self._result(
                group,
                "failed",
                outcome.reason,
                detail=outcome.message,
                crm_calls=outcome.crm_calls,
                deleted=deleted,
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
