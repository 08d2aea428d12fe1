"""The in-process target of `replay --target local` and `auth0-sync redrive`: the handlers'
service, run through `LocalRunner.invoke`, and the loop that drives it.

Batched (the default): the service's CRM gathers the calls of the users in flight into the
destination's batch calls (`auth0_sync.gathering`, as `backfill` and `catch-up` do), the
loop runs independent users' events at once (`auth0_sync.replay.concurrent`), and every
HTTP request to the CRM takes a token from the rate's bucket, so `--rate` bounds the CRM
requests per second, a batch request counting as one. `--no-batch`: one event after the
other, each record its own call, a token before each event and its other calls charged
after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auth0_sync.dead_letter import SqsDeadLetterQueue
from auth0_sync.destinations.batches import batches_of
from auth0_sync.gathering import GatheringCrm
from auth0_sync.replay.concurrent import LaneReplayer, SerialDeadLetters
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync.replay.queue import DlqReader
from auth0_sync.replay.replayer import DeadLetterWriter, Replayer
from auth0_sync.runtime import build_service
from auth0_sync.settings import Settings
from auth0_sync_cli.crm_pacing import crm_client
from auth0_sync_cli.runner import LocalRunner, function_name_for

# Users in flight per batch slot: a user's calls are of three kinds (find by owner, find by
# email, write), so as many users as three batches hold fill each batch (as the backfill).
BATCH_PHASES = 3
MAX_BATCH_WORKERS = 300


@dataclass
class LocalReplay:
    """The service a local replay runs events through, and how the loop is paced."""

    runner: LocalRunner
    failures: DeadLetterWriter
    # Taken per event by the loop (--no-batch); no limit when the CRM's session takes it.
    limiter: TokenBucket
    workers: int  # users in flight at once (1: one event after the other)
    calls_made: Callable[[], int]
    dlq_lock: threading.Lock | None = None

    def replayer(self, reader: DlqReader, **options: Any) -> Replayer:
        """The loop over `reader` with this target (options: the `Replayer`'s)."""
        common: dict[str, Any] = {
            "invoke": self.runner.invoke,
            "failures": self.failures,
            "name_for": function_name_for,
            "limiter": self.limiter,
            "calls_made": self.calls_made,
            **options,
        }
        if self.workers > 1:
            return LaneReplayer(reader, workers=self.workers, dlq_lock=self.dlq_lock, **common)
        return Replayer(reader, **common)


def local_replay(
    settings: Settings,
    failures: SqsDeadLetterQueue,
    *,
    bucket: TokenBucket,
    timeout: float,
    batch: bool = True,
    batch_size: int | None = None,
    hold_deletes: bool = True,
) -> LocalReplay:
    """The local target: batched (`batch`, batches of at most `batch_size` records; every
    CRM request takes a token of `bucket`) or one call a record (each event takes one
    before it runs, its other calls charged after it)."""
    if not batch:
        service = build_service(settings, dead_letters=failures, hold_deletes=hold_deletes)
        runner = LocalRunner(service, failures, timeout_seconds=timeout)
        return LocalReplay(runner, failures, bucket, 1, service.core.crm.calls_made)
    live = crm_client(settings, bucket)
    batches = batches_of(live)
    if batches is None:  # a destination without batch calls: one event after the other
        crm: Any = live
        workers = 1
    else:
        crm = GatheringCrm(live, batches, limit=batch_size)
        workers = min(BATCH_PHASES * crm.batch_limit, MAX_BATCH_WORKERS)
    # The handlers' failures and the replay's deletes: one change to the DLQ at a time.
    lock = threading.Lock()
    serial = SerialDeadLetters(failures, lock)
    service = build_service(settings, dead_letters=serial, hold_deletes=hold_deletes, crm=crm)
    runner = LocalRunner(service, failures, timeout_seconds=timeout)
    # Touched once here: the threads then share this client, none builds its own.
    failures.client  # noqa: B018
    return LocalReplay(runner, serial, TokenBucket(None), workers, crm.calls_made, dlq_lock=lock)
