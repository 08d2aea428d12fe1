"""Where the synthetic events of backfill, reconcile --fix and catch-up go, at a CRM rate.

- local: the same `SyncService` the handlers run, through `LocalRunner` (retried like
  Lambda, then dead-lettered), against local-aws or the state table and DLQ of a deployed
  stack (`--stack`: the deployed handler's own environment);
- lambda: the deployed handlers, invoked synchronously (replay's `LambdaInvoker`);
- plan (`--dry-run`): replay's read-only CRM and state, which write nothing.

`--rate` is CRM calls per second, shared by every worker: one token bucket that every HTTP
request to the CRM takes from (with `--target lambda`, each invocation takes one and pays
the rest of its calls afterwards, from the count the handler reports).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.crm import Contact, Crm
from auth0_sync.dead_letter import MemoryDeadLetterQueue, SqsDeadLetterQueue
from auth0_sync.destinations import Listing
from auth0_sync.errors import ConfigError, TransientError
from auth0_sync.events import identity_of
from auth0_sync.names import EventType
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync.service import SyncService
from auth0_sync.settings import Settings
from auth0_sync.state import DynamoSyncStateStore
from auth0_sync_cli.backfill.borrowed import (
    KeptFailures,
    LambdaInvoker,
    NotReplayable,
    Outcome,
    PlanningCrm,
    ReadOnlyState,
    StateStore,
    SyncCore,
    functions_of_stack,
)
from auth0_sync_cli.crm_pacing import RateLimitedSession as RateLimitedSession
from auth0_sync_cli.crm_pacing import crm_client as crm_client
from auth0_sync_cli.runner import LocalContext, LocalRunner, function_name_for

# Lambda target: a failed invocation is tried again after these delays, then reported.
LAMBDA_RETRY_DELAYS = (1.0, 4.0)


# The dry run: replay's read-only adapters, and the field diffs they would write -----------


@dataclass(frozen=True)
class FieldDiff:
    """One write a dry run would make: the contact (None: a new one) and each field's
    value before and after."""

    contact_id: str | None
    user_id: str | None
    fields: dict[str, tuple[Any, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "user_id": self.user_id,
            "fields": {
                name: {"crm": old, "auth0": new} for name, (old, new) in self.fields.items()
            },
        }


class DiffingCrm(PlanningCrm):
    """Replay's planning CRM (GETs only), keeping what each planned write would change."""

    def __init__(self, inner: Crm) -> None:
        super().__init__(inner)
        self.diffs: list[FieldDiff] = []

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        created = super().create_contact(fields, idempotency_key)
        owner = fields.get("auth0_user_id")
        self.diffs.append(
            FieldDiff(
                None, str(owner) if owner else None, {k: (None, v) for k, v in fields.items()}
            )
        )
        return created

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        current = self.get_contact(contact_id)
        if current is None:
            return None
        answer = super().update_contact(contact_id, fields)
        changes = {k: (current.get(k), v) for k, v in fields.items() if current.get(k) != v}
        owner = fields.get("auth0_user_id") or current.get("auth0_user_id")
        self.diffs.append(FieldDiff(contact_id, str(owner) if owner else None, changes))
        return answer


# The targets ---------------------------------------------------------------------------------


class Target(Protocol):
    """Runs one bus event to its end: an outcome, never a transient error."""

    name: str
    dry_run: bool

    def run(self, raw: dict[str, Any]) -> Outcome: ...


def _failed(raw: dict[str, Any], exc: TransientError) -> Outcome:
    ids = identity_of(raw)
    return Outcome(
        "dead_lettered",
        exc.reason,
        ids["event_id"],
        ids["event_type"],
        ids["user_id"],
        message=exc.message,
    )


@dataclass
class LocalTarget:
    """In this process, as Lambda would: retried, then dead-lettered to the DLQ."""

    runner: LocalRunner
    state: StateStore
    name: str = "local"
    dry_run: bool = False

    def run(self, raw: dict[str, Any]) -> Outcome:
        return self.runner.run(raw)


@dataclass
class PlanTarget:
    """`--dry-run`: the real service against read-only adapters; keeps the field diffs."""

    service: SyncService
    crm: DiffingCrm
    state: StateStore
    timeout: float = 30.0
    name: str = "plan"
    dry_run: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, raw: dict[str, Any]) -> Outcome:
        context = LocalContext(function_name_for(raw), self.timeout)
        try:
            return self.service.handle(raw, context)
        except TransientError as exc:
            return _failed(raw, exc)


