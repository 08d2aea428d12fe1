"""`GatheringCrm`: many threads' single calls carried by batch calls, each caller getting
what its single call would give (its contact, None, or its own error raised)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from auth0_sync.destinations import BatchResult, BatchWrite, Contact
from auth0_sync.errors import ContactExists, TransientError
from auth0_sync.gathering import GatheringCrm


class Recorder:
    """A `Batching` keeping every batch it is sent; emails of `taken` conflict."""

    batch_limit = 4

    def __init__(self, taken: frozenset[str] = frozenset(), fail: bool = False) -> None:
        self.taken = taken
        self.fail = fail
        self.sent: list[list[Any]] = []
        self.lock = threading.Lock()

    def find_batch(self, field: str, values: Sequence[str]) -> dict[str, list[Contact]]:
        with self.lock:
            self.sent.append(list(values))
        return {v: [{"id": f"c-{v}", field: v}] for v in values}

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchResult]:
        with self.lock:
            self.sent.append(list(writes))
        if self.fail:
            raise TransientError("the whole batch failed", "crm_503")
        return [
            ContactExists("taken") if w.fields["email"] in self.taken else {"id": w.idempotency_key}
            for w in writes
        ]


class Adapter:
    def __init__(self) -> None:
        self.deadline: Any = None

    def set_deadline(self, remaining: Any) -> None:
        self.deadline = remaining

    def calls_made(self) -> int:
        return 0


def in_threads(crm: GatheringCrm, work: Callable[[int], Any], n: int) -> dict[int, Any]:
    """`work(i)` for i < n, each in its own thread inside the room (as the service does)."""
    out: dict[int, Any] = {}
    all_in = threading.Barrier(n)

    def one(i: int) -> None:
        crm.set_deadline(lambda: 30_000)
        all_in.wait()
        try:
            out[i] = work(i)
        except Exception as exc:
            out[i] = exc
        finally:
            crm.set_deadline(None)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return out


def test_each_caller_gets_its_own_answer_in_batches_of_the_limit() -> None:
    batches = Recorder()
    crm = GatheringCrm(Adapter(), batches, window=5.0)

    found = in_threads(crm, lambda i: crm.find_contacts(email=f"u{i}@x"), 10)

    assert {i: f[0]["id"] for i, f in found.items()} == {i: f"c-u{i}@x" for i in range(10)}
    assert sorted(len(b) for b in batches.sent) == [2, 4, 4]
    assert crm.batches_sent() == 3


def test_a_records_own_error_is_raised_in_its_callers_thread_only() -> None:
    batches = Recorder(taken=frozenset({"u2@x"}))
    crm = GatheringCrm(Adapter(), batches, window=5.0)

    made = in_threads(
        crm, lambda i: crm.create_contact({"email": f"u{i}@x"}, idempotency_key=f"k{i}"), 4
    )

    assert isinstance(made[2], ContactExists)
    assert {i: m for i, m in made.items() if i != 2} == {
        0: {"id": "k0"},
        1: {"id": "k1"},
        3: {"id": "k3"},
    }
    assert len(batches.sent) == 1


def test_a_failed_batch_raises_in_every_callers_thread() -> None:
    crm = GatheringCrm(Adapter(), Recorder(fail=True), window=5.0)

    made = in_threads(crm, lambda i: crm.update_contact(f"c{i}", {"email": f"u{i}@x"}), 3)

    assert all(isinstance(m, TransientError) for m in made.values())


def test_a_lone_caller_does_not_wait_for_company_that_cannot_come() -> None:
    batches = Recorder()
    crm = GatheringCrm(Adapter(), batches, window=60.0)

    [found] = in_threads(crm, lambda i: crm.find_contacts(auth0_user_id=f"auth0|a{i}"), 1).values()

    assert found == [{"id": "c-auth0|a0", "auth0_user_id": "auth0|a0"}]


def test_find_needs_a_value() -> None:
    with pytest.raises(ValueError, match="email or an auth0_user_id"):
        GatheringCrm(Adapter(), Recorder()).find_contacts()


def test_a_batch_never_holds_two_writes_of_one_user_or_one_contact() -> None:
    batches = Recorder()
    crm = GatheringCrm(Adapter(), batches, window=5.0)
    # Six writers, all in the room at once: two creates of user a, two updates of contact
    # c1, and two others. Without the rule they would all fit in two batches of four.
    writes: list[Callable[[], Any]] = [
        lambda: crm.create_contact({"email": "a@x", "auth0_user_id": "auth0|a"}, "k-a1"),
        lambda: crm.create_contact({"email": "a@x", "auth0_user_id": "auth0|a"}, "k-a2"),
        lambda: crm.update_contact("c1", {"email": "b@x"}),
        lambda: crm.update_contact("c1", {"email": "b2@x"}),
        lambda: crm.create_contact({"email": "c@x", "auth0_user_id": "auth0|c"}, "k-c"),
        lambda: crm.create_contact({"email": "d@x", "auth0_user_id": "auth0|d"}, "k-d"),
    ]

    done = in_threads(crm, lambda i: writes[i](), len(writes))

    assert not any(isinstance(d, Exception) for d in done.values()), done
    for batch in batches.sent:
        owners = [w.fields.get("auth0_user_id") for w in batch if w.fields.get("auth0_user_id")]
        contacts = [w.contact_id for w in batch if w.contact_id]
        assert len(owners) == len(set(owners)), batch
        assert len(contacts) == len(set(contacts)), batch
    assert sum(len(b) for b in batches.sent) == 6


class SlowEmails(Recorder):
    """Finds by email take a moment; every find is logged as it starts and ends."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []

    def find_batch(self, field: str, values: Sequence[str]) -> dict[str, list[Contact]]:
        with self.lock:
            self.log.append(f"{field} {len(values)} start")
        if field == "email":
            threading.Event().wait(0.3)
        with self.lock:
            self.log.append(f"{field} {len(values)} end")
        return {v: [] for v in values}


