"""The per-user sync state itself: one user's record (`SyncState`), the answers a store
gives besides it (`Settled`, `Unchanged`) and what the core needs from a store
(`StateStore`); the stores are `auth0_sync.state_dynamo` and `auth0_sync.state_memory`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from auth0_sync.events import iso


@dataclass
class SyncState:
    """One user's record. Times are ISO-8601 UTC strings; no profile value is kept here.

    - `written`: a digest of each field as last written to the CRM (a write contains only
      what changed);
    - `stated`: the order key (`order_key_text`) of the last event that spoke of each
      field, so a late event still sets what no newer event spoke of (Auth0 does not
      always send the full profile);
    - `life_start`: the order key of the user's last delete; anything older is a past life;
    - `deleted_at`: the tombstone while the user is deleted (a newer event is a new life);
    - `delete_done`: the delete reached a contact or had nothing to do; a tombstone without
      it deactivates the contact that a later-arriving older event reveals;
    - `linked_to` (on a secondary account) / `linked` (on a primary): account links;
      `linked_at` (on a secondary): the order key of the primary's event that showed the
      link. A linked secondary emits no events of its own, so one newer than this means
      Auth0 unlinked it (`auth0_sync.links`);
    - `version`: the contact's version (an ETag, a time) after our last write to it, the
      precondition of our next write (`auth0_sync.writes`);
    - `unconfirmed`: when a create for this user lost its answer (it may have been made);
      cleared once the user's contact is known;
    - `searched`: while a delete waits for its contact, the older events (`<deleted_at>|<event
      id>`) that were looked up for it and revealed nothing: a rerun of them costs no call.
    """

    user_id: str
    contact_id: str | None = None
    matched_by: str | None = None  # state | app_metadata | auth0_user_id | linked | email | created
    last_change_time: str | None = None
    last_event_id: str | None = None
    last_rank: int | None = None
    written: dict[str, str] = field(default_factory=dict)
    stated: dict[str, str] = field(default_factory=dict)
    deleted_at: str | None = None
    life_start: str | None = None
    delete_done: bool | None = None
    linked_to: str | None = None
    linked: list[str] = field(default_factory=list)
    version: str | None = None
    unconfirmed: str | None = None
    searched: list[str] = field(default_factory=list)
    linked_at: str | None = None

    @property
    def last_change(self) -> datetime | None:
        return datetime.fromisoformat(self.last_change_time) if self.last_change_time else None

    @property
    def order_key(self) -> tuple[str, int, str] | None:
        """The order key of the last change applied (see `Auth0BusEvent.order_key`)."""
        if self.last_change_time is None:
            return None
        rank = 1 if self.last_rank is None else int(self.last_rank)
        return (iso(datetime.fromisoformat(self.last_change_time)), rank, self.last_event_id or "")


def order_key_text(key: tuple[str, int, str]) -> str:
    """An order key as one string that sorts the same way (fixed-width time first)."""
    return f"{key[0]}|{key[1]}|{key[2]}"


_FIELDS = (
    "contact_id",
    "matched_by",
    "last_change_time",
    "last_event_id",
    "last_rank",
    "written",
    "stated",
    "deleted_at",
    "life_start",
    "delete_done",
    "linked_to",
    "linked",
    "version",
    "unconfirmed",
    "searched",
    "linked_at",
)


@dataclass(frozen=True)
class Settled:
    """`acquire_if_newer`'s answer when the event is not newer than the last one applied:
    the state as it stands, and no lease."""

    state: SyncState


@dataclass(frozen=True)
class Unchanged:
    """A newer event whose mapped values (`digests`) are what the CRM already holds."""

    key: str  # order_key_text of the event
    change_time: str
    rank: int
    event_id: str
    digests: dict[str, str]
    linked: list[str]

    def matches(self, state: SyncState) -> bool:
        """What `record_unchanged`'s condition says, for the in-memory store."""
        return (
            state.contact_id is not None
            and state.deleted_at is None
            and state.order_key is not None
            and order_key_text(state.order_key) < self.key
            and all(state.written.get(name) == value for name, value in self.digests.items())
            and set(self.linked) <= set(state.linked)
        )


def _from_item(user_id: str, item: dict[str, Any]) -> SyncState:
    values = {name: item[name] for name in _FIELDS if item.get(name) is not None}
    if "last_rank" in values:
        values["last_rank"] = int(values["last_rank"])
    for name in ("written", "stated"):
        if name in values:
            values[name] = dict(values[name])
    for name in ("linked", "searched"):
        if name in values:
            values[name] = list(values[name])
    return SyncState(user_id=user_id, **values)


def _copy(state: SyncState) -> SyncState:
    return replace(
        state,
        written=dict(state.written),
        stated=dict(state.stated),
        linked=list(state.linked),
        searched=list(state.searched),
    )


class StateStore(Protocol):
    """What the core needs from the per-user state (DynamoDB in AWS, memory locally)."""

    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState: ...
    def commit(self, state: SyncState, owner: str) -> None: ...
    def release(self, user_id: str, owner: str) -> None: ...
    def get(self, user_id: str) -> SyncState | None: ...
    def claim_contact(self, contact_id: str, user_id: str, expected_owner: str | None) -> bool: ...
    def mark_linked(self, secondary_id: str, primary_id: str, at: str | None = None) -> None: ...
    def record_unchanged(self, user_id: str, seen: Unchanged) -> SyncState | None: ...
    def acquire_if_newer(
        self, user_id: str, owner: str, lease_seconds: float, key: str
    ) -> SyncState | Settled: ...
