"""A batch of queued events (the buffered topology): each record through the same service.

The event source mapping hands the function a batch of SQS records whose bodies are the
EventBridge events the rule sent to the queue (AWS, "Amazon SQS queue as a target":
the message body is the event). Powertools' batch utility runs each record and answers
`batchItemFailures`, so only the records that failed come back (ReportBatchItemFailures):
- applied, skipped, or a permanent failure (the service sends it to the DLQ with its
  reason and returns): the message is deleted;
- a transient failure: reported, SQS makes the message visible again after the queue's
  visibility timeout; on its last receive (MAX_RECEIVE_COUNT) the handler sends it to the
  DLQ itself with its reason, where the redrive retries it. A receive that ends without an
  answer (a timeout, a crash) still counts, and SQS's redrive policy moves the message to
  the DLQ unchanged (`auth0_sync.replay.letters`, shape `queue`).

Each user's events apply in order under that user's state: the batch runs in the users'
change order, and once one of a user's events failed, that user's later events in the
batch are held back (reported, retried after it) instead of applied past it.

Different users run at once, one lane (thread) each (`auth0_sync.lanes`), through a CRM
that gathers their reads, creates and updates into the destination's batch calls
(`auth0_sync.gathering`): a batch of N users' signups costs about N / the vendor's batch
size requests instead of about 2N, at most one write per user in any of them. A
destination without batch calls runs the records one after the other.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from auth0_sync.buffering import MAX_RECEIVE_COUNT
from auth0_sync.dead_letter import Failure
from auth0_sync.destinations.batches import batches_of
from auth0_sync.errors import SyncError, TransientError
from auth0_sync.events import identity_of, iso, parse_event
from auth0_sync.gathering import GatheringCrm
from auth0_sync.lanes import Lanes
from auth0_sync.names import REASON_LAMBDA_TIMEOUT
from auth0_sync.names import EventType as UserEventType
from auth0_sync.service import DeadLetters, InvocationContext, SyncService
from auth0_sync.sync import Outcome

SQS_EVENT_SOURCE = "aws:sqs"
# A record is not started with less time left than this: it fails (transient) and comes back.
MIN_RECORD_MILLIS = 3000
# The reason of an event held back behind an earlier one of its user that failed.
REASON_EARLIER_EVENT_PENDING = "earlier_event_pending"

# Users of one batch applied at once at most (a lane, a thread, each).
MAX_LANES = 100
# A gathered call waits this long at most for the other users' calls to join its batch
# (it goes at once when every user in flight waits, or the batch is full).
GATHER_WINDOW_SECONDS = 1.0

OrderKey = tuple[str, int, str]
_USER_TYPES = frozenset(str(t) for t in UserEventType)


def is_queue_batch(event: Any) -> bool:
    """Whether Lambda's event is a batch of SQS records (else: one EventBridge event, from
    the rule's asynchronous invocation, a replay or the redrive)."""
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == SQS_EVENT_SOURCE for r in records)
    )


def event_of(body: str) -> Any:
    """The EventBridge event in a message body (the text itself when it is not JSON: the
    service dead-letters it as an invalid event)."""
    try:
        return json.loads(body)
    except ValueError:
        return body


