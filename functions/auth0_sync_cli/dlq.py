"""`auth0-sync dlq list`: read the dead-letter queue without removing or hiding anything.

Three shapes of message land in the one DLQ; `read_letter` turns each into a `DeadLetter`:
- `delivery`: EventBridge could not deliver the event to the function (the raw event, with
  ERROR_CODE / ERROR_MESSAGE attributes);
- `on_failure`: Lambda's on-failure destination after the last retry (`requestPayload`,
  `requestContext`, `responseContext`, `responsePayload`);
- `handler`: a handler's own permanent failure (the raw event, with error_class, reason,
  handler, attempts, first_failure_at attributes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.events import identity_of
from auth0_sync.names import (
    DEFAULT_DLQ_NAME,
    DLQ_ATTR_ATTEMPTS,
    DLQ_ATTR_EB_ERROR_CODE,
    DLQ_ATTR_EB_ERROR_MESSAGE,
    DLQ_ATTR_EB_RETRY_ATTEMPTS,
    DLQ_ATTR_ERROR_CLASS,
    DLQ_ATTR_FIRST_FAILURE,
    DLQ_ATTR_HANDLER,
    DLQ_ATTR_REASON,
    STACK_OUTPUT_DLQ_URL,
    Env,
)
from auth0_sync_cli.local_mode import AWS_ENDPOINT_ENV

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

Shape = Literal["delivery", "on_failure", "handler", "unknown", "unreadable"]

# Long enough to read a large queue once; short enough that messages a killed command was
# holding come back soon. `release` makes them visible again at once on a normal exit.
LIST_VISIBILITY_SECONDS = 60
SQS_BATCH = 10


class DlqError(Exception):
    """The queue cannot be found or read; the message says which queue and why."""


@dataclass
class DeadLetter:
    """One DLQ message, whatever its shape, with the original EventBridge event recovered."""

    message_id: str
    receipt_handle: str
    shape: Shape
    event: dict[str, Any] | None
    error_class: str
    reason: str
    attempts: int | None
    first_failure_at: datetime | None
    sent_at: datetime
    handler: str | None = None
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

    def age_seconds(self, now: datetime | None = None) -> float:
        """Since the first failure when the message says, else since it entered the queue."""
        since = self.first_failure_at or self.sent_at
        return max(0.0, ((now or datetime.now(UTC)) - since).total_seconds())

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
            "attempts": self.attempts,
            "first_failure_at": self.first_failure_at.isoformat()
            if self.first_failure_at
            else None,
            "age_seconds": round(self.age_seconds(now)),
            "handler": self.handler,
        }


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


def read_letter(message: Mapping[str, Any]) -> DeadLetter:
    """Normalise one received SQS message (any of the three shapes) into a `DeadLetter`."""
    attributes = {
        name: str(value.get("StringValue", ""))
        for name, value in message.get("MessageAttributes", {}).items()
    }
    sent_ms = _int(message.get("Attributes", {}).get("SentTimestamp"))
    sent_at = datetime.fromtimestamp(sent_ms / 1000, UTC) if sent_ms else datetime.now(UTC)

    def letter(
        shape: Shape,
        event: Any,
        error_class: str,
        reason: str,
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
            attempts=attempts,
            first_failure_at=first_failure_at,
            sent_at=sent_at,
            handler=handler,
        )

    try:
        body = json.loads(message.get("Body", ""))
    except (TypeError, ValueError) as exc:
        return letter("unreadable", None, "unreadable", f"message body is not JSON: {exc}")
    if isinstance(body, dict) and "requestPayload" in body and "requestContext" in body:
        response = body.get("responsePayload")
        response = response if isinstance(response, dict) else {}
        context = body.get("requestContext")
        context = context if isinstance(context, dict) else {}
        function_error = (body.get("responseContext") or {}).get("functionError")
        text, code = str(response.get("errorMessage") or ""), str(response.get("reason") or "")
        return letter(
            "on_failure",
            body["requestPayload"],
            str(response.get("errorType") or function_error or context.get("condition") or "?"),
            f"{code}: {text}" if code and text else code or text,
            _int(context.get("approximateInvokeCount")),
            handler=str(context["functionArn"]) if context.get("functionArn") else None,
        )
    if DLQ_ATTR_EB_ERROR_CODE in attributes:
        return letter(
            "delivery",
            body,
            attributes[DLQ_ATTR_EB_ERROR_CODE],
            attributes.get(DLQ_ATTR_EB_ERROR_MESSAGE, ""),
            _int(attributes.get(DLQ_ATTR_EB_RETRY_ATTEMPTS)),
        )
    if DLQ_ATTR_ERROR_CLASS in attributes:
        return letter(
            "handler",
            body,
            attributes[DLQ_ATTR_ERROR_CLASS],
            attributes.get(DLQ_ATTR_REASON, ""),
            _int(attributes.get(DLQ_ATTR_ATTEMPTS)),
            _when(attributes.get(DLQ_ATTR_FIRST_FAILURE)),
            attributes.get(DLQ_ATTR_HANDLER),
        )
    return letter(
        "unknown",
        body,
        "unknown",
        "no failure attributes: not written by EventBridge, Lambda or the handlers",
    )


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
                    MessageSystemAttributeNames=["SentTimestamp"],
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


def stack_outputs(stack: str) -> dict[str, str]:
    """The outputs of a deployed stack (CloudFormation), by output key."""
    try:
        answer = boto3.client("cloudformation").describe_stacks(StackName=stack)
    except (ClientError, BotoCoreError) as exc:
        raise DlqError(f"--stack {stack}: cannot read the stack's outputs: {exc}") from exc
    outputs = answer["Stacks"][0].get("Outputs", [])
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in outputs}


def resolve_queue_url(
    explicit: str | None, environ: Mapping[str, str] | None = None, stack: str | None = None
) -> str:
    """--queue-url, else the stack's output, else $DLQ_URL, else the local-aws queue."""
    env = os.environ if environ is None else environ
    if explicit:
        return explicit
    if stack:
        outputs = stack_outputs(stack)
        if STACK_OUTPUT_DLQ_URL not in outputs:
            raise DlqError(f"--stack {stack}: no {STACK_OUTPUT_DLQ_URL} output: is it auth0-sync?")
        return outputs[STACK_OUTPUT_DLQ_URL]
    if env.get(Env.DLQ_URL):
        return env[Env.DLQ_URL]
    try:
        return boto3.client("sqs").get_queue_url(QueueName=DEFAULT_DLQ_NAME)["QueueUrl"]
    except (ClientError, BotoCoreError) as exc:
        raise DlqError(
            f"no DLQ given: pass --queue-url or set {Env.DLQ_URL} (the stack's DeadLetterQueueUrl "
            f"output); the default queue {DEFAULT_DLQ_NAME!r} was not found: {exc}"
        ) from exc


