"""The dead-letter queue adapter: the only module that writes failures to SQS.

Two shapes are written here, both replayable:
- a handler's own permanent failure: the original EventBridge event as the body, the
  failure in message attributes (error_class, reason, handler, attempts, first_failure_at);
- in local mode, the record Lambda's on-failure destination writes after the last retry,
  in exactly Lambda's documented shape (`lambda_on_failure_record`), so a local run leaves
  what AWS would and one reader serves both.

An event being replayed carries its DLQ history under `REPLAY_HISTORY_KEY`; a permanent
failure of that event keeps the history (one more attempt, the same first failure) and the
key never reaches the message body.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.errors import SyncError, TransientError
from auth0_sync.names import (
    DEFAULT_DLQ_NAME,
    DLQ_ATTR_ATTEMPTS,
    DLQ_ATTR_ERROR_CLASS,
    DLQ_ATTR_FIRST_FAILURE,
    DLQ_ATTR_HANDLER,
    DLQ_ATTR_REASON,
    REPLAY_HISTORY_KEY,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

# How every SyncError's message starts (contract: "<reason>: <message>").
REASON_PREFIX = re.compile(r"^([a-z][a-z0-9_]*): ")


@dataclass(frozen=True)
class Failure:
    """Why an event was dead-lettered."""

    error_class: str
    reason: str
    message: str
    handler: str
    attempts: int = 1
    first_failure_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


@dataclass(frozen=True)
class History:
    """What the DLQ knew of an event before this attempt: tries so far, first failure."""

    attempts: int
    first_failure_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "first_failure_at": self.first_failure_at}


def with_history(event: Mapping[str, Any], history: History) -> dict[str, Any]:
    """The event as a replay sends it: with its DLQ history, read back on a new failure."""
    return {**event, REPLAY_HISTORY_KEY: history.to_dict()}


def split_history(event: Any) -> tuple[Any, History | None]:
    """The event without its replay history, and the history (None when it has none)."""
    if not isinstance(event, dict) or REPLAY_HISTORY_KEY not in event:
        return event, None
    plain = {k: v for k, v in event.items() if k != REPLAY_HISTORY_KEY}
    raw = event[REPLAY_HISTORY_KEY]
    try:
        history = History(int(raw["attempts"]), str(raw["first_failure_at"]))
    except (TypeError, KeyError, ValueError):
        return plain, None
    return plain, history


def permanent_failure_message(event: Any, failure: Failure) -> tuple[str, dict[str, str]]:
    """Body and attributes of a handler's own permanent-failure message."""
    event, history = split_history(event)
    if history is not None:
        failure = replace(
            failure,
            attempts=history.attempts + failure.attempts,
            first_failure_at=history.first_failure_at,
        )
    attributes = {
        DLQ_ATTR_ERROR_CLASS: failure.error_class,
        DLQ_ATTR_REASON: f"{failure.reason}: {failure.message}"[:1000],
        DLQ_ATTR_HANDLER: failure.handler,
        DLQ_ATTR_ATTEMPTS: str(failure.attempts),
        DLQ_ATTR_FIRST_FAILURE: failure.first_failure_at,
    }
    return json.dumps(event), attributes


def error_message(exc: BaseException) -> str:
    """What Lambda's runtime reports as `errorMessage`: `str(exc)`, which for a SyncError
    starts with its reason (`crm_503: ...`); the prefix is added if it is missing."""
    text = str(exc)
    if isinstance(exc, SyncError) and not REASON_PREFIX.match(text):
        text = f"{exc.reason}: {text}"
    return text


def _lambda_timestamp(moment: datetime) -> str:
    """Lambda's record time: `2019-11-14T18:16:05.568Z`."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def lambda_on_failure_record(
    event: Any,
    exc: BaseException,
    *,
    attempts: int,
    function_arn: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The record Lambda's on-failure destination writes for a function error, as AWS
    documents it: `requestContext`, `requestPayload` (the event), `responseContext` and
    the runtime's error as `responsePayload` (no field of ours)."""
    request_id = str(uuid.uuid4())
    return {
        "version": "1.0",
        "timestamp": _lambda_timestamp(now or datetime.now(UTC)),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {
            "errorMessage": error_message(exc),
            "errorType": type(exc).__name__,
            "requestId": request_id,
            "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
        },
    }


class SqsDeadLetterQueue:
    """Sends failures to the DLQ (by URL, or found by name in local mode)."""

    def __init__(
        self,
        queue_url: str | None,
        queue_name: str = DEFAULT_DLQ_NAME,
        client: SQSClient | None = None,
    ) -> None:
        self._queue_url = queue_url
        self._queue_name = queue_name
        self._client = client

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            self._client = boto3.client("sqs")
        return self._client

    @property
    def queue_url(self) -> str:
        if self._queue_url is None:
            self._queue_url = self.client.get_queue_url(QueueName=self._queue_name)["QueueUrl"]
        return self._queue_url

    def send_permanent(self, event: Any, failure: Failure) -> None:
        body, attributes = permanent_failure_message(event, failure)
        self._send(body, attributes)

    def send_on_failure(self, record: Mapping[str, Any]) -> None:
        """An on-failure record (`lambda_on_failure_record`) as the message body."""
        self._send(json.dumps(record), {})

    def _send(self, body: str, attributes: dict[str, str]) -> None:
        typed: dict[str, MessageAttributeValueTypeDef] = {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        }
        try:
            self.client.send_message(
                QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=typed
            )
        except (ClientError, BotoCoreError) as exc:
            # Raising makes Lambda retry the event, then its own on-failure destination
            # catches it: the event is not lost even when this send fails.
            raise TransientError(f"dead-letter queue: {exc}", "dlq_unavailable") from exc


@dataclass
class MemoryDeadLetterQueue:
    """In-process DLQ for `auth0-sync process` without AWS: kept and printed at the end."""

    messages: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send_permanent(self, event: Any, failure: Failure) -> None:
        with self._lock:
            self.messages.append(permanent_failure_message(event, failure))

    def send_on_failure(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            self.messages.append((json.dumps(record), {}))
