"""Automatic redrive: once the CRM answers again, replay the DLQ's transient failures.

One run (the scheduled function every few minutes, or `auth0-sync redrive`):
1. read the whole DLQ (held, so no other reader takes the same messages) and group it by
   event;
2. triage each event: every message's reason transient (`TRANSIENT_REASONS`) and its first
   failure younger than the age limit -> redrive; otherwise it stays for a person, counted;
3. only if there is something to redrive, probe the CRM with one cheap GET; when it does
   not answer, release everything and stop: the next run tries again;
4. replay the chosen events with `replay`'s safety (delete only after success; a new failure
   replaces the message keeping its attempt count and first failure; one replay per event),
   at a bounded rate, within the run's time budget, stopping when events fail again in a
   row (the CRM is down again).

In the buffered topology (the function's REDRIVE_BUFFER_QUEUES), step 4 is different: the
chosen events go to their type's buffer queue, ten to a SendMessageBatch call, each with
its history (`auth0_sync.replay.buffer_target`), and a message is deleted once its event's
entry succeeded. The event source mapping then applies them in batches through the
destination's batch calls, so their rate is bounded by the mapping's maximum concurrency
(sized for the destination), not by the redrive's rate; their outcome is asynchronous,
so the failures-in-a-row stop does not apply (the probe still gates the run), and what
fails again comes back to the DLQ through the handler or the queue's redrive policy.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from auth0_sync.crm import Crm
from auth0_sync.dead_letter import SqsDeadLetterQueue
from auth0_sync.destinations.factory import build_crm
from auth0_sync.errors import ConfigError, SyncError
from auth0_sync.names import (
    FUNCTION_TIMEOUT_SECONDS,
    REDRIVE_MAX_AGE_DAYS,
    REDRIVE_RATE_PER_SECOND,
    TRANSIENT_REASONS,
    Env,
    RedriveEnv,
)
from auth0_sync.replay.buffer_target import BufferSender, parse_buffer_queues
from auth0_sync.replay.lambda_target import LambdaInvoker, parse_functions
from auth0_sync.replay.letters import DeadLetter
from auth0_sync.replay.pacing import Budget, TokenBucket
from auth0_sync.replay.queue import DlqReader
from auth0_sync.replay.replayer import Replayer, ReplayReport, Selection
from auth0_sync.runtime import destination_secret
from auth0_sync.settings import Settings

Verdict = Literal["redrive", "permanent", "too_old", "no_event"]

_CRM_5XX = re.compile(r"^crm_5\d\d$")
# A user id no contact carries: the probe's GET finds nothing and changes nothing.
PROBE_USER_ID = "auth0-sync|redrive-probe"
PROBE_TIMEOUT_SECONDS = 5.0
# After this many events in a row fail again, the CRM is taken to be down again.
MAX_FAILURES_IN_A_ROW = 3
# Time kept back at the end of a run: one handler invocation, then releasing what is held.
RUN_RESERVE_SECONDS = FUNCTION_TIMEOUT_SECONDS + 15.0
DAY_SECONDS = 86400
# What a run counts as redriven: its messages are deleted.
REDRIVEN = ("applied", "skipped", "queued")


def is_transient(reason: str) -> bool:
    """Whether a dead-letter reason heals by itself (`crm_5xx` covers every `crm_5..`)."""
    if reason in TRANSIENT_REASONS:
        return True
    return bool(_CRM_5XX.match(reason)) and "crm_5xx" in TRANSIENT_REASONS


@dataclass(frozen=True)
class RedrivePolicy:
    """Which events a redrive may run again: all reasons transient, first failed recently."""

    max_age_seconds: float = REDRIVE_MAX_AGE_DAYS * DAY_SECONDS

    def verdict(self, group: Sequence[DeadLetter], now: datetime) -> Verdict:
        if any(letter.event is None for letter in group):
            return "no_event"
        if not all(is_transient(letter.reason) for letter in group):
            return "permanent"
        if max(letter.age_seconds(now) for letter in group) > self.max_age_seconds:
            return "too_old"
        return "redrive"


@dataclass
class Triage:
    """Applies the policy to each event of a scan and remembers what it left for a person."""

    policy: RedrivePolicy
    now: datetime
    # Left for a person, by why: "too_old" or the permanent reason(s) of the event.
    left: Counter[str] = field(default_factory=Counter)
    # When each event read first failed (its key: the event id, else the message's).
    first_failed: dict[str, datetime] = field(default_factory=dict)

    def wants(self, group: Sequence[DeadLetter]) -> bool:
        self.first_failed[group[0].key] = min(letter.failed_since for letter in group)
        verdict = self.policy.verdict(group, self.now)
        if verdict == "redrive":
            return True
        if verdict == "permanent":
            why = ",".join(sorted({x.reason for x in group if not is_transient(x.reason)}))
        else:
            why = verdict
        self.left[why] += 1
        return False


class CrmProbe:
    """One cheap read (a find by an owner no contact carries: `GET /contacts?auth0_user_id=`,
    HubSpot's search, a SOQL query): does the CRM answer right now?"""

    def __init__(self, crm: Crm) -> None:
        self.crm = crm

    def __call__(self, _events: int = 0) -> str | None:
        """None when the CRM answered; else why the redrive waits (`crm_503: ...`)."""
        try:
            self.crm.find_contacts(auth0_user_id=PROBE_USER_ID)
        except SyncError as exc:
            return f"the CRM does not answer the probe: {exc.reason}: {exc.message}"
        except ValueError as exc:  # an answer that is not the contract's JSON
            return f"the CRM does not answer the probe: {exc}"
        return None


def probe_for(settings: Settings) -> CrmProbe:
    """The probe for the sync's CRM: the configured destination's adapter (CRM_TYPE, built
    by the handlers' own factory, with their URL and secret), one attempt, a short
    timeout."""
    crm = build_crm(
        settings,
        destination_secret(settings),
        timeout_seconds=min(PROBE_TIMEOUT_SECONDS, settings.crm_timeout_seconds),
        max_attempts=1,
    )
    return CrmProbe(crm)


@dataclass
class RedriveReport:
    """One run: what was redriven, what failed again, what stays for a person."""

    replay: ReplayReport
    left: Counter[str]
    # Seconds since the first failure of the oldest event the DLQ still holds after this
    # run (redriven events are gone; 0 when nothing is left).
    oldest_failure_age_seconds: float = 0.0

    @property
    def redriven(self) -> int:
        """Applied, skipped, or queued to its buffer (buffered topology): messages deleted."""
        return sum(1 for r in self.replay.results if r.status in REDRIVEN)

    @property
    def still_failing(self) -> int:
        return sum(1 for r in self.replay.results if r.status == "failed")

    @property
    def left_for_a_person(self) -> int:
        not_replayed = sum(1 for r in self.replay.results if r.status == "not_replayed")
        return sum(self.left.values()) + not_replayed

    def to_dict(self) -> dict[str, Any]:
        not_replayed = self.replay.counts("not_replayed")
        return {
            "redriven": self.redriven,
            "still_failing": self.still_failing,
            "left_for_a_person": self.left_for_a_person,
            "left": dict(sorted((self.left + not_replayed).items())),
            "stopped": self.replay.stopped,
            "interrupted": self.replay.interrupted,
            "oldest_failure_age_seconds": round(self.oldest_failure_age_seconds),
            "messages_scanned": self.replay.scanned,
            "messages_deleted": self.replay.deleted,
            "applied": dict(sorted(self.replay.counts("applied").items())),
            "skipped": dict(sorted(self.replay.counts("skipped").items())),
            # Buffered topology: handed to their type's queue, by event type.
            "queued": dict(sorted(self.replay.counts("queued").items())),
            "failed": dict(sorted(self.replay.counts("failed").items())),
            "warnings": self.replay.warnings,
        }


def render(report: Mapping[str, Any]) -> str:
    """The summary of a run (from `RedriveReport.to_dict`, local or from the function)."""

    def counts(values: Mapping[str, int]) -> str:
        return ", ".join(f"{k} {n}" for k, n in sorted(values.items()))

    done = counts({**report["applied"], **report["skipped"]})
    queued = report.get("queued") or {}  # buffered topology: sent to their type's queue
    if queued:
        done = ", ".join(filter(None, [done, f"queued to their buffer: {counts(queued)}"]))
    lines = [
        f"  {'redriven':<18}{report['redriven']:>6}" + (f"   ({done})" if done else ""),
        f"  {'still failing':<18}{report['still_failing']:>6}"
        + (f"   ({counts(report['failed'])})" if report["still_failing"] else ""),
        f"  {'left for a person':<18}{report['left_for_a_person']:>6}"
        + (f"   ({counts(report['left'])})" if report["left_for_a_person"] else ""),
        f"  {'messages deleted':<18}{report['messages_deleted']:>6}   "
        f"(of {report['messages_scanned']} read)",
    ]
    if report["stopped"]:
        lines.append(f"  stopped: {report['stopped']}")
    if report["interrupted"]:
        lines.append("  interrupted: the rest stays in the DLQ, released for the next run")
    lines.extend(f"warning: {w}" for w in report["warnings"])
    return "\n".join(lines)


def redrive(
    replayer: Replayer,
    probe: Callable[[int], str | None],
    policy: RedrivePolicy | None = None,
    *,
    max_events: int | None = None,
    now: datetime | None = None,
) -> RedriveReport:
    """One redrive run over the whole DLQ (see the module's docstring)."""
    triage = Triage(policy or RedrivePolicy(), now or datetime.now(UTC))
    selection = Selection(max_events=max_events, wants=triage.wants)
    report = replayer.run(selection, gate=probe)
    return RedriveReport(report, triage.left, oldest_held_age(triage, report))


def oldest_held_age(triage: Triage, report: ReplayReport) -> float:
    """Seconds since the first failure of the oldest event still in the DLQ: every event
    read, less those this run applied or skipped (their messages are deleted)."""
    gone = {r.event_id for r in report.results if r.status in REDRIVEN}
    held = [when for key, when in triage.first_failed.items() if key not in gone]
    if not held:
        return 0.0
    return max(0.0, (triage.now - min(held)).total_seconds())


class RedriveSettings(BaseModel):
    """The scheduled function's environment (the probe reads the sync's destination
    settings: the stack gives this function the handlers' own CRM_* variables)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    dlq_url: str = Field(validation_alias=Env.DLQ_URL, min_length=1)
    # Direct topology: the handler function of each type, invoked per event.
    functions: dict[str, str] = Field(
        default_factory=dict, validation_alias=RedriveEnv.SYNC_FUNCTIONS
    )
    # Buffered topology: each type's queue, which the chosen events are sent to.
    buffers: dict[str, str] = Field(default_factory=dict, validation_alias=RedriveEnv.BUFFER_QUEUES)
    max_age_days: float = Field(
        default=REDRIVE_MAX_AGE_DAYS, gt=0, validation_alias=RedriveEnv.MAX_AGE_DAYS
    )
    rate: float = Field(default=REDRIVE_RATE_PER_SECOND, gt=0, validation_alias=RedriveEnv.RATE)

    @field_validator("functions", mode="before")
    @classmethod
    def _parse_functions(cls, value: Any) -> Any:
        return parse_functions(value) if isinstance(value, str) else value

    @field_validator("buffers", mode="before")
    @classmethod
    def _parse_buffers(cls, value: Any) -> Any:
        return parse_buffer_queues(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _a_target(self) -> RedriveSettings:
        if not self.functions and not self.buffers:
            raise ValueError(
                f"give {RedriveEnv.SYNC_FUNCTIONS} (direct topology) or "
                f"{RedriveEnv.BUFFER_QUEUES} (buffered)"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RedriveSettings:
        names = [*RedriveEnv, Env.DLQ_URL]
        try:
            return cls.model_validate({n: environ[n] for n in names if n in environ})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid redrive configuration: {problems}") from exc


def scheduled_redrive(
    environ: Mapping[str, str], remaining_seconds: Callable[[], float]
) -> RedriveReport:
    """The scheduled function's run: the deployed handlers as the target (they share their
    reserved concurrency with live traffic), within the invocation's remaining time; in the
    buffered topology, the types' queues (their mappings pace the CRM)."""
    config = RedriveSettings.from_env(environ)
    policy = RedrivePolicy(config.max_age_days * DAY_SECONDS)
    probe = probe_for(Settings.from_env(environ))
    if config.buffers:
        queued = Replayer(
            DlqReader(config.dlq_url, wait_seconds=1),
            forward=BufferSender(config.buffers),
        )
        return redrive(queued, probe, policy)
    invoker = LambdaInvoker(config.functions)
    replayer = Replayer(
        DlqReader(config.dlq_url, wait_seconds=1),
        invoke=invoker.invoke,
        failures=SqsDeadLetterQueue(config.dlq_url),
        name_for=invoker.name_for,
        limiter=TokenBucket(config.rate),
        budget=Budget(remaining_seconds, RUN_RESERVE_SECONDS),
        max_consecutive_failures=MAX_FAILURES_IN_A_ROW,
    )
    return redrive(replayer, probe, policy)
