"""Figure 11: a burst of signups at HubSpot's documented limits, buffered vs direct.

Both run in this process against the HubSpot fake at HubSpot's documented limits for a
Free/Starter private app (100 requests per rolling 10 s, search 5 per second;
`auth0_sync_cli.fakes.hubspot`), with in-memory state (as figure 6: local-aws measures moto).

- Buffered (`topology=buffered`): the events wait in their type's queue and the handler's
  batch code (`auth0_sync.queue_batches.handle_queue_batch`, what `process --topology
  buffered` and the Lambda run) takes them as the event source mapping would: batches of
  the destination's batch size, at most its `max_concurrency` batches at once
  (`auth0_sync.buffering.SIZING`); a record the answer reports comes back after a
  visibility timeout (1 s here instead of minutes), with its receive count one higher.
- Direct (the default): the stack's reserved concurrency of `LocalRunner`s, each event its
  own invocation with Lambda's asynchronous retries (1 s apart instead of minutes).

Ideal time: the requests HubSpot accepted / its limit (10 a second on average).

    PYTHONPATH=functions:. .venv/bin/python -m bench.buffered_burst 10000 2000
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from auth0_sync.buffering import MAX_RECEIVE_COUNT, SIZING
from auth0_sync.dead_letter import MemoryDeadLetterQueue
from auth0_sync.names import CrmType
from auth0_sync.queue_batches import SQS_EVENT_SOURCE, handle_queue_batch
from auth0_sync.runtime import build_service
from auth0_sync.service import SyncService
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import Outcome
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.runner import LocalContext, LocalRunner
from bench.burst import WORKERS, signups, timed_threads
from bench.report import Row, Section
from bench.servers import Peers

# HubSpot's documented limit for a Free/Starter private app: 100 requests per 10 s.
WINDOW_CALLS = 100
WINDOW_SECONDS = 10.0
RATE = WINDOW_CALLS / WINDOW_SECONDS
TARGET_SLOWDOWN = 1.3
VISIBILITY_SECONDS = 1.0  # a reported record comes back this much later (minutes in AWS)
FUNCTION = "auth0-sync-UserCreated"


@dataclass
class Result:
    topology: str
    events: int
    seconds: float
    accepted: int  # HubSpot answers below 400
    throttled: int  # 429s
    dead_lettered: int
    contacts: int
    batches: int  # handler invocations (buffered) or invocations (direct)

    @property
    def ideal(self) -> float:
        return self.accepted / RATE

    @property
    def slowdown(self) -> float:
        return self.seconds / self.ideal if self.ideal else 0.0


def _service(hubspot: FakeHubSpot, outcomes: Counter[str]) -> SyncService:
    lock = threading.Lock()

    def keep(outcome: Outcome) -> None:
        with lock:
            outcomes[outcome.status] += 1

    settings = Settings(
        crm_type=CrmType.HUBSPOT, crm_base_url=hubspot.base_url, crm_api_token=hubspot.token
    )
    return build_service(
        settings,
        state=MemorySyncStateStore(),
        dead_letters=MemoryDeadLetterQueue(),
        on_outcome=keep,
    )


def _record(raw: dict[str, Any], receives: int, first: float) -> dict[str, Any]:
    """The record Lambda's mapping hands the function (tests/builders.sqs_batch's shape,
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html)."""
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": json.dumps(raw),
        "attributes": {
            "ApproximateReceiveCount": str(receives),
            "ApproximateFirstReceiveTimestamp": str(int(first * 1000)),
        },
        "messageAttributes": {},
        "eventSource": SQS_EVENT_SOURCE,
        "eventSourceARN": f"arn:aws:sqs:eu-west-1:123456789012:{FUNCTION}",
    }


def _hubspot() -> FakeHubSpot:
    return FakeHubSpot(window_calls=WINDOW_CALLS, window_ms=int(WINDOW_SECONDS * 1000)).start()


def _counts(hubspot: FakeHubSpot, outcomes: Counter[str]) -> tuple[int, int, int, int]:
    """(requests accepted, 429s, dead letters, contacts in HubSpot)."""
    statuses = [status for _, _, status in hubspot.requests]
    return (
        sum(1 for s in statuses if s < 400),
        sum(1 for s in statuses if s == 429),
        outcomes["dead_lettered"],
        len(hubspot.contacts()),
    )


def run_buffered(events: list[dict[str, Any]]) -> Result:
    """The mapping's loop: `max_concurrency` pollers, each handing a batch to the handler."""
    sizing = SIZING[CrmType.HUBSPOT]
    hubspot = _hubspot()
    outcomes: Counter[str] = Counter()
    service = _service(hubspot, outcomes)
    now = time.time()
    queue: deque[tuple[float, dict[str, Any], int]] = deque((0.0, e, 1) for e in events)
    lock = threading.Lock()
    in_flight = [0]
    batches = [0]

    def poller() -> None:
        while True:
            with lock:
                ready = time.monotonic()
                taken: list[tuple[dict[str, Any], int]] = []
                kept: deque[tuple[float, dict[str, Any], int]] = deque()
                while queue and len(taken) < sizing.batch_size:
                    visible, raw, receives = queue.popleft()
                    if visible <= ready:
                        taken.append((raw, receives))
                    else:  # reported, not visible again yet
                        kept.append((visible, raw, receives))
                queue.extendleft(reversed(kept))
                if not taken and not queue and not in_flight[0]:
                    return
                in_flight[0] += bool(taken)
                batches[0] += bool(taken)
            if not taken:
                time.sleep(0.05)
                continue
            records = [_record(raw, receives, now) for raw, receives in taken]
            answer = handle_queue_batch(
                service,
                {"Records": records},
                LocalContext(FUNCTION),
                max_receive_count=MAX_RECEIVE_COUNT,
            )
            failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
            back = time.monotonic() + VISIBILITY_SECONDS
            with lock:
                for record, (raw, receives) in zip(records, taken, strict=True):
                    if record["messageId"] in failed:
                        queue.append((back, raw, receives + 1))
                in_flight[0] -= 1

    seconds = timed_threads(poller, sizing.max_concurrency)
    try:
        accepted, throttled, dead, contacts = _counts(hubspot, outcomes)
    finally:
        hubspot.stop()
    return Result("buffered", len(events), seconds, accepted, throttled, dead, contacts, batches[0])