def subject_of(raw: Any) -> str | None:
    """Whose state the event changes: the user's id, or the organization's."""
    user = identity_of(raw)["user_id"]
    if user is not None:
        return f"user:{user}"
    detail = raw.get("detail") if isinstance(raw, dict) else None
    data = detail.get("data") if isinstance(detail, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    org = obj.get("id") if isinstance(obj, dict) else None
    return f"org:{org}" if isinstance(org, str) else None


def order_key(raw: Any) -> OrderKey:
    """The core's order of one user's changes; envelope time for others; unreadable first."""
    try:
        event = parse_event(raw)
        if event.event_type in _USER_TYPES:
            return event.order_key
        return (iso(event.detail.time), 0, event.event_id)
    except (SyncError, ValueError, KeyError, TypeError):
        return ("", 0, "")


def _first_receive(record: SQSRecord) -> str:
    stamp = record.attributes.approximate_first_receive_timestamp
    try:
        return datetime.fromtimestamp(int(stamp) / 1000, UTC).isoformat()
    except (TypeError, ValueError):
        return datetime.now(UTC).isoformat()


def handle_queue_batch(
    service: SyncService,
    batch: dict[str, Any],
    context: InvocationContext,
    *,
    max_receive_count: int = MAX_RECEIVE_COUNT,
    on_retry: Callable[[TransientError], None] | None = None,
) -> dict[str, Any]:
    """Apply each record; answer `{"batchItemFailures": [{"itemIdentifier": id}, ...]}`.
    `on_retry` hears of each record reported for a retry (a transient failure), once."""
    records = sorted(batch["Records"], key=lambda r: order_key(event_of(str(r.get("body")))))
    subjects = dict.fromkeys(_lane_key(r) for r in records)
    lanes = {key: n for n, key in enumerate(subjects)}  # each subject's lane of its own
    gathered = _gathering(service) if len(lanes) > 1 else None
    runner = gathered or service
    failed: set[str] = set()
    lock = threading.Lock()

    def apply(record: SQSRecord) -> Outcome:
        raw = event_of(record.body)
        subject = subject_of(raw)
        try:
            with lock:
                held = subject is not None and subject in failed
            if held:
                raise TransientError(
                    "an earlier event of this user in the batch failed; retried after it",
                    REASON_EARLIER_EVENT_PENDING,
                )
            if context.get_remaining_time_in_millis() < MIN_RECORD_MILLIS:
                raise TransientError("no time left in this invocation", REASON_LAMBDA_TIMEOUT)
            return runner.handle(raw, context)
        except TransientError as exc:
            if subject is not None:
                with lock:
                    failed.add(subject)
            if int(record.attributes.approximate_receive_count) >= max_receive_count:
                return _dead_letter(runner, raw, exc, record, context)
            if on_retry is not None:
                with lock:  # metrics are not made to be added from several threads
                    on_retry(exc)
            raise

    handler: Callable[[SQSRecord], Outcome] = apply
    if gathered is not None:
        # Every user's records in its own lane, in order; the answers kept for the report.
        done: dict[str, Outcome | Exception] = {}

        def run(record: dict[str, Any]) -> None:
            try:
                result: Outcome | Exception = apply(SQSRecord(record))
            except Exception as exc:  # reported below, as Powertools would have
                result = exc
            with lock:
                done[str(record["messageId"])] = result

        pool = Lanes(min(len(lanes), MAX_LANES), lane_of=lanes.__getitem__)
        for record in records:
            pool.submit(_lane_key(record), partial(run, record))
        pool.close()

        def answer_of(record: SQSRecord) -> Outcome:
            result = done[record.message_id]
            if isinstance(result, Exception):
                raise result
            return result

        handler = answer_of

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    answer = process_partial_response(
        event={**batch, "Records": records}, record_handler=handler, processor=processor
    )
    return cast(dict[str, Any], answer)


def _lane_key(record: dict[str, Any]) -> str:
    """Whose lane a record runs in: its subject's, else its own."""
    return subject_of(event_of(str(record.get("body")))) or f"message:{record.get('messageId')}"


class _OneAtATime:
    """The DLQ's sends and the outcomes' reports, one lane at a time (boto3 builds its
    client lazily; metrics are not made to be added from several threads)."""

    def __init__(self, dead_letters: DeadLetters, lock: threading.Lock) -> None:
        self.inner = dead_letters
        self.lock = lock

    def send_permanent(self, event: Any, failure: Failure) -> None:
        with self.lock:
            self.inner.send_permanent(event, failure)


def _gathering(service: SyncService) -> SyncService | None:
    """The service with its CRM calls gathered into batch calls (None: the destination has
    none); the same state, DLQ, outcomes and organizations."""
    core = service.core
    batches = batches_of(core.crm)
    if batches is None:
        return None
    crm = GatheringCrm(core.crm, batches, window=GATHER_WINDOW_SECONDS)
    lock = threading.Lock()
    report = service.on_outcome

    def on_outcome(outcome: Outcome) -> None:
        assert report is not None
        with lock:
            report(outcome)

    return SyncService(
        type(core)(core.settings, crm, core.state, core.window),
        _OneAtATime(service.dead_letters, lock),
        on_outcome=None if report is None else on_outcome,
        organizations=service.organizations,
    )


def _dead_letter(
    service: SyncService,
    raw: Any,
    exc: TransientError,
    record: SQSRecord,
    context: InvocationContext,
) -> Outcome:
    """Its last receive failed too: to the DLQ with the reason (the message is deleted).
    If the DLQ cannot take it, the error stands and SQS's redrive policy moves it."""
    receives = int(record.attributes.approximate_receive_count)
    service.dead_letters.send_permanent(
        raw,
        Failure(
            error_class=type(exc).__name__,
            reason=exc.reason,
            message=exc.message,
            handler=context.function_name,
            attempts=receives,
            first_failure_at=_first_receive(record),
        ),
    )
    ids = identity_of(raw)
    outcome = Outcome(
        status="dead_lettered",
        reason=exc.reason,
        event_id=ids["event_id"],
        event_type=ids["event_type"],
        user_id=ids["user_id"],
        message=exc.message,
    )
    if service.on_outcome is not None:
        service.on_outcome(outcome)
    return outcome
