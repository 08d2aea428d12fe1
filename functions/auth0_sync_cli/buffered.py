"""`process --topology buffered`: the buffered topology against local AWS (moto's server).

As in the stack (infra/buffers.py): each routed type has a queue of its own whose redrive
policy ends in the DLQ after MAX_RECEIVE_COUNT receives; the events go to their type's
queue as EventBridge's SQS target sends them (the event as the body), and each queue is
drained in batches of the destination's batch size, each batch handed to the same code the
Lambda handler runs for an event source mapping (`auth0_sync.queue_batches`). As Lambda's
mapping does, the messages the answer does not report as failed are deleted; a reported one
comes back once its visibility timeout ends (on this runner's faster clock).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from auth0_sync.buffering import MAX_RECEIVE_COUNT, SIZING, BufferSizing
from auth0_sync.events import identity_of
from auth0_sync.names import LOCAL_BUFFER_QUEUE_PREFIX, LOCAL_REGION, CrmType
from auth0_sync.queue_batches import SQS_EVENT_SOURCE, handle_queue_batch
from auth0_sync.routing import Route, route_for
from auth0_sync.service import SyncService
from auth0_sync_cli.runner import DEFAULT_TIME_SCALE, LocalContext, function_name_for

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

# SQS's most messages per SendMessageBatch and per ReceiveMessage.
SQS_BATCH = 10


def queue_name(route: Route) -> str:
    """The local queue of a routed type (the stack lets CloudFormation name its own)."""
    return f"{LOCAL_BUFFER_QUEUE_PREFIX}{route.construct_id}"


def lambda_record(message: MessageTypeDef, queue_arn: str) -> dict[str, Any]:
    """A received message as Lambda's mapping hands it to the function (the record of
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html)."""
    body = message.get("Body", "")
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
        "eventSource": SQS_EVENT_SOURCE,
        "eventSourceARN": queue_arn,
        "awsRegion": LOCAL_REGION,
    }


class BufferedRunner:
    """Enqueue events by type, then drain every queue in batches until all are empty."""

    def __init__(
        self,
        service: SyncService,
        client: SQSClient,
        dlq_url: str,
        *,
        crm_type: CrmType,
        timeout_seconds: float,
        time_scale: float = DEFAULT_TIME_SCALE,
        sizing: BufferSizing | None = None,
    ) -> None:
        self.service = service
        self.client = client
        self.sizing = sizing or SIZING[crm_type]
        self.timeout_seconds = timeout_seconds
        # A reported record comes back after the queue's visibility timeout, on this clock.
        self.visibility_seconds = round(self.sizing.visibility_timeout_seconds * time_scale)
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
        self.redrive_policy = json.dumps(
            {
                "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
                "maxReceiveCount": MAX_RECEIVE_COUNT,
            }
        )
        self.queues: dict[Route, tuple[str, str]] = {}  # route -> (url, arn)
        self.batches = 0  # handler invocations, for the summary

    def _queue(self, route: Route) -> tuple[str, str]:
        if route not in self.queues:
            url = self.client.create_queue(
                QueueName=queue_name(route),
                Attributes={
                    "VisibilityTimeout": str(self.visibility_seconds),
                    "RedrivePolicy": self.redrive_policy,
                },
            )["QueueUrl"]
            arn = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            self.queues[route] = (url, arn["Attributes"]["QueueArn"])
        return self.queues[route]

    def run_all(self, events: Iterable[object]) -> None:
        """Every event to its type's queue (an unrouted one straight through the service,
        which counts it, as no rule would match it), then drain the queues."""
        pending: dict[Route, list[str]] = {}
        for raw in events:
            route = route_for(identity_of(raw)["event_type"] or "")
            if route is None:
                self.service.handle(raw, LocalContext(function_name_for(raw), self.timeout_seconds))
                continue
            pending.setdefault(route, []).append(json.dumps(raw))
            if len(pending[route]) == SQS_BATCH:
                self._send(route, pending.pop(route))
        for route, bodies in pending.items():
            self._send(route, bodies)
        self.drain()

    def _send(self, route: Route, bodies: list[str]) -> None:
        url, _ = self._queue(route)
        answer = self.client.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)],
        )
        if answer.get("Failed"):
            raise RuntimeError(f"local queue {url} refused messages: {answer['Failed']}")

    def drain(self) -> None:
        """Batches from each queue until every queue is empty (nothing visible, nothing in
        flight: a reported record is waited for until it comes back or moves to the DLQ)."""
        while True:
            took = sum(self._one_batch(route) for route in list(self.queues))
            if took == 0:
                if not any(self._left(url) for url, _ in self.queues.values()):
                    return
                time.sleep(0.1)

    def _left(self, url: str) -> int:
        found = self.client.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        visible = found.get("ApproximateNumberOfMessages", "0")
        return int(visible) + int(found.get("ApproximateNumberOfMessagesNotVisible", "0"))

    def _one_batch(self, route: Route) -> int:
        """Gather up to the batch size (the mapping's window: what is there now), hand it to
        the handler's batch code, delete what it did not report. The records it took."""
        url, arn = self.queues[route]
        messages: list[MessageTypeDef] = []
        while len(messages) < self.sizing.batch_size:
            wanted = min(SQS_BATCH, self.sizing.batch_size - len(messages))
            got = self.client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=wanted,
                MessageSystemAttributeNames=["All"],
                VisibilityTimeout=self.visibility_seconds,
            ).get("Messages", [])
            seen = {m["MessageId"] for m in messages}
            messages.extend(m for m in got if m["MessageId"] not in seen)
            if len(got) < wanted:  # the queue holds no more for now
                break
        if not messages:
            return 0
        self.batches += 1
        batch = {"Records": [lambda_record(m, arn) for m in messages]}
        context = LocalContext(f"auth0-sync-{route.construct_id}", self.timeout_seconds)
        answer = handle_queue_batch(self.service, batch, context)
        failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), SQS_BATCH):
            chunk = done[start : start + SQS_BATCH]
            self.client.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)
                ],
            )
        return len(messages)
