"""The dead-letter queue adapter: the only module that writes failures to SQS.

Two shapes are written here, both replayable:
- a handler's own permanent failure: the original EventBridge event as the body, the
  failure in message attributes (error_class, reason, handler, attempts, first_failure_at);
- in local mode, the record Lambda's on-failure destination writes after the last retry
  (`requestPayload`, `requestContext`, `responseContext`, `responsePayload`), so local runs
  leave exactly what AWS would.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.errors import TransientError
from auth0_sync.names import (
    ASYNC_RETRY_ATTEMPTS,
    DEFAULT_DLQ_NAME,
    DLQ_ATTR_ATTEMPTS,
    DLQ_ATTR_ERROR_CLASS,
    DLQ_ATTR_FIRST_FAILURE,
    DLQ_ATTR_HANDLER,
    DLQ_ATTR_REASON,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef


@dataclass(frozen=True)
class Failure:
    """Why an event was dead-lettered."""

    error_class: str
    reason: str
    message: str
    handler: str
    attempts: int = 1
    first_failure_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


def permanent_failure_message(event: Any, failure: Failure) -> tuple[str, dict[str, str]]:
    """Body and attributes of a handler's own permanent-failure message."""
    attributes = {
        DLQ_ATTR_ERROR_CLASS: failure.error_class,
        DLQ_ATTR_REASON: f"{failure.reason}: {failure.message}"[:1000],
        DLQ_ATTR_HANDLER: failure.handler,
        DLQ_ATTR_ATTEMPTS: str(failure.attempts),
        DLQ_ATTR_FIRST_FAILURE: failure.first_failure_at,
    }
    return json.dumps(event), attributes


def on_failure_record(event: Any, failure: Failure, function_arn: str) -> str:
    """The body Lambda's on-failure destination writes once retries are exhausted."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": function_arn,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": ASYNC_RETRY_ATTEMPTS + 1,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {
                "errorMessage": failure.message,
                "errorType": failure.error_class,
                "reason": failure.reason,
            },
        }
    )


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

    def send_on_failure(self, event: Any, failure: Failure, function_arn: str) -> None:
        self._send(on_failure_record(event, failure, function_arn), {})

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

    def send_on_failure(self, event: Any, failure: Failure, function_arn: str) -> None:
        with self._lock:
            self.messages.append((on_failure_record(event, failure, function_arn), {}))
