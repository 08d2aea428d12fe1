"""Many users' CRM calls gathered into the destination's batch calls.

Used where several users' events run at once, each in its own thread: the buffered
topology's handler (a queue batch, `auth0_sync.queue_batches`), and the CLI's bulk paths
(`backfill --batch`, `catch-up`, `reconcile --fix`). The backfill runs each user's snapshot
through the same core as a live event, one worker thread per user in flight.
`GatheringCrm` stands where the core's CRM adapter stands: a call that a batch can carry
(a find by email or by Auth0 user id, a create, an update by record id) waits in a queue
with the same calls of the other workers, and one batch call
carries them all, when the queue holds a whole batch or `window` seconds after its first
call. Each caller gets what its single call would have given (the contact, None, or the
same error raised), so each user's rules are unchanged: its calls still run one after
the other in its own thread, under its own state lease, and a batch holds at most one
write of any user, since a user's thread waits for its write before it goes on.

What no batch can carry goes through the adapter as one call: a read by record id, a
guarded write to a destination with preconditions (`auth0_sync.writes`: the generic
contract's If-Match, Salesforce's If-Unmodified-Since: batch operations take none),
archiving, the listing. HubSpot's guarded write has no precondition: it is addressed by
the owner (`idProperty=auth0_user_id`), which its batch update takes too, so it is gathered.

The request counts stay per thread (`calls_made`): the thread that sends a batch counts
its one request, so the counts of all users add up to the requests the CRM received.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from auth0_sync.destinations import OWNER_FIELD, Batching, BatchResult, BatchWrite, Contact

DEFAULT_WINDOW_SECONDS = 3.0


class _Raised:
    """A record's own error, raised in its caller's thread (not the batch's)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


@dataclass(eq=False)  # one caller's call: compared by identity
class _Call:
    item: Any
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None
    queued: bool = True  # in its queue, not yet taken into a batch


@dataclass
class _Seen:
    """What a batch answered one caller, with the versions its answer gave each contact."""

    contacts: list[Contact] | None
    versions: dict[str, str | None]
    many: bool = True


class _Room:
    """Who is in: the users whose event is being applied (between the service's
    `set_deadline(...)` and `set_deadline(None)`), and how many of them wait in a queue.
    When every user in is waiting, nothing more can join a batch: the batches go."""

    SETTLE_SECONDS = 0.05  # a user between two steps is not waiting yet: give it this long

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.inside: set[int] = set()
        self.waiting = 0
        self.moved = time.monotonic()  # when someone last came in, went out or queued
        self.gathers: list[_Gather] = []

    def enter(self, inside: bool) -> None:
        with self.changed:
            if inside:
                self.inside.add(threading.get_ident())
            else:
                self.inside.discard(threading.get_ident())
            self.moved_now()

    def moved_now(self) -> None:
        """Someone came in, went out, queued or was taken into a batch (called holding the
        lock). The waiters are woken only when every user in may now be waiting: otherwise
        nothing they wait for can have come, and hundreds of users in flight woken at every
        move cost more CPU than the batches save (each sleeps until its window's end, a
        settled room's next move, or its call's batch)."""
        self.moved = time.monotonic()
        if self.waiting >= len(self.inside):
            self.changed.notify_all()

    def all_waiting(self) -> bool:
        """Every user in waits, and has for a moment (called holding the lock)."""
        settled = time.monotonic() - self.moved >= self.SETTLE_SECONDS
        return settled and self.waiting >= len(self.inside)

    def wake_at(self, deadline: float) -> float:
        """When a waiter looks again: once the room has settled after its last move (to see
        whether everyone waits), else at its window's end; a move that may leave everyone
        waiting wakes it sooner (called holding the lock)."""
        settles = self.moved + self.SETTLE_SECONDS
        return min(deadline, settles) if settles > time.monotonic() else deadline

    def goes_first(self, gather: _Gather) -> bool:
        """When every user in waits, only the fullest queue goes: its users then move on
        to their next call and fill the other queues, whose batches go fuller than if
        every queue went part-full at once (called holding the lock)."""
        return max(self.gathers, key=lambda g: len(g.pending)) is gather


class _Gather:
    """One queue of calls of one kind, sent `limit` at a time by `send`: when it holds a
    whole batch, when every user in the room waits, or `window` seconds after a call came."""

    def __init__(
        self,
        room: _Room,
        limit: int,
        window: float,
        send: Callable[[list[Any]], Sequence[Any]],
        keys: Callable[[Any], set[str]] | None = None,
    ) -> None:
        self.room = room
        self.limit = limit
        self.window = window
        self.send = send
        self.keys = keys  # whose a call is: no two calls sharing a key go in one batch
        room.gathers.append(self)
        self.pending: list[_Call] = []
        self.batches = 0

    def call(self, item: Any) -> Any:
        call = _Call(item)
        room = self.room
        deadline = time.monotonic() + self.window
        with room.changed:
            self.pending.append(call)
            room.waiting += 1
            room.moved_now()
        while True:
            with room.changed:
                batch: list[_Call] = []
                while call.queued:
                    late = time.monotonic() >= deadline
                    everyone = room.all_waiting() and room.goes_first(self)
                    if len(self.pending) >= self.limit or everyone or late:
                        batch = self._take()
                        break
                    room.changed.wait(max(0.001, room.wake_at(deadline) - time.monotonic()))
            if batch:
                self._run(batch)
            if call.done.wait(0 if batch else None):
                break
        if call.error is not None:
            raise call.error
        if isinstance(call.result, _Raised):
            raise call.result.error
        return call.result

    def _take(self) -> list[_Call]:
        """The next batch out of the queue, in the order the calls came, and never two
        calls of one user or contact (`keys`): a second waits for the next batch (called
        holding the room's lock)."""
        batch: list[_Call] = []
        left: list[_Call] = []
        taken: set[str] = set()
        for call in self.pending:
            mine = self.keys(call.item) if self.keys is not None else set()
            if len(batch) >= self.limit or mine & taken:
                left.append(call)
                continue
            batch.append(call)
            call.queued = False
            taken |= mine
        self.pending = left
        self.room.waiting -= len(batch)
        self.room.changed.notify_all()  # the callers taken now wait for their answer
        return batch

    def _run(self, batch: list[_Call]) -> None:
        self.batches += 1
        try:
            results = self.send([c.item for c in batch])
            for c, result in zip(batch, results, strict=True):
                c.result = result
        except BaseException as exc:  # the whole batch failed: each caller gets the error
            for c in batch:
                c.error = exc
        finally:
            for c in batch:
                c.done.set()


class GatheringCrm:
    """The core's CRM for a bulk run: batchable calls gathered, the others passed on."""

    def __init__(
        self,
        crm: Any,
        batches: Batching,
        *,
        window: float = DEFAULT_WINDOW_SECONDS,
        limit: int | None = None,
    ) -> None:
        """`limit`: at most this many records a batch (default and ceiling: the
        destination's own `batch_limit`)."""
        self.inner = crm
        self.batches = batches
        limit = min(limit or batches.batch_limit, batches.batch_limit)
        self._limit = limit
        self._room = _Room()
        self._finds = {
            name: _Gather(self._room, limit, window, self._finder(name))
            for name in ("email", "auth0_user_id")
        }
        self._writes = _Gather(self._room, limit, window, self._write, _whose)
        guarded = getattr(batches, "write_guarded_batch", None)
        self._guarded: _Gather | None = None
        if callable(guarded):
            guarded_limit = min(limit, int(getattr(batches, "guarded_limit", limit)))
            self._guarded = _Gather(self._room, guarded_limit, window, self._write_guarded, _whose)

    @property
    def batch_limit(self) -> int:
        return self._limit

    def batches_sent(self) -> int:
        gathers = (*self._finds.values(), self._writes, self._guarded)
        return sum(g.batches for g in gathers if g is not None)

    # The Crm protocol: gathered ---------------------------------------------------------------

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]:
        if email:
            found: list[Contact] = self._adopt(self._finds["email"].call(email))
        elif auth0_user_id:
            found = self._adopt(self._finds["auth0_user_id"].call(auth0_user_id))
        else:
            raise ValueError("find_contacts needs an email or an auth0_user_id")
        return [dict(c) for c in found]

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        result = self._adopt(self._writes.call(BatchWrite(dict(fields), None, idempotency_key)))
        if not isinstance(result, dict):
            raise TypeError("a batch create answered no contact")
        return result

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        result: Contact | None = self._adopt(
            self._writes.call(BatchWrite(dict(fields), str(contact_id)))
        )
        return result

    def update_guarded(
        self,
        contact_id: str,
        fields: Mapping[str, Any],
        *,
        owner: str | None,
        version: str | None,
    ) -> Contact | None:
        """A destination with preconditions (ETag, If-Unmodified-Since): gathered where
        its batch carries each write's precondition (Salesforce's Composite), else one call
        (the contract's batch operations carry none). HubSpot (no precondition, addressed
        by owner): gathered with the other writes."""
        if getattr(self.inner, "versioned", True):
            if self._guarded is not None:
                guarded = BatchWrite(dict(fields), str(contact_id), owner=owner, version=version)
                gathered: Contact | None = self._adopt(self._guarded.call(guarded))
                return gathered
            answer: Contact | None = self.inner.update_guarded(
                contact_id, fields, owner=owner, version=version
            )
            return answer
        write = BatchWrite(dict(fields), str(contact_id), owner=owner)
        result: Contact | None = self._adopt(self._writes.call(write))
        return result

    # The Crm protocol: passed on --------------------------------------------------------------

    def get_contact(self, contact_id: str) -> Contact | None:
        contact: Contact | None = self.inner.get_contact(contact_id)
        return contact

    def calls_made(self) -> int:
        return int(self.inner.calls_made())

    def set_deadline(self, remaining_ms: Callable[[], int] | None) -> None:
        """The service's start (a deadline) and end (None) of one event: who is in."""
        self.inner.set_deadline(remaining_ms)
        self._room.enter(remaining_ms is not None)

    def __getattr__(self, name: str) -> Any:
        # update_guarded, version_seen, versioned, archive_contact, list_contacts,
        # unsure_writes, search_lag_seconds...: the adapter's own, one call each.
        return getattr(self.inner, name)

    # Sending ------------------------------------------------------------------------------------

    def _finder(self, name: str) -> Callable[[list[str]], list[_Seen]]:
        def find(values: list[str]) -> list[_Seen]:
            found = self.batches.find_batch(name, values)
            return [self._seen(found.get(v, [])) for v in values]

        return find

    def _write(self, writes: list[BatchWrite]) -> list[Any]:
        results: list[BatchResult] = self.batches.write_batch(writes)
        return [
            _Raised(r)
            if isinstance(r, Exception)
            else self._seen(None if r is None else [r], False)
            for r in results
        ]

    def _write_guarded(self, writes: list[BatchWrite]) -> list[Any]:
        results: list[BatchResult] = self.batches.write_guarded_batch(writes)  # type: ignore[attr-defined]
        return [
            _Raised(r) if isinstance(r, Exception) else self._seen(_listed(r), many=False)
            for r in results
        ]

    # Versions -----------------------------------------------------------------------------------
    # A destination with versions (ETag, the answer's Date) keeps the version of each contact
    # per thread: the one its last answer about the contact gave that thread. A batch answer
    # comes in the thread that sent the batch: the versions it gave travel with each record
    # to its caller's thread, so that a write based on it needs no read first (as after the
    # single call).

    def _seen(self, contacts: list[Contact] | None, many: bool = True) -> _Seen:
        seen = getattr(self.inner, "version_seen", None)
        versions: dict[str, str | None] = {}
        if callable(seen):
            versions = {str(c["id"]): seen(str(c["id"])) for c in contacts or [] if "id" in c}
        return _Seen(contacts, versions, many)

    def _adopt(self, answer: Any) -> Any:
        """The record(s) of a batch answer, their versions noted in this thread."""
        if not isinstance(answer, _Seen):
            return answer
        note = getattr(self.inner, "note_version", None)
        if callable(note):
            for contact_id, version in answer.versions.items():
                note(contact_id, version)
        if answer.contacts is None:
            return None
        return answer.contacts if answer.many else answer.contacts[0]


def _whose(write: BatchWrite) -> set[str]:
    """The user (owner) and the contact a write is for: a batch holds at most one write of
    each, so one user's writes apply one after the other, in order."""
    keys = {f"contact:{write.contact_id}"} if write.contact_id is not None else set()
    owner = write.owner or write.fields.get(OWNER_FIELD)
    if owner:
        keys.add(f"user:{owner}")
    return keys


def _listed(contact: Contact | None) -> list[Contact] | None:
    return None if contact is None else [contact]