def test_when_everyone_waits_only_the_fullest_queue_goes() -> None:
    # Three users wait on a find by email, one on a find by owner: the email batch goes;
    # the owner batch waits for company (the three could join it) until they are done.
    batches = SlowEmails()
    crm = GatheringCrm(Adapter(), batches, window=5.0)

    def find(i: int) -> Any:
        if i < 3:
            return crm.find_contacts(email=f"u{i}@x")
        return crm.find_contacts(auth0_user_id="auth0|a")

    in_threads(crm, find, 4)

    assert batches.log == [
        "email 3 start",
        "email 3 end",
        "auth0_user_id 1 start",
        "auth0_user_id 1 end",
    ]


def test_of_the_queues_waiting_the_fullest_is_the_one_that_goes() -> None:
    crm = GatheringCrm(Adapter(), Recorder(), window=5.0)
    room = crm._room
    emails, owners = crm._finds["email"], crm._finds["auth0_user_id"]
    emails.pending = [object(), object(), object()]  # type: ignore[list-item]
    owners.pending = [object()]  # type: ignore[list-item]

    assert room.goes_first(emails)
    assert not room.goes_first(owners)
    assert not room.goes_first(crm._writes)


class CountingCondition(threading.Condition):
    """The room's condition, counting how often a waiter goes to sleep on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1  # called holding the lock
        return super().wait(timeout)


def test_waiters_sleep_while_a_user_in_the_room_is_busy() -> None:
    # Three users wait on a find by email while a fourth is busy elsewhere (0.3 s): nothing
    # can go until it waits or leaves, so the three sleep (they used to look again every
    # millisecond: hundreds of users in flight spent the CPU the batches save), then the
    # batch goes once the fourth has left.
    batches = Recorder()
    crm = GatheringCrm(Adapter(), batches, window=5.0)
    counting = CountingCondition()
    crm._room.changed = counting

    def work(i: int) -> Any:
        if i == 3:
            threading.Event().wait(0.3)
            return None
        return crm.find_contacts(email=f"u{i}@x")

    out = in_threads(crm, work, 4)

    assert [c[0]["id"] for i, c in sorted(out.items()) if i < 3] == ["c-u0@x", "c-u1@x", "c-u2@x"]
    assert [sorted(batch) for batch in batches.sent] == [["u0@x", "u1@x", "u2@x"]]
    assert counting.waits < 30