def default_wait_seconds(environ: Mapping[str, str] | None = None) -> int:
    """Long-poll real SQS (its short polls sample servers); local moto answers exactly."""
    env = os.environ if environ is None else environ
    return 0 if env.get(AWS_ENDPOINT_ENV) else 1


def format_age(seconds: float) -> str:
    """45s, 12m, 3h, 2d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def render_table(letters: Iterable[DeadLetter], now: datetime | None = None) -> str:
    """One line per message: event id, type, user, shape, error class, attempts, age, reason."""
    rows = [
        (
            letter.event_id or "-",
            letter.event_type or "-",
            letter.user_id or "-",
            letter.shape,
            letter.error_class,
            "-" if letter.attempts is None else str(letter.attempts),
            format_age(letter.age_seconds(now)),
            letter.reason.replace("\n", " "),
        )
        for letter in letters
    ]
    header = ("EVENT ID", "TYPE", "USER", "SHAPE", "ERROR", "TRIES", "AGE", "REASON")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1][:160]]).rstrip())
    return "\n".join(lines)


def summary_line(letters: Sequence[DeadLetter]) -> str:
    """`12 message(s): crm_503 9, invalid_event 1, ...` grouped by the reason's code."""
    codes = Counter(letter.reason.split(":", 1)[0] or letter.error_class for letter in letters)
    detail = ", ".join(f"{code} {n}" for code, n in codes.most_common())
    return f"{len(letters)} message(s)" + (f": {detail}" if detail else "")


def list_letters(reader: DlqReader) -> list[DeadLetter]:
    """Every message, then released: the queue is left as it was found."""
    letters = reader.scan(LIST_VISIBILITY_SECONDS)
    refused = reader.release(letters)
    if refused:
        print(
            f"auth0-sync dlq list: {len(refused)} message(s) could not be released; they "
            f"become visible again within {LIST_VISIBILITY_SECONDS}s",
            file=sys.stderr,
        )
    return letters


def run_list(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        queue_url = resolve_queue_url(args.queue_url, stack=args.stack)
        reader = DlqReader(queue_url, wait_seconds=default_wait_seconds())
        letters = list_letters(reader)
    except DlqError as exc:
        print(f"auth0-sync dlq list: {exc}", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    if args.json:
        print(json.dumps([letter.to_dict(now) for letter in letters], indent=2))
        return 0
    if letters:
        print(render_table(letters, now))
    print(f"{summary_line(letters)} in {reader.queue_url} ({time.monotonic() - started:.1f}s)")
    return 0


def add_queue_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queue-url",
        help=f"the DLQ (default: the --stack output, else ${Env.DLQ_URL}, else the local-aws "
        f"queue {DEFAULT_DLQ_NAME})",
    )
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help=f"the deployed stack (e.g. Auth0Sync): read its {STACK_OUTPUT_DLQ_URL} output",
    )


def register(subparsers: Any) -> None:
    dlq = subparsers.add_parser("dlq", help="inspect the dead-letter queue")
    commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    listing = commands.add_parser(
        "list",
        help="one line per DLQ message: event id, type, user, failure, attempts, age",
        description="List the DLQ without changing it: messages are received with a short "
        "visibility timeout and released at once.",
    )
    add_queue_argument(listing)
    listing.add_argument("--json", action="store_true", help="a JSON array of records")
    listing.set_defaults(func=run_list)