@dataclass
class LambdaTarget:
    """The deployed handlers, invoked synchronously; a failure is tried again, then reported."""

    invoker: LambdaInvoker
    bucket: TokenBucket
    name: str = "lambda"
    dry_run: bool = False
    sleep: Callable[[float], None] = time.sleep

    def run(self, raw: dict[str, Any]) -> Outcome:
        last: TransientError | None = None
        for delay in (0.0, *LAMBDA_RETRY_DELAYS):
            if delay:
                self.sleep(delay)
            self.bucket.take()
            try:
                outcome = self.invoker.invoke(raw)
            except NotReplayable as exc:
                return _failed(raw, TransientError(str(exc), "not_replayable"))
            except Exception as exc:  # the function failed, or Lambda refused: try again
                reason = str(getattr(exc, "reason", "") or "lambda_" + type(exc).__name__)
                last = TransientError(str(getattr(exc, "message", exc)), reason)
                continue
            self.bucket.charge(outcome.crm_calls - 1)
            return outcome
        assert last is not None
        return _failed(raw, last)


def gathering(crm: Listing, batch_size: int | None = None) -> Listing:
    """`crm` with its batchable calls gathered into batch calls (at most `batch_size`
    records each, default the destination's most), where it has batch calls."""
    from auth0_sync.destinations.batches import batches_of
    from auth0_sync.gathering import GatheringCrm

    batches = batches_of(crm)
    return crm if batches is None else GatheringCrm(crm, batches, limit=batch_size)


def stack_environment(stack: str) -> dict[str, str]:
    """The deployed `user.updated` handler's environment: its state table, DLQ, CRM and
    mapping, so a local run writes exactly where the stack does."""
    functions = functions_of_stack(stack)
    name = functions.get(str(EventType.USER_UPDATED))
    if not name:
        raise ConfigError(f"--stack {stack}: no {EventType.USER_UPDATED} function in its outputs")
    try:
        config = boto3.client("lambda").get_function_configuration(FunctionName=name)
    except (ClientError, BotoCoreError) as exc:
        raise ConfigError(f"--stack {stack}: cannot read function {name}: {exc}") from exc
    return dict(config.get("Environment", {}).get("Variables", {}))


def build_target(
    *,
    target: str,
    dry_run: bool,
    bucket: TokenBucket,
    stack: str | None = None,
    functions: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    backoff_seconds: float | None = None,
    environ: Mapping[str, str] | None = None,
    batch: bool = False,
    batch_size: int | None = None,
) -> Target:
    """The target for the flags `--target`, `--dry-run`, `--stack` and `--functions`;
    `batch`: the local target gathers its workers' CRM calls into batch calls
    (`auth0_sync.gathering`) of at most `batch_size` records (default: the destination's
    most)."""
    env = dict(os.environ if environ is None else environ)
    if stack:
        env.update(stack_environment(stack))
    if target == "lambda" and not dry_run:
        names = dict(functions) if functions else (functions_of_stack(stack) if stack else None)
        if not names:
            raise ConfigError(
                "--target lambda needs --stack NAME (the deployed stack) or --functions "
                "user.created=NAME,user.updated=NAME,user.deleted=NAME"
            )
        invoker = LambdaInvoker(names)
        invoker.check()
        return LambdaTarget(invoker, bucket)
    settings = Settings.from_env(env)
    store = DynamoSyncStateStore(settings.state_table, boto3.client("dynamodb"))
    if dry_run:
        crm = DiffingCrm(crm_client(settings, bucket))
        readonly = ReadOnlyState(store)
        service = SyncService(SyncCore(settings, crm, readonly), KeptFailures())
        return PlanTarget(service, crm, store, timeout)
    return local_target(
        settings,
        bucket,
        store,
        SqsDeadLetterQueue(settings.dlq_url),
        timeout=timeout,
        backoff_seconds=backoff_seconds,
        batch=batch,
        batch_size=batch_size,
    )


def local_target(
    settings: Settings,
    bucket: TokenBucket,
    state: StateStore,
    dead_letters: SqsDeadLetterQueue | MemoryDeadLetterQueue,
    *,
    timeout: float = 30.0,
    backoff_seconds: float | None = None,
    batch: bool = False,
    batch_size: int | None = None,
) -> LocalTarget:
    """`--target local`: the sync in this process on `state`, failures to `dead_letters`
    (the state table and DLQ for the CLI; in memory for a benchmark of the CRM's limit)."""
    live = crm_client(settings, bucket)
    core = SyncCore(settings, gathering(live, batch_size) if batch else live, state)
    service = SyncService(core, dead_letters)
    runner = LocalRunner(
        service, dead_letters, timeout_seconds=timeout, backoff_seconds=backoff_seconds
    )
    return LocalTarget(runner, state)
