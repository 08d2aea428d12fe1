"""The backfill loop: export lines in, snapshots through the target, outcomes counted.

Memory stays flat: lines are read one at a time and at most two per worker are in flight;
the report keeps counts and a bounded sample, never the users.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import IO, Any

from auth0_sync.destinations import Listing
from auth0_sync.errors import SyncError
from auth0_sync_cli.backfill.borrowed import Outcome
from auth0_sync_cli.backfill.checkpoint import Checkpoint
from auth0_sync_cli.backfill.snapshot import deletion_event, snapshot_event
from auth0_sync_cli.backfill.sweep import SeenUsers, orphans
from auth0_sync_cli.backfill.targets import PlanTarget, Target
from auth0_sync_cli.export import ExportedUser

# The plan's categories, in the order they are printed.
CATEGORIES = (
    "create",
    "link",
    "update",
    "deactivate",
    "unchanged",
    "ambiguous",
    "owned_by_other",
)
OTHER = ("skipped", "failed")
NEEDS_A_PERSON = frozenset({"ambiguous", "owned_by_other", "failed"})
MAX_PROBLEMS = 100
NO_SWEEP = (
    "contacts of users deleted from Auth0 were not looked for (`auth0-sync reconcile` finds them): "
)
# Event ids of the deletes the sweep sends for users Auth0 no longer has.
GONE_PREFIX = "backfill_gone_"


def category(outcome: Outcome) -> str:
    """What one snapshot came to: create, link, update, unchanged, ambiguous,
    owned_by_other, skipped (a newer event or a delete already applied) or failed."""
    if outcome.status == "applied":
        return {
            "created": "create",
            "linked": "link",
            "deactivated": "deactivate",
            "anonymized": "deactivate",
            "archived": "deactivate",
            "erased": "deactivate",
        }.get(outcome.reason, "update")
    if outcome.status == "skipped":
        return "unchanged" if outcome.reason in ("unchanged", "duplicate") else "skipped"
    if outcome.reason == "ambiguous_match":
        return "ambiguous"
    if outcome.reason == "owned_by_other":
        return "owned_by_other"
    return "failed"


@dataclass
class BackfillReport:
    dry_run: bool
    target: str
    export: str
    checkpoint: str | None
    resumed_after: int
    users: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    crm_calls: int = 0
    seconds: float = 0.0
    done_through: int = 0
    interrupted: bool = False
    diffs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def needs_a_person(self) -> int:
        return sum(self.counts[name] for name in NEEDS_A_PERSON)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "target": self.target,
            "export": self.export,
            "checkpoint": self.checkpoint,
            "resumed_after_line": self.resumed_after,
            "done_through_line": self.done_through,
            "interrupted": self.interrupted,
            "users": self.users,
            "counts": {name: self.counts[name] for name in (*CATEGORIES, *OTHER)},
            "reasons": dict(sorted(self.reasons.items())),
            "crm_calls": self.crm_calls,
            "seconds": round(self.seconds, 3),
            "diffs": self.diffs,
            "needs_a_person": self.problems,
            "warnings": self.warnings,
        }

    def render(self) -> str:
        would = "would " if self.dry_run else ""
        title = "backfill plan (dry run, nothing written)" if self.dry_run else "backfill"
        lines = [f"{title} of {self.export} ({self.target}):"]
        if self.resumed_after:
            lines.append(
                f"  resumed after line {self.resumed_after} (checkpoint {self.checkpoint})"
            )
        lines.append(f"  {'users':<16}{self.users:>8}")
        for name in (*CATEGORIES, *OTHER):
            label = f"{would}{name.replace('_', ' ')}" if name in CATEGORIES[:4] else name
            detail = ", ".join(
                f"{reason.split(':', 1)[1]} {n}"
                for reason, n in sorted(self.reasons.items())
                if reason.split(":", 1)[0] == name
            )
            lines.append(
                f"  {label:<16}{self.counts[name]:>8}" + (f"   ({detail})" if detail else "")
            )
        lines.append(f"  {'CRM calls':<16}{self.crm_calls:>8}   in {self.seconds:.1f}s")
        if self.diffs:
            lines.append("sample of the field changes:")
            for diff in self.diffs:
                where = diff["contact_id"] or "(new contact)"
                changes = "; ".join(
                    f"{name}: {value['crm']!r} -> {value['auth0']!r}"
                    for name, value in diff["fields"].items()
                )
                lines.append(f"  {where}  {diff['user_id'] or '-'}  {changes}")
        if self.problems:
            lines.append("needs a person:")
            lines.extend(
                f"  line {p['line']}  {p['user_id']}  {p['reason']}: {p['message'] or ''}"
                for p in self.problems
            )
        lines.extend(f"warning: {w}" for w in self.warnings)
        if self.interrupted:
            lines.append(
                f"  interrupted: every line up to {self.done_through} is done; run the same "
                "command again to resume"
                + ("" if self.checkpoint else " (give --checkpoint FILE to resume later)")
            )
        return "\n".join(lines)


class ProgressLine:
    """`backfill 1200/10000 (12%)  41 users/s  ETA 3m34s  create 800 ...` on stderr."""

    def __init__(
        self,
        total: int | None,
        enabled: bool,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = 0.5,
    ) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.clock = clock
        self.every = every
        self.started = clock()
        self._shown = 0.0
        self._lock = threading.Lock()

    def update(self, done: int, counts: Counter[str], force: bool = False) -> None:
        if not self.enabled:
            return
        with self._lock:
            now = self.clock()
            if not force and now - self._shown < self.every:
                return
            self._shown = now
            elapsed = max(now - self.started, 1e-9)
            speed = done / elapsed
            text = f"\rbackfill {done}"
            if self.total:
                text += f"/{self.total} ({100 * done // self.total}%)"
                if speed > 0:
                    text += f"  ETA {_duration((self.total - done) / speed)}"
            text += f"  {speed:.0f} users/s  "
            text += " ".join(f"{name} {counts[name]}" for name in CATEGORIES if counts[name])
            self.stream.write(text)
            self.stream.flush()

    def finish(self, done: int, counts: Counter[str]) -> None:
        if self.enabled:
            self.update(done, counts, force=True)
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Backfill:
    """Runs each exported user's snapshot through the target with `workers` threads."""

    def __init__(
        self,
        target: Target,
        checkpoint: Checkpoint,
        *,
        workers: int = 4,
        progress: ProgressLine | None = None,
        sample: int = 10,
        should_stop: Callable[[], bool] = lambda: False,
        listing: Listing | None = None,
    ) -> None:
        self.target = target
        self.checkpoint = checkpoint
        self.workers = workers
        self.progress = progress or ProgressLine(None, False)
        self.sample = sample
        self.should_stop = should_stop
        self.listing = listing
        self._lock = threading.Lock()

    def run(self, users: Iterable[ExportedUser]) -> BackfillReport:
        """Every user after the checkpoint's line; then, once the whole export is done, the
        contacts of users it no longer lists (when `listing` can read the CRM)."""
        report = BackfillReport(
            dry_run=self.target.dry_run,
            target=self.target.name,
            export=self.checkpoint.export,
            checkpoint=self.checkpoint.path,
            resumed_after=self.checkpoint.done_through,
        )
        started = time.monotonic()
        slots = threading.BoundedSemaphore(self.workers * 2)
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="backfill")
        seen = SeenUsers()
        resume_after = self.checkpoint.done_through

        outstanding: set[Future[None]] = set()

        def settled(future: Future[None]) -> None:
            with self._lock:
                outstanding.discard(future)
            slots.release()

        def submit(item: ExportedUser, event: dict[str, Any]) -> None:
            if self.should_stop():
                raise KeyboardInterrupt
            slots.acquire()
            future: Future[None] = pool.submit(self._one, item, event, report)
            with self._lock:
                outstanding.add(future)
            future.add_done_callback(settled)

        try:
            for item in users:
                if item.user is None:
                    if item.line > resume_after:
                        self.checkpoint.skipped_blank(item.line)
                    continue
                seen.add(item.user)
                if item.line > resume_after:
                    submit(item, snapshot_event(item.user))
            with self._lock:
                in_flight = set(outstanding)
            wait(in_flight)  # every user is done before the sweep looks for the missing ones
            if self.listing is None:
                report.warnings.append(NO_SWEEP + "no CRM settings here (CRM_BASE_URL)")
            else:
                self._sweep(self.listing, seen, submit, report)
        except KeyboardInterrupt:
            report.interrupted = True
            pool.shutdown(wait=True, cancel_futures=True)
        finally:
            pool.shutdown(wait=True)
            seen.close()
            self.checkpoint.save()
            report.seconds = time.monotonic() - started
            report.done_through = self.checkpoint.done_through
            self.progress.finish(report.users, report.counts)
        if isinstance(self.target, PlanTarget):
            report.diffs = [d.to_dict() for d in self.target.crm.diffs[: self.sample]]
        return report

    def _sweep(
        self,
        listing: Listing,
        seen: SeenUsers,
        submit: Callable[[ExportedUser, dict[str, Any]], None],
        report: BackfillReport,
    ) -> None:
        deleted_at = seen.newest or "1970-01-01T00:00:00.000Z"
        try:
            for contact in orphans(listing, seen):
                gone = {"user_id": str(contact["auth0_user_id"])}
                event = deletion_event(gone["user_id"], deleted_at, id_prefix=GONE_PREFIX)
                submit(ExportedUser(0, gone), event)
        except SyncError as exc:
            report.warnings.append(f"{NO_SWEEP}{exc}")

    def _one(self, item: ExportedUser, event: dict[str, Any], report: BackfillReport) -> None:
        assert item.user is not None
        try:
            outcome = self.target.run(event)
        except Exception as exc:  # the DLQ unreachable, a bug: keep going, report the user
            outcome = Outcome(
                "dead_lettered",
                getattr(exc, "reason", "internal_error"),
                user_id=str(item.user.get("user_id")),
                message=f"{type(exc).__name__}: {exc}",
            )
        kind = category(outcome)
        with self._lock:
            report.users += 1
            report.counts[kind] += 1
            report.reasons[f"{kind}:{outcome.reason}"] += 1
            report.crm_calls += outcome.crm_calls
            if kind in NEEDS_A_PERSON and len(report.problems) < MAX_PROBLEMS:
                report.problems.append(
                    {
                        "line": item.line,
                        "user_id": outcome.user_id or item.user.get("user_id"),
                        "reason": outcome.reason,
                        "message": outcome.message,
                    }
                )
            done, counts = report.users, Counter(report.counts)
        if item.line:  # line 0: a delete of the sweep, after every line is done
            self.checkpoint.finished(item.line, kind)
        self.progress.update(done, counts)