def run_direct(events: list[dict[str, Any]]) -> Result:
    """`WORKERS` invocations at once (the stack's reserved concurrency), one event each."""
    hubspot = _hubspot()
    outcomes: Counter[str] = Counter()
    service = _service(hubspot, outcomes)
    runner = LocalRunner(service, service.dead_letters, backoff_seconds=1.0)  # type: ignore[arg-type]
    work: deque[dict[str, Any]] = deque(events)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not work:
                    return
                raw = work.popleft()
            runner.run(raw)

    seconds = timed_threads(worker, WORKERS)
    try:
        accepted, throttled, dead, contacts = _counts(hubspot, outcomes)
    finally:
        hubspot.stop()
    return Result("direct", len(events), seconds, accepted, throttled, dead, contacts, len(events))


def run(_peers: Peers | None = None, *, count: int = 10_000, direct_count: int = 2000) -> Section:
    started = time.perf_counter()
    events = signups(count, seed=31)
    buffered = run_buffered(events)
    same = run_buffered(events[:direct_count]) if direct_count != count else buffered
    direct = run_direct(events[:direct_count])
    sizing = SIZING[CrmType.HUBSPOT]
    section = Section(
        title=f"Burst at HubSpot's limits: buffered vs direct ({count:,} signups)",
        method=(
            f"{count:,} `user.created` at once (a bulk import) against the HubSpot fake at "
            f"HubSpot's documented Free/Starter limits ({WINDOW_CALLS} requests per rolling "
            f"{WINDOW_SECONDS:g} s, search 5/s), in-memory state. Buffered: the handler's "
            f"batch code fed as the event source mapping would (batches of "
            f"{sizing.batch_size}, {sizing.max_concurrency} at once, a reported record back "
            f"after {VISIBILITY_SECONDS:g} s). Direct: {WORKERS} `LocalRunner`s (reserved "
            f"concurrency), Lambda's retries 1 s apart, on the first {direct_count:,} "
            "signups. Ideal time: requests HubSpot accepted / 10 per second."
        ),
        runs="1 each",
    )
    rows = [buffered] + ([same] if same is not buffered else []) + [direct]
    section.detail += [
        "| topology | signups | time | requests accepted | 429s | ideal | time / ideal "
        "| dead letters | contacts | invocations |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r.topology} | {r.events:,} | {r.seconds:.1f} s | {r.accepted:,} | "
            f"{r.throttled} | {r.ideal:.1f} s | {r.slowdown:.2f}x | {r.dead_lettered} | "
            f"{r.contacts:,} | {r.batches:,} |"
            for r in rows
        ),
    ]
    section.rows += [
        Row(
            f"Burst, {count:,} signups at HubSpot's limits: dead letters, buffered",
            str(buffered.dead_lettered),
            f"direct: {direct.dead_lettered} of {direct_count:,}",
            None,
            "0",
            buffered.dead_lettered == 0 and buffered.contacts == count,
        ),
        Row(
            f"Burst, {count:,} signups at HubSpot's limits: time / (requests ÷ limit), buffered",
            f"{buffered.seconds:.1f} s / {buffered.ideal:.1f} s",
            f"direct ({direct_count:,}): {direct.seconds:.1f} s / {direct.ideal:.1f} s",
            buffered.slowdown,
            f"≤ {TARGET_SLOWDOWN}x",
            buffered.slowdown <= TARGET_SLOWDOWN,
        ),
    ]
    section.seconds = time.perf_counter() - started
    return section


if __name__ == "__main__":
    import logging
    import os

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    logging.disable(logging.WARNING)
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    direct_size = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    made = run(count=size, direct_count=direct_size)
    print("\n".join(made.detail))
    for row in made.rows:
        print(f"{row.figure}: {row.ours} (baseline {row.baseline}) met={row.met}")
    print(f"{made.seconds:.0f} s")
