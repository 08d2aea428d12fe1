"""The sync state in process memory, for `auth0-sync process` without AWS."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from auth0_sync.errors import LeaseHeld, TransientError
from auth0_sync.state_model import Settled, SyncState, Unchanged, _copy, order_key_text


@dataclass
class _Held:
    state: SyncState
    owner: str | None = None
    until: float = 0.0


@dataclass
class MemorySyncStateStore:
    """The same contract in process memory, for `auth0-sync process` without AWS. A lease
    holds until its end, included, as DynamoDB's `lease_until < :now` condition says;
    `clock` (epoch seconds) is the time it is compared with."""

    _items: dict[str, _Held] = field(default_factory=dict)
    _claims: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], float] = time.time

    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState:
        with self._lock:
            held = self._items.setdefault(user_id, _Held(SyncState(user_id)))
            if held.owner is not None and held.until >= self.clock():
                raise LeaseHeld(user_id, held.until)
            held.owner, held.until = owner, self.clock() + lease_seconds
            return _copy(held.state)

    def acquire_if_newer(
        self, user_id: str, owner: str, lease_seconds: float, key: str
    ) -> SyncState | Settled:
        with self._lock:
            held = self._items.get(user_id)
            last = held.state.order_key if held is not None else None
            if held is not None and last is not None and order_key_text(last) >= key:
                return Settled(_copy(held.state))
        return self.acquire(user_id, owner, lease_seconds)

    def commit(self, state: SyncState, owner: str) -> None:
        with self._lock:
            held = self._items[state.user_id]
            if held.owner != owner:
                raise TransientError(
                    f"lease on user {state.user_id} expired before the state was written",
                    "lease_lost",
                )
            new = _copy(state)
            # Only `mark_linked` writes a link, without the lease (as DynamoDB's commit).
            new.linked_to, new.linked_at = held.state.linked_to, held.state.linked_at
            self._items[state.user_id] = _Held(new)

    def release(self, user_id: str, owner: str) -> None:
        with self._lock:
            held = self._items.get(user_id)
            if held is not None and held.owner == owner:
                held.owner = None

    def get(self, user_id: str) -> SyncState | None:
        with self._lock:
            held = self._items.get(user_id)
            return _copy(held.state) if held else None

    def record_unchanged(self, user_id: str, seen: Unchanged) -> SyncState | None:
        with self._lock:
            held = self._items.get(user_id)
            if held is None:
                return SyncState(user_id)
            free = held.owner is None or held.until < self.clock()
            if not (free and seen.matches(held.state)):
                return _copy(held.state)
            state = held.state
            state.last_change_time, state.last_rank = seen.change_time, seen.rank
            state.last_event_id = seen.event_id
            state.stated.update(dict.fromkeys(seen.digests, seen.key))
            return None

    def claim_contact(self, contact_id: str, user_id: str, expected_owner: str | None) -> bool:
        with self._lock:
            current = self._claims.get(contact_id)
            if current is not None and current not in (user_id, expected_owner):
                return False
            self._claims[contact_id] = user_id
            return True

    def mark_linked(self, secondary_id: str, primary_id: str, at: str | None = None) -> None:
        with self._lock:
            held = self._items.setdefault(secondary_id, _Held(SyncState(secondary_id)))
            held.state.linked_to = primary_id
            held.state.linked_at = at or held.state.linked_at
