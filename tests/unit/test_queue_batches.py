"""The buffered topology's handler: a batch of SQS records (each an EventBridge event) through
the same service, partial batch failures reported, each user's events in order. In-memory
CRM, state and DLQ; the batch is built as Lambda documents it (tests/builders.sqs_batch).

Every rule holds both ways the handler runs a batch: one record after the other (a CRM
without batch calls), and each user in a lane of its own with the users' calls gathered
into batch calls (`gathered`: the same CRM with `Batching`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from auth0_sync.crm import Contact
from auth0_sync.dead_letter import MemoryDeadLetterQueue
from auth0_sync.destinations import BatchResult, BatchWrite
from auth0_sync.errors import TransientError
from auth0_sync.queue_batches import handle_queue_batch, is_queue_batch
from auth0_sync.replay.letters import read_letter
from auth0_sync.service import SyncService
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import Outcome, SyncCore
from tests.builders import at, created, sqs_batch, updated
from tests.conftest import load_event
from tests.fakes.memory_crm import MemoryCrm

pytestmark = pytest.mark.unit


@dataclass
class FlakyCrm(MemoryCrm):
    """Answers a transient error (as a 503 would end) to any write for these emails."""

    down_for: set[str] = field(default_factory=set)

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        self._maybe_fail(fields)
        return super().create_contact(fields, idempotency_key)

    def update_contact(
        self, contact_id: str, fields: Mapping[str, Any], if_match: str | None = None
    ) -> Contact | None:
        self._maybe_fail(fields)
        return super().update_contact(contact_id, fields, if_match)

    def _maybe_fail(self, fields: Mapping[str, Any]) -> None:
        if fields.get("email") in self.down_for:
            raise TransientError("crm POST /contacts: HTTP 503", "crm_503")


@dataclass
class GatheredFlakyCrm(FlakyCrm):
    """The same CRM with batch calls (`auth0_sync.destinations.Batching`): each record
    ends as its single call would (a record's error is that record's)."""

    batch_limit: int = 10
    batches: list[int] = field(default_factory=list)  # the size of each batch call

    def find_batch(self, field: str, values: Sequence[str]) -> dict[str, list[Contact]]:
        self.batches.append(len(values))
        return {v: self.find_contacts(**{field: v}) for v in values}

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchResult]:
        self.batches.append(len(writes))
        results: list[BatchResult] = []
        for w in writes:
            try:
                if w.contact_id is None:
                    results.append(self.create_contact(w.fields, w.idempotency_key or ""))
                else:
                    results.append(self.update_contact(w.contact_id, w.fields))
            except Exception as exc:
                results.append(exc)
        return results


@dataclass
class Context:
    function_name: str = "auth0-sync-UserCreated"
    millis: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


@dataclass
class World:
    crm: FlakyCrm
    service: SyncService
    dlq: MemoryDeadLetterQueue
    outcomes: list[Outcome]

    def run(self, batch: dict[str, Any], context: Context | None = None) -> set[str]:
        """The ids of the messages the answer reports as failed."""
        answer = handle_queue_batch(self.service, batch, context or Context())
        return {item["itemIdentifier"] for item in answer["batchItemFailures"]}

    def names(self) -> dict[str, Any]:
        return {c["auth0_user_id"]: c.get("name") for c in self.crm.contacts.values()}


def world(gathered: bool = False) -> World:
    crm = GatheredFlakyCrm() if gathered else FlakyCrm()
    settings = Settings(crm_base_url="http://crm.invalid", crm_api_token="t")
    dlq = MemoryDeadLetterQueue()
    outcomes: list[Outcome] = []
    core = SyncCore(settings, crm, MemorySyncStateStore())
    return World(crm, SyncService(core, dlq, on_outcome=outcomes.append), dlq, outcomes)


@pytest.fixture(params=[False, True], ids=["one_at_a_time", "gathered"])
def w(request: pytest.FixtureRequest) -> World:
    return world(gathered=request.param)


def ids(batch: dict[str, Any]) -> list[str]:
    return [record["messageId"] for record in batch["Records"]]


def test_a_batch_applies_every_record_and_reports_no_failure(w: World) -> None:
    batch = sqs_batch([created(f"auth0|{n}", at(n), email=f"u{n}@example.com") for n in range(3)])

    assert w.run(batch) == set()
    assert sorted(w.names()) == ["auth0|0", "auth0|1", "auth0|2"]
    if isinstance(w.crm, GatheredFlakyCrm):  # three signups, one create each: one batch
        assert w.crm.batches == [3]


def test_a_transient_failure_is_reported_for_its_record_only(w: World) -> None:
    w.crm.down_for = {"u1@example.com"}
    batch = sqs_batch([created(f"auth0|{n}", at(n), email=f"u{n}@example.com") for n in range(3)])

    failed = w.run(batch)

    assert failed == {ids(batch)[1]}
    assert sorted(w.names()) == ["auth0|0", "auth0|2"]
    assert w.dlq.messages == []  # SQS retries it: not dead-lettered on its first receive


def test_a_permanent_failure_goes_to_the_dlq_with_its_reason_and_is_not_retried(w: World) -> None:
    malformed = load_event("malformed_missing_user_id")
    batch = sqs_batch([created("auth0|ok", at(0), email="ok@example.com"), malformed])

    assert w.run(batch) == set()  # deleted from the queue: the DLQ holds it
    ((body, attributes),) = w.dlq.messages
    typed = {k: {"StringValue": v} for k, v in attributes.items()}
    letter = read_letter(
        {"MessageId": "m", "ReceiptHandle": "r", "Body": body, "MessageAttributes": typed}
    )
    assert (letter.shape, letter.reason) == ("handler", "invalid_event")
    assert letter.event == malformed


def test_a_body_that_is_not_json_is_dead_lettered_not_crashed_on(w: World) -> None:

    assert w.run(sqs_batch(["not json {"])) == set()
    ((_, attributes),) = w.dlq.messages
    assert attributes["reason"].startswith("invalid_event")


def test_a_users_later_events_are_held_behind_one_that_failed(w: World) -> None:
    first = updated("auth0|a", at(1), email="a@example.com", name="A1")
    later = updated("auth0|a", at(2), email="a2@example.com", name="A2")
    other = updated("auth0|b", at(3), email="b@example.com", name="B1")
    w.crm.down_for = {"a@example.com"}
    batch = sqs_batch([first, later, other])

    failed = w.run(batch)

    # The later change waits for the first: applied past it, it would make the first stale.
    assert failed == {ids(batch)[0], ids(batch)[1]}
    assert w.names() == {"auth0|b": "B1"}


def test_a_users_events_run_in_change_order_whatever_the_queue_order(w: World) -> None:
    first = updated("auth0|a", at(1), email="a@example.com", name="A1")
    later = updated("auth0|a", at(2), email="a@example.com", name="A2")

    assert w.run(sqs_batch([later, first])) == set()

    # Both applied, in order (the queue's order would have skipped the first as stale).
    assert [(o.status, o.event_id) for o in w.outcomes] == [
        ("applied", first["detail"]["id"]),
        ("applied", later["detail"]["id"]),
    ]
    assert w.names() == {"auth0|a": "A2"}


def test_on_its_last_receive_a_transient_failure_goes_to_the_dlq_with_its_reason(w: World) -> None:
    w.crm.down_for = {"u@example.com"}
    event = created("auth0|u", at(0), email="u@example.com")

    assert w.run(sqs_batch([event], receive_count=5)) == set()

    ((body, attributes),) = w.dlq.messages
    assert json.loads(body) == event
    assert attributes["reason"].startswith("crm_503: ")
    assert attributes["attempts"] == "5"
    assert attributes["handler"] == "auth0-sync-UserCreated"


def test_a_record_is_not_started_without_time_left_and_comes_back(w: World) -> None:
    batch = sqs_batch([created(f"auth0|u{n}", at(n), email=f"u{n}@example.com") for n in (1, 2)])

    assert w.run(batch, Context(millis=1000)) == set(ids(batch))
    assert w.crm.calls == []


def test_only_a_batch_of_sqs_records_takes_the_queue_path() -> None:
    assert is_queue_batch(sqs_batch([created("auth0|u", at(0))]))
    assert not is_queue_batch(created("auth0|u", at(0)))
    assert not is_queue_batch({"Records": [{"eventSource": "aws:kinesis"}]})
    assert not is_queue_batch({"Records": []})
