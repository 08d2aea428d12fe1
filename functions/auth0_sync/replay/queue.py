"""The DLQ as a reader sees it: receive and hold, release, delete; never deletes by itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.replay.letters import DeadLetter, read_letter

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

SQS_BATCH = 10


class DlqError(Exception):
    """The queue cannot be found or read; the message says which queue and why."""


class DlqReader:
    """Receives, releases and deletes DLQ messages; never deletes on its own initiative."""

    def __init__(
        self, queue_url: str, client: SQSClient | None = None, *, wait_seconds: int = 1
    ) -> None:
        self.queue_url = queue_url
        self._client = client
        # A long poll asks every SQS server, so an empty answer means an empty queue.
        self.wait_seconds = wait_seconds

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            self._client = boto3.client("sqs")
        return self._client

    def scan(
        self, visibility_seconds: int, *, enough: Callable[[list[DeadLetter]], bool] | None = None
    ) -> list[DeadLetter]:
        """Receive every visible message (hidden for `visibility_seconds`), oldest SQS order.

        Stops early once `enough(letters)` says so. The caller must `release` what it keeps.
        """
        letters: dict[str, DeadLetter] = {}
        while enough is None or not enough(list(letters.values())):
            try:
                batch = self.client.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=SQS_BATCH,
                    MessageAttributeNames=["All"],
                    MessageSystemAttributeNames=["SentTimestamp", "DeadLetterQueueSourceArn"],
                    VisibilityTimeout=visibility_seconds,
                    WaitTimeSeconds=self.wait_seconds,
                ).get("Messages", [])
            except (ClientError, BotoCoreError) as exc:
                self.release(list(letters.values()))
                raise DlqError(f"cannot read the DLQ {self.queue_url}: {exc}") from exc
            if not batch:
                break
            for message in batch:
                letter = read_letter(message)
                # Seen again (its visibility ran out mid-scan): keep the newest receipt handle.
                letters[letter.message_id] = letter
        return list(letters.values())

    def release(self, letters: Sequence[DeadLetter]) -> list[str]:
        """Make messages visible again at once; returns the ids SQS refused (already gone)."""
        return self.set_visibility(letters, 0)

    def set_visibility(self, letters: Sequence[DeadLetter], seconds: int) -> list[str]:
        """Change the visibility timeout of held messages; returns the ids SQS refused."""
        refused: list[str] = []
        for start in range(0, len(letters), SQS_BATCH):
            chunk = letters[start : start + SQS_BATCH]
            entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                {
                    "Id": str(n),
                    "ReceiptHandle": letter.receipt_handle,
                    "VisibilityTimeout": seconds,
                }
                for n, letter in enumerate(chunk)
            ]
            try:
                answer = self.client.change_message_visibility_batch(
                    QueueUrl=self.queue_url, Entries=entries
                )
            except (ClientError, BotoCoreError):
                refused.extend(letter.message_id for letter in chunk)
                continue
            refused.extend(chunk[int(f["Id"])].message_id for f in answer.get("Failed", []))
        return refused

    def delete(self, letter: DeadLetter) -> None:
        """Delete one message (only ever called once its event is safely handled)."""
        try:
            self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=letter.receipt_handle)
        except (ClientError, BotoCoreError) as exc:
            raise DlqError(
                f"cannot delete DLQ message {letter.message_id} "
                f"(event {letter.event_id}): {exc}; it will be replayed again (as a duplicate)"
            ) from exc

    def depth(self) -> int:
        """Approximate number of messages, visible or not (SQS's own count)."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())
