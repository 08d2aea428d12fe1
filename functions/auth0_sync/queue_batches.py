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
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from auth0_sync.buffering import MAX_RECEIVE_COUNT
from auth0_sync.dead_letter import Failure
from auth0_sync.errors import SyncError, TransientError
from auth0_sync.events import identity_of, iso, parse_event
from auth0_sync.names import REASON_LAMBDA_TIMEOUT
from auth0_sync.names import EventType as UserEventType
from auth0_sync.service import InvocationContext, SyncService
from auth0_sync.sync import Outcome

SQS_EVENT_SOURCE = "aws:sqs"
# A record is not started with less time left than this: it fails (transient) and comes back.
MIN_RECORD_MILLIS = 3000
# The reason of an event held back behind an earlier one of its user that failed.
REASON_EARLIER_EVENT_PENDING = "earlier_event_pending"

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
) -> dict[str, Any]:
    """Apply each record; answer `{"batchItemFailures": [{"itemIdentifier": id}, ...]}`."""
    records = sorted(batch["Records"], key=lambda r: order_key(event_of(str(r.get("body")))))
    failed: set[str] = set()

    def apply(record: SQSRecord) -> Outcome:
        raw = event_of(record.body)
        subject = subject_of(raw)
        try:
            if subject is not None and subject in failed:
                raise TransientError(
                    "an earlier event of this user in the batch failed; retried after it",
                    REASON_EARLIER_EVENT_PENDING,
                )
            if context.get_remaining_time_in_millis() < MIN_RECORD_MILLIS:
                raise TransientError("no time left in this invocation", REASON_LAMBDA_TIMEOUT)
            return service.handle(raw, context)
        except TransientError as exc:
            if subject is not None:
                failed.add(subject)
            if int(record.attributes.approximate_receive_count) >= max_receive_count:
                return _dead_letter(service, raw, exc, record, context)
            raise

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    answer = process_partial_response(
        event={**batch, "Records": records}, record_handler=apply, processor=processor
    )
    return cast(dict[str, Any], answer)


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
