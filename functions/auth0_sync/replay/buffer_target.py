"""Replay into the buffered topology's queues: each event to its type's queue, in batches.

The scheduled redrive of a buffered stack hands the events it chose to the queue the rule
of their type sends to, instead of invoking the function: the event source mapping then
applies them in batches through the destination's batch calls, at the concurrency sized
for the destination, and what fails again comes back to the DLQ through the handler (with
its reason) or the queue's redrive policy.

The message body is what EventBridge puts there (AWS, "Amazon SQS queues as targets": the
event is the body), with the event's DLQ history under `REPLAY_HISTORY_KEY`, which the
handler reads on a new failure (`auth0_sync.dead_letter`) and the DLQ readers read on a
message SQS moved back (`auth0_sync.replay.letters`): the attempt count and the first
failure survive the round trip.

SendMessageBatch takes 10 entries a call and answers per entry (`Successful`, `Failed`):
only an event whose entry succeeded is `queued` (its DLQ messages may then be deleted);
a failed entry, or a call SQS refused as a whole, leaves the event `failed`
(`buffer_unavailable`) and its messages in the DLQ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.errors import ConfigError
from auth0_sync.events import identity_of, normalise_type
from auth0_sync.replay.replayer import Sent
from auth0_sync.routing import ROUTES, route_for

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

# SendMessageBatch: at most 10 entries, and at most 256 KiB of bodies in one call.
MAX_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
REASON_BUFFER_UNAVAILABLE = "buffer_unavailable"


def parse_buffer_queues(text: str) -> dict[str, str]:
    """`{"user.created": "<queue url>", ...}` -> {event type: queue url}; `ValueError`
    naming what is wrong."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise ValueError('expected {"TYPE": "QUEUE_URL", ...} with at least one type')
    known = {str(route.event_type) for route in ROUTES}
    queues: dict[str, str] = {}
    for key, url in raw.items():
        event_type = normalise_type(str(key))
        if event_type not in known:
            raise ValueError(f"unknown event type {key!r}; one of {sorted(known)}")
        if not isinstance(url, str) or not url:
            raise ValueError(f"{key!r}: the queue URL must be a non-empty string")
        queues[event_type] = url
    return queues


def chunks(bodies: Sequence[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """The entries of one queue in calls of at most MAX_ENTRIES and MAX_BATCH_BYTES."""
    calls: list[list[tuple[int, str]]] = []
    size = 0
    for item in bodies:
        length = len(item[1].encode("utf-8"))
        if not calls or len(calls[-1]) == MAX_ENTRIES or size + length > MAX_BATCH_BYTES:
            calls.append([])
            size = 0
        calls[-1].append(item)
        size += length
    return calls


class BufferSender:
    """Sends events to their type's buffer queue with SendMessageBatch; per event, whether
    its queue took it (`Replayer(forward=...)`)."""

    def __init__(self, queues: Mapping[str, str], client: SQSClient | None = None) -> None:
        if not queues:
            raise ConfigError("the buffered redrive needs at least one buffer queue")
        self.queues = dict(queues)
        self._client = client

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            self._client = boto3.client("sqs")
        return self._client

    def __call__(self, events: Sequence[Any]) -> list[Sent]:
        answers: list[Sent | None] = [None] * len(events)
        by_queue: dict[str, list[tuple[int, str]]] = {}
        types: dict[int, str] = {}
        for n, event in enumerate(events):
            event_type = identity_of(event)["event_type"]
            route = route_for(event_type or "")
            url = self.queues.get(route.event_type.value) if route else None
            if url is None:
                answers[n] = (
                    "not_replayed",
                    "not_replayable",
                    f"no buffer queue for the event's type {event_type!r}",
                )
                continue
            types[n] = route.event_type.value if route else ""
            by_queue.setdefault(url, []).append((n, json.dumps(event)))
        for url, bodies in by_queue.items():
            for call in chunks(bodies):
                self._send(url, call, answers, types)
        return [
            answer or ("failed", REASON_BUFFER_UNAVAILABLE, "SQS did not answer for the entry")
            for answer in answers
        ]

    def _send(
        self,
        url: str,
        call: list[tuple[int, str]],
        answers: list[Sent | None],
        types: Mapping[int, str],
    ) -> None:
        """One SendMessageBatch; each entry's answer (`queued` counted by event type)."""
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(k), "MessageBody": body} for k, (_, body) in enumerate(call)
        ]
        queue = url.rsplit("/", 1)[-1]
        try:
            answer = self.client.send_message_batch(QueueUrl=url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            for n, _ in call:
                answers[n] = ("failed", REASON_BUFFER_UNAVAILABLE, f"{queue}: {exc}")
            return
        for ok in answer.get("Successful", []):
            n = call[int(ok["Id"])][0]
            answers[n] = ("queued", types[n], None)
        for bad in answer.get("Failed", []):
            answers[call[int(bad["Id"])][0]] = (
                "failed",
                REASON_BUFFER_UNAVAILABLE,
                f"{queue}: {bad.get('Code', '?')}: {bad.get('Message', '')}",
            )
