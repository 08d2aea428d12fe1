"""What is in the DLQ: each SQS message, whatever its shape, read into a `DeadLetter`.

Four shapes land in the one queue; `read_letter` recovers the original EventBridge event
and the failure from each:
- `handler`: a handler's own permanent failure, or a replay's new failure: the event as the
  body, the failure in message attributes (error_class, reason, handler, attempts,
  first_failure_at);
- `on_failure`: the record Lambda's on-failure destination writes once its retries are
  exhausted: `requestContext` (`approximateInvokeCount`, ...), `requestPayload` (the event)
  and the runtime's error as `responsePayload` (`errorMessage`, `errorType`, ...). Our
  exceptions start their message with the reason (`crm_503: ...`); any other error type is
  `internal_error`, or `lambda_timeout` when Lambda says the task timed out. A record
  with `condition: EventAgeExceeded` and no `responsePayload` is an event Lambda dropped
  after its maximum event age without a function error (it was throttled):
  `event_age_exceeded`, transient;
- `delivery`: EventBridge could not deliver the event to the function: the event as the
  body, with ERROR_CODE, ERROR_MESSAGE, RULE_ARN, TARGET_ARN and RETRY_ATTEMPTS attributes;
- `queue` (buffered topology): SQS's redrive policy moved the message from a type's queue
  after its maxReceiveCount receives ended without an answer (the function timed out or
  crashed; a failure it could name, it sends itself, as `handler`): the EventBridge event
  unchanged as the body, no message attribute, the source queue's ARN in the
  `DeadLetterQueueSourceArn` system attribute (absent in moto and in older readers'
  requests: a bare EventBridge event reads the same). `receive_count_exceeded`, transient.
  An event the buffered redrive sent to its queue carries its DLQ history in the body
  (`REPLAY_HISTORY_KEY`): the letter keeps its first failure and counts one more attempt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

from auth0_sync.dead_letter import REASON_PREFIX, History, split_history
from auth0_sync.errors import SyncError
from auth0_sync.events import identity_of
from auth0_sync.names import (
    DLQ_ATTR_ATTEMPTS,
    DLQ_ATTR_EB_ERROR_CODE,
    DLQ_ATTR_EB_ERROR_MESSAGE,
    DLQ_ATTR_EB_RETRY_ATTEMPTS,
    DLQ_ATTR_EB_TARGET_ARN,
    DLQ_ATTR_ERROR_CLASS,
    DLQ_ATTR_FIRST_FAILURE,
    DLQ_ATTR_HANDLER,
    DLQ_ATTR_REASON,
    LAMBDA_CONDITION_EVENT_AGE_EXCEEDED,
    REASON_DELIVERY_FAILED,
    REASON_EVENT_AGE_EXCEEDED,
    REASON_INTERNAL_ERROR,
    REASON_LAMBDA_TIMEOUT,
    REASON_RECEIVE_COUNT_EXCEEDED,
    SQS_ATTR_DLQ_SOURCE_ARN,
)

Shape = Literal["delivery", "on_failure", "handler", "queue", "unknown", "unreadable"]

# A handler's reason attribute: `<reason>: <message>`, or a bare reason.
_REASON_TEXT = re.compile(r"^([a-z][a-z0-9_]*)(?:: (.*))?$", re.DOTALL)
# What Lambda writes in errorMessage when the function ran out of time.
_TIMED_OUT = "Task timed out"
AGED_OUT = (
    "Lambda dropped the event after its maximum event age without a function error "
    "(throttled, as when the handlers' reserved concurrency is used up)"
)


@dataclass
class DeadLetter:
    """One DLQ message, whatever its shape, with the original EventBridge event recovered."""

    message_id: str
    receipt_handle: str
    shape: Shape
    event: dict[str, Any] | None
    error_class: str
    # A reason code (`crm_503`, `invalid_event`, `internal_error`, ...) and the error's text.
    reason: str
    detail: str
    attempts: int | None
    first_failure_at: datetime | None
    sent_at: datetime
    handler: str | None = None
    # The message as received, for `dlq show` and the export of what is deleted.
    body: str = field(default="", repr=False)
    attributes: dict[str, str] = field(default_factory=dict, repr=False)
    event_id: str | None = field(init=False)
    event_type: str | None = field(init=False)
    user_id: str | None = field(init=False)

    def __post_init__(self) -> None:
        ids = identity_of(self.event)
        self.event_id, self.event_type, self.user_id = (
            ids["event_id"],
            ids["event_type"],
            ids["user_id"],
        )

    @property
    def key(self) -> str:
        """What groups messages of one event: its id (or the message's, when it has none)."""
        return self.event_id or f"message:{self.message_id}"

    @property
    def failed_since(self) -> datetime:
        """The first failure when the message says, else when it entered the queue."""
        return self.first_failure_at or self.sent_at

    def age_seconds(self, now: datetime | None = None) -> float:
        return max(0.0, ((now or datetime.now(UTC)) - self.failed_since).total_seconds())

    def history(self) -> History:
        """Its tries so far and first failure, for the message that may replace it."""
        return History(self.attempts or 1, self.failed_since.isoformat())

    def reason_text(self) -> str:
        """`crm_503: crm POST /contacts: HTTP 503 ...` (one line)."""
        text = f"{self.reason}: {self.detail}" if self.detail else self.reason
        return text.replace("\n", " ")

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        """The listing's JSON record (ids and the failure; the profile stays out)."""
        return {
            "message_id": self.message_id,
            "shape": self.shape,
            "event_id": self.event_id,
            "type": self.event_type,
            "user_id": self.user_id,
            "error_class": self.error_class,
            "reason": self.reason,
            "detail": self.detail,
            "attempts": self.attempts,
            "first_failure_at": self.first_failure_at.isoformat()
            if self.first_failure_at
            else None,
            "sent_at": self.sent_at.isoformat(),
            "age_seconds": round(self.age_seconds(now)),
            "handler": self.handler,
        }


@cache
def our_error_types() -> frozenset[str]:
    """Class names of every error the sync raises on purpose (SyncError and subclasses)."""
    names: set[str] = set()
    pending: list[type[SyncError]] = [SyncError]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return frozenset(names)


def reason_of_function_error(error_type: str, error_message: str) -> tuple[str, str]:
    """(reason, detail) of a function error as Lambda reports it (errorType, errorMessage)."""
    if error_type in our_error_types():
        match = REASON_PREFIX.match(error_message)
        if match:
            return match[1], error_message[match.end() :]
    if _TIMED_OUT in error_message:
        return REASON_LAMBDA_TIMEOUT, error_message
    return REASON_INTERNAL_ERROR, error_message


def function_name_of(arn: str) -> str:
    """`arn:aws:lambda:eu-west-1:123:function:name:$LATEST` -> `name` (else the text)."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[2] == "lambda" and parts[5] == "function":
        return parts[6]
    return arn


def is_bus_event(body: Any) -> bool:
    """Whether a message body is an EventBridge event (its envelope's keys)."""
    return isinstance(body, dict) and {"detail-type", "source", "detail"} <= body.keys()


def queue_name_of(arn: str) -> str:
    """`arn:aws:sqs:eu-west-1:123:name` -> `name` (else the text)."""
    parts = arn.split(":")
    return parts[5] if len(parts) == 6 and parts[2] == "sqs" else arn


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read_letter(message: Mapping[str, Any]) -> DeadLetter:
    """Normalise one received SQS message (any of the four shapes) into a `DeadLetter`."""
    attributes = {
        name: str(value.get("StringValue", ""))
        for name, value in message.get("MessageAttributes", {}).items()
    }
    sent_ms = _int(message.get("Attributes", {}).get("SentTimestamp"))
    sent_at = datetime.fromtimestamp(sent_ms / 1000, UTC) if sent_ms else datetime.now(UTC)
    body_text = str(message.get("Body", ""))

    def letter(
        shape: Shape,
        event: Any,
        error_class: str,
        reason: str,
        detail: str,
        attempts: int | None = None,
        first_failure_at: datetime | None = None,
        handler: str | None = None,
    ) -> DeadLetter:
        return DeadLetter(
            message_id=str(message["MessageId"]),
            receipt_handle=str(message["ReceiptHandle"]),
            shape=shape,
            event=event if isinstance(event, dict) else None,
            error_class=error_class,
            reason=reason,
            detail=detail,
            attempts=attempts,
            first_failure_at=first_failure_at,
            sent_at=sent_at,
            handler=handler,
            body=body_text,
            attributes=attributes,
        )

    try:
        body = json.loads(body_text)
    except ValueError as exc:
        return letter("unreadable", None, "unreadable", "unreadable", f"body is not JSON: {exc}")
    if isinstance(body, dict) and "requestPayload" in body and "requestContext" in body:
        response = _dict(body.get("responsePayload"))
        context = _dict(body.get("requestContext"))
        condition = str(context.get("condition") or "")
        error_type = str(response.get("errorType") or "")
        if not response and condition == LAMBDA_CONDITION_EVENT_AGE_EXCEEDED:
            reason, detail = REASON_EVENT_AGE_EXCEEDED, AGED_OUT
        else:
            error_message = str(response.get("errorMessage", ""))
            reason, detail = reason_of_function_error(error_type, error_message)
        function_error = _dict(body.get("responseContext")).get("functionError")
        return letter(
            "on_failure",
            body["requestPayload"],
            error_type or str(function_error or condition or "?"),
            reason,
            detail,
            _int(context.get("approximateInvokeCount")),
            handler=function_name_of(str(context["functionArn"]))
            if context.get("functionArn")
            else None,
        )
    if DLQ_ATTR_EB_ERROR_CODE in attributes:
        target = attributes.get(DLQ_ATTR_EB_TARGET_ARN)
        return letter(
            "delivery",
            body,
            attributes[DLQ_ATTR_EB_ERROR_CODE],
            REASON_DELIVERY_FAILED,
            attributes.get(DLQ_ATTR_EB_ERROR_MESSAGE, ""),
            _int(attributes.get(DLQ_ATTR_EB_RETRY_ATTEMPTS)),
            handler=function_name_of(target) if target else None,
        )
    if DLQ_ATTR_ERROR_CLASS in attributes:
        text = attributes.get(DLQ_ATTR_REASON, "")
        match = _REASON_TEXT.match(text)
        reason, detail = (match[1], match[2] or "") if match else (REASON_INTERNAL_ERROR, text)
        return letter(
            "handler",
            body,
            attributes[DLQ_ATTR_ERROR_CLASS],
            reason,
            detail,
            _int(attributes.get(DLQ_ATTR_ATTEMPTS)),
            _when(attributes.get(DLQ_ATTR_FIRST_FAILURE)),
            attributes.get(DLQ_ATTR_HANDLER),
        )
    source_queue = str(message.get("Attributes", {}).get(SQS_ATTR_DLQ_SOURCE_ARN) or "")
    if not attributes and (source_queue or is_bus_event(body)):
        where = f"from {queue_name_of(source_queue)} " if source_queue else ""
        event, history = split_history(body)
        return letter(
            "queue",
            event,
            "ReceiveCountExceeded",
            REASON_RECEIVE_COUNT_EXCEEDED,
            f"SQS moved it {where}after the queue's most receives: each ended without an "
            "answer (the function timed out or crashed); its log says why",
            history.attempts + 1 if history else None,
            _when(history.first_failure_at) if history else None,
        )
    return letter(
        "unknown",
        body,
        "unknown",
        "unknown",
        "no failure attributes: not written by EventBridge, Lambda or the handlers",
    )


def group_by_event(letters: Iterable[DeadLetter]) -> list[list[DeadLetter]]:
    """Messages of one event together, in the order the first of each was read."""
    groups: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        groups.setdefault(letter.key, []).append(letter)
    return list(groups.values())


def oldest_history(group: Sequence[DeadLetter]) -> History:
    """The history a group's replacement keeps: the most tries, the earliest failure."""
    first = min(group, key=lambda x: x.failed_since)
    return History(max(x.attempts or 1 for x in group), first.failed_since.isoformat())
