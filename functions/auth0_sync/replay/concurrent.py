"""The replay loop with independent users' events at once, so that their CRM calls ride the
destination's batch calls (`replay --target local` and `auth0-sync redrive`, batched).

The events run on lanes (`auth0_sync.lanes`, as `catch-up` and the backfill do): one
thread per lane, every event of one user (else of its organization, else the event alone)
on the same lane, in the order the sequential loop would have run them, one at a time under
that user's state. The target's CRM is a `GatheringCrm` (`auth0_sync.gathering`), so the
finds, creates and updates of the users in flight go out together in batch requests, each
record's answer (a 409 or 422 included) given to its own event as its single call's would
be, and a batch never holds two writes of one user.

Every rule of the sequential loop (`auth0_sync.replay.replayer`) holds per event, since
each event runs through the same step (`Replayer._replay`):
- a message is deleted only once its event is applied or skipped; an event that fails
  again gets its new message (one more attempt, its first failure kept) before the old
  ones are deleted;
- the messages not replayed yet are held (their visibility renewed by the main thread
  while the lanes work) and released at the end, whatever the end;
- the time budget is asked before each event starts; the run stops (the events not
  started stay in the DLQ) when it is out, when the target defers an event, or after
  `max_consecutive_failures` events in a row (in the order they ended) failed again;
- Ctrl-C (or SIGTERM): the events not started yet are dropped, the events in flight end
  as they would (applied and deleted, or failed and rewritten), the rest is released.

The rate: the limiter takes a token per event and charges its other calls after it, as the
sequential loop does; with a batching CRM the CLI gives the loop no limiter and puts the
bucket in the CRM's HTTP session instead, so `--rate` bounds the CRM requests per second,
a batch request counting as one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import partial
from typing import Any

from auth0_sync.dead_letter import Failure
from auth0_sync.events import identity_of
from auth0_sync.lanes import Lanes
from auth0_sync.replay.letters import DeadLetter
from auth0_sync.replay.replayer import (
    RENEW_MARGIN_SECONDS,
    DeadLetterWriter,
    Deferred,
    EventResult,
    Replayer,
    ReplayReport,
)

# How often the main thread looks at the held messages' visibility while the lanes work.
WATCH_SECONDS = 1.0


def lane_key(group: Sequence[DeadLetter]) -> str:
    """Whose state an event changes: its user, else its organization, else its own."""
    letter = group[0]
    if letter.user_id:
        return f"user:{letter.user_id}"
    event = letter.event
    if event is not None:
        user = identity_of(event)["user_id"]
        if user:
            return f"user:{user}"
        detail = event.get("detail") if isinstance(event, dict) else None
        data = detail.get("data") if isinstance(detail, dict) else None
        obj = data.get("object") if isinstance(data, dict) else None
        org = obj.get("id") if isinstance(obj, dict) else None
        if isinstance(org, str) and org:
            return f"org:{org}"
    return f"event:{letter.key}"


class SerialDeadLetters:
    """The DLQ's writer, one write at a time with the run's deletes (`lock`).

    SQS takes concurrent writes; local-aws (moto 5.2) does not: a delete rebuilds the
    queue's list of messages without a lock, so a send or a delete made meanwhile by
    another thread is lost (a failure's new message gone, or a deleted one back). The
    handlers' own writes (their permanent failures) and the replay's go through this."""

    def __init__(self, inner: DeadLetterWriter, lock: threading.Lock) -> None:
        self.inner = inner
        self.lock = lock

    def send_permanent(self, event: Any, failure: Failure) -> None:
        with self.lock:
            self.inner.send_permanent(event, failure)


class LaneReplayer(Replayer):
    """A `Replayer` running up to `workers` users' events at once (a dry run still plans
    one event after the other: its read-only CRM gathers nothing). `dlq_lock`: held for
    each change to the DLQ (give the same to the `SerialDeadLetters` the target writes
    through)."""

    def __init__(
        self, *args: Any, workers: int, dlq_lock: threading.Lock | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.workers = max(1, workers)
        self.dlq_lock = dlq_lock or threading.Lock()
        if self.failures is not None and not isinstance(self.failures, SerialDeadLetters):
            self.failures = SerialDeadLetters(self.failures, self.dlq_lock)

    def _delete(self, group: list[DeadLetter], report: ReplayReport) -> int:
        with self.dlq_lock:
            return super()._delete(group, report)

    def _renew(self, held: Sequence[DeadLetter], report: ReplayReport) -> None:
        with self.dlq_lock:
            super()._renew(held, report)

    def _loop(
        self, groups: list[list[DeadLetter]], held_until: float, report: ReplayReport
    ) -> None:
        if self.invoke is None or self.workers == 1 or len(groups) < 2:
            super()._loop(groups, held_until, report)
            return
        _Run(self, groups, report).go(held_until)


class _Run:
    """One run of the lanes over the chosen groups."""

    def __init__(
        self, replayer: LaneReplayer, groups: list[list[DeadLetter]], report: ReplayReport
    ) -> None:
        self.replayer = replayer
        self.groups = groups
        self.report = report
        self.changed = threading.Condition()
        self.pending = {x.message_id: x for group in groups for x in group}  # not yet ended
        self.results: dict[int, EventResult] = {}
        self.ended = 0  # jobs over (run, skipped or raised)
        self.failures_in_a_row = 0
        self.stop = threading.Event()
        self.broken = False  # a job raised: the lanes stop, `close` raises it
        # Each user (key) its own lane, as long as there are lanes enough: then no event
        # waits behind another user's.
        keys: dict[str, int] = {}
        for group in groups:
            keys.setdefault(lane_key(group), len(keys))
        self.lanes = Lanes(
            min(replayer.workers, len(keys)), depth=len(groups) + 1, lane_of=keys.__getitem__
        )

    def go(self, held_until: float) -> None:
        replayer, report = self.replayer, self.report
        interrupted = False
        try:
            for index, group in enumerate(self.groups):
                self.lanes.submit(lane_key(group), partial(self._job, index, group))
            with self.changed:
                while self.ended < len(self.groups) and not self.broken:
                    if held_until - replayer.clock() < RENEW_MARGIN_SECONDS:
                        held = list(self.pending.values())
                        self.changed.release()
                        try:
                            replayer._renew(held, report)
                        finally:
                            self.changed.acquire()
                        held_until = replayer.clock() + replayer.visibility
                    self.changed.wait(WATCH_SECONDS)
        except KeyboardInterrupt:
            interrupted = True
            self.stop.set()
        finally:
            try:
                self.lanes.close(stop=interrupted)
            except KeyboardInterrupt:  # a second Ctrl-C, or one raised in a lane
                interrupted = True
                self.stop.set()
                self.lanes.close(stop=True)
            finally:
                report.results.extend(self.results[i] for i in sorted(self.results))
        if interrupted:
            raise KeyboardInterrupt

    def _halt(self, why: str) -> None:
        """The run stops: the events not started yet stay in the DLQ (first reason kept)."""
        with self.changed:
            if self.report.stopped is None:
                self.report.stopped = why
            self.stop.set()

    def _job(self, index: int, group: list[DeadLetter]) -> None:
        replayer = self.replayer
        try:
            if self.stop.is_set():
                return
            if not replayer.budget.allows_another():
                self._halt("out of time for this run")
                return
            replayer.limiter.take()
            before = replayer.calls_made() if replayer.calls_made is not None else 0
            try:
                result = replayer._replay(group, self.report)
            except Deferred as exc:
                self._halt(f"the target cannot take events now: {exc}")
                return
            if replayer.calls_made is not None:
                result.crm_calls = replayer.calls_made() - before
            replayer.limiter.charge(result.crm_calls - 1)
            self._ended(index, group, result)
        except BaseException:
            with self.changed:
                self.broken = True
            raise
        finally:
            with self.changed:
                self.ended += 1
                self.changed.notify_all()

    def _ended(self, index: int, group: list[DeadLetter], result: EventResult) -> None:
        replayer = self.replayer
        with self.changed:
            self.results[index] = result
            for letter in group:
                self.pending.pop(letter.message_id, None)
            if replayer.progress is not None:
                replayer.progress.update(result)
            failed = result.status == "failed"
            self.failures_in_a_row = self.failures_in_a_row + 1 if failed else 0
            limit = replayer.max_consecutive_failures
            if limit is not None and self.failures_in_a_row >= limit and not self.stop.is_set():
                self.report.stopped = f"{self.failures_in_a_row} events in a row failed again"
                self.stop.set()
